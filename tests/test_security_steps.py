"""The security and merge-back steps in Buildbot's step harness, on a real upstream and a real database.

``TestBuildStepMixin`` runs each step in a fake build whose master has
Buildbot's real database (SQLite), so the registry and the ledger are the real
``DbRegistry`` and ``DbLedger``; the steps read and move branches of a real bare
git repository through ``lpdeploy.git.upstream`` (git runs synchronously under
``TestReactorMixin``; see ``test_steps.py``). A build knows its work only by a
job token; each test records the job itself, as the schedulers would.

The secret of every story is in the branch name, in the commit message and in
who asked: none of them may reach a property, a state string or a reason.
"""

from __future__ import annotations

import os
import subprocess

from buildbot.process.results import FAILURE, SKIPPED, SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import TestBuildStepMixin
from buildbot.util.twisted import async_to_deferred
from support import FlowStepMixin, RealUpstreamMixin
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.model import (
    Deployment,
    FixState,
    FlowKind,
    Freeze,
    JobKind,
    MergeBackOutcome,
    Release,
    Result,
    SecurityFix,
    SecurityJob,
    TestRecord,
)
from lpdeploy.core.properties import JOB as JOB_PROPERTY
from lpdeploy.core.settings import parse_settings
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.steps.deploy import PlanDeploy
from lpdeploy.master.steps.flow import MAX_CAS_ATTEMPTS, Decide
from lpdeploy.master.steps.security import CANDIDATE_REFS, MergeBack, PrepareSecurity, PromoteSecurity
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.registry import DbRegistry, new_job_token

SECRET = "SECRET-4242-xyzzy"
BRANCH = f"security/{SECRET}"
OTHER = "security/SECRET-5555-plugh"
ASKER = "alice-works-on-it"
T0 = 1_700_000_000.0


class SecurityStepCase(RealUpstreamMixin, FlowStepMixin, TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.base_dir = self.setup_real_upstream("lpdeploy-security-steps-")
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": "app1", "deploy_command": ["deploy", "{server}", "{revision}"]}],
        })
        yield self.setup_test_build_step()
        self.registry = DbRegistry(self.master)

    def history(self):
        """base ← s1 (stable, production-*) ← d1 (devel)."""
        self.base = self.repo.commit("Initial release", None)
        self.s1 = self.repo.commit("Stable fix", self.base)
        self.d1 = self.repo.commit("Add search", self.s1)
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.s1)
        self.repo.push("devel", self.d1)

    def fix(self, subject: str, parent: str, branch: str = BRANCH, path: str = "login.txt") -> str:
        sha = self.repo.commit(f"{subject} {SECRET}", parent, path=path, content=f"{subject}\n")
        self.repo.push(branch, sha)
        return sha

    async def job(self, kind: str = JobKind.SECURITY_BUILD, branch: str = BRANCH, **kw) -> SecurityJob:
        job = SecurityJob(new_job_token(), kind, branch, ASKER, T0, **kw)
        await self.registry.save_job(job)
        return job

    def step(self, step, job: SecurityJob | None, **props):
        if job is not None:
            props[JOB_PROPERTY] = job.token
        step = self.setup_flow_step(step, **props)
        self.build.results = SUCCESS  # what the build's earlier steps ended with (FakeBuild lacks it)
        return step

    def decision_log(self) -> str:
        return self.get_nth_step(0).logs["decision"].stdout

    async def state_string(self) -> str:
        step = self.get_nth_step(0)
        return (await self.master.data.get(("steps", step.stepid)))["state_string"]

    async def assert_nothing_secret_outside_the_log(self, *also: str) -> None:
        """No property, state string or audit detail names the branch, the secret or who asked."""
        shown = [repr(self.build.getProperties().asDict()), await self.state_string()]
        shown += [repr(e.details) for e in await self.registry.audit_log()]
        for text in shown:
            for secret in (SECRET, "security/", ASKER, *also):
                self.assertNotIn(secret, text)

    def mirror_exists(self) -> bool:
        return os.path.exists(os.path.join(self.master.basedir, "lpdeploy-mirror.git"))

    async def record_pass(self, sha: str) -> None:
        await DbLedger(self.master).record(TestRecord(
            tree=self.repo.tree(sha), commit=sha, suite=self.settings.suite.identity, result=Result.PASSED,
            build_url="http://localhost:8010/#/builders/5/builds/9", build_number=9, finished_at=T0))

    async def release(self, fix: str, candidate: str, branch: str = BRANCH, at: float = T0) -> Release:
        r = Release(branch, fix, candidate, at, by=ASKER)
        await self.registry.record_release(r)
        return r


