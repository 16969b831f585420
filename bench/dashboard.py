"""The Pipeline dashboard and the status at Launchpad's size, next to a toy upstream, in one run.

Two real masters (``tests.flow_harness.Flow``, one after the other), each
with a database filled while it is stopped and a git shim on the master's
``PATH`` that logs every git process the master starts:

- **toy**: the harness's upstream plus 10 commits on devel;
- **large**: 120,000 commits written by ``git fast-import``: 80,000 up to
  production-*, stable 20,000 ahead of production-stable, devel 20,000
  ahead of stable; one server 20,000 commits behind production-stable.

Both databases get 10,000 suite-run flow events (the gate builds the page
counts), 1,000 production revisions (real commits, each gated, promoted and
deployed: the lead-time rows the page computes), 10,000 ledger entries, the
stable tip's tree as passed and the devel tip's as failed (so no gate runs
during the measurement). ``poll_interval`` is 30 s.

Measured: the fragment (what every open tab reloads every 5 s) with 1, 4
and 8 concurrent viewers (half anonymous, half the security user), p50/p95;
git processes per render with a warm snapshot and right after a finished
build (cold); ``lpdeploy status --json``; ``lpdeploy promote`` wall time and
CLI start → production-stable moved. Every count the page and the status
show is checked against ``git rev-list --count``.

Each size runs on SQLite (the master's ``state.sqlite``) and on PostgreSQL
(``--db``; a private server as ``make cluster`` runs one, ``bench/pg.py``,
one database per size, Buildbot's schema made by ``buildbot upgrade-master``),
one master at a time, printed side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from buildbot.db.model import Model

from bench import pg
from bench.common import median, percentile, save, table
from lpdeploy.core.settings import load_settings
from lpdeploy.stores.ledger import LEDGER_OBJECT
from lpdeploy.stores.registry import REGISTRY_OBJECT
from lpdeploy.tools.services import PrivatePostgres
from tests.big_history import count, extend, rev_parse
from tests.flow_harness import BIN, Flow

SUITE_RUNS, PRODUCTION_REVISIONS, LEDGER = 10_000, 1_000, 10_000
VIEWERS, REQUESTS_PER_VIEWER, POLL = (1, 4, 8), 25, 30
LARGE = {"production": 80_000, "stable": 20_000, "devel": 20_000}
SERVERS = "".join(f'[[servers]]\nname = "{name}"\ndeploy_command = ["true"]\n' for name in ("app1", "app2"))
SHIM = '#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec {git} "$@"\n'


def build_history(flow: Flow, large: bool) -> dict[str, str]:
    """Grow the harness's upstream: the toy one by 10 commits on devel, the large one to 120,001 commits."""
    bare = flow.upstream
    root = rev_parse(bare, "refs/heads/devel")
    if not large:  # 10 commits: stable 5 ahead of production, devel 5 ahead of stable
        stable = extend(bare, "refs/heads/stable", root, 5, "tested")
        devel = extend(bare, "refs/heads/devel", stable, 5, "landed")
        return {"production-stable": root, "stable": stable, "devel": devel, "deployed": root}
    production = extend(bare, "refs/heads/production-stable", root, LARGE["production"], "released")
    subprocess.run(["git", f"--git-dir={bare}", "update-ref", "refs/heads/production-devel", production], check=True)
    deployed = rev_parse(bare, f"{production}~{LARGE['stable']}")
    stable = extend(bare, "refs/heads/stable", production, LARGE["stable"], "tested")
    devel = extend(bare, "refs/heads/devel", stable, LARGE["devel"], "landed")
    return {"production-stable": production, "stable": stable, "devel": devel, "deployed": deployed}


def _objectid(conn: sa.Connection, name: tuple[str, str]) -> int:
    found = conn.execute(sa.select(Model.objects.c.id).where(
        Model.objects.c.name == name[0], Model.objects.c.class_name == name[1])).first()
    if found:
        return int(found[0])
    return int(conn.execute(Model.objects.insert().values(name=name[0], class_name=name[1])).inserted_primary_key[0])


