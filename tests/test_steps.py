"""The gate and promote steps in Buildbot's step harness, on a real upstream and a real database.

``TestBuildStepMixin`` runs each step in a fake build on a fake worker; its
master has Buildbot's real database (SQLite), so ``DbLedger`` is the real one.
The steps read and move branches in a real bare git repository through
``lpdeploy.git.upstream``, whose mirror lives in a real temporary master basedir.

Threads: ``upstream.py`` runs git through ``threads.deferToThread``.
``TestReactorMixin.setup_test_reactor`` replaces ``threads.deferToThread`` (and
the thread pools) with ``NonThreadPool``, which calls the function at once in
the calling thread; since ``upstream.py`` looks ``threads.deferToThread`` up
at call time, real git runs synchronously here, no monkeypatching needed
(``test_git_runs_without_a_thread_pool`` pins that assumption).

Workarounds (both in ``support.py``): ``make_master`` defaults to
``basedir='basedir'`` relative to the working directory (and deletes it at
shutdown), so these tests wrap it to give each master a fresh temporary
basedir (``RealUpstreamMixin``). Buildbot's ``FakeBuild`` has no
``getBuilderId``; ``RunSuite`` needs one, so the tests give it the builder id
the harness inserted, 100 (``FlowStepMixin``).
"""

from __future__ import annotations

import os
import tempfile

from buildbot.process.results import EXCEPTION, FAILURE, SKIPPED, SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell, TestBuildStepMixin
from buildbot.util.twisted import async_to_deferred
from support import FlowStepMixin, RealUpstreamMixin
from twisted.internet import defer, threads
from twisted.trial import unittest

from lpdeploy.core.errors import PushUnconfirmed
from lpdeploy.core.model import FlowKind, Release, Result, TestRecord
from lpdeploy.core.qa import QaMark, QaState
from lpdeploy.core.settings import parse_settings
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.steps.flow import MAX_CAS_ATTEMPTS, PUSH_RETRY_CAP, Decide, MoveBranches, RunSuite
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.qa import DbQaMarks
from lpdeploy.stores.registry import DbRegistry

BUILD_NUMBER = 13  # FakeBuild.number
_REAL_DEFER_TO_THREAD = threads.deferToThread


class StepCase(RealUpstreamMixin, FlowStepMixin, TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    SUITE_COMMAND = ["./run-suite", "--all", "--no-color"]

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-steps-")
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "suite": {"command": self.SUITE_COMMAND, "timeout": 77, "max_time": 999},
        })
        self.suite = self.settings.suite.identity
        yield self.setup_test_build_step()

    def decision_log(self, index=0):
        return self.get_nth_step(index).logs["decision"].stdout

    async def record(self, sha, result=Result.PASSED, build_number=5, tree=None):
        rec = TestRecord(tree=tree or self.repo.tree(sha), commit=sha, suite=self.suite, result=result,
                         build_url=f"http://localhost:8010/#/builders/1/builds/{build_number}",
                         build_number=build_number, finished_at=1_700_000_000.0, duration=3600.0)
        return await DbLedger(self.master).record(rec)

    async def ledger(self, sha):
        return await DbLedger(self.master).lookup(self.suite, self.repo.tree(sha))

    def flow_history(self):
        """base ← s1 (stable, production-*) ← d1 ← d2 (devel)."""
        self.base = self.repo.commit("Initial release", None)
        self.s1 = self.repo.commit("Stable fix", self.base)
        self.d1 = self.repo.commit("Add search", self.s1)
        self.d2 = self.repo.commit("Faster search", self.d1)
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.s1)
        self.repo.push("devel", self.d2)


class HarnessAssumptions(StepCase):
    def test_git_runs_without_a_thread_pool(self):
        # real git through upstream.py's threads.deferToThread completes synchronously
        self.assertIsNot(threads.deferToThread, _REAL_DEFER_TO_THREAD)
        d = threads.deferToThread(lambda: 42)
        self.assertEqual(self.successResultOf(d), 42)

    def test_master_basedir_is_a_fresh_temporary_directory(self):
        self.assertTrue(os.path.isabs(self.master.basedir))
        self.assertTrue(self.master.basedir.startswith(tempfile.gettempdir()))