def upstream_git(repo, *args: str) -> subprocess.CompletedProcess[str]:
    """git on the bare upstream itself (where the steps' merges land)."""
    return subprocess.run(["git", f"--git-dir={repo.bare}", *args], capture_output=True, text=True)


def is_ancestor(repo, rev: str, tip: str) -> bool:
    return upstream_git(repo, "merge-base", "--is-ancestor", rev, tip).returncode == 0


def parents(repo, sha: str) -> list[str]:
    return upstream_git(repo, "rev-list", "--parents", "-n1", sha).stdout.split()[1:]


class Prepare(SecurityStepCase):
    @async_to_deferred
    async def test_a_fix_on_production_is_tested_as_is_and_only_shas_reach_the_properties(self):
        self.history()
        fix = self.fix("Escape the login form", self.s1)
        job = await self.job()
        self.step(PrepareSecurity(settings=self.settings), job)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", fix, "lpdeploy")
        self.expect_property("lpdeploy_tree", self.repo.tree(fix), "lpdeploy")
        self.expect_property("lpdeploy_checkout_branch", CANDIDATE_REFS + fix, "lpdeploy")
        self.expect_property("lpdeploy_run_suite", True, "lpdeploy")
        self.expect_no_property("lpdeploy_security_branch")
        self.expect_no_property("lpdeploy_fix_commit")
        await self.run_step()
        self.assertEqual(await self.state_string(), f"testing {fix[:12]}")
        await self.assert_nothing_secret_outside_the_log("Escape the login form")
        # what the build decided is kept master-side, in the job and the branch's run
        decided = await self.registry.job(job.token)
        self.assertEqual((decided.fix_commit, decided.candidate, decided.tree), (fix, fix, self.repo.tree(fix)))
        run = await self.registry.fix(BRANCH)
        self.assertEqual((run.fix_commit, run.state, run.candidate, run.by), (fix, FixState.TESTING, fix, ASKER))
        (audit,) = await self.registry.audit_log()
        self.assertEqual((audit.who, audit.action, audit.details["job"]), (ASKER, "security-build", job.token))
        # the branch is named where only the security role reads: the decision log
        self.assertIn(BRANCH, self.decision_log())

    @async_to_deferred
    async def test_a_fix_not_on_production_is_merged_onto_it_and_the_merge_is_published(self):
        self.history()
        s2 = self.repo.commit("Another stable fix", self.s1, path="other.txt")
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, s2)
        fix = self.fix("Escape the login form", self.s1)
        self.step(PrepareSecurity(settings=self.settings), await self.job())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        candidate = self.prop("lpdeploy_revision")
        self.assertEqual(parents(self.repo, candidate), [s2, fix])
        self.assertEqual(upstream_git(self.repo, "rev-parse", CANDIDATE_REFS + candidate).stdout.strip(), candidate)
        await self.assert_nothing_secret_outside_the_log()

    @async_to_deferred
    async def test_a_fix_that_does_not_merge_onto_production_fails_and_names_no_path_outside_the_log(self):
        self.history()
        s2 = self.repo.commit("Harden login", self.s1, path="login.txt", content="stable version\n")
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, s2)
        fix = self.fix("Escape the login form", self.s1)
        self.step(PrepareSecurity(settings=self.settings), await self.job())
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_revision")
        await self.run_step()
        await self.assert_nothing_secret_outside_the_log("login.txt")
        self.assertIn("does not merge onto production-stable", self.prop("lpdeploy_reason"))
        self.assertIn("login.txt", self.decision_log())
        run = await self.registry.fix(BRANCH)
        self.assertEqual((run.fix_commit, run.state, run.candidate), (fix, FixState.FAILED, None))

    @async_to_deferred
    async def test_a_missing_branch_is_refused_without_naming_it(self):
        self.history()
        self.step(PrepareSecurity(settings=self.settings), await self.job())
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(self.prop("lpdeploy_reason"), "the security branch does not exist upstream")
        await self.assert_nothing_secret_outside_the_log()

    @async_to_deferred
    async def test_a_build_without_a_recorded_job_does_nothing(self):
        self.history()
        self.step(PrepareSecurity(settings=self.settings), None, lpdeploy_job="0" * 32)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn("no security job", self.prop("lpdeploy_reason"))
        self.assertFalse(self.mirror_exists())


