"""The sharded suite: list once, partition by history, run shards on N workers, judge the whole.

In the gate (and promote, security) build, with ``[suite] shards = N``:

1. the list command runs in the checkout; its output goes to a file that is
   uploaded to the master (a subunit v2 list is binary: it cannot travel as
   step output);
2. ``RunShards`` (on the master) partitions the ids by recorded durations,
   triggers one ``lpdeploy-shard`` build per shard, waits, re-runs once a
   shard that came back with no results, and passes only if every shard
   passed and every listed test ran;
3. each shard build checks out the same commit, gets its id file, runs the
   run command (its stdout or JUnit file uploaded to the master), and
   ``CollectShard`` files the parsed results in the database for the parent.

Results go to Buildbot's test-results API (one set per build), durations to
the timings store, the verdict to the ledger.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET  # noqa: S405 - only for its ParseError
from typing import Any

from buildbot.process import results
from buildbot.process.properties import Properties
from twisted.internet import defer

from lpdeploy.ledger import DbLedger
from lpdeploy.model import Result, TestRecord
from lpdeploy.partition import partition, updated
from lpdeploy.refs import short
from lpdeploy.results import FAILED, PASSED, Outcome, match_ids, parse_results, parse_test_list
from lpdeploy.settings import Settings
from lpdeploy.steps import GATE, SECURITY, SOURCE, FlowStep
from lpdeploy.timings import DbTimings

SHARD_SCHEDULER = "lpdeploy-shards"
SECURITY_SHARD_SCHEDULER = "lpdeploy-security-shards"  # its builds are embargoed like their parents
ID_FILE = ".lpdeploy-test-ids"
LIST_OUT = ".lpdeploy-test-list"
RESULTS_OUT = ".lpdeploy-results"
RESULTS_DIR = "lpdeploy-results"  # under the master's basedir; files live only until parsed
RUNS_OBJECT = ("lpdeploy-suite-runs", "lpdeploy.shard_steps.RunShards")
RUN_STEP = "run shard"
MAX_ATTEMPTS = 2  # a shard that came back with no results is run once more
SHOWN_FAILURES = 20


LIST_PATH = RESULTS_DIR + "/%(prop:buildername)s-%(prop:buildnumber)s.list"  # an Interpolate pattern
SHARD_RESULTS_PATH = RESULTS_DIR + "/shard-%(prop:lpdeploy_parent_buildid)s-%(prop:lpdeploy_shard)s-" \
                                   "%(prop:lpdeploy_attempt)s"


def to_file(path: str, argv: tuple[str, ...]) -> list[str]:
    """Run ``argv`` with its stdout in ``path``: a constant script, the argv as data ("$@")."""
    return ["sh", "-c", 'exec "$@" > "$0"', path, *argv]


async def _runs_oid(master: Any) -> int:
    return await master.db.state.getObjectId(*RUNS_OBJECT)


class RunShards(FlowStep):
    """Partition, run the shards in parallel, and judge the run as one suite."""

    name = "suite"
    description = ["running the sharded suite"]

    def __init__(self, settings: Settings, list_path: Any, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=kwargs.pop("kind", GATE), **kwargs)
        self.list_path = list_path

    renderables = ["list_path"]

    async def run(self) -> int:
        suite = self.settings.suite
        path = os.path.join(self.master.basedir, str(self.list_path))
        try:
            with open(path, "rb") as f:
                ids = parse_test_list(f.read())
            os.unlink(path)
        except OSError as e:
            return await self.refuse(f"the test list did not arrive: {e}", outcome="failed")
        if not ids:
            return await self.refuse("the list command listed no tests", outcome="failed")
        timings = DbTimings(self.master)
        history = await timings.durations(suite.identity)
        parts = [p for p in partition(ids, history, suite.shards) if p]
        for k, part in enumerate(parts):
            known = sum(history.get(t, 0.0) for t in part)
            self.say(f"shard {k}: {len(part)} tests, {known:.1f}s by history "
                     f"({sum(t not in history for t in part)} never seen)")
        started = self.master.reactor.seconds()
        outcomes: dict[str, Outcome] = {}
        pending = list(range(len(parts)))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await self._run_shards(parts, pending, attempt)
            lost = []
            for k in pending:
                found = await self._shard_results(k, attempt)
                if found is None:
                    lost.append(k)
                else:
                    outcomes.update(found)
            if lost and attempt < MAX_ATTEMPTS:
                self.say(f"shards {', '.join(map(str, lost))} came back without results; running them again")
            pending = lost
            if not lost:
                break
        finished = self.master.reactor.seconds()
        await self.flush()
        return await self._judge(ids, outcomes, pending, history, started, finished)

    async def _run_shards(self, parts: list[list[str]], which: list[int], attempt: int) -> None:
        name = SECURITY_SHARD_SCHEDULER if self.kind == SECURITY else SHARD_SCHEDULER
        sched = self.master.scheduler_manager.namedServices[name]
        waits = []
        for k in which:
            props = Properties()
            for name, value in (("lpdeploy_revision", self.getProperty("lpdeploy_revision")),
                                ("lpdeploy_checkout_branch", self.getProperty("lpdeploy_checkout_branch")),
                                ("lpdeploy_shard_ids", parts[k]), ("lpdeploy_shard", k),
                                ("lpdeploy_attempt", attempt), ("lpdeploy_parent_buildid", self.build.buildid),
                                ("reason", f"shard {k} of build {self.build.buildid}")):
                props.setProperty(name, value, SOURCE)
            _, done = sched.trigger(
                waited_for=True,
                sourcestamps=[{"codebase": "", "repository": self.settings.repository.url, "branch": "",
                               "revision": None, "project": ""}],
                set_props=props, parent_buildid=self.build.buildid, parent_relationship="shard")
            waits.append(done)
        await defer.DeferredList(waits, consumeErrors=True)

    async def _shard_results(self, k: int, attempt: int) -> dict[str, Outcome] | None:
        stored = await self.master.db.state.getState(
            await _runs_oid(self.master), f"run/{self.build.buildid}/{k}/{attempt}", None)
        if not stored:
            return None
        return {t: Outcome(s, d) for t, (s, d) in stored["results"].items()}

    async def _judge(self, ids: list[str], outcomes: dict[str, Outcome], lost: list[int],
                     history: dict[str, float], started: float, finished: float) -> int:
        suite = self.settings.suite
        missing = [t for t in ids if t not in outcomes]
        failed = sorted(t for t, o in outcomes.items() if o.status == FAILED)
        setid = await self.addTestResultSet(f"{suite.identity} on {short(self.getProperty('lpdeploy_revision'))}",
                                            "pass_fail", "boolean")
        for test in ids:
            o = outcomes.get(test)
            self.addTestResult(setid, "0" if o is None or o.status == FAILED else "1", test_name=test,
                               duration_ns=int((o.duration if o else 0) * 1e9))
        await DbTimings(self.master).save(suite.identity, updated(
            history, {t: o.duration for t, o in outcomes.items()}))
        passed = not failed and not missing and not lost
        revision = self.getProperty("lpdeploy_revision")
        await DbLedger(self.master).record(TestRecord(
            tree=self.getProperty("lpdeploy_tree"), commit=revision, suite=suite.identity,
            result=Result.PASSED if passed else Result.FAILED, build_url=await self.build_url(),
            build_number=self.build.number, finished_at=finished, duration=finished - started))
        await self.event("suite-run", revision=revision, tree=self.getProperty("lpdeploy_tree"),
                         duration=finished - started, passed=passed, shards=suite.shards)
        ran = len(ids) - len(missing)
        if passed:
            self.descriptionDone = [f"{len(ids)} tests passed on {short(revision)} in {finished - started:.0f}s"]
            return results.SUCCESS
        problems = []
        # a security build's summary and properties are public: its failing tests are named in its log only
        secret = self.kind == SECURITY
        if failed:
            shown = ", ".join(failed[:SHOWN_FAILURES]) + (" …" if len(failed) > SHOWN_FAILURES else "")
            problems.append(f"{len(failed)} failed" + ("" if secret else f": {shown}"))
        if missing:
            problems.append(f"{len(missing)} listed tests did not run (counted as failures)")
        reason = f"the suite failed on {short(revision)}: " + "; ".join(problems) + "; nothing moves"
        await self.addCompleteLog("failures", "\n".join(failed + [f"{t} (did not run)" for t in missing]) + "\n")
        self.setProperty("lpdeploy_outcome", "failed", SOURCE)
        self.setProperty("lpdeploy_reason", reason, SOURCE)
        named = ", ".join(failed[:3]) + (" …" if len(failed) > 3 else "")
        self.descriptionDone = [f"{ran}/{len(ids)} ran, {len(failed)} failed"
                                + (f": {named}" if failed and not secret else "")]
        return results.FAILURE


class CollectShard(FlowStep):
    """In a shard build: parse the uploaded results and file them for the parent build.

    Results count only when this build checked out the decided revision and
    actually ran the shard: a results file left by an earlier build must never
    pass for this one.
    """

    name = "collect"
    description = ["collecting results"]

    def __init__(self, settings: Settings, results_path: Any, **kwargs: Any) -> None:
        kwargs.setdefault("alwaysRun", True)
        super().__init__(settings=settings, kind=GATE, **kwargs)
        self.results_path = results_path

    renderables = ["results_path"]

    def _ran_on_the_decided_revision(self) -> bool:
        if self.getProperty("got_revision") != self.getProperty("lpdeploy_revision"):
            return False
        run = [st for st in self.build.executedSteps if st.name == RUN_STEP]
        return bool(run) and run[-1].results not in (None, results.SKIPPED, results.EXCEPTION, results.CANCELLED)

    async def run(self) -> int:
        path = os.path.join(self.master.basedir, str(self.results_path))
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.unlink(path)
        except OSError:
            self.descriptionDone = ["no results file"]
            return results.FAILURE  # the parent counts this shard's tests as not run
        if not self._ran_on_the_decided_revision():
            self.descriptionDone = ["the shard did not run on the decided revision: results ignored"]
            return results.FAILURE  # filed as no results: the parent runs this shard again
        expected = set(self.getProperty("lpdeploy_shard_ids") or [])
        try:
            parsed = parse_results(data, self.settings.suite.results_format)
        except ET.ParseError as e:
            await self.addCompleteLog("unreadable results", f"{e}\n")
            self.descriptionDone = ["unreadable results file"]
            return results.FAILURE  # filed as no results: the parent runs this shard again
        outcomes = match_ids(parsed, expected)
        stored = {t: [o.status, o.duration] for t, o in outcomes.items()}
        key = (f"run/{self.getProperty('lpdeploy_parent_buildid')}/{self.getProperty('lpdeploy_shard')}/"
               f"{self.getProperty('lpdeploy_attempt')}")
        await self.master.db.state.setState(await _runs_oid(self.master), key,
                                            {"results": stored, "worker": self.getProperty("workername")})
        failed = sum(1 for s, _ in stored.values() if s == FAILED)
        ok = sum(1 for s, _ in stored.values() if s == PASSED)
        self.descriptionDone = [f"{ok} passed, {failed} failed, {len(expected) - len(stored)} missing"]
        return results.SUCCESS if failed == 0 and len(stored) == len(expected) else results.FAILURE
