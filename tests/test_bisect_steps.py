"""The gate's bisection in Buildbot's step harness: probes decided, culprit named, stable moved once.

Same harness as ``test_steps.py`` (a real upstream, Buildbot's real database,
so ``DbLedger`` and ``DbRegistry`` are the real stores). The batch is four
commits c1..c4 on devel beyond stable at s1.
"""

from __future__ import annotations

import os

import pytest
from buildbot.process.results import FAILURE, SKIPPED, SUCCESS
from buildbot.reporters.utils import getURLForBuild
from buildbot.util.twisted import async_to_deferred
from test_steps import StepCase
from twisted.internet.error import ProcessDone
from twisted.python.failure import Failure

from lpdeploy.core import properties as prop
from lpdeploy.core.bisect import Culprit, notify_argv
from lpdeploy.core.errors import SettingsError
from lpdeploy.core.model import FlowKind, Result, TestRecord
from lpdeploy.core.settings import parse_settings
from lpdeploy.master.steps.bisect import Bisect
from lpdeploy.master.steps.flow import Decide, MoveBranches
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.registry import DbRegistry

AUTHOR = "Ann Author <ann@example.invalid>"


class BatchCase(StepCase):
    def batch(self):
        """base ← s1 (stable, production-*) ← c1 ← c2 ← c3 ← c4 (devel)."""
        self.base = self.repo.commit("Initial release", None)
        self.s1 = self.repo.commit("Stable fix", self.base)
        self.c = [self.s1]
        for i in range(1, 5):
            self.c.append(self.repo.commit(f"Change {i}", self.c[-1], author=AUTHOR))
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.s1)
        self.repo.push("devel", self.c[4])

    async def gate_record(self, sha, result, build_number):
        """A ledger entry written by gate build ``build_number`` (the harness's gate builder is id 100)."""
        await DbLedger(self.master).record(TestRecord(
            tree=self.repo.tree(sha), commit=sha, suite=self.suite, result=result,
            build_url=getURLForBuild(self.master, 100, build_number), build_number=build_number,
            finished_at=1_700_000_000.0, duration=60.0))

    def failed_gate_run(self):
        """What a gate build leaves for the ``bisect`` step when its suite failed."""
        return {"lpdeploy_run_suite": True, "lpdeploy_outcome": "failed",
                "lpdeploy_reason": "the suite failed", "lpdeploy_revision": self.c[4]}


class BisectStep(BatchCase):
    @async_to_deferred
    async def test_the_boundary_known_names_the_culprit_and_moves_stable_to_the_newest_pass(self):
        self.batch()
        await self.gate_record(self.c[4], Result.FAILED, 7)
        await self.gate_record(self.c[2], Result.PASSED, 8)
        await self.gate_record(self.c[3], Result.FAILED, 9)
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_culprit", self.c[3])
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.c[2])
        self.assertEqual(self.repo.tip("production-stable"), self.s1)  # the gate moves stable only
        culprit = await DbRegistry(self.master).culprit()
        self.assertEqual((culprit.revision, culprit.subject, culprit.author, culprit.passing, culprit.devel_tip),
                         (self.c[3], "Change 3", AUTHOR, self.c[2], self.c[4]))
        self.assertEqual(culprit.build_url, getURLForBuild(self.master, 100, 13))
        log = self.decision_log()
        self.assertIn(f"batch: 4 first-parent commit(s) of devel beyond stable {self.s1[:12]}, "
                      f"up to {self.c[4][:12]}", log)
        self.assertIn(f"{self.c[2][:12]} passed in build #8 {getURLForBuild(self.master, 100, 8)}", log)
        self.assertIn(f"{self.c[3][:12]} failed in build #9", log)
        self.assertIn(f"{self.c[1][:12]} not tested", log)
        self.assertIn(f"culprit: {self.c[3]} 'Change 3' by {AUTHOR}", log)
        self.assertIn(f"moving stable to {self.c[2][:12]}", log)
        # the build keeps the outcome of its own run: the tip failed
        self.assertEqual(self.prop("lpdeploy_outcome"), "failed")

    @async_to_deferred
    async def test_a_boundary_not_yet_known_names_no_culprit_and_moves_nothing(self):
        self.batch()
        await self.gate_record(self.c[4], Result.FAILED, 7)
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.s1)
        self.assertIsNone(await DbRegistry(self.master).culprit())
        self.assertIn(f"probing {self.c[2][:12]}", self.decision_log())

    @async_to_deferred
    async def test_a_batch_broken_by_its_first_commit_leaves_stable_and_names_that_commit(self):
        self.batch()
        await self.gate_record(self.c[4], Result.FAILED, 7)
        await self.gate_record(self.c[1], Result.FAILED, 8)
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.s1)
        self.assertEqual((await DbRegistry(self.master).culprit()).revision, self.c[1])

    @async_to_deferred
    async def test_a_tree_tested_by_another_builder_is_reused_but_its_build_not_named(self):
        # c2's tree passed in a build that is not a gate build (say, an embargoed security build)
        self.batch()
        await self.gate_record(self.c[4], Result.FAILED, 7)
        await self.gate_record(self.c[3], Result.FAILED, 9)
        await DbLedger(self.master).record(TestRecord(
            tree=self.repo.tree(self.c[2]), commit="e" * 40, suite=self.suite, result=Result.PASSED,
            build_url=getURLForBuild(self.master, 555, 3), build_number=3, finished_at=1.0))
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.c[2])
        log = self.decision_log()
        listing = log.split("is the first failing commit")[0]
        self.assertIn(f"{self.c[2][:12]} passed in an earlier build", listing)
        self.assertNotIn("builders/555", listing)

    @async_to_deferred
    async def test_a_passing_tip_run_does_not_bisect(self):
        self.batch()
        self.setup_flow_step(Bisect(settings=self.settings), lpdeploy_run_suite=True, lpdeploy_outcome="moved")
        self.expect_outcome(result=SKIPPED)
        await self.run_step()