def _tree(flow: Flow, sha: str) -> str:
    return rev_parse(flow.upstream, f"{sha}^{{tree}}")


def fill(flow: Flow, tips: dict[str, str], db_url: str) -> None:
    """Flow events, ledger entries and deployments, written while the master is stopped."""
    suite = load_settings(flow.site).suite.identity
    bare = flow.upstream
    revisions = subprocess.run(["git", f"--git-dir={bare}", "rev-list", "--max-count=" + str(PRODUCTION_REVISIONS),
                                tips["production-stable"]], check=True, capture_output=True, text=True).stdout.split()
    now = time.time()
    t0 = now - 29 * 86400
    events: list[tuple[float, str, dict[str, Any]]] = []
    for i in range(SUITE_RUNS):
        events.append((t0 + i * 240.0, "suite-run", {"kind": "gate", "revision": f"{i:040x}", "duration": 3600.0}))
    for i, rev in enumerate(reversed(revisions)):  # oldest first, each gated, promoted and deployed
        at = t0 + i * 2400.0
        events.append((at, "moved", {"kind": "gate", "revision": rev}))
        events.append((at + 600, "moved", {"kind": "promote", "revision": rev}))
        events.append((at + 900, "deployed", {"server": "app2", "revision": rev}))
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        ledger = _objectid(conn, LEDGER_OBJECT)
        entries = [(f"{i:040x}", "passed") for i in range(LEDGER)]
        entries += [(_tree(flow, tips["stable"]), "passed"), (_tree(flow, tips["devel"]), "failed")]
        conn.execute(Model.object_state.insert(), [
            {"objectid": ledger, "name": f"{result}/{suite}/{tree}", "value_json": json.dumps({
                "tree": tree, "commit": tips["stable"], "suite": suite, "result": result,
                "build_url": "http://localhost/#/builders/1/builds/1", "build_number": 1,
                "finished_at": now - 3600, "duration": 3600.0})} for tree, result in entries])
        registry = _objectid(conn, REGISTRY_OBJECT)
        rows = [{"objectid": registry, "name": f"event/{at:020.6f}/{i:012d}/bench",
                 "value_json": json.dumps({"at": at, "who": "bench", "action": action, "details": details})}
                for i, (at, action, details) in enumerate(events)]
        rows += [{"objectid": registry, "name": f"deployed/{server}", "value_json": json.dumps({
            "server": server, "revision": rev, "deployed_at": now - 7200, "by": "bench", "build_url": ""})}
            for server, rev in (("app1", tips["deployed"]), ("app2", tips["production-stable"]))]
        conn.execute(Model.object_state.insert(), rows)
    engine.dispose()


class GitLog:
    """The git processes the master started, as logged by the shim on its ``PATH``."""

    def __init__(self, base: Path) -> None:
        self.path = base / "git-calls.log"
        self.path.touch()
        shim = base / "git-shim"
        shim.mkdir()
        real = subprocess.run(["sh", "-c", "command -v git"], check=True, capture_output=True, text=True).stdout.strip()
        (shim / "git").write_text(SHIM.format(log=self.path, git=real))
        (shim / "git").chmod(0o755)
        self.dir = shim

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines()


def fragment(opener: urllib.request.OpenerDirector, flow: Flow) -> str:
    with opener.open(flow.url + "plugins/wsgi_dashboards/pipeline/fragment", timeout=300) as r:
        assert r.status == 200
        return r.read().decode()


