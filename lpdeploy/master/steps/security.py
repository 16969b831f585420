"""Build steps of the security and merge-back builders.

A security build: ``PrepareSecurity`` (on the master) picks what to test —
the security branch tip if it is based on production-stable, else its merge
onto production-stable, made in the mirror and published under a hidden ref
for the worker — then the full suite runs (always: the ledger is not used to
skip a security fix), and ``PromoteSecurity`` fast-forwards both production
branches to exactly the tested commit and appends the fix to the history of
released fixes (``Registry.record_release``), which nothing later overwrites.

A merge-back build: ``MergeBack`` merges a released candidate into devel and
pushes that merge (compare-and-swap, re-merged when devel moved under it);
the merge then goes through the normal gate. Merging a candidate brings every
earlier released fix it contains: the decision log names them all, and the
merge-back record and the audit trail list them all. A conflict pushes
nothing and leaves the fixes pending.

What these builds carry, and why. A build's properties, buildset, reason and
state strings are readable through many doors, so they hold **nothing
secret**: the build knows its work only by an opaque job token
(``lpdeploy_job``); the branch (whose name can itself be a secret) and who
asked are read from the job, master-side (``security_jobs``). The fix commit
(the branch tip) stays in the job too. The candidate, its tree and its hidden
ref (``refs/lpdeploy/candidates/<sha>``) stay properties because the
worker-side ``Checkout``, ``RunSuite`` (which records the ledger) and the
shard steps read them there; a sha names a commit without showing any of it.
Summaries and ``lpdeploy_reason`` use shas and neutral words; branch names
and conflicting paths go only to the ``decision`` log, which only the
security role can read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from buildbot.process import results

from lpdeploy.core import fix_history, policy
from lpdeploy.core import properties as prop
from lpdeploy.core.errors import GitError, InvalidInput, MergeConflict, StaleBranch
from lpdeploy.core.model import (
    AUTOMATIC,
    Action,
    AuditAction,
    AuditEntry,
    BuildOutcome,
    Decision,
    FixState,
    FlowKind,
    MergeBackAttempt,
    MergeBackOutcome,
    Release,
    SecurityFix,
    SecurityJob,
    release_line,
)
from lpdeploy.core.refs import short
from lpdeploy.core.settings import Settings
from lpdeploy.facts.embargo import contained_in
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import Move
from lpdeploy.master.crashpoints import crash_point
from lpdeploy.master.security_jobs import security_branch
from lpdeploy.master.steps.flow import MAX_CAS_ATTEMPTS, SOURCE, FlowStep, MoveBranches
from lpdeploy.stores.registry import Registry

CANDIDATE_REFS = "refs/lpdeploy/candidates/"
FIX_LABEL = "the security branch"  # how reasons (properties, summaries) name the branch


class JobMixin:
    """The job a security or merge-back build works on, read from the registry by its token."""

    job: SecurityJob | None = None

    @property
    def who(self) -> str:
        """Who asked for the job (kept master-side), not Buildbot's ``owner`` property."""
        return self.job.requested_by if self.job else AUTOMATIC

    async def load_job(self, registry: Registry) -> SecurityJob | None:
        self.job = await registry.job(self.getProperty(prop.JOB))  # type: ignore[attr-defined]
        return self.job


