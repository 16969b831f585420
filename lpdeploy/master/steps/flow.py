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

from lpdeploy.core import fix_history, policy
from lpdeploy.core.errors import GitError, InvalidInput, StaleBranch
from lpdeploy.core.freeze_windows import window_state
from lpdeploy.core.model import Action, AuditEntry, Decision, Result, TestRecord
from lpdeploy.core.refs import qualified, short, validate_revision
from lpdeploy.core.settings import Settings
from lpdeploy.git.gitops import Move, checkout_commands
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.registry import DbRegistry

GATE = "gate"
PROMOTE = "promote"
DEPLOY = "deploy"
ADMIN = "admin"
SECURITY = "security"
MAX_CAS_ATTEMPTS = 3
SOURCE = "lpdeploy"


def suite_needed(step: buildstep.BuildStep) -> bool:
    """``doStepIf`` of the checkout and suite steps."""
    return bool(step.getProperty("lpdeploy_run_suite"))


class FlowStep(buildstep.BuildStep):
    """A step that runs on the master and decides with ``policy``."""

    def __init__(self, settings: Settings, kind: str, **kwargs: Any) -> None:
        if kind not in (GATE, PROMOTE, DEPLOY, ADMIN, SECURITY):
            raise ValueError(f"unknown flow kind {kind!r}")
        super().__init__(**kwargs)
        self.settings = settings
        self.kind = kind
        self._lines: list[str] = []

    @property
    def upstream(self) -> Upstream:
        return Upstream.of(self.master, self.settings.repository.url)

    @property
    def targets(self) -> tuple[str, ...]:
        """The gated branches this build moves."""
        b = self.settings.branches
        return (b.stable,) if self.kind == GATE else b.production  # promote and security: production

    @property
    def who(self) -> str:
        """Who asked: the logged-in user who forced the build, else lpdeploy itself."""
        owner = self.getProperty("owner")
        return str(owner) if owner and owner != "anonymous" else "lpdeploy (automatic)"

    def say(self, line: str) -> None:
        self._lines.append(line)

    async def event(self, action: str, **details: object) -> None:
        """A flow event for the dashboard's numbers (lead time, suite runs avoided)."""
        details.setdefault("kind", self.kind)
        await DbRegistry(self.master).record_event(AuditEntry(self.master.reactor.seconds(), self.who, action,
                                                              dict(details)))

    async def flush(self) -> None:
        if self._lines:
            await self.addCompleteLog("decision", "\n".join(self._lines) + "\n")
            self._lines = []

    def outcome(self, outcome: str, reason: str) -> None:
        self.setProperty("lpdeploy_outcome", outcome, SOURCE)
        self.setProperty("lpdeploy_reason", reason, SOURCE)

    async def frozen(self, what: str) -> Decision | None:
        """The refusal of the manual freeze or an open freeze window (``policy.frozen_refusal``), if any."""
        windows = window_state(self.settings.freeze.windows, self.master.reactor.seconds())
        return policy.frozen_refusal(await DbRegistry(self.master).freeze(), what, windows)

    async def build_url(self) -> str:
        builderid = await self.build.getBuilderId()
        return getURLForBuild(self.master, builderid, self.build.number)

    async def refuse(self, reason: str, outcome: str = "refused") -> int:
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
        if self.kind == PROMOTE:
            frozen = await self.frozen("promote")
            if frozen is not None:
                return await self.refuse(frozen.reason)
        try:
            tips = await self.upstream.fetch()
            target = await self._target(tips)
        except (GitError, InvalidInput) as e:
            return await self.refuse(str(e), outcome="failed" if isinstance(e, GitError) else "refused")
        if target.refused:
            return await self.refuse(target.reason)
        assert target.revision is not None
        revision = target.revision
        self.say(target.reason)
        tree = await self.upstream.tree_of(revision)
        self.setProperty("lpdeploy_revision", revision, SOURCE)
        self.setProperty("lpdeploy_tree", tree, SOURCE)
        self.setProperty("lpdeploy_suite", self.settings.suite.identity, SOURCE)
        b = self.settings.branches
        self.setProperty("lpdeploy_checkout_branch", b.devel if self.kind == GATE else b.stable, SOURCE)

        if self.kind == PROMOTE:
            lost = await self._lost_fixes(revision)
            if lost is not None:
                return await self.refuse(lost.reason)
            facts = await self.upstream.facts(tips, revision, self.targets)
            if all(f.tip == revision or f.contains_target for f in facts):
                reason = f"nothing to do: {' and '.join(self.targets)} already hold {short(revision)}"
                self.say(reason)
                self.outcome("nothing", reason)
                self.setProperty("lpdeploy_run_suite", False, SOURCE)
                self.descriptionDone = ["nothing to do"]
                await self.flush()
                return results.SUCCESS

        record = await DbLedger(self.master).lookup(self.settings.suite.identity, tree)
        decision = policy.suite_decision(revision, tree, record)
        self.say(decision.reason)
        run_suite = decision.action is Action.RUN_SUITE
        self.setProperty("lpdeploy_run_suite", run_suite, SOURCE)
        if run_suite:
            self.descriptionDone = [f"suite needed for {short(revision)}"]
        else:
            assert decision.record is not None
            self.descriptionDone = [f"already tested: {short(revision)}, build #{decision.record.build_number}"]
            await self.event("suite-skipped", revision=revision, tree=tree, relied_on=decision.record.build_url,
                             saved=decision.record.duration)
            if decision.record.build_url:
                self.addURL(f"tested in build #{decision.record.build_number}", decision.record.build_url)
        await self.flush()
        return results.SUCCESS

    async def _target(self, tips: Any) -> Decision:
        b = self.settings.branches
        if self.kind == GATE:
            decision = policy.gate_target(b.devel, tips.get(b.devel))
            hint = self.build.getSourceStamp("").revision if self.build.getSourceStamp("") else None
            if decision.revision and hint and hint != decision.revision:
                if await self._contains(decision.revision, hint):
                    self.say(f"push {short(hint)} is batched into the newer {b.devel} tip {short(decision.revision)}")
                else:
                    self.say(f"{b.devel} no longer contains {short(hint)}; gating the current tip instead")
            return decision
        requested = self.getProperty("target_revision") or None
        if requested is not None:
            requested = validate_revision(str(requested).strip(), "target revision")
        stable_tip = tips.get(b.stable)
        on_stable = False
        if requested is not None and stable_tip is not None:
            on_stable = await self._contains(stable_tip, requested)
        return policy.promotion_target(b.stable, stable_tip, requested, on_stable)

    async def _lost_fixes(self, target: str) -> Decision | None:
        """Refuse a promotion that would drop a released security fix (the history, not the branch rows)."""
        releases = await DbRegistry(self.master).releases()
        kept = {r.fix_commit for r in releases if await self._contains(target, r.fix_commit)}
        missing = fix_history.lost_fixes(releases, kept)
        return policy.lost_fix_refusal(target, missing, self.settings.branches.production_stable)

    async def _contains(self, tip: str, rev: str) -> bool:
        """Whether ``tip`` contains ``rev`` (a missing object means no)."""
        try:
            return rev == tip or await self.upstream.is_ancestor(rev, tip)
        except GitError:
            return False


