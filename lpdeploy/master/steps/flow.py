"""Build steps of the gate and promote builders.

A gate or promote build is four steps:

1. ``Decide`` (on the master): read the upstream tips, pick the revision, ask
   the ledger whether its tree already passed, and say so in a ``decision`` log.
2. ``Git`` checkout and 3. ``RunSuite`` (on a worker): only when the decision
   says the suite must run; ``RunSuite`` records the result in the ledger.
4. ``MoveBranches`` (on the master): re-read the tips, decide the fast-forward
   and push it as a compare-and-swap; a branch that moved under us means
   re-decide, never force.

The outcome of a build is left in two properties, ``lpdeploy_outcome``
(moved / nothing / refused / failed) and ``lpdeploy_reason`` (one line), which
the CLI prints.
"""

from __future__ import annotations

from typing import Any

from buildbot.process import buildstep, results
from buildbot.reporters.utils import getURLForBuild
from twisted.internet.task import deferLater

from lpdeploy.core import policy, qa, validators
from lpdeploy.core import properties as prop
from lpdeploy.core.errors import GitError, InvalidInput, StaleBranch
from lpdeploy.core.flows import FLOWS
from lpdeploy.core.freeze_windows import window_state
from lpdeploy.core.model import (
    AUTOMATIC,
    Action,
    AuditEntry,
    BuildOutcome,
    Decision,
    EventKind,
    FlowKind,
    Result,
    TestRecord,
)
from lpdeploy.core.refs import qualified, short, validate_revision
from lpdeploy.core.settings import Settings
from lpdeploy.facts.qa import qa_report
from lpdeploy.facts.releases import lost_fixes
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import Move, checkout_command
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.crashpoints import crash_point

MAX_CAS_ATTEMPTS = 3
PUSH_RETRY_DELAY = 2.0  # seconds before re-reading the tips after a push of unknown outcome; doubles ...
PUSH_RETRY_CAP = 30.0  # ... up to this
SOURCE = "lpdeploy"


async def record_suite_run(master: Any, record: TestRecord, **details: object) -> None:
    """Record one run of the full suite: in the ledger, and as a ``suite-run`` flow event.

    The one place where both ``RunSuite`` and the sharded ``RunShards`` file a
    verdict, so both leave the same ledger entry (what later builds rely on to
    skip the suite) and the same event (what the dashboard counts);
    ``details`` adds what only one of them knows (the shards).
    """
    await services(master).ledger.record(record)
    await services(master).registry.record_event(AuditEntry(record.finished_at, AUTOMATIC, EventKind.SUITE_RUN, {
        "revision": record.commit, "tree": record.tree, "duration": record.duration, "passed": record.passed,
        **details}))


def suite_needed(step: buildstep.BuildStep) -> bool:
    """``doStepIf`` of the checkout and suite steps."""
    return bool(step.getProperty(prop.RUN_SUITE))


async def interrupted_build(step: buildstep.BuildStep, revision: str) -> tuple[int, float] | None:
    """An earlier build of ``step``'s request that a master crash ended (RETRY) after deciding ``revision``.

    Its number and when it started, or None. Buildbot finishes a dead master's
    builds as RETRY when it restarts (or when another master expires it) and
    queues their requests again: the build running now is such a re-run.
    """
    this = await step.master.db.builds.getBuild(step.build.buildid)
    if this is None:
        return None
    for b in await step.master.db.builds.getBuilds(buildrequestid=this.buildrequestid):
        if b.id == this.id or b.results != results.RETRY:
            continue
        props = await step.master.db.builds.getBuildProperties(b.id)
        if props.get(prop.REVISION, (None,))[0] == revision:
            return b.number, b.started_at.timestamp()
    return None


