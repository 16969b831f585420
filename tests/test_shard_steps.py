"""The sharded suite's steps in Buildbot's step harness, on Buildbot's real database.

``RunShards`` runs in ``TestBuildStepMixin`` with real ``Triggerable``
schedulers: its triggers create real buildsets and build requests in the
database. The test then plays Buildbot's part for the shard builds, through
Buildbot's own data API updates (claim a request, add a build and its steps,
finish it, complete the request) and ``ShardRuns`` for the results a shard
build files. ``RunShards`` looks at its shards every ``POLL`` seconds of the
test reactor's clock, which the tests advance.

The harness's message queue is a fake: nothing consumes a cancel, so a test
sees a cancellation as the ``control.buildrequests.<id>.cancel`` message the
step produced (Buildbot's ``BotMaster`` consumes it in a real master).

``FakeMaster`` has no scheduler manager: ``RunShards`` reads one attribute of
it, ``namedServices``, so the tests give the master a namespace holding the two
real Triggerables.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from buildbot.process.results import CANCELLED, EXCEPTION, FAILURE, RETRY, SUCCESS
from buildbot.schedulers.triggerable import Triggerable
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectDownloadFile, ExpectShell, TestBuildStepMixin
from buildbot.util.twisted import async_to_deferred
from support import FlowStepMixin, temp_dir, use_temp_master_basedir
from twisted.internet import defer, error
from twisted.python.failure import Failure
from twisted.trial import unittest

from lpdeploy.core.model import FlowKind, Result
from lpdeploy.core.results import TestOutcome as Outcome
from lpdeploy.core.results import TestStatus
from lpdeploy.core.settings import parse_settings
from lpdeploy.core.shard_watch import POLL, bounds
from lpdeploy.git.gitops import checkout_command
from lpdeploy.master.steps.shards import (
    ID_FILE,
    RUN_STEP,
    SECURITY_SHARD_SCHEDULER,
    SHARD_SCHEDULER,
    CollectShard,
    RunShards,
    ShardCheckout,
    ShardIds,
    ShardPlan,
    ShardRuns,
    remember_checkout,
)
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.registry import DbRegistry

SHARD_BUILDER, SECURITY_SHARD_BUILDER = "lpdeploy-shard", "lpdeploy-security-shard"  # as the configurator
PARENT = 92  # FakeBuild.buildid: the parent build of every shard here
WORKER = 400  # the worker the harness inserted
REVISION = "a" * 40
OTHER = "b" * 40
TREE = "c" * 40
TESTS = [f"pkg.test_{i:02d}" for i in range(6)]
TIMEOUT, MAX_TIME = 60, 600
LIMITS = bounds(TIMEOUT, MAX_TIME)  # start 60 s, run 1260 s

GATE, SECURITY = FlowKind.GATE, FlowKind.SECURITY
PASSED, FAILED = TestStatus.PASSED, TestStatus.FAILED


class ShardCase(FlowStepMixin, TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        use_temp_master_basedir(self, temp_dir(self, "lpdeploy-shards-"))
        self.settings = parse_settings({
            "repository": {"url": "file:///srv/upstream.git"},
            "suite": {"shards": 2, "list_command": ["bin/test", "--list"],
                      "run_command": ["bin/test", "--load-list", "{id_file}"], "timeout": TIMEOUT,
                      "max_time": MAX_TIME},
        })
        self.suite = self.settings.suite.identity
        yield self.setup_test_build_step()
        yield defer.ensureDeferred(self.attach_shard_schedulers())

    async def attach_shard_schedulers(self):
        self.master.scheduler_manager = SimpleNamespace(namedServices={})
        self.builderids = {}
        for sched_name, builder in ((SHARD_SCHEDULER, SHARD_BUILDER), (SECURITY_SHARD_SCHEDULER,
                                                                        SECURITY_SHARD_BUILDER)):
            self.builderids[builder] = await self.master.data.updates.findBuilderId(builder)
            sched = Triggerable(name=sched_name, builderNames=[builder])
            await sched.setServiceParent(self.master)
            await sched.configureService()  # applies its constructor arguments (reconfigService)
            self.master.scheduler_manager.namedServices[sched_name] = sched
        await self.master.data.updates.updateBuilderList(self.master.masterid, list(self.builderids))
        await self.master.data.updates.workerConfigured(WORKER, self.master.masterid, list(self.builderids.values()))
        await self.master.data.updates.workerConnected(WORKER, self.master.masterid, {})


class RunShardsCase(ShardCase):
    """``RunShards`` with the test playing the shard builds."""

    def start_suite(self, kind=GATE, tests=TESTS):
        """Put the list file where the list upload leaves it, set the parent's properties, start the step."""
        path = os.path.join(self.master.basedir, "suite.list")
        os.makedirs(self.master.basedir, exist_ok=True)
        with open(path, "w") as f:
            f.write("".join(f"{t}\n" for t in tests))
        self.setup_flow_step(RunShards(settings=self.settings, kind=kind, list_path="suite.list"),
                             lpdeploy_revision=REVISION, lpdeploy_tree=TREE, lpdeploy_checkout_branch="devel")
        return self.run_step()

    async def requests(self):
        """Every shard build request: {(shard, attempt): request}, with its buildset's properties."""
        found = {}
        for req in await self.master.data.get(("buildrequests",)):
            props = await self.master.db.buildsets.getBuildsetProperties(req["buildsetid"])
            req["props"] = {k: v for k, (v, _) in props.items()}
            found[(props["lpdeploy_shard"][0], props["lpdeploy_attempt"][0])] = req
        return found

    async def plan(self, shard, attempt):
        return await ShardRuns(self.master).plan((PARENT, shard, attempt))

    async def start_build(self, req, running=True):
        """Buildbot claims ``req`` and starts a build on the worker; ``running``: its first step began."""
        await self.master.data.updates.claimBuildRequests([req["buildrequestid"]])
        buildid, _ = await self.master.data.updates.addBuild(req["builderid"], req["buildrequestid"], WORKER)
        prep, _, _ = await self.master.data.updates.addStep(buildid, "worker_preparation")
        await self.master.data.updates.startStep(prep)
        await self.master.data.updates.setBuildStateString(buildid, "pinging worker")
        if running:
            await self.master.data.updates.finishStep(prep, SUCCESS, False)
            step, _, _ = await self.master.data.updates.addStep(buildid, "checkout")
            await self.master.data.updates.startStep(step)
            await self.master.data.updates.setBuildStateString(buildid, "building")
        return buildid

    async def finish(self, req, buildid, outcomes=None, result=SUCCESS):
        """The shard build files ``outcomes`` (None: nothing) and ends; Buildbot completes its request."""
        props = req["props"]
        if outcomes is not None:
            key = (PARENT, props["lpdeploy_shard"], props["lpdeploy_attempt"])
            await ShardRuns(self.master).file_results(key, outcomes, "linux")
        await self.master.data.updates.finishBuild(buildid, result)
        if result == RETRY:
            await self.master.data.updates.unclaimBuildRequests([req["buildrequestid"]])
        else:
            await self.master.data.updates.completeBuildRequests([req["buildrequestid"]], result)

    async def run_shard(self, shard, attempt=1, failed=(), skip=()):
        """Run one shard attempt to the end: every planned test passes, except ``failed``; ``skip`` never ran."""
        req = (await self.requests())[(shard, attempt)]
        plan = await self.plan(shard, attempt)
        buildid = await self.start_build(req)
        outcomes = {t: Outcome(FAILED if t in failed else PASSED, 1.0) for t in plan.ids if t not in skip}
        await self.finish(req, buildid, outcomes, FAILURE if failed or skip else SUCCESS)

    def advance(self, seconds):
        """Let ``seconds`` of the master's clock pass, a look at the shards at a time."""
        while seconds > 0:
            self.reactor.advance(min(POLL, seconds))
            seconds -= POLL

    def ended(self, done):
        """The step's run, which must have ended by now: a wait that does not end fails, never hangs."""
        self.assertTrue(done.called, "the sharded suite is still waiting")
        return done

    def cancelled(self):
        """The build requests the step cancelled (Buildbot's BotMaster would act on these messages)."""
        return [int(key[2]) for key, _ in self.master.mq.productions
                if key[:2] == ("control", "buildrequests") and key[3] == "cancel"]

    def expect_results(self, failing=(), not_run=(), kind=GATE):
        """The result set of the parent: every listed test, "1" only if it passed; none for a security run."""
        if kind == SECURITY:
            return  # its test names stay in its (embargoed) logs: the harness checks that no set was added
        self.expect_test_result_sets([(f"{self.suite} on {REVISION[:12]}", "pass_fail", "boolean")])
        self.expect_test_results([
            (1000, "0" if t in failing or t in not_run else "1", t, None, None, 0 if t in not_run else 10**9)
            for t in TESTS])

    async def ledger(self):
        return await DbLedger(self.master).lookup(self.suite, TREE)

    def decision_log(self):
        return self.get_nth_step(0).logs["decision"].stdout