class Checkout(buildstep.ShellMixin, buildstep.BuildStep):
    """Check out exactly the decided revision on the worker, quietly.

    Not Buildbot's ``Git`` step: that one passes branch and revision without
    ``--end-of-options`` and lets ``git checkout`` print the commit subject
    into the log, where an embargoed subject must never appear. The argv
    lists come from ``gitops.checkout_commands``.
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
        revision = validate_revision(self.getProperty("lpdeploy_revision"))
        branch = str(self.branch)
        ref = branch if branch.startswith("refs/") else qualified(branch)
        commands = checkout_commands(self.repourl, ref, revision)
        for i, argv in enumerate(commands):
            last = i == len(commands) - 1
            cmd = await self.makeRemoteShellCommand(command=argv, collectStdout=last)
            await self.runCommand(cmd)
            if cmd.didFail():
                self.descriptionDone = [f"checkout of {short(revision)} failed"]
                return results.FAILURE
        got = cmd.stdout.strip()
        self.setProperty("got_revision", got, "Checkout")
        self.descriptionDone = [f"checked out {short(got)}"]
        return results.SUCCESS


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
        revision = self.getProperty("lpdeploy_revision")
        got = self.getProperty("got_revision")
        if got != revision:
            reason = f"checkout is at {got!r}, not the decided {revision!r}; not recording anything"
            self.setProperty("lpdeploy_outcome", "failed", SOURCE)
            self.setProperty("lpdeploy_reason", reason, SOURCE)
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
            tree=self.getProperty("lpdeploy_tree"),
            commit=revision,
            suite=self.settings.suite.identity,
            result=Result.PASSED if passed else Result.FAILED,
            build_url=getURLForBuild(self.master, builderid, self.build.number),
            build_number=self.build.number,
            finished_at=finished,
            duration=finished - started,
        )
        await DbLedger(self.master).record(rec)
        await DbRegistry(self.master).record_event(AuditEntry(finished, "lpdeploy (automatic)", "suite-run", {
            "revision": revision, "tree": rec.tree, "duration": rec.duration, "passed": passed}))
        if passed:
            self.descriptionDone = [f"suite passed on {short(revision)}"]
            return results.SUCCESS
        reason = f"the suite failed on {short(revision)} (exit code {cmd.rc}); nothing moves"
        self.setProperty("lpdeploy_outcome", "failed", SOURCE)
        self.setProperty("lpdeploy_reason", reason, SOURCE)
        self.descriptionDone = [f"suite failed on {short(revision)}"]
        return results.FAILURE


class MoveBranches(FlowStep):
    """Fast-forward the gated branches to the tested revision, compare-and-swap."""

    name = "move"
    description = ["moving branches"]

    async def run(self) -> int:
        result = await self._move()
        if self.kind == PROMOTE:  # promotions are audited: who, when, which commit and tree, outcome
            await DbRegistry(self.master).audit(AuditEntry(self.master.reactor.seconds(), self.who, "promote", {
                "revision": self.getProperty("lpdeploy_revision"), "tree": self.getProperty("lpdeploy_tree"),
                "outcome": self.getProperty("lpdeploy_outcome"), "reason": self.getProperty("lpdeploy_reason")}))
        return result

    async def _move(self) -> int:
        if self.getProperty("lpdeploy_outcome") == "nothing":
            self.descriptionDone = ["nothing to do"]
            return results.SKIPPED
        revision = validate_revision(self.getProperty("lpdeploy_revision"))
        tree = self.getProperty("lpdeploy_tree")
        record = await DbLedger(self.master).lookup(self.settings.suite.identity, tree)
        for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
            try:
                tips = await self.upstream.fetch()
                facts = await self.upstream.facts(tips, revision, self.targets)
                decision = policy.move_decision(revision, record, facts)
                self.say(decision.reason)
                if decision.action is Action.NOTHING:
                    self.outcome("nothing", decision.reason)
                    self.descriptionDone = ["nothing to do"]
                    await self.flush()
                    return results.SUCCESS
                if decision.refused:
                    return await self.refuse(decision.reason)
                moves = [Move(name, tips.get(name), revision) for name in decision.branches]
                await self.upstream.push(moves)
            except StaleBranch:
                self.say(f"attempt {attempt}: a branch moved under us; re-reading the tips and deciding again")
                continue
            except GitError as e:
                return await self.refuse(f"git failed: {e}", outcome="failed")
            self.outcome("moved", decision.reason)
            await self.event("moved", revision=revision, branches=list(decision.branches))
            self.descriptionDone = [f"{', '.join(decision.branches)} → {short(revision)}"]
            await self.flush()
            return results.SUCCESS
        return await self.refuse(
            f"gave up after {MAX_CAS_ATTEMPTS} attempts: {', '.join(self.targets)} kept moving under us"
        )