class ProbeBuild(BatchCase):
    @async_to_deferred
    async def test_a_probe_tests_exactly_its_commit(self):
        self.batch()
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE), **{prop.PROBE: self.c[2]})
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", self.c[2], "lpdeploy")
        self.expect_property("lpdeploy_run_suite", True, "lpdeploy")
        await self.run_step()
        self.assertIn(f"bisection probe: testing {self.c[2][:12]}", self.decision_log())

    @async_to_deferred
    async def test_a_probe_stable_already_holds_is_moot(self):
        self.batch()
        self.repo.push("stable", self.c[3])
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE), **{prop.PROBE: self.c[2]})
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", False, "lpdeploy")
        self.expect_property("lpdeploy_outcome", "nothing", "lpdeploy")
        await self.run_step()
        self.assertIn("the bisection is over", self.decision_log())

    @async_to_deferred
    async def test_a_probe_devel_no_longer_holds_is_moot(self):
        self.batch()
        self.repo.push("devel", self.c[1])
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE), **{prop.PROBE: self.c[3]})
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_suite", False, "lpdeploy")
        await self.run_step()
        self.assertIn("no longer on devel", self.decision_log())

    @async_to_deferred
    async def test_a_malformed_probe_is_refused(self):
        self.batch()
        self.setup_flow_step(Decide(settings=self.settings, kind=FlowKind.GATE), **{prop.PROBE: "--upload-pack=evil"})
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()

    @async_to_deferred
    async def test_a_passing_probe_moves_no_branch_itself(self):
        self.batch()
        await self.gate_record(self.c[2], Result.PASSED, 8)
        self.setup_flow_step(MoveBranches(settings=self.settings, kind=FlowKind.GATE), **{
            prop.PROBE: self.c[2], "lpdeploy_revision": self.c[2], "lpdeploy_tree": self.repo.tree(self.c[2])})
        self.expect_outcome(result=SKIPPED)
        await self.run_step()
        self.assertEqual(self.repo.tip("stable"), self.s1)


class NotifyCommand(BatchCase):
    """``[gate] notify_command`` runs on the master (Buildbot's test reactor checks the exact argv)."""

    def notifying(self):
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "suite": {"command": self.SUITE_COMMAND},
            "gate": {"notify_command": ["tell-author", "--commit={revision}", "{author}", "see {build_url}"]},
        })

    async def known_boundary(self):
        self.batch()
        self.notifying()
        await self.gate_record(self.c[4], Result.FAILED, 7)
        await self.gate_record(self.c[2], Result.PASSED, 8)
        await self.gate_record(self.c[3], Result.FAILED, 9)
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)

    @async_to_deferred
    async def test_a_new_culprit_runs_the_notify_command_with_its_fields(self):
        await self.known_boundary()
        url = getURLForBuild(self.master, 100, 13)
        self.reactor.expect_spawn("tell-author", ("tell-author", f"--commit={self.c[3]}", AUTHOR, f"see {url}"),
                                  env={"PATH": os.environ.get("PATH", os.defpath)})
        running = self.run_step()
        # the test reactor's ``process_done`` hands a bare ProcessDone; Twisted's real reactor (and so
        # ``getProcessValue``) hands the protocol a Failure wrapping it: end the process as the real one does
        self.reactor._processes[0].processEnded(Failure(ProcessDone(0)))
        await running
        self.reactor.assert_no_remaining_calls()
        self.assertIn("notify command told the author: tell-author", self.decision_log())

    @async_to_deferred
    async def test_a_culprit_named_again_is_not_announced_again(self):
        await self.known_boundary()
        await DbRegistry(self.master).save_culprit(Culprit(self.c[3], "Change 3", AUTHOR, "u", self.c[4],
                                                           self.c[2], 1.0))
        await self.run_step()  # the test reactor fails on any spawn it was not told to expect
        self.assertNotIn("notify command", self.decision_log())


def test_notify_placeholders_are_substituted_inside_each_argument() -> None:
    c = Culprit("a" * 40, "s", "Ann <ann@example.invalid>", "http://m/#/builders/1/builds/2", "b" * 40, None, 1.0)
    assert notify_argv(["mail", "-s", "broke {revision}", "{author}", "{build_url}", "{revision}{revision}"], c) == [
        "mail", "-s", f"broke {'a' * 40}", "Ann <ann@example.invalid>", "http://m/#/builders/1/builds/2",
        "a" * 80]


def test_the_notify_command_is_an_argv_with_known_placeholders_only() -> None:
    base = {"repository": {"url": "https://git.example.org/lp.git"}}
    assert parse_settings(base).gate.notify_command == ()
    ok = parse_settings({**base, "gate": {"notify_command": ["notify", "{revision}", "{author}", "{build_url}"]}})
    assert ok.gate.notify_command == ("notify", "{revision}", "{author}", "{build_url}")
    for bad, problem in (("notify {revision}", "argv"), (["notify", "{subject}"], "unknown placeholder {subject}"),
                         ([], "non-empty list")):
        with pytest.raises(SettingsError) as e:
            parse_settings({**base, "gate": {"notify_command": bad}})
        assert problem in str(e.value) and "gate.notify_command" in str(e.value)
    with pytest.raises(SettingsError):
        parse_settings({**base, "gate": {"notify": ["x"]}})
