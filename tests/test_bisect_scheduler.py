"""The gate scheduler bisects a failing batch: one round of probes at a time, newer tips first.

Same harness as ``test_gate_scheduler.py``: Buildbot's scheduler harness on
its real database, a real upstream. The batch is c1..c4 on devel beyond
stable at ``base``; the gate's run on c4 failed (a ledger entry).
"""

from __future__ import annotations

import test_gate_scheduler as gate_tests
from buildbot.test import fakedb
from buildbot.util.twisted import async_to_deferred
from twisted.internet import defer

from lpdeploy.core import properties as prop
from lpdeploy.core.model import Result
from lpdeploy.master.schedulers import PROBE_PRIORITY, RECONCILE_INTERVAL, TIP_PRIORITY

GATE_BUILDER = gate_tests.GATE_BUILDER


class BisectScheduling(gate_tests.SchedulerCase):
    # the gate scheduler tests' helpers (imported as a module: pytest would collect their tests again)
    start = gate_tests.GateSchedulerTests.start
    record = gate_tests.GateSchedulerTests.record
    deliver_change = gate_tests.GateSchedulerTests.deliver_change

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.base = self.repo.commit("Initial release", None)
        self.repo.push("stable", self.base)

    def batch(self, n=4):
        self.c = [self.base]
        for i in range(1, n + 1):
            self.c.append(self.repo.commit(f"Change {i}", self.c[-1]))
        self.repo.push("devel", self.c[-1])

    async def queued(self):
        """[(revision, probe property, priority)] of every request in the database, oldest first."""
        out = []
        for bs in await self.master.db.buildsets.getBuildsets():
            if not bs.sourcestamps:
                continue  # a fixture's busy build of another builder
            props = await self.master.db.buildsets.getBuildsetProperties(bs.bsid)
            (br,) = await self.master.db.buildrequests.getBuildRequests(bsid=bs.bsid)
            (ss,) = [await self.master.db.sourcestamps.getSourceStamp(i) for i in bs.sourcestamps]
            out.append((ss.revision, props.get(prop.PROBE, (None,))[0], br.priority))
        return out

    @async_to_deferred
    async def test_a_failed_tip_of_a_batch_of_four_queues_one_probe_in_the_middle(self):
        self.batch()
        await self.record(self.c[4], Result.FAILED)
        await self.start()
        self.assertEqual(await self.queued(), [(self.c[2], self.c[2], PROBE_PRIORITY)])
        (bs,) = await self.master.db.buildsets.getBuildsets()
        self.assertIn(f"bisection probe {self.c[2][:12]}", bs.reason)

    @async_to_deferred
    async def test_a_queued_probe_holds_the_next_round(self):
        self.batch()
        await self.record(self.c[4], Result.FAILED)
        await self.start()
        await self.record(self.c[2], Result.PASSED)  # known now, but the round is not over
        self.reactor.advance(RECONCILE_INTERVAL)
        self.assertEqual(len(await self.queued()), 1)

    @async_to_deferred
    async def test_the_next_round_follows_a_finished_probe(self):
        self.batch()
        await self.record(self.c[4], Result.FAILED)
        self.sched = await self.start()
        (bs,) = await self.master.db.buildsets.getBuildsets()
        (br,) = await self.master.db.buildrequests.getBuildRequests(bsid=bs.bsid)
        builderid = await self.master.data.updates.findBuilderId(GATE_BUILDER)
        # the probe's build has finished (its request is completed a moment later, as in Buildbot)
        await self.master.db.insert_test_data([
            fakedb.Worker(id=47, name="worker-1"),
            fakedb.BuildRequestClaim(brid=br.buildrequestid, masterid=fakedb.FakeDBConnector.MASTER_ID,
                                     claimed_at=12345678),
            fakedb.Build(id=700, number=7, buildrequestid=br.buildrequestid, builderid=builderid, workerid=47,
                         masterid=fakedb.FakeDBConnector.MASTER_ID, results=2, complete_at=12345999),
        ])
        await self.record(self.c[2], Result.PASSED)
        await self.sched.reconcile("gate build 7 finished")
        self.assertEqual([q[1] for q in await self.queued()], [self.c[2], self.c[3]])

    @async_to_deferred
    async def test_a_push_during_the_bisection_is_queued_before_the_probes(self):
        self.batch()
        await self.record(self.c[4], Result.FAILED)
        await self.start()
        c5 = self.repo.commit("Change 5", self.c[4])
        self.repo.push("devel", c5)
        await self.deliver_change("devel", c5)
        queued = await self.queued()
        self.assertEqual(queued[0], (self.c[2], self.c[2], PROBE_PRIORITY))
        self.assertEqual(queued[1], (c5, None, TIP_PRIORITY))
        self.assertGreater(TIP_PRIORITY, PROBE_PRIORITY)  # Buildbot starts the highest priority first

    @async_to_deferred
    async def test_a_single_failing_push_needs_no_probe(self):
        self.batch(1)
        await self.record(self.c[1], Result.FAILED)
        await self.start()
        self.assertEqual(await self.queued(), [])

    @async_to_deferred
    async def test_a_tip_that_passed_after_the_failure_stops_the_bisection(self):
        self.batch()
        await self.record(self.c[3], Result.FAILED)
        await self.record(self.c[4], Result.PASSED)  # a fix landed: stable will move to c4
        self.repo.push("stable", self.c[4])
        await self.start()
        self.assertEqual(await self.queued(), [])

    @async_to_deferred
    async def test_a_finished_gate_build_is_a_hint(self):
        self.batch()
        await self.start()
        await self.record(self.c[4], Result.FAILED)  # the gate's run on the tip just failed
        builderid = await self.master.data.updates.findBuilderId(GATE_BUILDER)
        await self.master.db.insert_test_data([
            fakedb.SourceStamp(id=800, branch="devel", revision=self.base, repository=self.repo.url, project=""),
            fakedb.Buildset(id=900, complete=1),
            fakedb.BuildsetSourceStamp(id=950, buildsetid=900, sourcestampid=800),
            fakedb.BuildRequest(id=901, buildsetid=900, builderid=builderid, complete=1, results=2),
            fakedb.Worker(id=47, name="worker-1"),
            fakedb.Build(id=700, number=7, buildrequestid=901, builderid=builderid, workerid=47,
                         masterid=fakedb.FakeDBConnector.MASTER_ID, results=2, complete_at=12345999),
        ])
        before = len(await self.queued())
        build = await self.master.data.get(("builds", 700))
        # Buildbot 4.3 announces a finished build as ("builds", id, "finished"); the fake queue's message
        # checker still knows only "new" and "complete", so it is switched off for this one message
        self.master.mq.verifyMessages = False
        self.master.mq.callConsumer(("builds", "700", "finished"), build)
        await self.master.mq.wait_consumed()
        self.assertEqual([q[1] for q in await self.queued()][before:], [self.c[2]])

    def workers(self, connected, busy=0):
        """``connected`` workers attached to this master, the first ``busy`` of them running a build."""
        master = fakedb.FakeDBConnector.MASTER_ID
        rows: list = []
        for i in range(1, connected + 1):
            rows += [fakedb.Worker(id=40 + i, name=f"worker-{i}"),
                     fakedb.ConnectedWorker(id=60 + i, masterid=master, workerid=40 + i)]
        if busy:
            rows += [fakedb.Buildset(id=910, complete=0),
                     fakedb.BuildRequest(id=911, buildsetid=910, builderid=77, complete=0, results=-1),
                     fakedb.Builder(id=77, name="lpdeploy-promote")]
            rows += [fakedb.Build(id=720 + i, number=i, buildrequestid=911, builderid=77, workerid=40 + i,
                                  masterid=master, results=None, complete_at=None) for i in range(1, busy + 1)]
        return lambda builderid: rows

    @async_to_deferred
    async def test_three_idle_workers_probe_three_points_splitting_the_batch_in_four(self):
        self.batch(9)
        await self.record(self.c[9], Result.FAILED)
        await self.start(self.workers(3))
        # candidates c1..c9 cut into four parts: c2 | c4 | c6 | (c9 failed)
        self.assertEqual(sorted(q[1] for q in await self.queued()), sorted([self.c[2], self.c[4], self.c[6]]))

    @async_to_deferred
    async def test_busy_workers_are_not_counted_as_idle(self):
        self.batch(9)
        await self.record(self.c[9], Result.FAILED)
        await self.start(self.workers(3, busy=2))
        self.assertEqual([q[1] for q in await self.queued()], [self.c[4]])