class BadBranchesNeverReachGit(SecurityStepCase):
    """Issue 9, mutant 8: a security step that accepts any branch name.

    The job's branch is stored as given (as if a form or scheduler had let it
    through); the step must refuse it, name the rule, and run no git at all:
    the mirror is created by the first git call, and an option-shaped name
    reaching ``git fetch`` would run ``touch`` as its upload-pack.
    """

    async def refused(self, step, kind: str, name: str, rule: str) -> None:
        self.history()
        marker = os.path.join(self.base_dir, "pwned")
        name = name.replace("MARKER", marker)
        self.step(step, await self.job(kind, branch=name))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn(rule, self.prop("lpdeploy_reason"))
        self.assertNotIn(name, self.prop("lpdeploy_reason"))
        self.assertFalse(self.mirror_exists(), "git ran")
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(self.repo.tip("devel"), self.d1)
        self.assertEqual(await self.registry.fixes(), [])
        self.assertEqual(await self.registry.merge_backs(), [])


OPTION_SHAPED = ("--upload-pack=touch MARKER", "must not start with '-'")
NOT_MATCHING = ("devel", "does not match 'security/*'")
OVERSIZED = ("security/" + "x" * 300, "longer than 200 characters")
for _name, _case in (("an_option_shaped", OPTION_SHAPED), ("a_non_matching", NOT_MATCHING),
                     ("an_oversized", OVERSIZED)):
    for _step, _kind in (("prepare_security", JobKind.SECURITY_BUILD), ("merge_back", JobKind.MERGE_BACK)):
        def _test(self, _step=_step, _kind=_kind, _case=_case):
            step = PrepareSecurity(settings=self.settings) if _step == "prepare_security" else \
                MergeBack(settings=self.settings)
            return defer.ensureDeferred(self.refused(step, _kind, *_case))

        _test.__name__ = f"test_{_step}_refuses_{_name}_branch_name_without_running_git"
        setattr(BadBranchesNeverReachGit, _test.__name__, _test)


