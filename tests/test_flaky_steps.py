"""Flaky or broken in the sharded suite: failures re-run alone, quarantine, the flaky log.

``RunShards`` in Buildbot's step harness on its real database, the test
playing the shard builds (as in ``test_shard_steps``). With ``[suite]
rerun_failures = 1`` a failed test runs once more as a shard of its own
(index after the suite's shards, the test alone in its plan).
"""

from __future__ import annotations

from buildbot.process.results import FAILURE, SUCCESS
from buildbot.util.twisted import async_to_deferred
from test_shard_steps import FAILED, PASSED, REVISION, SECURITY, TESTS, TREE, Outcome, RunShardsCase

from lpdeploy.core.flaky import FlakyKind
from lpdeploy.core.model import Result
from lpdeploy.core.settings import parse_settings
from lpdeploy.core.shard_watch import POLL
from lpdeploy.stores.flaky import DbFlakyLog


class FlakyCase(RunShardsCase):
    quarantine: list[str] = []

    def setUp(self):
        d = super().setUp()

        def configure(_):
            self.settings = parse_settings({
                "repository": {"url": "file:///srv/upstream.git"},
                "suite": {"shards": 2, "list_command": ["bin/test", "--list"],
                          "run_command": ["bin/test", "--load-list", "{id_file}"], "timeout": 60,
                          "max_time": 600, "rerun_failures": 1, "quarantine": self.quarantine},
            })
            self.suite = self.settings.suite.identity
        return d.addCallback(configure)

    async def first_run(self, bad):
        """Both shards run; ``bad`` fails in the shard that holds it."""
        done = self.start_suite()
        for shard in (0, 1):
            ids = (await self.plan(shard, 1)).ids
            await self.run_shard(shard, failed=[t for t in bad if t in ids])
        self.advance(POLL)
        return done

    async def rerun(self, test, passes):
        """The re-run of ``test``: a shard of its own, after the suite's two; it passes or fails again."""
        found = [(k, a) for (k, a) in await self.requests() if k >= 2]
        plans = {k: await self.plan(k, a) for k, a in found}
        (shard,) = [k for k, p in plans.items() if p.ids == (test,)]
        self.assertEqual(plans[shard].revision, REVISION)  # the same revision, the test alone
        req = (await self.requests())[(shard, 1)]
        buildid = await self.start_build(req)
        await self.finish(req, buildid, {test: Outcome(PASSED if passes else FAILED, 1.0)},
                          SUCCESS if passes else FAILURE)
        self.advance(POLL)

    async def records(self):
        return await DbFlakyLog(self.master).records()


class Rerun(FlakyCase):
    @async_to_deferred
    async def test_a_test_that_passes_when_run_alone_is_flaky_and_does_not_fail_the_run(self):
        bad = TESTS[1]
        self.expect_outcome(result=SUCCESS)
        self.expect_results()  # the flaky test counts as passed in the result set
        done = await self.first_run([bad])
        await self.rerun(bad, passes=True)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.PASSED)
        (rec,) = await self.records()
        self.assertEqual((rec.test, rec.revision, rec.kind, rec.suite, rec.embargoed),
                         (bad, REVISION, FlakyKind.FLAKY, self.suite, False))
        self.assertIn(f"flaky: {bad} failed, then passed when run alone", self.decision_log())
        self.assertIn("1 flaky", " ".join(self.get_nth_step(0).descriptionDone))

    @async_to_deferred
    async def test_a_test_that_fails_again_alone_fails_the_run_and_is_kept_for_a_recheck(self):
        bad = TESTS[1]
        self.expect_outcome(result=FAILURE)
        self.expect_results(failing=[bad])
        done = await self.first_run([bad])
        await self.rerun(bad, passes=False)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.FAILED)
        self.assertEqual(await self.records(), [])
        self.assertEqual(await DbFlakyLog(self.master).failed(self.suite, TREE), [bad])
        self.assertIn(f"broken: {bad} failed, and failed again when run alone", self.decision_log())

    @async_to_deferred
    async def test_only_the_failed_tests_are_rerun_each_alone(self):
        bad = [TESTS[0], TESTS[3]]
        self.expect_outcome(result=FAILURE)
        self.expect_results(failing=[TESTS[3]])
        done = await self.first_run(bad)
        reruns = {k: (await self.plan(k, a)).ids for (k, a) in await self.requests() if k >= 2}
        self.assertEqual(sorted(reruns.values()), [(TESTS[0],), (TESTS[3],)])
        await self.rerun(TESTS[0], passes=True)
        await self.rerun(TESTS[3], passes=False)
        await self.ended(done)
        self.assertEqual([r.test for r in await self.records()], [TESTS[0]])

    @async_to_deferred
    async def test_without_rerun_failures_a_failure_fails_at_once(self):
        self.settings = parse_settings({
            "repository": {"url": "file:///srv/upstream.git"},
            "suite": {"shards": 2, "list_command": ["bin/test"], "run_command": ["bin/test", "{id_file}"],
                      "timeout": 60, "max_time": 600}})
        self.suite = self.settings.suite.identity
        self.expect_outcome(result=FAILURE)
        self.expect_results(failing=[TESTS[1]])
        done = await self.first_run([TESTS[1]])
        await self.ended(done)
        self.assertEqual([k for k, _ in await self.requests()], [0, 1])


class Quarantine(FlakyCase):
    quarantine = [TESTS[2]]

    @async_to_deferred
    async def test_a_quarantined_failure_never_fails_the_run_is_not_rerun_and_is_reported(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results(failing=[TESTS[2]])  # the result set tells the truth
        done = await self.first_run([TESTS[2]])
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.PASSED)
        self.assertEqual([k for k, _ in await self.requests()], [0, 1])  # no re-run
        (rec,) = await self.records()
        self.assertEqual((rec.test, rec.kind), (TESTS[2], FlakyKind.QUARANTINED))
        self.assertIn(f"quarantined: {TESTS[2]} failed", self.decision_log())
        self.assertIn("1 quarantined failed", " ".join(self.get_nth_step(0).descriptionDone))

    @async_to_deferred
    async def test_a_quarantined_test_does_not_excuse_another_failure(self):
        self.expect_outcome(result=FAILURE)
        self.expect_results(failing=[TESTS[2], TESTS[4]])
        done = await self.first_run([TESTS[2], TESTS[4]])
        await self.rerun(TESTS[4], passes=False)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.FAILED)



class SecurityRun(FlakyCase):
    @async_to_deferred
    async def test_a_security_runs_flaky_test_is_recorded_embargoed_and_not_named_in_its_summary(self):
        bad = TESTS[1]
        self.expect_outcome(result=SUCCESS)
        self.expect_results(kind=SECURITY)
        done = self.start_suite(kind=SECURITY)
        for shard in (0, 1):
            ids = (await self.plan(shard, 1)).ids
            await self.run_shard(shard, failed=[t for t in (bad,) if t in ids])
        self.advance(POLL)
        await self.rerun(bad, passes=True)
        await self.ended(done)
        (rec,) = await self.records()
        self.assertEqual((rec.test, rec.embargoed), (bad, True))
        summary = " ".join(self.get_nth_step(0).descriptionDone)
        self.assertIn("1 flaky", summary)
        self.assertNotIn(bad, summary)