class FlowStep(buildstep.BuildStep):
    """A step that runs on the master and decides with ``policy``."""

    def __init__(self, settings: Settings, kind: FlowKind, **kwargs: Any) -> None:
        if kind not in FlowKind.__members__.values():
            raise ValueError(f"unknown flow kind {kind!r}")
        super().__init__(**kwargs)
        self.settings = settings
        self.kind = FlowKind(kind)
        self.flow = FLOWS[self.kind]  # how this flow differs from the others
        self._lines: list[str] = []

    @property
    def upstream(self) -> Upstream:
        return services(self.master).upstream(self.settings.repository.url, self.settings.repository.timeout)

    @property
    def targets(self) -> tuple[str, ...]:
        """The gated branches this build moves."""
        return self.flow.targets(self.settings.branches)

    @property
    def who(self) -> str:
        """Who asked: the logged-in user who forced the build, else lpdeploy itself."""
        owner = self.getProperty("owner")
        return str(owner) if owner and owner != "anonymous" else AUTOMATIC

    def say(self, line: str) -> None:
        self._lines.append(line)

    async def event(self, action: EventKind, **details: object) -> None:
        """A flow event for the dashboard's numbers (lead time, suite runs avoided)."""
        details.setdefault("kind", self.kind)
        await services(self.master).registry.record_event(AuditEntry(self.master.reactor.seconds(), self.who, action,
                                                              dict(details)))

    async def flush(self) -> None:
        if self._lines:
            await self.addCompleteLog("decision", "\n".join(self._lines) + "\n")
            self._lines = []

    def outcome(self, outcome: BuildOutcome, reason: str) -> None:
        self.setProperty(prop.OUTCOME, outcome, SOURCE)
        self.setProperty(prop.REASON, reason, SOURCE)

    async def frozen(self, what: str) -> Decision | None:
        """The refusal of the manual freeze or an open freeze window (``policy.frozen_refusal``), if any."""
        windows = window_state(self.settings.freeze.windows, self.master.reactor.seconds())
        return policy.frozen_refusal(await services(self.master).registry.freeze(), what, windows)

    async def build_url(self) -> str:
        builderid = await self.build.getBuilderId()
        return getURLForBuild(self.master, builderid, self.build.number)

    async def refuse(self, reason: str, outcome: BuildOutcome = BuildOutcome.REFUSED) -> int:
        self.say(reason)
        self.outcome(outcome, reason)
        self.descriptionDone = [reason[:120]]
        await self.flush()
        return results.FAILURE