class SecurityStep(JobMixin, FlowStep):
    """A master-side step about one job: its branch is validated before any git runs."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=FlowKind.SECURITY, **kwargs)

    async def run(self) -> int:
        """Refuse a build without a job or with a bad branch, then ``act`` on the branch."""
        registry = services(self.master).registry
        job = await self.load_job(registry)
        if job is None:
            return await self.refuse("no security job is recorded for this build; nothing done")
        try:
            branch = security_branch(job.branch, self.settings)
        except InvalidInput as e:
            return await self.refuse(f"refused the security branch: {e.problem}")
        self.say(f"job {job.token}: {job.kind} of {branch}, asked by {job.requested_by}")
        return await self.act(registry, job, branch)

    async def act(self, registry: Registry, job: SecurityJob, branch: str) -> int:
        raise NotImplementedError


class PrepareSecurity(SecurityStep):
    """Decide what the security build tests, and publish it for the worker."""

    name = "prepare"
    description = ["preparing the security build"]

    async def act(self, registry: Registry, job: SecurityJob, branch: str) -> int:
        ps = self.settings.branches.production_stable
        fix_tip: str | None = None
        try:
            tips = await self.upstream.fetch()
            fix_tip, ps_tip = tips.get(branch), tips.get(ps)
            based = bool(fix_tip and ps_tip and await self.upstream.is_ancestor(ps_tip, fix_tip))
            decision = policy.security_candidate(FIX_LABEL, fix_tip, ps, ps_tip, based)
            if decision.refused:
                return await self.refuse(decision.reason)
            assert fix_tip is not None and ps_tip is not None
            self.say(decision.reason)
            if decision.action is Action.MOVE:
                candidate = fix_tip
            else:
                candidate = await self.upstream.merge(ps_tip, fix_tip, f"Merge {branch} onto {ps}")
                self.say(f"merged the fix onto {ps}: candidate {short(candidate)}")
            ref = CANDIDATE_REFS + candidate
            await self.upstream.push_new_ref(ref, candidate)
            tree = await self.upstream.tree_of(candidate)
        except MergeConflict as e:
            await self._record(registry, branch, fix_tip or "", FixState.FAILED, None, f"does not merge: {e.stderr}")
            self.say(f"conflicting paths: {e.stderr}")  # only in the embargoed log
            return await self.refuse(f"the fix does not merge onto {ps} (the decision log names the conflicts)")
        except GitError as e:
            self.say(f"git failed: {e}")
            return await self.refuse("git failed (the decision log says how)", outcome=BuildOutcome.FAILED)
        await self._record(registry, branch, fix_tip, FixState.TESTING, candidate, "")
        await registry.save_job(dataclasses.replace(job, fix_commit=fix_tip, candidate=candidate, tree=tree))
        await registry.audit(AuditEntry(self.master.reactor.seconds(), self.who, AuditAction.SECURITY_BUILD, {
            "job": job.token, "fix_commit": fix_tip, "candidate": candidate, "tree": tree,
            "production_stable": ps_tip, "build": await self.build_url()}))
        for name, value in ((prop.REVISION, candidate), (prop.TREE, tree),
                            (prop.CHECKOUT_BRANCH, ref), (prop.RUN_SUITE, True),
                            (prop.SUITE, self.settings.suite.identity)):
            self.setProperty(name, value, SOURCE)
        self.descriptionDone = [f"testing {short(candidate)}"]
        await self.flush()
        return results.SUCCESS

    async def _record(self, registry: Registry, branch: str, fix_tip: str, state: FixState,
                      candidate: str | None, note: str) -> None:
        await registry.save_fix(SecurityFix(
            branch=branch, fix_commit=fix_tip, state=state, by=self.who,
            updated_at=self.master.reactor.seconds(), candidate=candidate,
            build_url=await self.build_url(), note=note))


class PromoteSecurity(JobMixin, MoveBranches):
    """After the suite: move production to the tested commit and record the release, or record the failure."""

    name = "promote"
    description = ["promoting the security fix"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("alwaysRun", True)
        super().__init__(settings=settings, kind=FlowKind.SECURITY, **kwargs)

    async def run(self) -> int:
        registry = services(self.master).registry
        job = await self.load_job(registry)
        candidate = self.getProperty(prop.REVISION)
        if job is None or not candidate or job.candidate != candidate or not job.fix_commit:
            return results.SKIPPED  # preparation refused (it said why) or never decided this candidate
        now = self.master.reactor.seconds()
        if self.getProperty(prop.OUTCOME) == BuildOutcome.FAILED or self.build.results not in (results.SUCCESS,
                                                                                          results.WARNINGS):
            await self._update_run(registry, job, FixState.FAILED, "the suite failed")
            await registry.audit(AuditEntry(now, self.who, AuditAction.SECURITY_PROMOTE, {
                "job": job.token, "outcome": "suite failed", "candidate": candidate}))
            self.descriptionDone = ["suite failed: nothing moved"]
            return results.FAILURE
        frozen = await self.frozen("promote the security fix")
        result = await self.refuse(frozen.reason) if frozen is not None else await super().run()
        outcome = self.getProperty(prop.OUTCOME)
        if outcome in (BuildOutcome.MOVED, BuildOutcome.NOTHING):
            # what reached production is what this build tested, whatever the branch holds now
            await registry.record_release(Release(job.branch, job.fix_commit, candidate, now, by=job.requested_by,
                                                  job=job.token, build_url=await self.build_url()))
            await self._update_run(registry, job, FixState.PROMOTED, "")
        else:  # refused (frozen, or production moved meanwhile): the scheduler prepares it again
            await self._update_run(registry, job, FixState.REFUSED, str(self.getProperty(prop.REASON) or ""))
        await registry.audit(AuditEntry(now, self.who, AuditAction.SECURITY_PROMOTE, {
            "job": job.token, "outcome": outcome, "reason": self.getProperty(prop.REASON),
            "fix_commit": job.fix_commit, "candidate": candidate, "tree": self.getProperty(prop.TREE)}))
        return result

    async def _update_run(self, registry: Registry, job: SecurityJob, state: FixState, note: str) -> None:
        """The branch's latest run, unless a newer push has been recorded meanwhile."""
        run = await registry.fix(job.branch)
        if run is not None and run.fix_commit == job.fix_commit:
            await registry.save_fix(dataclasses.replace(run, state=state, note=note,
                                                        updated_at=self.master.reactor.seconds()))