class Promote(SecurityStepCase):
    async def prepared(self, fix: str, **run_fields):
        """A job whose preparation decided to test ``fix`` as is, and the branch's run saying so."""
        job = await self.job(fix_commit=fix, candidate=fix, tree=self.repo.tree(fix))
        await self.registry.save_fix(SecurityFix(BRANCH, fix, FixState.TESTING, ASKER, T0, candidate=fix, **run_fields))
        return job

    def promote(self, job, fix):
        return self.step(PromoteSecurity(settings=self.settings), job, lpdeploy_revision=fix,
                         lpdeploy_tree=self.repo.tree(fix))

    @async_to_deferred
    async def test_a_passed_fix_moves_production_and_is_appended_to_the_history(self):
        self.history()
        fix = self.fix("Escape the login form", self.s1)
        await self.record_pass(fix)
        job = await self.prepared(fix)
        self.promote(job, fix)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_step()
        self.assertEqual((self.repo.tip("production-stable"), self.repo.tip("production-devel")), (fix, fix))
        (released,) = await self.registry.releases()
        self.assertEqual((released.branch, released.fix_commit, released.candidate, released.by, released.job),
                         (BRANCH, fix, fix, ASKER, job.token))
        self.assertEqual((await self.registry.fix(BRANCH)).state, FixState.PROMOTED)
        await self.assert_nothing_secret_outside_the_log("Escape the login form")

    @async_to_deferred
    async def test_a_push_recorded_meanwhile_keeps_its_run_but_what_moved_is_released(self):
        self.history()
        fix = self.fix("Escape the login form", self.s1)
        await self.record_pass(fix)
        job = await self.prepared(fix)
        newer = self.fix("Rework", fix)
        await self.registry.save_fix(SecurityFix(BRANCH, newer, FixState.TESTING, "lpdeploy (push)", T0 + 1))
        self.promote(job, fix)
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual([r.fix_commit for r in await self.registry.releases()], [fix])
        self.assertEqual(((await self.registry.fix(BRANCH)).fix_commit, (await self.registry.fix(BRANCH)).state),
                         (newer, FixState.TESTING))

    @async_to_deferred
    async def test_a_failed_suite_moves_nothing_and_releases_nothing(self):
        self.history()
        fix = self.fix("Escape the login form", self.s1)
        job = await self.prepared(fix)
        self.promote(job, fix)
        self.build.results = FAILURE
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(self.repo.tip("production-stable"), self.s1)
        self.assertEqual(await self.registry.releases(), [])
        self.assertEqual((await self.registry.fix(BRANCH)).state, FixState.FAILED)

    @async_to_deferred
    async def test_a_freeze_refuses_the_promotion_and_the_fix_waits_to_be_prepared_again(self):
        self.history()
        fix = self.fix("Escape the login form", self.s1)
        await self.record_pass(fix)
        await self.registry.set_freeze(Freeze("release party", "bob", T0))
        self.promote(await self.prepared(fix), fix)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(self.repo.tip("production-stable"), self.s1)
        self.assertEqual(await self.registry.releases(), [])
        self.assertEqual((await self.registry.fix(BRANCH)).state, FixState.REFUSED)

    @async_to_deferred
    async def test_when_preparation_refused_there_is_nothing_to_promote(self):
        self.history()
        self.step(PromoteSecurity(settings=self.settings), await self.job())
        self.expect_outcome(result=SKIPPED)
        await self.run_step()
        self.assertEqual(await self.registry.releases(), [])


class MergeBackCase(SecurityStepCase):
    def released_fix(self):
        """Fix A released as itself: production-stable at A; devel at d1 lacks it."""
        self.history()
        self.a = self.fix("Escape the login form", self.s1)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.a)

    def merge_back(self, job):
        return self.step(MergeBack(settings=self.settings), job)

    def someone_pushes_to_devel_during_the_merge(self, times: int) -> list[str]:
        """Make ``times`` merges race with a developer's push to devel; returns the pushed commits."""
        upstream = Upstream.of(self.master, self.repo.url)
        real_merge = upstream.merge
        pushed: list[str] = []

        async def merge_then_a_push_lands(ours, theirs, message):
            merged = await real_merge(ours, theirs, message)
            if len(pushed) < times:
                pushed.append(self.repo.commit(f"Developer push {len(pushed)}", self.repo.tip("devel"),
                                               path=f"dev{len(pushed)}.txt"))
                self.repo.push("devel", pushed[-1])
            return merged

        upstream.merge = merge_then_a_push_lands
        self.addCleanup(delattr, upstream, "merge")
        return pushed


