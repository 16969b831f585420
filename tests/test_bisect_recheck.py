"""A bisection never blames a commit for a flaky failure: the culprit's failing tests are re-checked first.

The ``bisect`` step in Buildbot's step harness (a real upstream, Buildbot's
real database: ``test_bisect_steps.BatchCase``), with a sharded suite and the
real shard Triggerables (``test_shard_steps``): the test plays the re-check's
shard builds. The batch is c1..c4 beyond stable at s1; c2 passed, c3 and c4
failed, so c3 is the culprit unless its failure was flaky.
"""

from __future__ import annotations

import test_deploy_lease
from buildbot.process.results import FAILURE, SUCCESS
from buildbot.util.twisted import async_to_deferred
from test_bisect_steps import BatchCase
from test_shard_steps import FAILED, PASSED, Outcome, RunShardsCase, ShardCase

from lpdeploy.core.model import Result
from lpdeploy.core.settings import parse_settings
from lpdeploy.core.shard_watch import POLL
from lpdeploy.master.steps.bisect import Bisect, _recheck_lease
from lpdeploy.master.steps.shards import RECHECK_BASE, ShardRuns
from lpdeploy.stores.flaky import DbFlakyLog
from lpdeploy.stores.lease import DbLeases
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.registry import DbRegistry

TEST = "pkg.test_sometimes"


class Recheck(BatchCase):
    attach_shard_schedulers = ShardCase.attach_shard_schedulers
    requests = RunShardsCase.requests
    start_build = RunShardsCase.start_build
    finish = RunShardsCase.finish
    advance = RunShardsCase.advance
    other_build = test_deploy_lease.DeployLease.other_build

    @async_to_deferred
    async def given_a_failed_batch(self):
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "suite": {"shards": 2, "list_command": ["bin/test", "--list"],
                      "run_command": ["bin/test", "{id_file}"], "timeout": 60, "max_time": 600},
        })
        self.suite = self.settings.suite.identity
        await self.attach_shard_schedulers()
        self.batch()
        await self.gate_record(self.c[4], Result.FAILED, 7)
        await self.gate_record(self.c[2], Result.PASSED, 8)
        await self.gate_record(self.c[3], Result.FAILED, 9)
        self.log = DbFlakyLog(self.master)
        await self.log.save_failed(self.suite, self.repo.tree(self.c[3]), [TEST])  # what c3's run kept

    async def play_recheck(self, passes):
        """The re-check's one shard build: ``TEST`` alone on c3; it passes or fails again."""
        ((key, req),) = (await self.requests()).items()
        self.assertEqual(key, (RECHECK_BASE, 1))
        plan = await ShardRuns(self.master).plan((92, RECHECK_BASE, 1))
        self.assertEqual((plan.revision, plan.ids), (self.c[3], (TEST,)))
        buildid = await self.start_build(req)
        await self.finish(req, buildid, {TEST: Outcome(PASSED if passes else FAILED, 1.0)},
                          SUCCESS if passes else FAILURE)
        self.advance(POLL)

    async def bisect_with_a_recheck(self, passes, culprit=None):
        """Run the bisect step over the failed batch, playing its one re-check build (``passes`` or not).

        ``culprit``: the revision the step must set as its culprit property.
        """
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        if culprit is not None:
            self.expect_property("lpdeploy_culprit", culprit)
        done = self.run_step()
        await self.play_recheck(passes=passes)
        await done

    @async_to_deferred
    async def test_a_culprit_whose_failing_tests_pass_again_is_not_named_and_they_are_recorded_flaky(self):
        await self.given_a_failed_batch()
        await self.bisect_with_a_recheck(passes=True)
        log = self.decision_log()
        self.assertIn(f"{self.c[3][:12]} is not named", log)
        self.assertIn("a flaky failure, recorded as flaky", log)
        (rec,) = await self.log.records()
        self.assertEqual((rec.test, rec.revision), (TEST, self.c[3]))
        self.assertEqual((await DbLedger(self.master).lookup(self.suite, self.repo.tree(self.c[3]))).result,
                         Result.PASSED)
        # the bisection goes on from there: c4 failed right after c3 (its run kept no tests to re-check)
        self.assertEqual((await DbRegistry(self.master).culprit()).revision, self.c[4])
        self.assertEqual(self.repo.tip("stable"), self.c[3])

    @async_to_deferred
    async def test_a_culprit_whose_failing_tests_fail_again_is_named(self):
        await self.given_a_failed_batch()
        await self.bisect_with_a_recheck(passes=False, culprit=self.c[3])
        self.assertIn(f"{TEST} failed again", self.decision_log())
        self.assertEqual((await DbRegistry(self.master).culprit()).revision, self.c[3])
        self.assertEqual(self.repo.tip("stable"), self.c[2])
        self.assertEqual(await self.log.records(), [])
        self.assertEqual(await self.log.failed(self.suite, self.repo.tree(self.c[3])), [])  # re-checked once

    @async_to_deferred
    async def test_a_culprit_with_no_kept_failing_tests_is_named_without_a_recheck(self):
        await self.given_a_failed_batch()
        await self.log.save_failed(self.suite, self.repo.tree(self.c[3]), [])
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.requests(), {})
        self.assertEqual((await DbRegistry(self.master).culprit()).revision, self.c[3])
        self.assertIn("no failing tests of", self.decision_log())

    @async_to_deferred
    async def test_a_culprit_another_build_is_re_checking_is_left_to_that_build(self):
        # two bisect steps ending at once with the same culprit: the first took the re-check lease and cleared
        # the kept tests; the second must not name the commit "as it failed" while the first may find it flaky
        await self.given_a_failed_batch()
        other = "master 9 (other) build 77"
        await DbLeases(self.master).take(_recheck_lease(self.repo.tree(self.c[3])), other, 0.0, 3600.0)
        await self.log.save_failed(self.suite, self.repo.tree(self.c[3]), [])
        self.setup_flow_step(Bisect(settings=self.settings), **self.failed_gate_run())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.requests(), {})
        self.assertIsNone(await DbRegistry(self.master).culprit())
        self.assertIn(f"{self.c[3][:12]} is being re-checked by {other}", self.decision_log())
        self.assertEqual(self.repo.tip("stable"), self.s1)

    @async_to_deferred
    async def test_the_re_check_lease_is_released_whatever_the_verdict(self):
        await self.given_a_failed_batch()
        await self.bisect_with_a_recheck(passes=False)
        self.assertIsNone(await DbLeases(self.master).state(_recheck_lease(self.repo.tree(self.c[3]))))

    @async_to_deferred
    async def test_a_re_check_lease_left_by_a_build_a_crash_ended_is_taken_over(self):
        # the killed master's bisect build is over (its request runs again as a new build): its lease must not
        # keep every later bisection from judging the culprit for hours
        await self.given_a_failed_batch()
        dead = await self.other_build(901, complete=True)
        await DbLeases(self.master).take(_recheck_lease(self.repo.tree(self.c[3])), dead, 0.0, 3600.0)
        await self.bisect_with_a_recheck(passes=False, culprit=self.c[3])
        self.assertEqual((await DbRegistry(self.master).culprit()).revision, self.c[3])
        self.assertIsNone(await DbLeases(self.master).state(_recheck_lease(self.repo.tree(self.c[3]))))