class Verdict(RunShardsCase):
    @async_to_deferred
    async def test_every_shard_passing_every_test_passes_and_the_ledger_says_passed(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)
        record = await self.ledger()
        self.assertEqual(record.result, Result.PASSED)
        self.assertEqual(self.cancelled(), [])
        # the same suite-run event as the plain RunSuite (test_steps.RunSuiteStep), plus the shards
        (event,) = await DbRegistry(self.master).events()
        self.assertEqual((event.action, event.who, event.at), ("suite-run", "lpdeploy (automatic)", record.finished_at))
        self.assertEqual(event.details, {"revision": REVISION, "tree": TREE, "duration": record.duration,
                                         "passed": True, "kind": "gate", "shards": 2})

    @async_to_deferred
    async def test_a_listed_test_that_never_ran_fails_the_run_and_the_ledger_says_failed(self):
        # both shards come back and nothing failed, but one listed test has no result at all
        self.expect_outcome(result=FAILURE)
        done = self.start_suite()
        skipped = (await self.plan(1, 1)).ids[0]
        self.expect_results(not_run=[skipped])
        await self.run_shard(0)
        req = (await self.requests())[(1, 1)]
        buildid = await self.start_build(req)
        plan = await self.plan(1, 1)
        await self.finish(req, buildid, {t: Outcome(PASSED, 1.0) for t in plan.ids if t != skipped}, SUCCESS)
        self.advance(POLL)
        await self.ended(done)
        record = await self.ledger()
        self.assertEqual(record.result, Result.FAILED)
        self.assertIn("1 listed tests did not run", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_failing_test_is_named_in_a_public_run(self):
        self.expect_outcome(result=FAILURE)
        done = self.start_suite()
        bad = (await self.plan(0, 1)).ids[0]
        self.expect_results(failing=[bad])
        await self.run_shard(0, failed=[bad])
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.FAILED)
        self.assertIn(f"1 failed: {bad}", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_security_run_names_its_failing_test_in_its_log_only(self):
        self.expect_outcome(result=FAILURE)
        done = self.start_suite(kind=SECURITY)
        bad = (await self.plan(0, 1)).ids[0]
        self.expect_results(failing=[bad], kind=SECURITY)
        await self.run_shard(0, failed=[bad])
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)
        self.assertNotIn(bad, self.prop("lpdeploy_reason"))
        self.assertNotIn(bad, " ".join(self.get_nth_step(0).descriptionDone))
        self.assertIn(bad, self.get_nth_step(0).logs["failures"].stdout)


