"""The sharded suite: list once, partition by history, run shards on N workers, judge the whole.

In the gate (and promote, security) build, with ``[suite] shards = N``:

1. the list command runs in the checkout; its output goes to a file that is
   uploaded to the master (a subunit v2 list is binary: it cannot travel as
   step output);
2. ``RunShards`` (on the master) partitions the ids by recorded durations,
   keeps each shard's plan (revision, branch, test ids) in the database, and
   triggers one ``lpdeploy-shard`` build per shard (``lpdeploy-security-shard``
   for a security build). It watches every shard with bounds from the settings
   (``shard_watch``): a shard that is lost or stuck is cancelled and run once
   more under a new attempt number; a shard lost twice fails the run;
3. each shard build checks out the planned revision (``ShardCheckout``),
   downloads its id file (``ShardIds``), runs the run command (its stdout or
   JUnit file uploaded to the master), and ``CollectShard`` files the parsed
   results in the database for the parent, unless the attempt was cancelled.

What a shard build carries in its properties is opaque and non-secret: the
parent's build id, the shard's index and the attempt number (and a reason made
of those). The revision, the branch and the test ids are read master-side from
the database (``object_state``, keyed by parent build, shard and attempt, so
any master sharing the database can run the shard): a security shard's test
ids are part of the embargoed fix and must not be readable through the REST
API or the websocket. Its failing tests are named only in its logs, which are
embargoed with its builder.

With ``[suite] rerun_failures = 1`` each failed test (up to
``core.flaky.MAX_RERUNS``) runs once more, alone, as a shard of its own (a
fresh process on the same revision); one that passes then is flaky: recorded
in the flaky log and not a failure. Tests in ``[suite] quarantine`` run, but
their failures never fail the run (reported and recorded). The ids that
still failed are kept per tree, for a bisection's re-check before it blames.

Results go to Buildbot's test-results API (one set per build), durations to
the timings store, the verdict to the ledger.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET  # noqa: S405 - only for its ParseError
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from buildbot.process import results
from buildbot.process.properties import Properties
from buildbot.steps.transfer import StringDownload
from twisted.internet import defer, error
from twisted.python.failure import Failure

from lpdeploy.core import properties as prop
from lpdeploy.core.flaky import FlakyKind, FlakyRecord, Verdict, failures, judge, to_rerun
from lpdeploy.core.model import BuildOutcome, FlowKind, Result, TestRecord
from lpdeploy.core.partition import partition, updated
from lpdeploy.core.refs import qualified, short
from lpdeploy.core.results import TestOutcome, TestStatus, match_ids, parse_results, parse_test_list
from lpdeploy.core.settings import Settings
from lpdeploy.core.shard_watch import POLL, Bounds, Look, Phase, bounds, watch
from lpdeploy.facts.services import services
from lpdeploy.master.sourcestamps import source_stamp
from lpdeploy.master.steps.flow import SOURCE, Checkout, FlowStep, record_suite_run

SHARD_SCHEDULER = "lpdeploy-shards"
SECURITY_SHARD_SCHEDULER = "lpdeploy-security-shards"  # its builds are embargoed like their parents
ID_FILE = ".lpdeploy-test-ids"
LIST_OUT = ".lpdeploy-test-list"
RESULTS_OUT = ".lpdeploy-results"
RESULTS_DIR = "lpdeploy-results"  # under the master's basedir; files live only until parsed
RUNS_OBJECT = ("lpdeploy-suite-runs", "lpdeploy.shard_steps.RunShards")
RUN_STEP = "run shard"
MAX_ATTEMPTS = 2  # a shard that is lost, stuck or came back with no results is run once more
RECHECK_BASE = 1000  # shard indices of a bisection's re-check (the suite's shards and re-runs stay below)
SHOWN_FAILURES = 20
PREPARATION_STEPS = ("worker_preparation", "locks_acquire")  # Buildbot's own, before a build's first step


LIST_PATH = RESULTS_DIR + "/%(prop:buildername)s-%(prop:buildnumber)s.list"  # an Interpolate pattern
SHARD_RESULTS_PATH = (RESULTS_DIR + f"/shard-%(prop:{prop.PARENT_BUILDID})s-%(prop:{prop.SHARD})s-"
                      f"%(prop:{prop.ATTEMPT})s")


def to_file(path: str, argv: tuple[str, ...]) -> list[str]:
    """Run ``argv`` with its stdout in ``path``: a constant script, the argv as data ("$@")."""
    return ["sh", "-c", 'exec "$@" > "$0"', path, *argv]


# --- what a shard runs, kept master-side ------------------------------------------------


@dataclass(frozen=True)
class ShardPlan:
    """What one attempt of one shard runs. Kept in the database, never in a property."""

    revision: str
    branch: str
    ids: tuple[str, ...]
    cancelled: str | None = None  # why the parent gave this attempt up: its results never count


ShardKey = tuple[int, int, int]  # (parent build id, shard index, attempt)


class ShardRuns:
    """The plans and filed results of shard attempts, in Buildbot's database (``object_state``).

    Keys are ``plan/<parent>/<shard>/<attempt>`` and ``run/<parent>/<shard>/<attempt>``: a late
    result of an earlier attempt never lands where the parent reads the current one. Every key
    is written by one side only (plans by ``RunShards``, results by ``CollectShard``), so
    ``setState``'s last-writer-wins is enough.
    """

    def __init__(self, master: Any) -> None:
        self.master = master

    async def _oid(self) -> int:
        return await self.master.db.state.getObjectId(*RUNS_OBJECT)

    async def _get(self, kind: str, key: ShardKey) -> Any:
        return await self.master.db.state.getState(await self._oid(), f"{kind}/{key[0]}/{key[1]}/{key[2]}", None)

    async def _set(self, kind: str, key: ShardKey, value: Any) -> None:
        await self.master.db.state.setState(await self._oid(), f"{kind}/{key[0]}/{key[1]}/{key[2]}", value)

    async def plan(self, key: ShardKey) -> ShardPlan | None:
        found = await self._get("plan", key)
        if not found or "revision" not in found:
            return None
        return ShardPlan(found["revision"], found["branch"], tuple(found["ids"]), found.get("cancelled"))

    async def put_plan(self, key: ShardKey, plan: ShardPlan) -> None:
        await self._set("plan", key, {"revision": plan.revision, "branch": plan.branch, "ids": list(plan.ids),
                                      "cancelled": plan.cancelled})

    async def cancel(self, key: ShardKey, reason: str) -> None:
        plan = await self.plan(key)
        if plan is not None:
            await self.put_plan(key, ShardPlan(plan.revision, plan.branch, plan.ids, reason))

    async def file_results(self, key: ShardKey, outcomes: dict[str, TestOutcome], worker: str) -> None:
        stored = {t: [o.status, o.duration] for t, o in outcomes.items()}
        await self._set("run", key, {"results": stored, "worker": worker})

    async def results(self, key: ShardKey) -> dict[str, TestOutcome] | None:
        stored = await self._get("run", key)
        if not stored:
            return None
        return {t: TestOutcome(s, d) for t, (s, d) in stored["results"].items()}

    async def close(self, key: ShardKey) -> None:
        """After the verdict: drop the ids and results (the test-results API keeps them); a late shard refuses."""
        await self._set("plan", key, {"closed": True})
        await self._set("run", key, None)


def shard_key(step: Any) -> ShardKey | None:
    """The (parent, shard, attempt) a shard build runs, from its opaque properties; None if they are not there."""
    try:
        return (int(step.getProperty(prop.PARENT_BUILDID)), int(step.getProperty(prop.SHARD)),
                int(step.getProperty(prop.ATTEMPT)))
    except (TypeError, ValueError):
        return None


# --- the parent: partition, trigger, watch, judge ---------------------------------------


@dataclass
class Watched:
    """One triggered shard attempt, as the parent sees it."""

    shard: int
    brid: int
    builderid: int
    seen: tuple[Phase, int | None] | None = None  # the phase (and build) of the last look
    since: float = 0.0
    retried: int = 0
    said: set[int] = field(default_factory=set)  # builds already named in the decision log


class ShardDriver:
    """Trigger shard builds and watch them without an unbounded wait: for ``RunShards`` and ``Bisect``.

    Mixed into a ``FlowStep``. Nothing waits without a bound: each shard is
    watched (``shard_watch.watch``) and given up when it is lost or stuck;
    the build request is then cancelled and the attempt marked cancelled in
    the database (so its results are never filed nor read). A user's stop
    cancels every shard.
    """

    _wake: defer.Deferred[None] | None = None
    _poked = False  # something happened since the last look: look again without sleeping
    _stopped_by: str | None = None

    master: Any
    build: Any
    settings: Settings
    flow: Any
    say: Callable[[str], None]  # FlowStep's: annotated only, so the step's own method is the one called

    @property
    def scheduler_name(self) -> str:
        """Security builds run their shards on the embargoed security shard builder, never the public one."""
        return SECURITY_SHARD_SCHEDULER if self.flow.embargoed else SHARD_SCHEDULER

    def interrupt(self, reason: str | Failure) -> defer.Deferred[None]:
        """Buildbot calls this on a stop (a user, a master shutdown) and when this build's worker is lost."""
        if not (isinstance(reason, Failure) and reason.check(error.ConnectionLost)):
            text = reason.getErrorMessage() if isinstance(reason, Failure) else str(reason)
            self._stopped_by = " ".join(text.split())[:200] or "no reason given"  # free text: one bounded line
            self._poke()
        return super().interrupt(reason)  # type: ignore[misc]

    def _poke(self, _: object = None) -> None:
        """Wake the watch loop (a shard's buildset completed, or the build is stopped); consumes the result."""
        self._poked = True
        if self._wake is not None and not self._wake.called:
            self._wake.callback(None)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when poked (also if poked while the loop was looking)."""
        if not self._poked:
            self._wake = defer.Deferred()
            call = self.master.reactor.callLater(seconds, self._poke)
            try:
                await self._wake
            finally:
                self._wake = None
                if call.active():
                    call.cancel()
        self._poked = False

    async def run_alone(self, tests: Sequence[str], revision: str, branch: str, base: int,
                        limits: Bounds) -> tuple[dict[str, TestOutcome | None], list[ShardKey]]:
        """Run each of ``tests`` once, alone, as shard ``base + i`` of this build: its outcome (None: none came)."""
        parts = {base + i: [t] for i, t in enumerate(tests)}
        ended = await self._run_attempt(parts, sorted(parts), 1, limits, revision, branch)
        found: dict[str, TestOutcome | None] = {}
        for k, why in sorted(ended.items()):
            got = None if why else await ShardRuns(self.master).results((self.build.buildid, k, 1))
            test = parts[k][0]
            found[test] = None if got is None else got.get(test)
        return found, [(self.build.buildid, k, 1) for k in parts]

    async def _run_attempt(self, parts: Mapping[int, Sequence[str]], which: list[int], attempt: int,
                           limits: Bounds, revision: str, branch: str) -> dict[int, str | None]:
        """Trigger ``which`` shards and watch them until each is done (None) or given up (the reason)."""
        watched = [await self._trigger(k, parts[k], attempt, revision, branch) for k in which]
        ended: dict[int, str | None] = {}
        while True:
            for w in watched:
                if w.shard in ended:
                    continue
                look = await self._look(w, attempt)
                if look.phase is Phase.DONE:
                    ended[w.shard] = None
                    continue
                if self._stopped_by is not None:
                    why: str | None = f"stopped with its parent ({self._stopped_by})"
                else:
                    why = watch(look, self.master.reactor.seconds(), limits)
                if why is not None:
                    await self._give_up(w, attempt, why)
                    ended[w.shard] = why
            if len(ended) == len(watched):
                return ended
            self.description = [f"{len(ended)}/{len(watched)} shards done (attempt {attempt})"]
            self.updateSummary()  # type: ignore[attr-defined]
            await self._sleep(POLL)

    async def _trigger(self, k: int, ids: Sequence[str], attempt: int, revision: str, branch: str) -> Watched:
        parent = self.build.buildid
        await ShardRuns(self.master).put_plan((parent, k, attempt), ShardPlan(
            revision=revision, branch=branch, ids=tuple(ids)))
        props = Properties()
        for name, value in ((prop.PARENT_BUILDID, parent), (prop.SHARD, k),
                            (prop.ATTEMPT, attempt),
                            ("reason", f"shard {k} of build {parent}, attempt {attempt}")):
            props.setProperty(name, value, SOURCE)
        sched = self.master.scheduler_manager.namedServices[self.scheduler_name]
        ids_d, done = sched.trigger(
            waited_for=True,
            sourcestamps=[source_stamp(self.settings)],
            set_props=props, parent_buildid=parent, parent_relationship="shard")
        done.addBoth(self._poke)  # a hint only: the database says whether the shard is done
        _, brids = await ids_d
        ((builderid, brid),) = brids.items()
        return Watched(shard=k, brid=brid, builderid=builderid, since=self.master.reactor.seconds())

    async def _look(self, w: Watched, attempt: int) -> Look:
        """Where shard ``w`` is, through the data API (the database: any master may run it)."""
        now = self.master.reactor.seconds()
        data = self.master.data
        request = await data.get(("buildrequests", w.brid))
        if request is None or request["complete"]:
            return Look(Phase.DONE, now)
        builds = await data.get(("buildrequests", w.brid, "builds"))
        for b in builds:
            if b["complete"] and b["buildid"] not in w.said:  # retried by Buildbot: its worker was lost
                w.said.add(b["buildid"])
                self.say(f"shard {w.shard}, attempt {attempt}: build #{b['number']} ended "
                         f"({b['state_string']}); Buildbot queued it again")
        w.retried = sum(1 for b in builds if b["complete"])
        live = [b for b in builds if not b["complete"]]
        state = ""
        buildid: int | None = None
        if live:
            buildid, state = live[-1]["buildid"], live[-1]["state_string"] or ""
            steps = await data.get(("builds", buildid, "steps"))
            begun = any(s["name"] not in PREPARATION_STEPS and s["started_at"] is not None for s in steps)
            phase = Phase.RUNNING if begun else Phase.STARTING
        else:
            workers = await data.get(("builders", w.builderid, "workers"))
            phase = Phase.QUEUED if any(x["connected_to"] and not x["paused"] for x in workers) else Phase.NO_WORKER
        if w.seen != (phase, buildid):
            w.seen, w.since = (phase, buildid), now
        return Look(phase, w.since, w.retried, state)

    async def _give_up(self, w: Watched, attempt: int, why: str) -> None:
        """Cancel the attempt: in the database first (its results are never filed nor read), then its request."""
        self.say(f"shard {w.shard}, attempt {attempt}: {why}; cancelled")
        await ShardRuns(self.master).cancel((self.build.buildid, w.shard, attempt), why)
        # an unclaimed request completes as CANCELLED; a claimed one has its build stopped (on any master)
        await self.master.data.control("cancel", {"reason": f"lpdeploy: {why}"}, ("buildrequests", w.brid))



class RunShards(ShardDriver, FlowStep):
    """Partition, run the shards in parallel, re-run failures when asked, and judge the run as one suite.

    A shard given up (lost or stuck) runs once more under a new attempt
    number. The worker of this (master-side) step being lost does not stop
    it: the verdict is the master's, and a retried build relies on the ledger.
    """

    name = "suite"
    description = ["running the sharded suite"]

    def __init__(self, settings: Settings, list_path: Any, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=kwargs.pop("kind", FlowKind.GATE), **kwargs)
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
            return await self.refuse(f"the test list did not arrive: {e}", outcome=BuildOutcome.FAILED)
        if not ids:
            return await self.refuse("the list command listed no tests", outcome=BuildOutcome.FAILED)
        timings = services(self.master).timings
        history = await timings.durations(suite.identity)
        parts = [p for p in partition(ids, history, suite.shards) if p]
        for k, part in enumerate(parts):
            known = sum(history.get(t, 0.0) for t in part)
            self.say(f"shard {k}: {len(part)} tests, {known:.1f}s by history "
                     f"({sum(t not in history for t in part)} never seen)")
        limits = bounds(suite.timeout, suite.max_time)
        self.say(f"bounds: {limits.start:.0f}s to start, {limits.run:.0f}s to wait for a worker or run")
        revision, branch = self.getProperty(prop.REVISION), self.getProperty(prop.CHECKOUT_BRANCH)
        started = self.master.reactor.seconds()
        outcomes: dict[str, TestOutcome] = {}
        waiting = list(range(len(parts)))
        lost: dict[int, str] = {}
        keys: list[ShardKey] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            ended = await self._run_attempt(dict(enumerate(parts)), waiting, attempt, limits, revision, branch)
            keys += [(self.build.buildid, k, attempt) for k in waiting]
            lost = {}
            for k, why in ended.items():
                found = None if why else await ShardRuns(self.master).results((self.build.buildid, k, attempt))
                if found is None:
                    lost[k] = why or "came back without results"
                else:
                    outcomes.update(found)
            if not lost or self._stopped_by is not None:
                break
            if attempt < MAX_ATTEMPTS:
                self.say(f"running shards {', '.join(map(str, sorted(lost)))} again (attempt {attempt + 1})")
                waiting = sorted(lost)
        for k, why in sorted(lost.items()):
            self.say(f"shard {k} is lost ({why}): its {len(parts[k])} tests count as not run")
        reruns: dict[str, TestOutcome | None] = {}
        if self._stopped_by is None:
            reruns, rerun_keys = await self._rerun(failures(outcomes), revision, branch, len(parts), limits)
            keys += rerun_keys
        finished = self.master.reactor.seconds()
        for key in keys:
            await ShardRuns(self.master).close(key)
        if self._stopped_by is not None:
            reason = f"the sharded suite was stopped ({self._stopped_by}): no verdict, nothing recorded"
            self.say(reason)
            self.outcome(BuildOutcome.FAILED, reason)
            self.descriptionDone = ["stopped: no verdict"]
            await self.flush()
            return results.CANCELLED
        verdict = judge(outcomes, reruns, suite.quarantine)
        self._tell(verdict, reruns)
        await self.flush()
        return await self._judge(ids, outcomes, verdict, lost, history, started, finished)

    async def _rerun(self, failed: list[str], revision: str, branch: str, base: int,
                     limits: Bounds) -> tuple[dict[str, TestOutcome | None], list[ShardKey]]:
        """``[suite] rerun_failures``: each failed test once more, alone, in a shard build of its own."""
        wanted, why = to_rerun(failed, self.settings.suite.quarantine, self.settings.suite.rerun_failures)
        if why:
            self.say(why)
        if not wanted:
            return {}, []
        return await self.run_alone(wanted, revision, branch, base, limits)

    def _tell(self, verdict: Verdict, reruns: Mapping[str, TestOutcome | None]) -> None:
        """The decision log: every failure, and what it means for the run (the log is embargoed with the build)."""
        for test in verdict.flaky:
            self.say(f"flaky: {test} failed, then passed when run alone: recorded, does not fail the run")
        for test in verdict.failed:
            if test in reruns:
                again = "gave no result" if reruns[test] is None else "failed again"
                self.say(f"broken: {test} failed, and {again} when run alone: fails the run")
        for test in verdict.quarantined:
            self.say(f"quarantined: {test} failed; it is in [suite] quarantine: reported, never fails the gate")

    async def _judge(self, ids: list[str], outcomes: dict[str, TestOutcome], verdict: Verdict,
                     lost: dict[int, str], history: dict[str, float], started: float, finished: float) -> int:
        suite = self.settings.suite
        held = set(suite.quarantine)
        missing = [t for t in ids if t not in outcomes and t not in held]  # a quarantined test never fails
        failed = list(verdict.failed)
        # a security build's summary, properties and test results are public: its tests are named in its logs only
        secret = self.flow.embargoed
        if not secret:
            setid = await self.addTestResultSet(
                f"{suite.identity} on {short(self.getProperty(prop.REVISION))}", "pass_fail", "boolean")
            for test in ids:
                o = outcomes.get(test)
                ok = o is not None and (o.status != TestStatus.FAILED or test in verdict.flaky)
                self.addTestResult(setid, "1" if ok else "0", test_name=test,
                                   duration_ns=int((o.duration if o else 0) * 1e9))
        await services(self.master).timings.save(suite.identity, updated(
            history, {t: o.duration for t, o in outcomes.items()}))
        passed = verdict.passed and not missing and not lost
        revision = self.getProperty(prop.REVISION)
        build_url = await self.build_url()
        await self._record_flaky(verdict, revision, build_url, finished)
        tree = self.getProperty(prop.TREE)
        if not passed:  # what a bisection re-checks before it blames; empty: not all of it is known
            await services(self.master).flaky_log.save_failed(
                suite.identity, tree, [] if missing or lost else failed)
        await record_suite_run(self.master, TestRecord(
            tree=tree, commit=revision, suite=suite.identity,
            result=Result.PASSED if passed else Result.FAILED, build_url=build_url,
            build_number=self.build.number, finished_at=finished, duration=finished - started),
            kind=self.kind, shards=suite.shards)
        ran = len(ids) - len([t for t in ids if t not in outcomes])
        noted = _noted(verdict, secret)
        if passed:
            self.descriptionDone = [f"{len(ids)} tests passed on {short(revision)} in {finished - started:.0f}s"
                                    + noted]
            return results.SUCCESS
        problems = []
        if failed:
            shown = ", ".join(failed[:SHOWN_FAILURES]) + (" …" if len(failed) > SHOWN_FAILURES else "")
            problems.append(f"{len(failed)} failed" + ("" if secret else f": {shown}"))
        if lost:
            problems.append(f"shard{'s' if len(lost) > 1 else ''} {', '.join(map(str, sorted(lost)))} lost")
        if missing:
            problems.append(f"{len(missing)} listed tests did not run (counted as failures)")
        reason = f"the suite failed on {short(revision)}: " + "; ".join(problems) + "; nothing moves"
        await self.addCompleteLog("failures", "\n".join(failed + [f"{t} (did not run)" for t in missing]) + "\n")
        self.setProperty(prop.OUTCOME, BuildOutcome.FAILED, SOURCE)
        self.setProperty(prop.REASON, reason, SOURCE)
        named = ", ".join(failed[:3]) + (" …" if len(failed) > 3 else "")
        self.descriptionDone = [f"{ran}/{len(ids)} ran, {len(failed)} failed"
                                + (f": {named}" if failed and not secret else "") + noted]
        return results.FAILURE

    async def _record_flaky(self, verdict: Verdict, revision: str, build_url: str, at: float) -> None:
        """Flaky tests and quarantined failures go to the flaky log (a security build's are embargoed there)."""
        log = services(self.master).flaky_log
        for kind, tests in ((FlakyKind.FLAKY, verdict.flaky), (FlakyKind.QUARANTINED, verdict.quarantined)):
            for test in tests:
                await log.record(FlakyRecord(test, self.settings.suite.identity, revision, build_url,
                                             self.build.number, at, kind, embargoed=self.flow.embargoed))


def _noted(verdict: Verdict, secret: bool) -> str:
    """What the summary adds about failures that did not count: counts, and names unless embargoed."""
    parts = []
    for word, tests in (("flaky", verdict.flaky), ("quarantined failed", verdict.quarantined)):
        if tests:
            parts.append(f"{len(tests)} {word}" + ("" if secret else ": " + ", ".join(tests[:3])
                                                   + (" …" if len(tests) > 3 else "")))
    return f" ({'; '.join(parts)})" if parts else ""


# --- the shard build ----------------------------------------------------------------------


def remember_checkout(build: Any, sha: str) -> None:
    """What the shard's checkout got, kept on the build object (a master's memory, for this build only).

    Not a property: for a security shard that sha is the embargoed fix commit.
    """
    build.lpdeploy_checked_out = sha


def checked_out(build: Any) -> str | None:
    return getattr(build, "lpdeploy_checked_out", None)


async def _usable_plan(step: Any) -> tuple[ShardKey, ShardPlan] | str:
    """The shard's key and plan, or why this shard build must not run (one line, nothing secret)."""
    key = shard_key(step)
    if key is None:
        return "not a shard build (no parent, shard or attempt)"
    plan = await ShardRuns(step.master).plan(key)
    if plan is None:
        return "no plan for this shard attempt (the run is over)"
    if plan.cancelled:
        return "this shard attempt was cancelled by its parent"
    return key, plan


class ShardCheckout(Checkout):
    """Check out the revision the parent decided, read from the shard's plan in the database.

    ``Checkout`` reads the revision from a property and sets ``got_revision``;
    a shard build carries no revision in its properties (a security shard's is
    the embargoed fix), so it reads the plan and keeps what it got on the build
    (``remember_checkout``) for ``CollectShard``. Its summary names no commit.
    """

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(repourl=settings.repository.url, branch="", **kwargs)

    async def run(self) -> int:
        found = await _usable_plan(self)
        if isinstance(found, str):
            self.descriptionDone = [found]
            return results.FAILURE
        _, plan = found
        ref = plan.branch if plan.branch.startswith("refs/") else qualified(plan.branch)
        got = await self.check_out(ref, plan.revision)
        if got is None:
            self.descriptionDone = ["checkout failed"]
            return results.FAILURE
        remember_checkout(self.build, got)
        self.descriptionDone = ["checked out the planned revision"]
        return results.SUCCESS


class ShardIds(StringDownload):
    """Download the shard's test ids to the worker as ``ID_FILE``, from its plan in the database."""

    name = "test ids"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", workerdest=ID_FILE, **kwargs)

    async def run(self) -> int:  # type: ignore[override]
        found = await _usable_plan(self)
        if isinstance(found, str):
            self.descriptionDone = [found]
            return results.FAILURE
        self.s = "".join(f"{i}\n" for i in found[1].ids)
        return await super().run()


class CollectShard(FlowStep):
    """In a shard build: parse the uploaded results and file them for the parent build.

    Results count only when this attempt is still wanted (not cancelled by
    the parent), this build checked out the planned revision and actually ran
    the shard: a results file left by an earlier build must never pass for
    this one. For a security shard the summary names no test and counts
    nothing; the failing tests are in the "failures" log, embargoed with the
    builder.
    """

    name = "collect"
    description = ["collecting results"]

    def __init__(self, settings: Settings, results_path: Any, **kwargs: Any) -> None:
        kwargs.setdefault("alwaysRun", True)
        super().__init__(settings=settings, kind=kwargs.pop("kind", FlowKind.GATE), **kwargs)
        self.results_path = results_path

    renderables = ["results_path"]

    def _ran_on(self, revision: str) -> bool:
        if checked_out(self.build) != revision:
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
            data = None
        found = await _usable_plan(self)
        if isinstance(found, str):
            self.descriptionDone = [f"{found}: nothing filed"]
            return results.FAILURE
        key, plan = found
        if data is None:
            self.descriptionDone = ["no results file"]
            return results.FAILURE  # the parent counts this shard's tests as not run
        if not self._ran_on(plan.revision):
            self.descriptionDone = ["the shard did not run on the planned revision: results ignored"]
            return results.FAILURE  # filed as no results: the parent runs this shard again
        try:
            parsed = parse_results(data, self.settings.suite.results_format)
        except ET.ParseError as e:
            await self.addCompleteLog("unreadable results", f"{e}\n")
            self.descriptionDone = ["unreadable results file"]
            return results.FAILURE  # filed as no results: the parent runs this shard again
        outcomes = match_ids(parsed, set(plan.ids))
        await ShardRuns(self.master).file_results(key, outcomes, str(self.getProperty("workername")))
        failed = sorted(t for t, o in outcomes.items() if o.status == TestStatus.FAILED)
        missing = sorted(set(plan.ids) - set(outcomes))
        if failed or missing:
            await self.addCompleteLog("failures", "".join(f"{t}\n" for t in failed)
                                      + "".join(f"{t} (did not run)\n" for t in missing))
        ok = sum(1 for o in outcomes.values() if o.status == TestStatus.PASSED)
        if self.flow.embargoed:
            self.descriptionDone = ["results filed" + ("; some tests failed or did not run" if failed or missing
                                                       else "")]
        else:
            self.descriptionDone = [f"{ok} passed, {len(failed)} failed, {len(missing)} missing"]
        return results.FAILURE if failed or missing else results.SUCCESS