class DecideGate(StepCase):
    @async_to_deferred
    async def test_untested_devel_tip_needs_the_suite(self):
        self.flow_history()
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", True, "lpdeploy")
        self.expect_property("lpdeploy_revision", self.d2, "lpdeploy")
        self.expect_property("lpdeploy_tree", self.repo.tree(self.d2), "lpdeploy")
        self.expect_property("lpdeploy_suite", self.suite, "lpdeploy")
        await self.run_step()
        log = self.decision_log()
        self.assertIn(f"gating devel at {self.d2[:12]}", log)
        self.assertIn("has not passed the suite yet; running it", log)

    @async_to_deferred
    async def test_tested_devel_tip_skips_the_suite_and_names_the_earlier_build(self):
        self.flow_history()
        await self.record(self.d2, build_number=42)
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", False, "lpdeploy")
        self.expect_property("lpdeploy_revision", self.d2)
        await self.run_step()
        log = self.decision_log()
        self.assertIn("already passed the suite in build #42", log)
        self.assertIn("not running it again", log)

    @async_to_deferred
    async def test_a_revert_to_a_tested_tree_is_not_tested_again(self):
        # the ledger is keyed by tree: a new commit with an already tested tree is tested
        self.flow_history()
        await self.record(self.d1, build_number=40)
        revert = self.repo.commit("Revert \"Faster search\"", self.d2,
                                  content=self.repo.content(self.d1))
        self.assertEqual(self.repo.tree(revert), self.repo.tree(self.d1))
        self.repo.push("devel", revert)
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", False)
        self.expect_property("lpdeploy_revision", revert)
        await self.run_step()
        self.assertIn("build #40", self.decision_log())

    @async_to_deferred
    async def test_a_failed_tree_is_tested_again(self):
        self.flow_history()
        await self.record(self.d2, result=Result.FAILED, build_number=41)
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", True)
        await self.run_step()
        self.assertIn("failed the suite in build #41", self.decision_log())

    @async_to_deferred
    async def test_missing_devel_branch_is_refused(self):
        base = self.repo.commit("Initial release", None)
        self.repo.push("stable", base)
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_run_suite")
        self.expect_no_property("lpdeploy_revision")
        await self.run_step()
        self.assertIn("branch devel does not exist upstream", self.decision_log())
        self.assertIn("devel does not exist", self.prop("lpdeploy_reason"))


class DecidePromote(StepCase):
    @async_to_deferred
    async def test_target_revision_not_on_stable_is_refused_naming_it(self):
        self.flow_history()
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE), target_revision=self.d2)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_run_suite")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn(self.d2[:12], reason)
        self.assertIn("is not on stable", reason)
        self.assertIn(self.d2[:12], self.decision_log())
        self.assertEqual(self.repo.tip("production-stable"), self.s1)

    @async_to_deferred
    async def test_production_already_at_the_stable_tip_is_nothing_to_do(self):
        self.flow_history()
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "nothing", "lpdeploy")
        self.expect_property("lpdeploy_run_suite", False)
        self.expect_property("lpdeploy_revision", self.s1)
        await self.run_step()
        self.assertIn("nothing to do", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_tested_stable_tip_ahead_of_production_is_promoted_without_the_suite(self):
        self.flow_history()
        self.repo.push("stable", self.d1)
        await self.record(self.d1, build_number=21)
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", False)
        self.expect_property("lpdeploy_revision", self.d1)
        self.expect_no_property("lpdeploy_outcome")
        await self.run_step()
        self.assertIn("build #21", self.decision_log())


    @async_to_deferred
    async def test_a_stable_tip_without_a_released_security_fix_is_refused_naming_it(self):
        # design invariant 4: the fix reached production straight from its security branch;
        # promoting stable before the merge-back would drop it, so it is refused before any suite runs
        self.flow_history()
        fix = self.repo.commit("Close the session fixation hole", self.s1)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, fix)
        self.repo.push("stable", self.d1)
        await self.record(self.d1)
        await DbRegistry(self.master).record_release(Release(
            "security/cve-77", fix, fix, 1_700_000_000.0, by="sec-alice"))
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_run_suite")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn(f"production-stable would lose the embargoed security fix {fix[:12]}", reason)
        self.assertNotIn("cve-77", reason)  # a branch name can be a secret: builds name fixes by sha
        self.assertEqual(self.repo.tip("production-stable"), fix)

    @async_to_deferred
    async def test_a_stable_tip_holding_the_released_security_fix_is_promoted(self):
        self.flow_history()
        fix = self.repo.commit("Close the session fixation hole", self.s1, path="session.txt")
        merged = self.repo.merge(self.d1, fix, "Merge the security fix back into devel")
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, fix)
        self.repo.push("stable", merged)
        await self.record(merged, build_number=22)
        await DbRegistry(self.master).record_release(Release(
            "security/cve-77", fix, fix, 1_700_000_000.0, by="sec-alice"))
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", merged, "lpdeploy")
        self.expect_property("lpdeploy_run_suite", False, "lpdeploy")
        await self.run_step()
        self.assertIn("build #22", self.decision_log())