def concurrent(flow: Flow, viewers: int) -> list[float]:
    """``viewers`` threads, each with its own session, fetching the fragment back to back."""
    openers = [flow.session("alice" if i % 2 else None) for i in range(viewers)]
    times: list[float] = []
    lock = threading.Lock()

    def viewer(opener: urllib.request.OpenerDirector) -> None:
        for _ in range(REQUESTS_PER_VIEWER):
            t = time.perf_counter()
            fragment(opener, flow)
            with lock:
                times.append(time.perf_counter() - t)

    threads = [threading.Thread(target=viewer, args=(o,)) for o in openers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def git_per_render(flow: Flow, log: GitLog, renders: int = 20) -> float:
    """Git processes per warm render; a window with a poll of the poller in it is measured again."""
    opener = flow.session(None)
    fragment(opener, flow)
    for _ in range(5):
        before = len(log.lines())
        for _ in range(renders):
            fragment(opener, flow)
        window = log.lines()[before:]
        if not any(" fetch " in line for line in window):  # the poller's
            return len(window) / renders
    raise AssertionError("every window had a poll in it")


def cold_renders(flow: Flow, log: GitLog, times: int = 4) -> tuple[list[float], list[int]]:
    """A finished build (freeze, thaw, freeze, thaw) invalidates the snapshot; the next render recomputes it."""
    opener = flow.session(None)
    seconds, processes = [], []
    for i in range(times):
        result = flow.cli("thaw" if i % 2 else "freeze", *([] if i % 2 else ["--reason", "bench"]), user="bob")
        assert result.returncode == 0, result.stdout + result.stderr
        before = len(log.lines())
        t = time.perf_counter()
        html = fragment(opener, flow)
        seconds.append(time.perf_counter() - t)
        processes.append(len(log.lines()) - before)
        assert ("Frozen" in html) == (i % 2 == 0), "the render after the build did not show it"
    return seconds, processes


def check_counts(flow: Flow, tips: dict[str, str], html: str, status: dict[str, Any]) -> int:
    """Every count shown, against ``git rev-list --count``; returns how many were checked."""
    bare = flow.upstream
    want = {"devel": count(bare, tips["stable"], tips["devel"]),
            "stable": count(bare, tips["production-stable"], tips["stable"])}
    shown = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) commits? ahead of the next stage", html)]
    assert shown == [want["devel"], want["stable"]], (shown, want)
    behind = {"app1": count(bare, tips["deployed"], tips["production-stable"]), "app2": 0}
    assert want["stable"] > 0 and (behind["app1"] > 0) == (tips["deployed"] != tips["production-stable"])
    on_page = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) behind production-stable", html)]
    assert on_page == [behind["app1"], behind["app2"]], (on_page, behind)
    assert {s["name"]: s["behind"] for s in status["servers"]} == behind
    promo = re.search(r'id="promotion-count">([\d,]+) commit', html)
    assert promo and int(promo.group(1).replace(",", "")) == want["stable"]
    return 6


def promote(flow: Flow, tips: dict[str, str]) -> tuple[float, float]:
    """``lpdeploy promote`` as a losa: its wall time, and CLI start → production-stable moved upstream."""
    moved: list[float] = []
    start = time.perf_counter()

    def watch() -> None:
        while time.perf_counter() - start < 120:
            if rev_parse(flow.upstream, "refs/heads/production-stable") == tips["stable"]:
                moved.append(time.perf_counter())
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = flow.cli("promote", "--reason", "bench", user="bob")
    wall = time.perf_counter() - start
    watcher.join()
    assert result.returncode == 0 and moved, result.stdout + result.stderr
    return wall, moved[0] - start


def _phase(name: str, since: float) -> float:
    print(f"  {name}: {time.perf_counter() - since:.1f} s", file=sys.stderr, flush=True)
    return time.perf_counter()