class MergeBackSteps(MergeBackCase):
    @async_to_deferred
    async def test_a_released_fix_is_merged_into_devel_and_recorded(self):
        self.released_fix()
        await self.release(self.a, self.a)
        job = await self.job(JobKind.MERGE_BACK)
        self.merge_back(job)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_step()
        devel = self.repo.tip("devel")
        self.assertEqual(parents(self.repo, devel), [self.d1, self.a])
        (attempt,) = await self.registry.merge_backs()
        self.assertEqual((attempt.outcome, attempt.candidate, attempt.brought, attempt.merge, attempt.by),
                         (MergeBackOutcome.MERGED, self.a, (self.a,), devel, ASKER))
        self.assertIn(self.a[:12], self.prop("lpdeploy_reason"))
        await self.assert_nothing_secret_outside_the_log()

    @async_to_deferred
    async def test_a_later_fix_brings_the_earlier_one_and_both_are_recorded_and_named(self):
        # issue 10, item 3: B was built on production (which held A); merging B publishes A too
        self.released_fix()
        await self.release(self.a, self.a)
        b = self.fix("Limit upload size", self.a, branch=OTHER, path="upload.txt")
        for br in ("production-devel", "production-stable"):
            self.repo.push(br, b)
        await self.release(b, b, branch=OTHER, at=T0 + 10)
        self.merge_back(await self.job(JobKind.MERGE_BACK, branch=OTHER))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        devel = self.repo.tip("devel")
        self.assertTrue(is_ancestor(self.repo, self.a, devel) and is_ancestor(self.repo, b, devel))
        (attempt,) = await self.registry.merge_backs()
        self.assertEqual(attempt.brought, (self.a, b))
        log = self.decision_log()
        self.assertIn("brings 2 released fix(es)", log)
        self.assertIn(BRANCH, log)
        self.assertIn(OTHER, log)
        merge_audit = [e for e in await self.registry.audit_log() if e.action == "merge-back"]
        self.assertEqual(merge_audit[0].details["fix_commits"], [self.a, b])
        self.assertIn("merged 2 released fix(es)", self.prop("lpdeploy_reason"))
        self.assertIn(self.a[:12], self.prop("lpdeploy_reason"))
        await self.assert_nothing_secret_outside_the_log("SECRET-5555")

    @async_to_deferred
    async def test_an_automatic_job_merges_exactly_the_candidate_it_was_queued_for(self):
        self.released_fix()
        await self.release(self.a, self.a)
        b = self.fix("Limit upload size", self.a, branch=OTHER, path="upload.txt")
        await self.release(b, b, branch=OTHER, at=T0 + 10)
        self.merge_back(await self.job(JobKind.MERGE_BACK, automatic=True, candidate=self.a))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        devel = self.repo.tip("devel")
        self.assertTrue(is_ancestor(self.repo, self.a, devel))
        self.assertFalse(is_ancestor(self.repo, b, devel))

    @async_to_deferred
    async def test_a_fix_devel_already_holds_is_nothing_to_do(self):
        self.released_fix()
        await self.release(self.a, self.a)
        merged = self.repo.merge(self.d1, self.a, "resolved by hand")
        self.repo.push("devel", merged)
        self.merge_back(await self.job(JobKind.MERGE_BACK))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "nothing", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.repo.tip("devel"), merged)

    @async_to_deferred
    async def test_a_branch_that_never_reached_production_is_refused(self):
        self.released_fix()
        self.merge_back(await self.job(JobKind.MERGE_BACK))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(self.repo.tip("devel"), self.d1)
        self.assertIn("has not reached production", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_conflict_pushes_nothing_and_is_recorded(self):
        self.released_fix()
        await self.release(self.a, self.a)
        clash = self.repo.commit("Rewrite login", self.d1, path="login.txt", content="devel's version\n")
        self.repo.push("devel", clash)
        self.merge_back(await self.job(JobKind.MERGE_BACK))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(self.repo.tip("devel"), clash)
        (attempt,) = await self.registry.merge_backs()
        self.assertEqual((attempt.outcome, attempt.devel_tip), (MergeBackOutcome.CONFLICT, clash))
        self.assertIn("login.txt", self.decision_log())
        await self.assert_nothing_secret_outside_the_log("login.txt")


class MergeBackRetries(MergeBackCase):
    """Issue 9, mutant 3 (merge-back part): devel moves under the merge-back's compare-and-swap push."""

    @async_to_deferred
    async def test_when_devel_moves_under_it_the_merge_is_redone_on_the_new_tip_never_forced(self):
        self.released_fix()
        await self.release(self.a, self.a)
        pushed = self.someone_pushes_to_devel_during_the_merge(times=1)
        self.merge_back(await self.job(JobKind.MERGE_BACK))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_step()
        devel = self.repo.tip("devel")
        # the developer's push is kept (a force would have dropped it) and the fix is merged on top of it
        self.assertEqual(parents(self.repo, devel), [pushed[0], self.a])
        self.assertIn("attempt 1: devel moved under us; deciding and merging again", self.decision_log())
        (attempt,) = await self.registry.merge_backs()
        self.assertEqual((attempt.outcome, attempt.devel_tip, attempt.merge),
                         (MergeBackOutcome.MERGED, pushed[0], devel))

    @async_to_deferred
    async def test_when_devel_keeps_moving_it_gives_up_and_the_fix_stays_pending(self):
        self.released_fix()
        await self.release(self.a, self.a)
        pushed = self.someone_pushes_to_devel_during_the_merge(times=MAX_CAS_ATTEMPTS)
        self.merge_back(await self.job(JobKind.MERGE_BACK))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_step()
        self.assertEqual(len(pushed), MAX_CAS_ATTEMPTS)
        self.assertEqual(self.repo.tip("devel"), pushed[-1])  # only the developers' pushes landed
        self.assertFalse(is_ancestor(self.repo, self.a, pushed[-1]))
        self.assertIn(f"gave up after {MAX_CAS_ATTEMPTS} attempts", self.prop("lpdeploy_reason"))
        (attempt,) = await self.registry.merge_backs()
        self.assertEqual(attempt.outcome, MergeBackOutcome.GAVE_UP)


class ProductionKeepsReleasedFixes(SecurityStepCase):
    """The promotion and deploy guards read the history: a failed rework cannot make production lose v1."""

    async def released_then_reworked(self):
        self.history()
        self.v1 = self.fix("Escape the login form", self.s1)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.v1)
        await self.release(self.v1, self.v1)
        self.v2 = self.fix("Rework", self.base)  # force-pushed; its build failed
        await self.registry.save_fix(SecurityFix(BRANCH, self.v2, FixState.FAILED, ASKER, T0 + 5,
                                                 note="does not merge"))
        self.s2 = self.repo.commit("Stable work", self.s1, path="stable.txt")
        self.repo.push("stable", self.s2)
        await self.record_pass(self.s2)

    @async_to_deferred
    async def test_a_promotion_without_the_released_fix_is_refused_naming_only_its_sha(self):
        await self.released_then_reworked()
        self.step(Decide(settings=self.settings, kind=FlowKind.PROMOTE), None)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn(f"would lose the embargoed security fix {self.v1[:12]}", reason)
        self.assertNotIn(self.v2[:12], reason)
        await self.assert_nothing_secret_outside_the_log()

    @async_to_deferred
    async def test_a_rollback_without_the_released_fix_is_refused(self):
        await self.released_then_reworked()
        await self.registry.record_deployment(Deployment("app1", self.v1, T0, "bob"))
        self.step(PlanDeploy(settings=self.settings), None, target_revision=self.s1)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn(f"the servers would lose the embargoed security fix {self.v1[:12]}",
                      self.prop("lpdeploy_reason"))
        await self.assert_nothing_secret_outside_the_log()