class RunSuiteStep(StepCase):
    def expect_suite(self, rc):
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=self.SUITE_COMMAND, timeout=77, max_time=999,
                        log_environ=False).exit(rc)
        )

    def decided(self, sha, got=None):
        return {"lpdeploy_revision": sha, "lpdeploy_tree": self.repo.tree(sha),
                "got_revision": got if got is not None else sha}

    @async_to_deferred
    async def test_exit_0_passes_and_records_a_pass(self):
        self.flow_history()
        self.setup_flow_step(RunSuite(settings=self.settings), **self.decided(self.d2))
        self.expect_suite(0)
        self.expect_outcome(result=SUCCESS)
        self.expect_no_property("lpdeploy_outcome")
        await self.run_step()
        rec = await self.ledger(self.d2)
        self.assertIsNotNone(rec)
        self.assertEqual(rec.result, Result.PASSED)
        self.assertEqual(rec.commit, self.d2)
        self.assertEqual(rec.suite, self.suite)
        self.assertEqual(rec.build_number, BUILD_NUMBER)
        self.assertTrue(rec.build_url.endswith(f"#/builders/100/builds/{BUILD_NUMBER}"))
        # the dashboard counts this run: the same event as the sharded suite's (test_shard_steps.Verdict)
        (event,) = await DbRegistry(self.master).events()
        self.assertEqual((event.action, event.who, event.at), ("suite-run", "lpdeploy (automatic)", rec.finished_at))
        self.assertEqual(event.details, {"revision": self.d2, "tree": rec.tree, "duration": rec.duration,
                                         "passed": True})

    @async_to_deferred
    async def test_exit_1_fails_records_a_failure_and_says_failed(self):
        self.flow_history()
        self.setup_flow_step(RunSuite(settings=self.settings), **self.decided(self.d2))
        self.expect_suite(1)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_step()
        rec = await self.ledger(self.d2)
        self.assertIsNotNone(rec)
        self.assertEqual(rec.result, Result.FAILED)
        self.assertEqual(rec.build_number, BUILD_NUMBER)
        self.assertIn("exit code 1", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_checkout_at_another_revision_is_an_exception_and_records_nothing(self):
        self.flow_history()
        self.setup_flow_step(RunSuite(settings=self.settings), **self.decided(self.d2, got=self.d1))
        # no ExpectShell: the suite must not run at all
        self.expect_outcome(result=EXCEPTION)
        self.expect_property("lpdeploy_outcome", "failed")
        await self.run_step()
        self.assertIsNone(await self.ledger(self.d2))
        self.assertIsNone(await self.ledger(self.d1))
        self.assertIn(self.d1, self.decision_log())


class MoveBranchesGate(StepCase):
    def decided(self, sha):
        return {"lpdeploy_revision": sha, "lpdeploy_tree": self.repo.tree(sha)}

    @async_to_deferred
    async def test_tested_revision_ahead_of_stable_moves_stable_to_exactly_it(self):
        self.flow_history()
        await self.record(self.d2, build_number=30)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.d2)
        # the gate moves stable only
        self.assertEqual(self.repo.tip("production-stable"), self.s1)
        self.assertEqual(self.repo.tip("production-devel"), self.s1)
        self.assertEqual(self.repo.tip("devel"), self.d2)
        self.assertIn("moving stable", self.decision_log())

    @async_to_deferred
    async def test_tested_older_devel_commit_moves_stable_to_it_not_to_the_tip(self):
        self.flow_history()
        await self.record(self.d1, build_number=31)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d1))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.d1)

    @async_to_deferred
    async def test_untested_revision_is_refused_and_stable_stays(self):
        self.flow_history()
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.s1)
        self.assertIn("has not passed the suite", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_failed_revision_is_refused_and_stable_stays(self):
        self.flow_history()
        await self.record(self.d2, result=Result.FAILED)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.s1)

    @async_to_deferred
    async def test_diverged_stable_is_refused_as_not_a_fast_forward(self):
        self.flow_history()
        hotfix = self.repo.commit("Hotfix straight on stable", self.s1)
        self.repo.push("stable", hotfix)
        await self.record(self.d2)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), hotfix)
        self.assertIn("not a fast-forward", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_stable_already_holding_the_revision_is_nothing_to_do(self):
        self.flow_history()
        self.repo.push("stable", self.d2)
        await self.record(self.d1)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d1))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "nothing")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.d2)

    @async_to_deferred
    async def test_decided_nothing_is_skipped_without_reading_the_upstream(self):
        self.flow_history()

        async def unreadable():
            raise AssertionError("the upstream was read")

        Upstream.of(self.master, self.repo.url).fetch = unreadable
        props = {**self.decided(self.d2), "lpdeploy_outcome": "nothing"}
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **props)
        self.expect_outcome(result=SKIPPED)
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.s1)