class MergeBack(SecurityStep):
    """Merge a released candidate (and every earlier released fix it holds) into devel, compare-and-swap."""

    name = "merge-back"
    description = ["merging back"]

    async def act(self, registry: Registry, job: SecurityJob, branch: str) -> int:
        devel = self.settings.branches.devel
        releases = fix_history.distinct(await registry.releases())
        devel_tip: str | None = None
        candidate = job.candidate or ""
        brought: list[Release] = []
        for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
            try:
                tips = await self.upstream.fetch()
                devel_tip = tips.get(devel)
                if devel_tip is None:
                    return await self.refuse(f"branch {devel} does not exist upstream")
                in_devel = await contained_in(self.upstream, devel_tip, [r.candidate for r in releases])
                target = self._target(job, branch, releases, in_devel)
                if target.action is not Action.MOVE:
                    return await self._not_merging(registry, job, target, devel_tip)
                candidate = target.revision or ""
                pending = fix_history.pending(releases, in_devel)
                brought = fix_history.brought_in(
                    candidate, pending, await contained_in(self.upstream, candidate, [p.candidate for p in pending]))
                self.say(f"attempt {attempt}: {target.reason}; it brings {len(brought)} released fix(es) into {devel}:")
                for r in brought:
                    self.say(f"  {release_line(r)}")
                names = ", ".join(dict.fromkeys(r.branch for r in brought)) or branch
                merged = await self.upstream.merge(
                    devel_tip, candidate, f"Merge security fix{'es' if len(brought) > 1 else ''} {names} "
                                          f"back into {devel}")
                await self.upstream.push([Move(devel, devel_tip, merged)])
                crash_point("merge_back.after_push")
            except StaleBranch:
                self.say(f"attempt {attempt}: {devel} moved under us; deciding and merging again")
                continue
            except MergeConflict as e:
                await self._attempt(registry, job, candidate, MergeBackOutcome.CONFLICT, brought, devel_tip,
                                    note=e.stderr)
                self.say(f"conflicting paths: {e.stderr}")  # only in the embargoed log
                return await self.refuse(f"{short(candidate)} does not merge into {devel}; the fixes stay pending "
                                         "(the decision log names the conflicts)")
            except GitError as e:
                await self._attempt(registry, job, candidate, MergeBackOutcome.GAVE_UP, brought, devel_tip, note=str(e))
                self.say(f"git failed: {e}")
                return await self.refuse("git failed (the decision log says how); the fixes stay pending",
                                         outcome=BuildOutcome.FAILED)
            await self._attempt(registry, job, candidate, MergeBackOutcome.MERGED, brought, devel_tip, merge=merged)
            fixes = ", ".join(short(r.fix_commit) for r in brought)
            reason = (f"merged {len(brought)} released fix(es) ({fixes}) back into {devel} as {short(merged)}; "
                      "the gate takes it from here")
            self.say(reason)
            self.outcome(BuildOutcome.MOVED, reason)
            self.descriptionDone = [f"merged back as {short(merged)}"]
            await self.flush()
            return results.SUCCESS
        await self._attempt(registry, job, candidate, MergeBackOutcome.GAVE_UP, brought, devel_tip,
                            note=f"{devel} kept moving")
        return await self.refuse(f"gave up after {MAX_CAS_ATTEMPTS} attempts: {devel} kept moving; "
                                 "the fixes stay pending", outcome=BuildOutcome.FAILED)

    def _target(self, job: SecurityJob, branch: str, releases: list[Release], in_devel: set[str]) -> Decision:
        """An automatic job merges the candidate it was queued for; a manual one the branch's newest release."""
        if job.automatic and job.candidate:
            if job.candidate in in_devel:
                return Decision(Action.NOTHING, f"devel already holds {short(job.candidate)}", revision=job.candidate)
            if job.candidate not in {r.candidate for r in releases}:
                return Decision(Action.REFUSE, f"{short(job.candidate)} is not a released fix")
            return Decision(Action.MOVE, f"merging {short(job.candidate)} back", revision=job.candidate)
        return fix_history.manual_merge_back_target(branch, releases, in_devel)

    async def _not_merging(self, registry: Registry, job: SecurityJob, target: Decision, devel_tip: str) -> int:
        if target.refused:
            return await self.refuse(target.reason)
        await self._attempt(registry, job, target.revision or "", MergeBackOutcome.NOTHING_TO_MERGE, [], devel_tip)
        self.say(target.reason)
        self.outcome(BuildOutcome.NOTHING, f"nothing to merge back: {target.reason}")
        self.descriptionDone = ["nothing to merge back"]
        await self.flush()
        return results.SUCCESS

    async def _attempt(self, registry: Registry, job: SecurityJob, candidate: str, outcome: MergeBackOutcome,
                       brought: list[Release], devel_tip: str | None, merge: str | None = None,
                       note: str = "") -> None:
        """Record the attempt (it blocks automatic retries after a conflict) and audit it."""
        now = self.master.reactor.seconds()
        await registry.record_merge_back(MergeBackAttempt(
            at=now, job=job.token, by=self.who, candidate=candidate, outcome=outcome,
            brought=tuple(r.candidate for r in brought), devel_tip=devel_tip, merge=merge, note=note))
        await registry.audit(AuditEntry(now, self.who, AuditAction.MERGE_BACK, {
            "job": job.token, "outcome": outcome, "candidate": candidate, "merge": merge,
            "fix_commits": [r.fix_commit for r in brought], "candidates": [r.candidate for r in brought]}))
