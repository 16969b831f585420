"""Decision cost: the whole decision a gate or promote build makes, at scale.

What is timed is lpdeploy's own steps, run by Buildbot's step machinery
(``TestBuildStepMixin``: ``startStep`` to the step's end, as a build runs it):

* ``Decide`` (gate): fetch the upstream into the master's mirror, pick the
  devel tip, check that the build's push is contained in it (ancestry), read
  the tip's tree, look the tree up in the ledger, the pure ``suite_decision``,
  and the flow event of a skipped suite;
* ``Decide`` (promote): the freeze, the fetch, the tree, every recorded
  security release checked against the target (ancestry), where each
  production branch stands (ancestry, twice per branch), the ledger, the
  pure decisions;
* ``MoveBranches``: the ledger again, the fetch, the branch facts, the pure
  ``move_decision`` and, when it says so, the compare-and-swap push (the push
  is part of the step, so its time is in this row), the event and the audit.

Against:

* an upstream of ``--commits`` (10^5) commits on devel, built with
  ``git fast-import`` (``bench/history.py``); stable, production-devel and
  production-stable are moved between decisions (ref files written directly:
  no git process outside the decisions). The master's mirror is what
  lpdeploy's own first fetch made of it (no commit-graph);
* a real Buildbot database (Buildbot's schema, upgraded by Buildbot), SQLite
  and PostgreSQL (``--db``; a private server as ``make cluster`` runs one:
  ``bench/pg.py``), measured one after the other in one run, whose
  ``object_state`` holds ``--entries`` (10^6) ledger entries read and
  written through ``DbLedger``: a pass for every other upstream tree, a
  failure for every tenth, the rest of the million under older suite
  identities; plus 12 security releases in the registry.

The fill happens in a separate process; the decisions run in a fresh one, so
its peak RSS is the decisions' (plus the imports), not the fill's. Git runs in
short-lived child processes, not counted there (Linux's children peak RSS
counts the forked interpreter, so it cannot tell git's own).

Harness caveat: Buildbot's test reactor runs thread-pool work inline
(``NonThreadPool``), so the hop to the database and git threads (tens of
microseconds on a real master) is not included.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
import unittest
from pathlib import Path
from typing import Any

from bench import pg
from bench.common import percentile, save, table

COMMITS = 100_000
ENTRIES = 1_000_000
DECISIONS = 150
RELEASES = 12
WINDOW = 500  # the devel tip is one of the newest WINDOW commits
DB = "state.sqlite"
RESULT = "measured.json"


def settings_for(url: str) -> Any:
    from lpdeploy.core.settings import parse_settings
    return parse_settings({"repository": {"url": url}, "suite": {"command": ["./run-suite", "--all"]}})


def _load(base: Path) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    meta = json.loads((base / "meta.json").read_text())
    return [tuple(p) for p in meta.pop("history")], meta  # type: ignore[misc]


def _quiet_imports() -> None:
    """Import the worker's stack before ``buildbot.test`` makes every warning an error.

    With the ``cluster`` extra installed (PostgreSQL's driver, Crossbar),
    autobahn finds passlib, which imports Python's deprecated ``crypt``: a
    DeprecationWarning that Buildbot's test package would turn into an error.
    """
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import buildbot_worker.bot  # noqa: F401


def _run_case(case: unittest.TestCase) -> None:
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # as pytest's filterwarnings (pyproject.toml)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    result = unittest.TestResult()
    case.run(result)
    for _, trace in result.errors + result.failures:
        print(trace, file=sys.stderr)
    if not result.wasSuccessful():
        raise SystemExit(1)


# --- the fill (its own process) ---------------------------------------------------------


def prepare(base: Path, commits: int, entries: int, db_url: str) -> None:
    from bench.history import build_upstream
    from lpdeploy.git.gitops import Mirror

    t0 = time.perf_counter()
    upstream = base / "upstream.git"
    history = build_upstream(upstream, commits)
    built = time.perf_counter() - t0
    Mirror(base / "mirror.git", upstream.as_uri()).fetch()  # what the master's first fetch makes
    mirrored = time.perf_counter() - t0 - built
    (base / "meta.json").write_text(json.dumps({"history": history, "build_s": built, "mirror_s": mirrored}))
    _run_case(_Fill("test_fill", base, entries, db_url))


def _fill_case() -> type:
    _quiet_imports()
    from buildbot.test.fake import fakemaster
    from buildbot.test.reactor import TestReactorMixin
    from twisted.trial import unittest as trial

    class Fill(TestReactorMixin, trial.TestCase):
        def __init__(self, name: str, base: Path, entries: int, db_url: str) -> None:
            super().__init__(name)
            self.base, self.entries, self.db_url = base, entries, db_url

        async def _fill(self) -> None:
            import sqlalchemy as sa
            from buildbot.db.model import Model

            from lpdeploy.core.model import Release
            from lpdeploy.stores.ledger import LEDGER_OBJECT
            from lpdeploy.stores.registry import DbRegistry

            history, meta = _load(self.base)
            suite = settings_for((self.base / "upstream.git").as_uri()).suite.identity
            self.setup_test_reactor()
            master = await fakemaster.make_master(self, wantDb=True, basedir=str(self.base / "fill-master"),
                                                  db_url=self.db_url)  # Buildbot's upgrade
            oid = await master.db.state.getObjectId(*LEDGER_OBJECT)
            n = len(history)
            for k in range(RELEASES):  # a fix a month over the last year, on the mainline
                sha = history[max(0, n - 1 - WINDOW - 300 - 200 * k)][0]
                await DbRegistry(master).record_release(Release(f"security/fix-{k}", sha, sha, 1.6e9 + k))
            t0 = time.perf_counter()
            engine = sa.create_engine(self.db_url)
            rows: list[dict[str, Any]] = []
            filled = 0

            def entry(name: str, rec: dict[str, Any]) -> None:
                nonlocal rows, filled
                rows.append({"objectid": oid, "name": name, "value_json": json.dumps(rec)})
                filled += 1
                if len(rows) == 50_000:
                    with engine.begin() as conn:
                        conn.execute(Model.object_state.insert(), rows)
                    rows = []

            def rec(tree: str, commit: str, s: str, result: str, i: int) -> dict[str, Any]:
                return {"tree": tree, "commit": commit, "suite": s, "result": result,
                        "build_url": f"http://localhost:8010/#/builders/1/builds/{i}", "build_number": i,
                        "finished_at": 1.6e9 + i, "duration": 3600.0}

            for i, (commit, tree) in enumerate(history):
                if i % 2 == 0:
                    entry(f"passed/{suite}/{tree}", rec(tree, commit, suite, "passed", i))
                elif i % 10 == 1:
                    entry(f"failed/{suite}/{tree}", rec(tree, commit, suite, "failed", i))
            i = 0
            while filled < self.entries:  # older suite identities: a suite change leaves them behind
                old = f"suite-old{i % 50:02d}{'0' * 6}"
                tree = f"{i:040x}"
                entry(f"passed/{old}/{tree}", rec(tree, tree, old, "passed", i))
                i += 1
            if rows:
                with engine.begin() as conn:
                    conn.execute(Model.object_state.insert(), rows)
            engine.dispose()
            meta.update(history=history, fill_s=time.perf_counter() - t0, entries=filled)
            (self.base / "meta.json").write_text(json.dumps(meta))

        def test_fill(self) -> Any:
            from twisted.internet import defer
            return defer.ensureDeferred(self._fill())

    return Fill


def _Fill(name: str, base: Path, entries: int, db_url: str) -> unittest.TestCase:  # noqa: N802 - a class factory
    return _fill_case()(name, base, entries, db_url)


# --- the decisions (a fresh process) ----------------------------------------------------


def measure(base: Path, decisions: int, seed: int, db_url: str) -> None:
    case = _measure_case()("test_measure", base, decisions, seed, db_url)
    _run_case(case)


def _measure_case() -> type:
    _quiet_imports()
    from buildbot.process.results import SUCCESS
    from buildbot.test.fake import fakemaster
    from buildbot.test.fake.connection import FakeConnection
    from buildbot.test.reactor import TestReactorMixin
    from buildbot.test.steps import TestBuildStepMixin
    from twisted.internet import defer
    from twisted.trial import unittest as trial

    from bench.history import set_ref
    from lpdeploy.core.model import FlowKind
    from lpdeploy.git import gitops
    from lpdeploy.master.steps.flow import Decide, MoveBranches
    from lpdeploy.stores.ledger import DbLedger

    GATE, PROMOTE = FlowKind.GATE, FlowKind.PROMOTE

    class Measure(TestBuildStepMixin, TestReactorMixin, trial.TestCase):
        def __init__(self, name: str, base: Path, decisions: int, seed: int, db_url: str) -> None:
            super().__init__(name)
            self.base, self.decisions, self.rng, self.db_url = base, decisions, random.Random(seed), db_url
            self.git_calls = 0

        def _count_git(self) -> None:
            real = gitops.run_git

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.git_calls += 1
                return real(*args, **kwargs)

            self.patch(gitops, "run_git", counted)

        async def _step(self, step: Any, fresh: bool, hint: str | None = None) -> tuple[float, int, Any]:
            """Run one step as a build does (``startStep`` to its end); (ms, git calls, result)."""
            if fresh:
                self.build = None
                self._steps = []
            step = self.setup_step(step)
            self.build.getBuilderId = lambda: defer.succeed(100)
            if hint is not None:
                self.build.sources[""] = types.SimpleNamespace(revision=hint)
            conn = FakeConnection(self, "bench", step, [])
            calls = self.git_calls
            t = time.perf_counter()
            result = await step.startStep(conn)
            return (time.perf_counter() - t) * 1000, self.git_calls - calls, result

        async def _measure(self) -> None:
            self.setup_test_reactor()
            url = (self.base / "upstream.git").as_uri()
            self.patch(fakemaster, "make_master", functools.partial(
                fakemaster.make_master, basedir=str(self.base / "master"), db_url=self.db_url,
                auto_upgrade=False, auto_clean=False))
            await self.setup_test_build_step()
            os.rename(self.base / "mirror.git", self.base / "master" / "lpdeploy-mirror.git")
            history, meta = _load(self.base)
            settings = settings_for(url)
            upstream = self.base / "upstream.git"
            n = len(history)
            self._count_git()
            out: dict[str, Any] = {"meta": meta, "rows": {}}
            rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

            def rows(name: str) -> dict[str, list[float]]:
                return out["rows"].setdefault(name, {"ms": [], "git": [], "outcomes": {}})

            def note(name: str, ms: float, calls: int, outcome: Any) -> None:
                r = rows(name)
                r["ms"].append(ms)
                r["git"].append(calls)
                r["outcomes"][str(outcome)] = r["outcomes"].get(str(outcome), 0) + 1

            for _ in range(self.decisions):  # the gate: half the devel tips are already tested
                tip = n - 1 - self.rng.randrange(WINDOW)
                stable = tip - 1 - self.rng.randrange(50)
                for b, i in (("devel", tip), ("stable", stable), ("production-devel", stable - 200),
                             ("production-stable", stable - 200)):
                    set_ref(upstream, b, history[i][0])
                hint = history[tip - self.rng.randrange(3)][0]  # the push: the tip or one batched into it
                ms, calls, result = await self._step(Decide(settings=settings, kind=GATE), True, hint)
                assert result == SUCCESS, result
                note("gate: Decide", ms, calls, "suite needed" if self.build.getProperty("lpdeploy_run_suite")
                     else "already tested")
                decided, decide_calls = ms, calls
                ms, calls, result = await self._step(MoveBranches(settings=settings, kind=GATE), False)
                note("gate: MoveBranches", ms, calls, self.build.getProperty("lpdeploy_outcome"))
                note("gate build: both steps", decided + ms, decide_calls + calls, "")
                moved = (upstream / "refs/heads/stable").read_text().strip() == history[tip][0]
                assert moved == (result == SUCCESS and tip % 2 == 0), (result, tip)
            for _ in range(self.decisions):  # a promotion: a tested stable tip, production up to 300 behind
                stable = n - 1 - 2 * self.rng.randrange(WINDOW // 2)
                stable -= stable % 2  # stable holds tested trees only
                prod = stable - 1 - self.rng.randrange(300)
                for b, i in (("devel", n - 1), ("stable", stable), ("production-devel", prod),
                             ("production-stable", prod)):
                    set_ref(upstream, b, history[i][0])
                ms, calls, result = await self._step(Decide(settings=settings, kind=PROMOTE), True)
                assert result == SUCCESS, (result, self.build.getProperty("lpdeploy_reason"))
                assert not self.build.getProperty("lpdeploy_run_suite")
                note("promote: Decide", ms, calls, "already tested")
                decided, decide_calls = ms, calls
                ms, calls, result = await self._step(MoveBranches(settings=settings, kind=PROMOTE), False)
                assert result == SUCCESS and self.build.getProperty("lpdeploy_outcome") == "moved", result
                note("promote: MoveBranches", ms, calls, "moved")
                note("promote build: both steps", decided + ms, decide_calls + calls, "")
            ledger = DbLedger(self.master)
            suite = settings.suite.identity
            for _ in range(self.decisions * 4):  # the ledger read alone, for comparison
                tree = history[n - 1 - self.rng.randrange(WINDOW)][1]
                t = time.perf_counter()
                await ledger.lookup(suite, tree)
                note("DbLedger.lookup alone", (time.perf_counter() - t) * 1000, 0, "read")
            out["rss_before_mib"] = rss_self / 1024
            out["rss_peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            (self.base / RESULT).write_text(json.dumps(out))

        def test_measure(self) -> Any:
            return defer.ensureDeferred(self._measure())

    return Measure


# --- the report -------------------------------------------------------------------------


def run_one(args: argparse.Namespace, db: str) -> dict[str, Any]:
    """Fill and measure on one database (SQLite file or a private PostgreSQL), each in its own process."""
    me = [sys.executable, "-m", "bench.decision_cost"]
    with tempfile.TemporaryDirectory(prefix="lpdeploy-bench-") as tmp, contextlib.ExitStack() as stack:
        if db == pg.POSTGRES:
            server = stack.enter_context(pg.private_postgres())
            server.ensure_database("bench_decisions")
            url = server.url("bench_decisions")
        else:
            url = f"sqlite:///{Path(tmp) / DB}"
        t0 = time.perf_counter()
        subprocess.run([*me, "--prepare", tmp, f"--commits={args.commits}", f"--entries={args.entries}",
                        f"--db-url={url}"], check=True)
        prepared = time.perf_counter() - t0
        subprocess.run([*me, "--measure", tmp, f"--decisions={args.decisions}", f"--seed={args.seed}",
                        f"--db-url={url}"], check=True)
        found = json.loads((Path(tmp) / RESULT).read_text())
        found["db_mib"] = pg.size_mib(url) if db == pg.POSTGRES else (Path(tmp) / DB).stat().st_size / 2**20
    found["prepare_s"] = prepared
    found["load"] = os.getloadavg()[0]  # the minute the decisions ended: the tails follow it
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=COMMITS)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--decisions", type=int, default=DECISIONS, help="builds of each kind")
    parser.add_argument("--db", nargs="+", choices=pg.CHOICES, default=list(pg.CHOICES),
                        help="the databases to measure, side by side (default: both)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.prepare, args.commits, args.entries, args.db_url)
        return {}
    if args.measure:
        measure(args.measure, args.decisions, args.seed, args.db_url)
        return {}
    dbs = pg.databases(args.db)
    found = {db: run_one(args, db) for db in dbs}
    data: dict[str, Any] = {"commits": args.commits, "decisions": args.decisions, "databases": {}}
    for db, f in found.items():
        meta = f["meta"]
        data["entries"] = meta["entries"]
        d = data["databases"][db] = {"db_mib": f["db_mib"], "prepare_s": f["prepare_s"],
                                     "rss_before_mib": f["rss_before_mib"], "rss_peak_mib": f["rss_peak_mib"],
                                     "load_average": f["load"], "steps": {}}
        for name, r in f["rows"].items():
            d["steps"][name] = {"runs": len(r["ms"]), "p50_ms": percentile(r["ms"], 50),
                                "p99_ms": percentile(r["ms"], 99), "max_ms": max(r["ms"]),
                                "git_calls_median": statistics.median(r["git"]), "outcomes": r["outcomes"]}
    first = found[dbs[0]]["rows"]
    rows = []
    for name, r in first.items():
        outcomes = ", ".join(f"{v} {k}" for k, v in sorted(r["outcomes"].items()) if k)
        cells: list[Any] = [name, len(r["ms"])]
        for db in dbs:
            st = data["databases"][db]["steps"][name]
            cells += [st["p50_ms"], st["p99_ms"], st["max_ms"]]
        rows.append([*cells, round(statistics.median(r["git"])), outcomes])
    label = {pg.SQLITE: "SQLite", pg.POSTGRES: "PostgreSQL"}
    header = ["step (as a build runs it)", "runs"]
    for db in dbs:
        header += [f"{label[db]} p50 ms", "p99 ms", "max ms"]
    sizes = ", ".join(f"{data['databases'][db]['db_mib']:.0f} MiB {label[db]}" for db in dbs)
    print(table(f"Decision cost: {args.commits} commits upstream, {data.get('entries', 0)} ledger entries "
                f"({sizes}, Buildbot's schema), {RELEASES} security releases",
                [*header, "git calls", "outcomes"], rows))
    for db in dbs:
        f, meta = found[db], found[db]["meta"]
        print(f"{label[db]}: peak RSS of the deciding process {f['rss_before_mib']:.0f} MiB before the first "
              f"decision, {f['rss_peak_mib']:.0f} MiB after all; set-up (fast-import {meta['build_s']:.1f} s, "
              f"mirror {meta['mirror_s']:.1f} s, ledger fill {meta['fill_s']:.1f} s) {f['prepare_s']:.0f} s, "
              f"not timed; load average {f['load']:.1f} as it ended ({os.cpu_count()} cores).")
    save("decision_cost", data)
    return data


if __name__ == "__main__":
    main()