class MoveBranchesPromote(StepCase):
    @async_to_deferred
    async def test_promote_moves_both_production_branches(self):
        self.flow_history()
        self.repo.push("stable", self.d1)
        await self.record(self.d1)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.PROMOTE),
                             lpdeploy_revision=self.d1, lpdeploy_tree=self.repo.tree(self.d1))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved")
        await self.run_step()
        self.assertEqual(self.repo.tip("production-devel"), self.d1)
        self.assertEqual(self.repo.tip("production-stable"), self.d1)
        self.assertEqual(self.repo.tip("stable"), self.d1)


class MoveBranchesRace(StepCase):
    """A gated branch moves between the step's read of the tips and its push (design invariant 2).

    The upstream is real and so is the compare-and-swap: ``race`` lets someone
    else push to the bare repository just before each of the step's pushes, so
    the step's lease is really stale and git really refuses. What must follow
    is a fresh read of the tips and a fresh decision, never a retry that only
    swaps in the new lease (that would be a force), and never "moved" for a
    push that did not land (issue 9, mutant 3).
    """

    def race(self, *pushes_by_someone_else):
        """Before each push of the step, push the next ``(branch, sha)`` upstream; return the step's pushes."""
        upstream = Upstream.of(self.master, self.repo.url)
        real_push = upstream.push
        pending = list(pushes_by_someone_else)
        attempts = []

        async def push(moves):
            attempts.append([(m.branch, m.expected, m.new) for m in moves])
            if pending:
                self.repo.push(*pending.pop(0))
            await real_push(moves)

        upstream.push = push
        return attempts

    def decided(self, sha):
        return {"lpdeploy_revision": sha, "lpdeploy_tree": self.repo.tree(sha)}

    @async_to_deferred
    async def test_a_branch_that_diverged_under_the_push_is_re_decided_and_refused(self):
        self.flow_history()
        await self.record(self.d2)
        hotfix = self.repo.commit("Hotfix straight on stable", self.s1)
        attempts = self.race(("stable", hotfix))
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), hotfix, "the other push was overwritten: a force")
        self.assertEqual(attempts, [[("stable", self.s1, self.d2)]])  # re-decided, not pushed again
        self.assertIn("not a fast-forward", self.prop("lpdeploy_reason"))
        log = self.decision_log()
        self.assertIn("attempt 1: a branch moved under us", log)
        self.assertIn(f"refusing to move stable from {hotfix[:12]}", log)

    @async_to_deferred
    async def test_a_branch_that_moved_forward_under_the_push_is_re_decided_and_moved_with_the_new_lease(self):
        self.flow_history()
        await self.record(self.d2)
        attempts = self.race(("stable", self.d1))
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.d2)
        self.assertEqual(attempts, [[("stable", self.s1, self.d2)], [("stable", self.d1, self.d2)]])
        self.assertIn("attempt 1: a branch moved under us", self.decision_log())

    @async_to_deferred
    async def test_a_branch_that_keeps_moving_is_given_up_after_the_last_attempt_and_never_reported_moved(self):
        self.flow_history()
        await self.record(self.d2)
        # every attempt finds stable somewhere else (each still behind d2, so each decision is a move)
        moves = [("stable", self.d1), ("stable", self.s1), ("stable", self.d1), ("stable", self.s1)]
        attempts = self.race(*moves[:MAX_CAS_ATTEMPTS])
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertEqual(len(attempts), MAX_CAS_ATTEMPTS)
        self.assertEqual(self.repo.tip("stable"), moves[MAX_CAS_ATTEMPTS - 1][1])
        self.assertIn(f"gave up after {MAX_CAS_ATTEMPTS} attempts", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_production_branch_that_diverged_under_a_promotion_stops_both_moves(self):
        self.flow_history()
        self.repo.push("stable", self.d1)
        await self.record(self.d1)
        hotfix = self.repo.commit("Hotfix straight on production", self.s1)
        attempts = self.race(("production-stable", hotfix))
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.PROMOTE), **self.decided(self.d1))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertEqual(len(attempts), 1)
        self.assertEqual(self.repo.tip("production-stable"), hotfix)
        self.assertEqual(self.repo.tip("production-devel"), self.s1)  # the push is atomic
        self.assertIn("not a fast-forward", self.prop("lpdeploy_reason"))