class Decide(FlowStep):
    """Pick the revision to gate or promote and decide whether the suite must run."""

    name = "decide"
    description = ["deciding"]

    async def run(self) -> int:
        if self.flow.stopped_by_freeze:
            frozen = await self.frozen(self.kind)
            if frozen is not None:
                return await self.refuse(frozen.reason)
        try:
            tips = await self.upstream.fetch()
            target = await self._target(tips)
        except (GitError, InvalidInput) as e:
            return await self.refuse(str(e), outcome=BuildOutcome.FAILED if isinstance(e, GitError)
                                     else BuildOutcome.REFUSED)
        if target.refused:
            return await self.refuse(target.reason)
        if target.action is Action.NOTHING:  # a moot bisection probe
            return await self.nothing(target.reason)
        assert target.revision is not None
        revision = target.revision
        self.say(target.reason)
        tree = await self.upstream.tree_of(revision)
        self.setProperty(prop.REVISION, revision, SOURCE)
        self.setProperty(prop.TREE, tree, SOURCE)
        self.setProperty(prop.SUITE, self.settings.suite.identity, SOURCE)
        self.setProperty(prop.CHECKOUT_BRANCH, self.flow.source_branch(self.settings.branches), SOURCE)

        if self.flow.guards_production:
            lost = await self._lost_fixes(revision)
            if lost is not None:
                return await self.refuse(lost.reason)
            facts = await self.upstream.facts(tips, revision, self.targets)
            if all(f.tip == revision or f.contains_target for f in facts):
                return await self.nothing(f"nothing to do: {' and '.join(self.targets)} already hold {short(revision)}")

        record = await services(self.master).ledger.lookup(self.settings.suite.identity, tree)
        decision = policy.suite_decision(revision, tree, record)
        self.say(decision.reason)
        run_suite = decision.action is Action.RUN_SUITE
        self.setProperty(prop.RUN_SUITE, run_suite, SOURCE)
        if run_suite:
            self.descriptionDone = [f"suite needed for {short(revision)}"]
        else:
            assert decision.record is not None
            self.descriptionDone = [f"already tested: {short(revision)}, build #{decision.record.build_number}"]
            await self.event(EventKind.SUITE_SKIPPED, revision=revision, tree=tree, relied_on=decision.record.build_url,
                             saved=decision.record.duration)
            if decision.record.build_url:
                self.addURL(f"tested in build #{decision.record.build_number}", decision.record.build_url)
        await self.flush()
        return results.SUCCESS

    async def nothing(self, reason: str) -> int:
        self.say(reason)
        self.outcome(BuildOutcome.NOTHING, reason)
        self.setProperty(prop.RUN_SUITE, False, SOURCE)
        self.descriptionDone = ["nothing to do"]
        await self.flush()
        return results.SUCCESS

    async def _target(self, tips: Any) -> Decision:
        b = self.settings.branches
        probe = self.getProperty(prop.PROBE) if self.kind is FlowKind.GATE else None
        if probe:  # queued by the gate scheduler to bisect a failing batch
            probe = validate_revision(str(probe), "bisection probe")
            devel_tip, stable_tip = tips.get(b.devel), tips.get(b.stable)
            on_devel = devel_tip is not None and await self.upstream.contains(devel_tip, probe)
            on_stable = stable_tip is not None and await self.upstream.contains(stable_tip, probe)
            return policy.probe_target(b.devel, devel_tip, probe, on_devel, on_stable)
        if self.flow.source == "devel":  # the gate: the devel tip, into which pushes are batched
            decision = policy.gate_target(b.devel, tips.get(b.devel))
            hint = self.build.getSourceStamp("").revision if self.build.getSourceStamp("") else None
            if decision.revision and hint and hint != decision.revision:
                if await self.upstream.contains(decision.revision, hint):
                    self.say(f"push {short(hint)} is batched into the newer {b.devel} tip {short(decision.revision)}")
                else:
                    self.say(f"{b.devel} no longer contains {short(hint)}; gating the current tip instead")
            return decision
        requested = validators.optional_revision(self.getProperty("target_revision"), "target revision") or None
        stable_tip = tips.get(b.stable)
        on_stable = False
        if requested is not None and stable_tip is not None:
            on_stable = await self.upstream.contains(stable_tip, requested)
        decision = policy.promotion_target(b.stable, stable_tip, requested, on_stable)
        if self.kind is FlowKind.PROMOTE and self.settings.promotion.require_qa and not decision.refused:
            decision = await self._qa_target(tips, requested)
        return decision

    async def _qa_target(self, tips: Any, requested: str | None) -> Decision:
        """``[promotion] require_qa``: only the QA'd line travels (``qa.promotion_decision``); see ``lpdeploy_qa``."""
        b = self.settings.branches
        ps_tip = tips.get(b.production_stable)
        if requested is not None and ps_tip is not None and await self.upstream.contains(ps_tip, requested):
            return policy.promotion_target(b.stable, tips.get(b.stable), requested, True)  # already promoted
        reach = services(self.master)
        report = await qa_report(self.upstream, reach.registry, reach.qa, self.settings, tips, may_see_security=True)
        decision = qa.promotion_decision(report, requested)
        self.setProperty(prop.QA, decision.reason, SOURCE)
        return decision

    async def _lost_fixes(self, target: str) -> Decision | None:
        """Refuse a promotion that would drop a released security fix (the history, not the branch rows)."""
        missing = await lost_fixes(self.upstream, services(self.master).registry, target)
        return policy.lost_fix_refusal(target, missing, self.settings.branches.production_stable)