class LostShards(RunShardsCase):
    @async_to_deferred
    async def test_a_shard_that_never_starts_is_cancelled_after_the_start_bound_and_run_again(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        stuck = (await self.requests())[(1, 1)]
        await self.start_build(stuck, running=False)  # Buildbot never gets past "pinging worker"
        self.advance(LIMITS.start - POLL)
        self.assertEqual(self.cancelled(), [], "given up before its bound")
        self.advance(3 * POLL)  # a look every POLL seconds: given up within two looks of its bound
        self.assertEqual(self.cancelled(), [stuck["buildrequestid"]])
        self.assertIn("not started after", (await self.plan(1, 1)).cancelled or "", "the attempt is not cancelled")
        self.assertIn((1, 2), await self.requests(), "the shard was not run again")
        await self.run_shard(1, attempt=2)
        self.advance(POLL)
        await self.ended(done)
        log = self.decision_log()
        self.assertIn("shard 1, attempt 1: not started after", log)
        self.assertIn("'pinging worker'", log)
        self.assertIn("running shards 1 again (attempt 2)", log)
        self.assertEqual((await self.ledger()).result, Result.PASSED)

    @async_to_deferred
    async def test_results_filed_late_by_a_cancelled_attempt_never_count(self):
        # attempt 1 of shard 1 is given up, then files a failure after all; attempt 2 passes
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        stuck = (await self.requests())[(1, 1)]
        stuck_build = await self.start_build(stuck, running=False)
        self.advance(LIMITS.start + 3 * POLL)
        plan = await self.plan(1, 1)
        await self.finish(stuck, stuck_build, {t: Outcome(FAILED, 1.0) for t in plan.ids}, FAILURE)
        await self.run_shard(1, attempt=2)
        self.advance(POLL)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.PASSED)

    @async_to_deferred
    async def test_results_of_an_attempt_given_up_never_count(self):
        # shard 1 files a failure, then its build hangs and is given up; attempt 2 passes
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        hung = (await self.requests())[(1, 1)]
        await self.start_build(hung, running=False)
        plan = await self.plan(1, 1)
        await ShardRuns(self.master).file_results((PARENT, 1, 1), {t: Outcome(FAILED, 1.0) for t in plan.ids},
                                                  "linux")
        self.advance(LIMITS.start + 3 * POLL)
        await self.run_shard(1, attempt=2)
        self.advance(POLL)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.PASSED)

    @async_to_deferred
    async def test_a_shard_lost_twice_fails_the_run_and_the_ledger_says_failed(self):
        self.expect_outcome(result=FAILURE)
        done = self.start_suite()
        lost_ids = (await self.plan(1, 1)).ids
        self.expect_results(not_run=lost_ids)
        await self.run_shard(0)
        for attempt in (1, 2):
            await self.start_build((await self.requests())[(1, attempt)], running=False)
            self.advance(LIMITS.start + 3 * POLL)
        await self.ended(done)
        self.assertEqual((await self.ledger()).result, Result.FAILED)
        self.assertEqual(len(self.cancelled()), 2)
        self.assertNotIn((1, 3), await self.requests(), "a lost shard runs at most twice")
        self.assertIn("shard 1 lost", self.prop("lpdeploy_reason"))
        self.assertIn("shard 1 is lost (not started after", self.decision_log())

    @async_to_deferred
    async def test_a_shard_with_no_worker_connected_is_given_up_after_the_start_bound(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        await self.master.data.updates.workerDisconnected(WORKER, self.master.masterid)
        done = self.start_suite()
        self.advance(LIMITS.start + 3 * POLL)
        self.assertEqual(len(self.cancelled()), 2)
        await self.master.data.updates.workerConnected(WORKER, self.master.masterid, {})
        await self.run_shard(0, attempt=2)
        await self.run_shard(1, attempt=2)
        self.advance(POLL)
        await self.ended(done)
        self.assertIn("waiting with no worker connected after", self.decision_log())

    @async_to_deferred
    async def test_a_shard_waiting_for_a_busy_worker_or_running_is_given_the_run_bound(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        self.advance(LIMITS.start * 3)  # queued behind other builds: the worker is connected
        req = (await self.requests())[(1, 1)]
        buildid = await self.start_build(req)
        self.advance(LIMITS.run - 2 * POLL)  # a long shard, still within max_time + timeout + margin
        self.assertEqual(self.cancelled(), [])
        plan = await self.plan(1, 1)
        await self.finish(req, buildid, {t: Outcome(PASSED, 1.0) for t in plan.ids})
        self.advance(POLL)
        await self.ended(done)

    @async_to_deferred
    async def test_a_running_shard_past_the_run_bound_is_cancelled(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        hung = (await self.requests())[(1, 1)]
        await self.start_build(hung)
        self.advance(LIMITS.run + 3 * POLL)
        self.assertEqual(self.cancelled(), [hung["buildrequestid"]])
        await self.run_shard(1, attempt=2)
        self.advance(POLL)
        await self.ended(done)
        self.assertIn("shard 1, attempt 1: running for", self.decision_log())

    @async_to_deferred
    async def test_a_shard_whose_worker_keeps_getting_lost_is_given_up(self):
        # Buildbot retries a build whose worker was lost; a worker that flaps must not keep the run waiting
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        await self.run_shard(0)
        req = (await self.requests())[(1, 1)]
        for _ in range(3):
            buildid = await self.start_build(req)
            await self.finish(req, buildid, None, RETRY)
            self.advance(POLL)
        self.assertEqual(self.cancelled(), [req["buildrequestid"]])
        self.assertEqual((await self.plan(1, 1)).cancelled, "lost its worker 3 times")
        await self.run_shard(1, attempt=2)
        self.advance(POLL)
        await self.ended(done)
        self.assertIn("Buildbot queued it again", self.decision_log())


class Stops(RunShardsCase):
    @async_to_deferred
    async def test_a_stop_of_the_parent_cancels_every_shard_and_records_nothing(self):
        self.expect_outcome(result=CANCELLED)
        done = self.start_suite()
        await self.run_shard(0)
        self.advance(POLL)
        step = self.get_nth_step(0)
        self.assertEqual(step.description, ["1/2 shards done (attempt 1)"])
        step.interrupt("stopped by bob\n" + "x" * 10_000)
        self.advance(POLL)
        await self.ended(done)
        self.assertEqual(len(self.cancelled()), 1)
        self.assertIsNone(await self.ledger())
        self.assertIn("(stopped by bob xxx", self.prop("lpdeploy_reason"))
        self.assertLess(len(self.prop("lpdeploy_reason")), 300, "a stop reason is free text: one bounded line")

    @async_to_deferred
    async def test_losing_the_parent_s_worker_does_not_stop_the_shards(self):
        # the verdict is the master's: the step still judges and records it, then Buildbot marks it
        # EXCEPTION (it was interrupted) and the build RETRY; the retried build relies on the ledger entry
        self.expect_outcome(result=EXCEPTION)
        self.expect_results()
        done = self.start_suite()
        self.get_nth_step(0).interrupt(Failure(error.ConnectionLost()))
        await self.run_shard(0)
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)
        self.assertEqual(self.cancelled(), [])
        self.assertEqual((await self.ledger()).result, Result.PASSED)


class WhatShardsCarry(RunShardsCase):
    @async_to_deferred
    async def test_a_security_run_triggers_only_the_security_shard_builder(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results(kind=SECURITY)
        done = self.start_suite(kind=SECURITY)
        requests = await self.requests()
        self.assertEqual({r["builderid"] for r in requests.values()}, {self.builderids[SECURITY_SHARD_BUILDER]})
        await self.run_shard(0)
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)

    @async_to_deferred
    async def test_a_gate_run_triggers_the_public_shard_builder(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results()
        done = self.start_suite()
        self.assertEqual({r["builderid"] for r in (await self.requests()).values()},
                         {self.builderids[SHARD_BUILDER]})
        await self.run_shard(0)
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)

    @async_to_deferred
    async def test_shard_properties_are_opaque_and_the_plan_is_in_the_database(self):
        self.expect_outcome(result=SUCCESS)
        self.expect_results(kind=SECURITY)
        done = self.start_suite(kind=SECURITY)
        for (shard, attempt), req in (await self.requests()).items():
            self.assertEqual(set(req["props"]), {"lpdeploy_parent_buildid", "lpdeploy_shard", "lpdeploy_attempt",
                                                 "reason", "scheduler"})
            self.assertEqual(req["props"]["reason"], f"shard {shard} of build {PARENT}, attempt {attempt}")
            buildset = await self.master.data.get(("buildsets", req["buildsetid"]))
            for text in (repr(req), repr(buildset)):
                self.assertNotIn(REVISION, text)
                self.assertFalse(any(t in text for t in TESTS), "a test id in the build request or buildset")
            plan = await self.plan(shard, attempt)
            self.assertEqual((plan.revision, plan.branch), (REVISION, "devel"))
        plans = [(await self.plan(k, 1)).ids for k in (0, 1)]
        self.assertEqual(sorted(plans[0] + plans[1]), TESTS)
        await self.run_shard(0)
        await self.run_shard(1)
        self.advance(POLL)
        await self.ended(done)
        self.assertIsNone(await self.plan(0, 1), "the plan outlived the verdict")


class ShardBuild(ShardCase):
    """The steps of one shard build: checkout, id file, collect."""

    KEY = (PARENT, 1, 2)

    async def given_plan(self, cancelled=None, ids=("pkg.test_01", "pkg.test_02")):
        plan = ShardPlan(REVISION, "devel", tuple(ids), cancelled)
        await ShardRuns(self.master).put_plan(self.KEY, plan)
        return plan

    def shard_props(self):
        return {"lpdeploy_parent_buildid": PARENT, "lpdeploy_shard": 1, "lpdeploy_attempt": 2,
                "workername": "linux"}

    def collect(self, kind=GATE, data=b"pkg.test_01\npkg.test_02\n", checked_out=REVISION, ran=SUCCESS):
        """Set up ``CollectShard`` after a checkout of ``checked_out`` and a run step that ended ``ran``."""
        path = os.path.join(self.master.basedir, "results")
        os.makedirs(self.master.basedir, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        self.settings = parse_settings({"repository": {"url": "file:///srv/upstream.git"},
                                        "suite": {"shards": 2, "list_command": ["l"], "run_command": ["r", "{id_file}"],
                                                  "results": "junit", "results_file": "r.xml"}})
        step = self.setup_flow_step(CollectShard(settings=self.settings, kind=kind, results_path="results"),
                                    **self.shard_props())
        remember_checkout(self.build, checked_out)
        self.build.executedSteps = [SimpleNamespace(name=RUN_STEP, results=ran)]
        return step

    @staticmethod
    def junit(failing=()):
        cases = "".join(f'<testcase classname="pkg" name="{t}" time="1">'
                        + ("<failure/>" if t in failing else "") + "</testcase>" for t in ("test_01", "test_02"))
        return f"<testsuite>{cases}</testsuite>".encode()

    async def filed(self):
        return await ShardRuns(self.master).results(self.KEY)

    @async_to_deferred
    async def test_results_of_the_planned_revision_are_filed(self):
        await self.given_plan()
        self.collect(data=self.junit())
        self.expect_outcome(result=SUCCESS, state_string="2 passed, 0 failed, 0 missing")
        await self.run_step()
        self.assertEqual(await self.filed(), {"pkg.test_01": Outcome(PASSED, 1.0), "pkg.test_02": Outcome(PASSED, 1.0)})

    @async_to_deferred
    async def test_results_from_a_checkout_of_another_revision_are_not_filed(self):
        await self.given_plan()
        self.collect(data=self.junit(), checked_out=OTHER)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIsNone(await self.filed())

    @async_to_deferred
    async def test_results_without_a_run_are_not_filed(self):
        await self.given_plan()
        self.collect(data=self.junit(), ran=CANCELLED)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIsNone(await self.filed())

    @async_to_deferred
    async def test_a_cancelled_attempt_files_nothing(self):
        await self.given_plan(cancelled="not started after 61s")
        self.collect(data=self.junit())
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIsNone(await self.filed())
        self.assertIn("cancelled by its parent", self.get_nth_step(0).descriptionDone[0])

    @async_to_deferred
    async def test_a_security_shard_names_and_counts_no_test_in_its_summary(self):
        await self.given_plan()
        self.collect(kind=SECURITY, data=self.junit(failing=["test_02"]))
        self.expect_outcome(result=FAILURE, state_string="results filed; some tests failed or did not run (failure)")
        await self.run_step()
        self.assertEqual(self.get_nth_step(0).logs["failures"].stdout, "pkg.test_02\n")

    @async_to_deferred
    async def test_a_public_shard_counts_its_results(self):
        await self.given_plan()
        self.collect(data=self.junit(failing=["test_02"]))
        self.expect_outcome(result=FAILURE, state_string="1 passed, 1 failed, 0 missing (failure)")
        await self.run_step()

    @async_to_deferred
    async def test_the_checkout_takes_the_revision_from_the_plan_and_sets_no_property(self):
        await self.given_plan()
        self.setup_flow_step(ShardCheckout(settings=self.settings), **self.shard_props())
        command = checkout_command(self.settings.repository.url, "refs/heads/devel", REVISION)
        self.expect_commands(ExpectShell(workdir="wkdir", command=command, log_environ=False)
                             .stdout(REVISION + "\n").exit(0))
        self.expect_outcome(result=SUCCESS, state_string="checked out the planned revision")
        self.expect_no_property("got_revision")
        await self.run_step()
        self.assertEqual(getattr(self.build, "lpdeploy_checked_out", None), REVISION)

    @async_to_deferred
    async def test_a_cancelled_attempt_checks_nothing_out(self):
        await self.given_plan(cancelled="stopped with its parent")
        self.setup_flow_step(ShardCheckout(settings=self.settings), **self.shard_props())
        self.expect_outcome(result=FAILURE)
        await self.run_step()

    @async_to_deferred
    async def test_the_id_file_is_downloaded_from_the_plan(self):
        await self.given_plan()
        # the harness's data API takes only identifiers as step names (a real master takes "test ids")
        self.setup_flow_step(ShardIds(name="test-ids"), **self.shard_props())
        got = []
        self.expect_commands(
            ExpectDownloadFile(workerdest=ID_FILE, workdir="wkdir", blocksize=16384, maxsize=None, mode=None,
                               reader=_Any()).download_string(got.append).exit(0))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(b"".join(got), b"pkg.test_01\npkg.test_02\n")


class _Any:
    """Matches any value in an expected command's arguments."""

    def __eq__(self, other):
        return True


def test_the_configurator_wires_security_shards_to_their_embargoed_builder():
    """Each shard scheduler triggers its own builder, and the security one is embargoed."""
    from lpdeploy import configurator  # here: importing it after buildbot.test turns a deprecation into an error

    c: dict = {}
    configurator.apply(c, parse_settings({
        "repository": {"url": "file:///srv/upstream.git"},
        "suite": {"shards": 2, "list_command": ["l"], "run_command": ["r", "{id_file}"]}}))
    triggers = {s.name: s for s in c["schedulers"] if isinstance(s, Triggerable)}
    assert (SHARD_BUILDER, SECURITY_SHARD_BUILDER) == (configurator.SHARD_BUILDER,
                                                        configurator.SECURITY_SHARD_BUILDER)
    assert triggers[SECURITY_SHARD_SCHEDULER].builderNames == [SECURITY_SHARD_BUILDER]
    assert triggers[SHARD_SCHEDULER].builderNames == [SHARD_BUILDER]
    builders = {b.name: b for b in c["builders"]}
    collect = [s for s in builders[SECURITY_SHARD_BUILDER].factory.steps if s.step_class is CollectShard]
    assert collect[0].kwargs["kind"] == SECURITY
