"""Build steps of the security and merge-back builders.

A security build: ``PrepareSecurity`` (on the master) picks what to test —
the security branch tip if it is based on production-stable, else its merge
onto production-stable, made in the mirror and published under a hidden ref
for the worker — then the full suite runs (always: the ledger is not used to
skip a security fix), and ``PromoteSecurity`` fast-forwards both production
branches to exactly the tested commit.

A merge-back build: ``MergeBack`` merges what reached production into devel
and pushes that merge (compare-and-swap); the merge then goes through the
normal gate. A conflict pushes nothing and leaves the fix pending.

No step here writes commit text (subjects, authors) into a summary, a
property or a log: only shas and branch names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from buildbot.process import results

from lpdeploy import policy
from lpdeploy.errors import GitError, InvalidInput, MergeConflict, StaleBranch
from lpdeploy.gitops import Move
from lpdeploy.model import (
    CONFLICT,
    FAILED,
    MERGED_BACK,
    PROMOTED,
    REFUSED,
    TESTING,
    Action,
    AuditEntry,
    SecurityFix,
)
from lpdeploy.refs import branch_matches, short, validate_branch
from lpdeploy.registry import DbRegistry
from lpdeploy.settings import Settings
from lpdeploy.steps import MAX_CAS_ATTEMPTS, SECURITY, SOURCE, FlowStep, MoveBranches

CANDIDATE_REFS = "refs/lpdeploy/candidates/"


def security_branch(value: Any, settings: Settings) -> str:
    """A security branch name from a form or a scheduler: validated, and matching the pattern."""
    name = validate_branch(str(value or "").strip(), "security branch")
    if not branch_matches(name, settings.branches.security):
        raise InvalidInput("security branch", name, f"does not match {settings.branches.security!r}")
    return name


class SecurityStep(FlowStep):
    """A master-side step about one security branch, named by the ``security_branch`` property."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=SECURITY, **kwargs)

    async def run(self) -> int:
        """Refuse anything but a valid security branch, then ``act`` on it."""
        try:
            branch = security_branch(self.getProperty("security_branch"), self.settings)
        except InvalidInput as e:
            return await self.refuse(str(e))
        return await self.act(DbRegistry(self.master), branch)

    async def act(self, registry: DbRegistry, branch: str) -> int:
        raise NotImplementedError


class PrepareSecurity(SecurityStep):
    """Decide what the security build tests, and publish it for the worker."""

    name = "prepare"
    description = ["preparing the security build"]

    async def act(self, registry: DbRegistry, branch: str) -> int:
        ps = self.settings.branches.production_stable
        fix_tip: str | None = None
        try:
            tips = await self.upstream.fetch()
            fix_tip, ps_tip = tips.get(branch), tips.get(ps)
            based = bool(fix_tip and ps_tip and await self.upstream.is_ancestor(ps_tip, fix_tip))
            decision = policy.security_candidate(branch, fix_tip, ps, ps_tip, based)
            if decision.refused:
                return await self.refuse(decision.reason)
            assert fix_tip is not None and ps_tip is not None
            self.say(decision.reason)
            if decision.action is Action.MOVE:
                candidate = fix_tip
            else:
                candidate = await self.upstream.merge(ps_tip, fix_tip, f"Merge {branch} onto {ps}")
                self.say(f"merged {branch} onto {ps}: candidate {short(candidate)}")
            ref = CANDIDATE_REFS + candidate
            await self.upstream.push_new_ref(ref, candidate)
            tree = await self.upstream.tree_of(candidate)
        except MergeConflict as e:
            await self._record(registry, branch, fix_tip or "", FAILED, None, f"does not merge: {e.stderr}")
            self.say(f"conflicting paths: {e.stderr}")  # only in the embargoed log
            return await self.refuse(f"{branch} does not merge onto {ps} (the decision log names the conflicts)")
        except GitError as e:
            return await self.refuse(f"git failed: {e}", outcome="failed")
        now = self.master.reactor.seconds()
        await self._record(registry, branch, fix_tip, TESTING, candidate, "")
        await registry.audit(AuditEntry(now, self.who, "security-build", {
            "branch": branch, "fix_commit": fix_tip, "candidate": candidate, "tree": tree,
            "production_stable": ps_tip, "build": await self.build_url()}))
        for name, value in (("lpdeploy_security_branch", branch), ("lpdeploy_fix_commit", fix_tip),
                            ("lpdeploy_revision", candidate), ("lpdeploy_tree", tree),
                            ("lpdeploy_checkout_branch", ref), ("lpdeploy_run_suite", True),
                            ("lpdeploy_suite", self.settings.suite.identity)):
            self.setProperty(name, value, SOURCE)
        self.descriptionDone = [f"testing {short(candidate)}"]
        await self.flush()
        return results.SUCCESS

    async def _record(self, registry: DbRegistry, branch: str, fix_tip: str, state: str,
                      candidate: str | None, note: str) -> None:
        before = await registry.fix(branch)
        await registry.save_fix(SecurityFix(
            branch=branch, fix_commit=fix_tip or "", state=state, by=self.who,
            updated_at=self.master.reactor.seconds(), candidate=candidate,
            build_url=await self.build_url(), note=note,
            released=before.released if before else None))