class MoveBranchesLostReply(StepCase):
    """The push lands upstream but its reply never comes back (issue 12: a timeout, a dropped connection).

    ``lose_replies`` lets the real push land in the real bare repository and
    then raises what a lost reply looks like when the upstream cannot be read
    at once either (``PushUnconfirmed``). The step waits (a backoff on
    Buildbot's clock), reads the tips, sees the branch at the target and
    records the move exactly once: one ``moved`` event, no second push.
    """

    def lose_replies(self, count):
        upstream = Upstream.of(self.master, self.repo.url)
        real_push = upstream.push
        attempts = []

        async def push(moves):
            attempts.append([(m.branch, m.expected, m.new) for m in moves])
            await real_push(moves)
            if len(attempts) <= count:
                raise PushUnconfirmed(["git", "push"], -1, "timed out after 1s; reading the upstream failed too")

        upstream.push = push
        return attempts

    def decided(self, sha):
        return {"lpdeploy_revision": sha, "lpdeploy_tree": self.repo.tree(sha)}

    async def moved_events(self):
        return [e for e in await DbRegistry(self.master).events() if e.action == "moved"]

    async def run_with_clock(self):
        d = self.run_step()
        for _ in range(20):  # the backoff waits on Buildbot's clock; advance it past every wait
            self.reactor.advance(PUSH_RETRY_CAP)
        await d

    @async_to_deferred
    async def test_a_landed_push_whose_reply_was_lost_is_recorded_once_and_not_pushed_again(self):
        self.flow_history()
        await self.record(self.d2)
        attempts = self.lose_replies(1)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_with_clock()
        self.assertEqual(self.repo.tip("stable"), self.d2)
        self.assertEqual(attempts, [[("stable", self.s1, self.d2)]])  # read, not pushed again
        (event,) = await self.moved_events()
        self.assertEqual(event.details["revision"], self.d2)
        self.assertEqual(event.details["branches"], ["stable"])
        log = self.decision_log()
        self.assertIn("attempt 1: the push may or may not have landed", log)
        self.assertIn("the upstream shows the push landed though its reply was lost", log)

    @async_to_deferred
    async def test_a_promotion_whose_reply_was_lost_records_both_branches_once(self):
        self.flow_history()
        self.repo.push("stable", self.d1)
        await self.record(self.d1)
        attempts = self.lose_replies(1)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.PROMOTE), **self.decided(self.d1))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "moved", "lpdeploy")
        await self.run_with_clock()
        self.assertEqual(len(attempts), 1)
        (event,) = await self.moved_events()
        self.assertEqual(sorted(event.details["branches"]), ["production-devel", "production-stable"])

    @async_to_deferred
    async def test_a_reply_lost_on_every_attempt_gives_up_as_failed_without_recording_a_move(self):
        self.flow_history()
        await self.record(self.d2)
        upstream = Upstream.of(self.master, self.repo.url)

        async def push(moves):
            raise PushUnconfirmed(["git", "push"], 128, "connection reset")

        upstream.push = push  # nothing lands, and the upstream never says so
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **self.decided(self.d2))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_with_clock()
        self.assertEqual(self.repo.tip("stable"), self.s1)
        self.assertEqual(await self.moved_events(), [])