class Checkout(buildstep.ShellMixin, buildstep.BuildStep):
    """Check out exactly the decided revision on the worker, quietly.

    Not Buildbot's ``Git`` step: that one passes branch and revision without
    ``--end-of-options`` and lets ``git checkout`` print the commit subject
    into the log, where an embargoed subject must never appear. The command
    comes from ``gitops.checkout_command`` (one remote command, not seven).
    """

    name = "checkout"
    description = ["checking out"]
    renderables = ["branch"]

    def __init__(self, repourl: str, branch: Any, **kwargs: Any) -> None:
        self.repourl = repourl
        self.branch = branch
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    async def run(self) -> int:
        revision = validate_revision(self.getProperty(prop.REVISION))
        branch = str(self.branch)
        ref = branch if branch.startswith("refs/") else qualified(branch)
        got = await self.check_out(ref, revision)
        if got is None:
            self.descriptionDone = [f"checkout of {short(revision)} failed"]
            return results.FAILURE
        self.setProperty("got_revision", got, "Checkout")
        self.descriptionDone = [f"checked out {short(got)}"]
        return results.SUCCESS


    async def check_out(self, ref: str, revision: str) -> str | None:
        """Run the checkout on the worker as one command; the sha it got, or None if it failed."""
        cmd = await self.makeRemoteShellCommand(command=checkout_command(self.repourl, ref, revision),
                                                collectStdout=True)
        await self.runCommand(cmd)
        if cmd.didFail():
            return None
        lines = cmd.stdout.split()
        return lines[-1] if lines else ""


class RunSuite(buildstep.ShellMixin, buildstep.BuildStep):
    """Run the full suite in the worker's checkout and record the result in the ledger."""

    name = "suite"
    description = ["running the suite"]
    descriptionDone = ["suite"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        kwargs.setdefault("timeout", settings.suite.timeout)
        kwargs.setdefault("maxTime", settings.suite.max_time)
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)

    async def run(self) -> int:
        revision = self.getProperty(prop.REVISION)
        got = self.getProperty("got_revision")
        if got != revision:
            reason = f"checkout is at {got!r}, not the decided {revision!r}; not recording anything"
            self.setProperty(prop.OUTCOME, BuildOutcome.FAILED, SOURCE)
            self.setProperty(prop.REASON, reason, SOURCE)
            await self.addCompleteLog("decision", reason + "\n")
            return results.EXCEPTION
        started = self.master.reactor.seconds()
        cmd = await self.makeRemoteShellCommand(command=list(self.settings.suite.command))
        await self.runCommand(cmd)
        finished = self.master.reactor.seconds()
        outcome = cmd.results()
        passed = outcome == results.SUCCESS and not cmd.didFail()
        builderid = await self.build.getBuilderId()
        rec = TestRecord(
            tree=self.getProperty(prop.TREE),
            commit=revision,
            suite=self.settings.suite.identity,
            result=Result.PASSED if passed else Result.FAILED,
            build_url=getURLForBuild(self.master, builderid, self.build.number),
            build_number=self.build.number,
            finished_at=finished,
            duration=finished - started,
        )
        await record_suite_run(self.master, rec)
        if passed:
            self.descriptionDone = [f"suite passed on {short(revision)}"]
            return results.SUCCESS
        reason = f"the suite failed on {short(revision)} (exit code {cmd.rc}); nothing moves"
        self.setProperty(prop.OUTCOME, BuildOutcome.FAILED, SOURCE)
        self.setProperty(prop.REASON, reason, SOURCE)
        self.descriptionDone = [f"suite failed on {short(revision)}"]
        return results.FAILURE