class PromoteSecurity(MoveBranches):
    """After the suite: move production to the tested commit (a pass) or record the failure."""

    name = "promote"
    description = ["promoting the security fix"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("alwaysRun", True)
        super().__init__(settings=settings, kind=SECURITY, **kwargs)

    async def run(self) -> int:
        registry = DbRegistry(self.master)
        branch = self.getProperty("lpdeploy_security_branch")
        if not branch:
            return results.SKIPPED  # preparation refused; it said why
        fix = await registry.fix(branch)
        now = self.master.reactor.seconds()
        if self.getProperty("lpdeploy_outcome") == "failed" or self.build.results == results.FAILURE:
            if fix is not None and fix.fix_commit == self.getProperty("lpdeploy_fix_commit"):
                await registry.save_fix(dataclasses.replace(fix, state=FAILED, updated_at=now,
                                                            note="the suite failed"))
            await registry.audit(AuditEntry(now, self.who, "security-promote", {
                "branch": branch, "outcome": "suite failed", "candidate": self.getProperty("lpdeploy_revision")}))
            self.descriptionDone = ["suite failed: nothing moved"]
            return results.FAILURE
        tested_fix, candidate = self.getProperty("lpdeploy_fix_commit"), self.getProperty("lpdeploy_revision")
        frozen = policy.frozen_refusal(await registry.freeze(), "promote the security fix")
        if frozen is not None:
            result = await self.refuse(frozen.reason)
        else:
            result = await super().run()
        outcome = self.getProperty("lpdeploy_outcome")
        fix = await registry.fix(branch)  # re-read: a new push may have been recorded meanwhile
        if fix is not None and outcome in ("moved", "nothing"):
            # what reached production is what this build tested, whatever the branch holds now
            state = PROMOTED if fix.fix_commit == tested_fix else fix.state
            await registry.save_fix(dataclasses.replace(fix, state=state, updated_at=now, released=tested_fix,
                                                        released_candidate=candidate))
        elif fix is not None and fix.fix_commit == tested_fix:
            # refused (frozen, or production moved meanwhile): the scheduler prepares it again
            await registry.save_fix(dataclasses.replace(fix, state=REFUSED, updated_at=now,
                                                        note=str(self.getProperty("lpdeploy_reason") or "")))
        await registry.audit(AuditEntry(now, self.who, "security-promote", {
            "branch": branch, "outcome": outcome, "reason": self.getProperty("lpdeploy_reason"),
            "candidate": self.getProperty("lpdeploy_revision"), "tree": self.getProperty("lpdeploy_tree")}))
        return result


class MergeBack(SecurityStep):
    """Merge a fix that reached production back into devel, compare-and-swap."""

    name = "merge-back"
    description = ["merging back"]

    async def act(self, registry: DbRegistry, branch: str) -> int:
        fix = await registry.fix(branch)
        if fix is None or fix.released_candidate is None:
            state = fix.state if fix else "never built"
            return await self.refuse(f"{branch} has not reached production ({state}); nothing to merge back")
        released = fix.released_candidate
        devel = self.settings.branches.devel
        now = self.master.reactor.seconds()
        for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
            try:
                tips = await self.upstream.fetch()
                devel_tip = tips.get(devel)
                if devel_tip is None:
                    return await self.refuse(f"branch {devel} does not exist upstream")
                if await self.upstream.is_ancestor(released, devel_tip):
                    merged = devel_tip
                    self.say(f"{devel} at {short(devel_tip)} already contains {short(released)}")
                else:
                    merged = await self.upstream.merge(devel_tip, released,
                                                       f"Merge security fix {branch} back into {devel}")
                    await self.upstream.push([Move(devel, devel_tip, merged)])
                    self.say(f"pushed {short(merged)} to {devel}: the merge of {short(released)}")
            except StaleBranch:
                self.say(f"attempt {attempt}: {devel} moved under us; merging again")
                continue
            except MergeConflict as e:
                await registry.save_fix(dataclasses.replace(fix, state=CONFLICT, updated_at=now, note=e.stderr))
                await registry.audit(AuditEntry(now, self.who, "merge-back", {
                    "branch": branch, "outcome": "conflict", "candidate": released}))
                self.say(f"conflicting paths: {e.stderr}")  # only in the embargoed log
                return await self.refuse(f"{branch} does not merge into {devel}; it stays pending "
                                         "(the decision log names the conflicts)")
            except GitError as e:
                await registry.save_fix(dataclasses.replace(fix, state=PROMOTED, updated_at=now))  # retried
                return await self.refuse(f"git failed: {e}", outcome="failed")
            await registry.save_fix(dataclasses.replace(fix, state=MERGED_BACK, merged_back=merged,
                                                        updated_at=now, note=""))
            await registry.audit(AuditEntry(now, self.who, "merge-back", {
                "branch": branch, "outcome": "merged", "candidate": released, "merge": merged}))
            reason = f"merged {branch} back into {devel} as {short(merged)}; the gate takes it from here"
            self.outcome("moved", reason)
            self.descriptionDone = [f"merged back as {short(merged)}"]
            await self.flush()
            return results.SUCCESS
        await registry.save_fix(dataclasses.replace(fix, state=PROMOTED, updated_at=now))  # retried later
        return await self.refuse(f"gave up after {MAX_CAS_ATTEMPTS} attempts: {devel} kept moving")
