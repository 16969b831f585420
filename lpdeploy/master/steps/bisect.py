"""The gate's bisection step: after a failing run (or a probe), name the culprit or say what comes next.

A gate build whose suite failed on the devel tip, and every bisection probe
(a gate build with ``lpdeploy_probe`` set, queued by ``GateScheduler``),
ends with this step. It reads the batch (devel's first-parent chain beyond
stable) and the ledger, asks ``core.bisect.plan``, and writes it all in its
``decision`` log: the range, every commit with its result and the build that
tested it, then either the probes still owed (the scheduler queues them as
workers free up) or the culprit with its subject and author. Once the
boundary is known, stable is fast-forwarded to the newest passing commit
(compare-and-swap, as every move) and the culprit is kept in the registry.

A bisection never blames a commit for a flaky failure: before it names a
culprit whose failed run was sharded, it runs that run's failing tests once
more on the culprit (each alone, as shards of this build). If they all pass,
the failure was flaky: it is recorded as such, the culprit's tree counts as
passed in the ledger (as a failure that passes on re-run does in a run), and
the bisection goes on from there. A re-check happens once per tree.
"""

from __future__ import annotations

import os
from typing import Any

from buildbot.process import buildstep, results
from buildbot.reporters.utils import getURLForBuild
from twisted.internet import defer, utils

from lpdeploy.core import bisect
from lpdeploy.core import properties as prop
from lpdeploy.core.errors import GitError
from lpdeploy.core.flaky import FlakyRecord
from lpdeploy.core.model import Action, BuildOutcome, FlowKind, Result, TestRecord
from lpdeploy.core.refs import short
from lpdeploy.core.results import TestStatus
from lpdeploy.core.settings import Settings
from lpdeploy.core.shard_watch import bounds
from lpdeploy.facts.batch import BATCH_LIMIT, Batch, read_batch
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import Commit
from lpdeploy.master.steps.deploy_lease import holder, holder_is_over
from lpdeploy.master.steps.flow import MoveBranches, suite_needed
from lpdeploy.master.steps.shards import RECHECK_BASE, ShardDriver, ShardRuns
from lpdeploy.stores.lease import DbLeases

MAX_LINKS = 20  # probe builds linked from the step (the log lists every commit)
NOTIFY_TIMEOUT = 60  # seconds the step waits for ``[gate] notify_command``


def bisect_needed(step: buildstep.BuildStep) -> bool:
    """``doStepIf``: the suite ran and failed, or the build was a probe of a bisection."""
    return suite_needed(step) and (step.getProperty(prop.OUTCOME) == BuildOutcome.FAILED
                                   or bool(step.getProperty(prop.PROBE)))


def _skipped(result: int, step: buildstep.BuildStep) -> bool:
    return result == results.SKIPPED