def run(large: bool, server: PrivatePostgres | None = None) -> dict[str, Any]:
    """One master on one upstream size; on ``server``'s PostgreSQL when given, else on SQLite."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        db_url = ""
        if server is not None:
            name = "bench_dashboard_" + ("large" if large else "toy")
            server.ensure_database(name)
            db_url = server.url(name)
        flow = Flow(base, extra_site=SERVERS + (f'[database]\nurl = "{db_url}"\n' if db_url else ""))
        flow.create()
        if server is not None:  # create-master made a SQLite file; the site's database gets the schema here
            subprocess.run([str(BIN / "buildbot"), "upgrade-master", str(flow.master_dir)], check=True,
                           env=flow.env, capture_output=True, timeout=300)
        else:
            db_url = f"sqlite:///{flow.master_dir / 'state.sqlite'}"
        flow.site.write_text(flow.site.read_text().replace("poll_interval = 1\n", f"poll_interval = {POLL}\n"))
        t = time.perf_counter()
        tips = build_history(flow, large)
        history_s = time.perf_counter() - t
        commits = count(flow.upstream, None, tips["devel"])
        fill(flow, tips, db_url)
        log = GitLog(base)
        flow.env["PATH"] = f"{log.dir}:{flow.env['PATH']}"
        p = _phase("history and database", t)
        flow.start()
        try:
            p = _phase("master started", p)
            t = time.perf_counter()
            first = fragment(flow.session(None), flow)  # the mirror's first fetch, then the first picture
            first_s = time.perf_counter() - t
            status_times = []
            for _ in range(5):
                t = time.perf_counter()
                status = flow.status()
                status_times.append(time.perf_counter() - t)
            checked = check_counts(flow, tips, fragment(flow.session(None), flow), status)
            p = _phase("first render, status, counts", p)
            latency = {n: concurrent(flow, n) for n in VIEWERS}
            warm = git_per_render(flow, log)
            p = _phase("viewers", p)
            cold_s, cold_git = cold_renders(flow, log)
            p = _phase("cold renders", p)
            wall, moved = promote(flow, tips)
            p = _phase("promote", p)
            load = os.getloadavg()[0]  # the minute this master was measured: latencies follow it
        finally:
            flow.stop()
    assert "stage-stable" in first
    return {"commits": commits, "history_s": history_s, "first_render_s": first_s,
            "fragment_ms": {n: {"p50": median(v) * 1000, "p95": percentile(v, 95) * 1000} for n, v in latency.items()},
            "git_per_warm_render": warm, "git_per_cold_render": median([float(c) for c in cold_git]),
            "cold_render_ms": median(cold_s) * 1000, "status_json_s": median(status_times),
            "promote_wall_s": wall, "promote_moved_s": moved, "counts_checked": checked,
            "load_average": load}


def main(sizes: tuple[str, ...] = ("toy", "large"), dbs: tuple[str, ...] = pg.CHOICES) -> dict[str, Any]:
    dbs = tuple(pg.databases(list(dbs)))
    out: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(pg.private_postgres()) if pg.POSTGRES in dbs else None
        for name in sizes:
            for db in dbs:
                print(f"dashboard: {name} on {db}", file=sys.stderr, flush=True)
                out.setdefault(name, {})[db] = run(large=name == "large", server=server if db == pg.POSTGRES else None)
    label = {pg.SQLITE: "SQLite", pg.POSTGRES: "PostgreSQL"}
    rows = []
    for name, by_db in out.items():
        for db, r in by_db.items():
            rows.append([f"{name} ({r['commits']:,} commits)", label[db]]
                        + [f"{r['fragment_ms'][n]['p50']:.0f} / {r['fragment_ms'][n]['p95']:.0f}" for n in VIEWERS]
                        + [r["git_per_warm_render"], f"{r['git_per_cold_render']:.0f}", f"{r['cold_render_ms']:.0f}",
                           f"{r['status_json_s']:.2f}", f"{r['promote_wall_s']:.2f} / {r['promote_moved_s']:.2f}",
                           f"{r['counts_checked']} exact", f"{r['load_average']:.1f}"])
    print(table(f"Pipeline fragment, {SUITE_RUNS:,} suite runs, {PRODUCTION_REVISIONS:,} production revisions, "
                f"{LEDGER:,} ledger entries; large: stages 20,000 commits apart",
                ["upstream", "database"] + [f"{n} viewer{'s' if n > 1 else ''} p50/p95 ms" for n in VIEWERS]
                + ["git/warm render", "git/cold render", "cold ms", "status --json s", "promote wall / moved s",
                   "counts", "load"], rows))
    save("dashboard", out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", help="toy, large (default: both)")
    parser.add_argument("--db", nargs="+", choices=pg.CHOICES, default=list(pg.CHOICES),
                        help="the databases to measure, side by side (default: both)")
    args = parser.parse_args()
    unknown = set(args.sizes) - {"toy", "large"}
    if unknown:
        parser.error(f"unknown size(s) {', '.join(sorted(unknown))}: choose from toy, large")
    main(tuple(args.sizes or ("toy", "large")), tuple(args.db))