class DecidePromoteRequiringQa(StepCase):
    """``[promotion] require_qa``: the promote build (forced, or started by the cron schedule) takes the QA'd line."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.settings = parse_settings({"repository": {"url": self.repo.url},
                                        "suite": {"command": self.SUITE_COMMAND},
                                        "promotion": {"require_qa": True}})
        self.flow_history()
        self.repo.push("stable", self.d2)  # s1 (production) ← d1 ← d2 (stable)
        for sha in (self.d1, self.d2):
            yield defer.ensureDeferred(self.record(sha))

    async def mark(self, sha, state):
        await DbQaMarks(self.master).mark(QaMark(sha, state, "quinn", 1.0, "tested on qastaging"))

    @async_to_deferred
    async def test_without_a_revision_the_deployable_one_is_promoted_and_the_rest_left_behind(self):
        await self.mark(self.d1, QaState.OK)
        await self.mark(self.d2, QaState.BAD)
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE))  # as the cron starts it
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", self.d1)
        await self.run_step()
        self.assertIn("left behind: 1 commit", self.prop("lpdeploy_qa"))
        self.assertIn(f"{self.d2[:12]} was marked bad by quinn", self.prop("lpdeploy_qa"))

    @async_to_deferred
    async def test_a_revision_beyond_deployable_is_refused_naming_the_blocking_commit(self):
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE), target_revision=self.d2)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn(f"blocked by {self.d1[:12]}, needs-testing", self.prop("lpdeploy_reason"))
        self.assertEqual(self.repo.tip("production-stable"), self.s1)

    @async_to_deferred
    async def test_with_nothing_qad_the_promotion_is_nothing_to_do_and_says_who_must_act(self):
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.PROMOTE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "nothing", "lpdeploy")
        await self.run_step()
        self.assertIn(f"{self.d1[:12]} is not QA'd yet", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_without_require_qa_marks_change_nothing(self):
        await self.mark(self.d1, QaState.BAD)
        settings = parse_settings({"repository": {"url": self.repo.url}, "suite": {"command": self.SUITE_COMMAND}})
        self.setup_flow_step(Decide(settings=settings, kind=FlowKind.PROMOTE))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", self.d2)
        await self.run_step()