class MoveBranches(FlowStep):
    """Fast-forward the gated branches to the tested revision, compare-and-swap."""

    name = "move"
    description = ["moving branches"]

    async def run(self) -> int:
        result = await self._move()
        if self.getProperty(prop.OUTCOME) == BuildOutcome.NOTHING and not self.getProperty(prop.PROBE):
            await self._interrupted_move()
        if self.flow.audit_action:  # who, when, which commit and tree, outcome
            await services(self.master).registry.audit(AuditEntry(self.master.reactor.seconds(), self.who,
                                                           self.flow.audit_action, {
                "revision": self.getProperty(prop.REVISION), "tree": self.getProperty(prop.TREE),
                "outcome": self.getProperty(prop.OUTCOME), "reason": self.getProperty(prop.REASON)}))
        return result

    async def _interrupted_move(self) -> None:
        """Record, once, the move an earlier build of this request made before a crash (``policy.interrupted_move``)."""
        revision = self.getProperty(prop.REVISION)
        earlier = await interrupted_build(self, revision) if revision else None
        if earlier is None:
            return
        number, started = earlier
        tips = await self.upstream.fetch()
        recorded = any(e.action == EventKind.MOVED and e.details.get("revision") == revision
                       and e.details.get("kind") == self.kind
                       for e in await services(self.master).registry.events(since=started))
        decision = policy.interrupted_move(revision, {b: tips.get(b) for b in self.targets}, number, recorded)
        self.say(decision.reason)
        if decision.action is Action.MOVE:
            self.outcome(BuildOutcome.MOVED, decision.reason)
            await self.event(EventKind.MOVED, revision=revision, branches=list(decision.branches),
                             interrupted_build=number)
            self.descriptionDone = [f"{', '.join(decision.branches)} → {short(revision)} (by build #{number})"]
        await self.flush()

    async def _move(self, revision: str | None = None, tree: str | None = None) -> int:
        """Move to ``revision`` of ``tree`` (default: the build's decided revision)."""
        if revision is None and self.getProperty(prop.OUTCOME) == BuildOutcome.NOTHING:
            self.descriptionDone = ["nothing to do"]
            return results.SKIPPED
        if revision is None and self.getProperty(prop.PROBE):
            # the bisection moves stable once, to the newest pass, when it is over (the ``bisect`` step):
            # until then the batch, and the range its log shows, stays whole
            self.outcome(BuildOutcome.NOTHING, "a bisection probe moves no branch itself")
            self.descriptionDone = ["probe: no move"]
            return results.SKIPPED
        revision = validate_revision(revision or self.getProperty(prop.REVISION))
        tree = tree or self.getProperty(prop.TREE)
        if self.kind is FlowKind.GATE:
            crash_point("gate.after_suite")
        record = await services(self.master).ledger.lookup(self.settings.suite.identity, tree)
        pushed: tuple[str, ...] = ()  # branches of a push whose outcome is unknown (its reply was lost)
        for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
            try:
                tips = await self.upstream.fetch()
                landed = policy.landed_push(pushed, revision, tips.heads)
                if landed is not None:  # recorded below, once; never pushed again
                    decision = landed
                    self.say(decision.reason)
                else:
                    pushed = ()
                    facts = await self.upstream.facts(tips, revision, self.targets)
                    decision = policy.move_decision(revision, record, facts)
                    self.say(decision.reason)
                    if decision.action is Action.NOTHING:
                        self.outcome(BuildOutcome.NOTHING, decision.reason)
                        self.descriptionDone = ["nothing to do"]
                        await self.flush()
                        return results.SUCCESS
                    if decision.refused:
                        return await self.refuse(decision.reason)
                    moves = [Move(name, tips.get(name), revision) for name in decision.branches]
                    pushed = decision.branches
                    if await self.upstream.push(moves):
                        self.say(f"attempt {attempt}: the push's reply was lost; the upstream shows it landed")
                    crash_point(f"{self.kind}.after_push")
            except StaleBranch:
                pushed = ()
                self.say(f"attempt {attempt}: a branch moved under us; re-reading the tips and deciding again")
                continue
            except GitError as e:
                if not pushed or attempt == MAX_CAS_ATTEMPTS:
                    return await self.refuse(f"git failed: {e}", outcome=BuildOutcome.FAILED)
                delay = policy.retry_delay(attempt, PUSH_RETRY_DELAY, PUSH_RETRY_CAP)
                self.say(f"attempt {attempt}: the push may or may not have landed ({e}); "
                         f"reading the tips again in {delay:g}s")
                await deferLater(self.master.reactor, delay)
                continue
            self.outcome(BuildOutcome.MOVED, decision.reason)
            await self.event(EventKind.MOVED, revision=revision, branches=list(decision.branches))
            self.descriptionDone = [f"{', '.join(decision.branches)} → {short(revision)}"]
            await self.flush()
            return results.SUCCESS
        return await self.refuse(
            f"gave up after {MAX_CAS_ATTEMPTS} attempts: {', '.join(self.targets)} kept moving under us"
        )