class Bisect(ShardDriver, MoveBranches):
    """Bisect the failing batch: log the range and probes, name the culprit, move stable to the newest pass."""

    name = "bisect"
    description = ["bisecting"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("alwaysRun", True)  # the suite's failure halts the build; this step still runs
        kwargs.setdefault("doStepIf", bisect_needed)
        kwargs.setdefault("hideStepIf", _skipped)
        super().__init__(settings=settings, kind=FlowKind.GATE, **kwargs)
        self.moved: str | None = None

    def outcome(self, outcome: str, reason: str) -> None:
        """The build keeps the outcome of its own run; what the move did is only noted here."""
        self.moved = outcome

    async def run(self) -> int:
        b = self.settings.branches
        try:
            tips = await self.upstream.fetch()
            devel_tip, stable_tip = tips.get(b.devel), tips.get(b.stable)
            if devel_tip is None:
                return await self._done(f"branch {b.devel} does not exist upstream", results.WARNINGS)
            batch = await read_batch(self.upstream, services(self.master).ledger, self.settings.suite.identity,
                                     stable_tip, devel_tip)
        except GitError as e:
            return await self._done(f"cannot read the batch: {e}", results.WARNINGS)
        if batch.truncated:
            return await self._done(f"{b.devel} is more than {BATCH_LIMIT} commits beyond {b.stable}: "
                                    "not bisected", results.WARNINGS)
        known = batch.known
        step = bisect.plan(batch.chain, known)
        self.say(f"batch: {len(batch.commits)} first-parent commit(s) of {b.devel} beyond {b.stable} "
                 f"{short(stable_tip) if stable_tip else '(none)'}, up to {short(devel_tip)}")
        await self._list(batch)
        cleared = False
        while step.found and step.culprit is not None:
            busy = await self._claim_recheck(batch.commit(step.culprit))
            if busy is not None:
                return await self._done(busy)
            try:
                verdict = await self._recheck(batch.commit(step.culprit))
            finally:
                await DbLeases(self.master).release(_recheck_lease(batch.commit(step.culprit).tree), holder(self))
            if verdict is None:
                return await self._done("stopped during the re-check: no culprit named", results.CANCELLED)
            if not verdict:
                break
            cleared, known = True, {**known, batch.commit(step.culprit).tree: True}
            step = bisect.plan(batch.chain, known)
            self.say(f"after the re-check: {step.reason}")
        if step.action is Action.RUN_SUITE:
            return await self._done(f"{step.reason}; the gate queues the probes as workers free up")
        if not step.found:
            if cleared and step.passing is not None:  # the flaky failure was all that held stable back
                done = await self._move(step.passing, batch.commit(step.passing).tree) != results.FAILURE
                return await self._done(f"{step.reason}; {b.stable} moved to the newest passing "
                                        f"{short(step.passing)}" if done else step.reason,
                                        results.SUCCESS if done else results.WARNINGS)
            return await self._done(step.reason)
        assert step.culprit is not None
        culprit = batch.commit(step.culprit)
        self.say(step.reason)
        self.say(f"culprit: {culprit.sha} {culprit.subject!r} by {culprit.author}")
        registry = services(self.master).registry
        previous = await registry.culprit()
        found = bisect.Culprit(culprit.sha, culprit.subject, culprit.author, await self.build_url(), devel_tip,
                               step.passing, self.master.reactor.seconds())
        await registry.save_culprit(found)
        self.setProperty(prop.CULPRIT, culprit.sha, "Bisect")
        if self.settings.gate.notify_command and bisect.newly_found(previous, found):
            await self._notify(found)
        summary = f"culprit {short(culprit.sha)} by {culprit.author}: {culprit.subject}"
        if step.passing is None:
            return await self._done(f"{b.stable} stays at {short(stable_tip) if stable_tip else '(none)'}: "
                                    "the first commit of the batch broke the suite", summary=summary)
        self.say(f"newest passing: {step.passing}")
        moved = await self._move(step.passing, batch.commit(step.passing).tree)
        self.descriptionDone = [summary[:120]]
        return results.SUCCESS if moved != results.FAILURE else results.WARNINGS

    async def _claim_recheck(self, culprit: Commit) -> str | None:
        """Take ``culprit``'s re-check lease; the reason this build must not judge it when another build holds it.

        Two bisect steps can finish at the same moment with the same culprit.
        The first takes the tree's re-check lease (in the shared database) and
        clears the kept failing tests; the second, finding none kept, would
        name the commit "as it failed" while the first is about to find the
        failure flaky. So the second leaves the verdict to the lease's holder.
        The caller releases the lease after the re-check.
        """
        me, ttl = holder(self), RECHECK_LEASE_SLACK + 2 * self.settings.suite.max_time
        leases, name = DbLeases(self.master), _recheck_lease(culprit.tree)
        taken = await leases.take(name, me, self.master.reactor.seconds(), ttl)
        if taken.holder != me and await holder_is_over(self, taken.holder):
            # a build a crash ended left it behind (its re-run is a new build): free it, compare-and-swap
            await leases.release(name, taken.holder)
            taken = await leases.take(name, me, self.master.reactor.seconds(), ttl)
        if taken.holder == me:
            return None
        return (f"{short(culprit.sha)} is being re-checked by {taken.holder}: that build decides whether "
                "it is named; this one names no culprit")

    async def _recheck(self, culprit: Commit) -> bool | None:
        """Run the culprit's failing tests once more before naming it: True if all passed (flaky), None if stopped.

        The failing tests are those its failed sharded run kept (``flaky_log.failed``);
        with none kept (a plain suite, a run with tests that never ran, or a tree
        re-checked already) the culprit is named as it failed.
        """
        suite = self.settings.suite
        log = services(self.master).flaky_log
        tests = await log.failed(suite.identity, culprit.tree)
        if not tests:
            self.say(f"re-check: no failing tests of {short(culprit.sha)} to run again (not a sharded run, "
                     "not every test ran, or re-checked already): it is named as it failed")
            return False
        await log.save_failed(suite.identity, culprit.tree, [])  # once per tree, whatever comes of it
        return await self._run_recheck(culprit, tests)

    async def _run_recheck(self, culprit: Commit, tests: list[str]) -> bool | None:
        """Run ``tests`` alone on ``culprit``: True if all passed (recorded flaky, the tree passed), None if stopped."""
        suite = self.settings.suite
        log = services(self.master).flaky_log
        self.say(f"re-check: running the {len(tests)} failing test(s) of {short(culprit.sha)} once more, "
                 f"each alone, before naming it: {', '.join(tests[:10])}{' …' if len(tests) > 10 else ''}")
        started = self.master.reactor.seconds()
        found, keys = await self.run_alone(tests, culprit.sha, self.settings.branches.devel, RECHECK_BASE,
                                           bounds(suite.timeout, suite.max_time))
        for key in keys:
            await ShardRuns(self.master).close(key)
        if self._stopped_by is not None:
            return None
        again = [t for t in tests if (o := found.get(t)) is None or o.status != TestStatus.PASSED]
        if again:
            self.say(f"re-check: {', '.join(again[:10])} failed again (or gave no result) on "
                     f"{short(culprit.sha)}: a real failure")
            return False
        finished = self.master.reactor.seconds()
        url = await self.build_url()
        self.say(f"re-check: every failing test of {short(culprit.sha)} passed when run again: a flaky failure, "
                 f"recorded as flaky; {short(culprit.sha)} is not named and its tree counts as passed")
        for test in tests:
            await log.record(FlakyRecord(test, suite.identity, culprit.sha, url, self.build.number, finished))
        await services(self.master).ledger.record(TestRecord(
            tree=culprit.tree, commit=culprit.sha, suite=suite.identity, result=Result.PASSED, build_url=url,
            build_number=self.build.number, finished_at=finished, duration=finished - started))
        return True

    async def _notify(self, found: bisect.Culprit) -> None:
        """Run ``[gate] notify_command`` on the master; its outcome goes in the log, never fails the step."""
        argv = bisect.notify_argv(self.settings.gate.notify_command, found)
        try:
            d = utils.getProcessValue(argv[0], argv[1:], env={"PATH": os.environ.get("PATH", os.defpath)},
                                      reactor=self.master.reactor)
            code = await d.addTimeout(NOTIFY_TIMEOUT, self.master.reactor)
        except defer.TimeoutError:
            self.say(f"notify command gave no answer within {NOTIFY_TIMEOUT} s (left running)")
            return
        except OSError as e:
            self.say(f"notify command could not start: {e}")
            return
        self.say(f"notify command {'told the author' if code == 0 else f'failed (exit code {code})'}: "
                 f"{argv[0]}")

    async def _list(self, batch: Batch) -> None:
        """Every commit of the batch, oldest first, with the ledger's verdict and the build that gave it."""
        prefix = getURLForBuild(self.master, await self.build.getBuilderId(), "")
        links = 0
        for c in batch.commits:
            rec = batch.records.get(c.tree)
            self.say(f"  {short(c.sha)} {self._verdict(rec, prefix):<40} {c.subject}")
            if rec is not None and rec.build_url.startswith(prefix) and links < MAX_LINKS:
                links += 1
                self.addURL(f"{short(c.sha)} {rec.result.value} (build #{rec.build_number})", rec.build_url)

    @staticmethod
    def _verdict(rec: TestRecord | None, prefix: str) -> str:
        if rec is None:
            return "not tested"
        # only gate builds are named: a tree may also have been tested by an (embargoed) security build
        where = f"build #{rec.build_number} {rec.build_url}" if rec.build_url.startswith(prefix) else \
            "an earlier build"
        return f"{rec.result.value} in {where}"

    async def _done(self, reason: str, result: int = results.SUCCESS, summary: str | None = None) -> int:
        self.say(reason)
        self.descriptionDone = [(summary or reason)[:120]]
        await self.flush()
        return result


RECHECK_LEASE_SLACK = 600  # seconds beyond twice the suite's max_time before a dead re-checker's lease frees itself


def _recheck_lease(tree: str) -> str:
    """The lease of one tree's re-check: at most one build re-checks a tree at a time, across masters."""
    return f"recheck/{tree}"
