"""The gate scheduler and the promotion timer in Buildbot's scheduler harness.

``SchedulerMixin`` gives a fake master with Buildbot's real database (SQLite)
and the real data API behind ``addBuildset``; buildsets and build requests
land in real tables, so "exactly one buildset" is counted in the database and
"a gate request is already queued" is a real unclaimed request row. The
upstream is a real bare git repository; changes are real change rows
delivered through the (fake) message queue to the scheduler's real consumer.

Threads and the master's basedir are set up by ``support.RealUpstreamMixin``:
under ``TestReactorMixin`` real git runs synchronously in the test thread, and
the master gets a fresh temporary basedir.
"""

from __future__ import annotations

import datetime

from buildbot.test import fakedb
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.scheduler import SchedulerMixin
from buildbot.util.twisted import async_to_deferred
from support import RealUpstreamMixin
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.model import Action, Result, TestRecord
from lpdeploy.core.promotion_schedule import latest_slot, next_slot, slot_decision
from lpdeploy.core.settings import parse_settings
from lpdeploy.master.schedulers import RECONCILE_INTERVAL, CronPromotion, GateScheduler
from lpdeploy.stores.ledger import DbLedger

GATE_BUILDER = "lpdeploy-gate"
PROMOTE_BUILDER = "lpdeploy-promote"
OBJECTID, SCHEDULERID = 61, 62


class SchedulerCase(RealUpstreamMixin, SchedulerMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-sched-")
        self.settings = parse_settings({"repository": {"url": self.repo.url}})
        yield self.setUpScheduler()


class GateSchedulerTests(SchedulerCase):
    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.base = self.repo.commit("Initial release", None)
        self.d1 = self.repo.commit("Add search", self.base)
        self.repo.push("stable", self.base)
        self.repo.push("devel", self.d1)

    @async_to_deferred
    async def start(self, rows=None):
        """Attach and activate the gate scheduler; ``rows`` (given the gate builder id) go in first."""
        sched = GateScheduler(name="lpdeploy-gate", builderNames=[GATE_BUILDER], settings=self.settings)
        await self.attachScheduler(sched, OBJECTID, SCHEDULERID, createBuilderDB=True)
        builderid = await self.master.data.updates.findBuilderId(GATE_BUILDER)
        await self.master.db.insert_test_data(list(rows(builderid)) if rows else [])
        await sched.configureService()
        await sched.activate()
        # stop the periodic reconciliation before the test reactor checks for leftover calls
        self.addCleanup(sched.deactivate)
        return sched

    async def record(self, sha, result=Result.PASSED):
        await DbLedger(self.master).record(TestRecord(
            tree=self.repo.tree(sha), commit=sha, suite=self.settings.suite.identity, result=result,
            build_url="http://localhost:8010/#/builders/1/builds/3", build_number=3,
            finished_at=1_700_000_000.0))

    async def buildsets(self):
        """[(builder names, [(branch, revision, repository)])] of every buildset in the database."""
        builders = {b.id: b.name for b in await self.master.db.builders.getBuilders()}
        out = []
        for bs in await self.master.db.buildsets.getBuildsets():
            brs = await self.master.db.buildrequests.getBuildRequests(bsid=bs.bsid)
            stamps = [await self.master.db.sourcestamps.getSourceStamp(ssid) for ssid in bs.sourcestamps]
            out.append((sorted(builders[br.builderid] for br in brs),
                        [(s.branch, s.revision, s.repository) for s in stamps]))
        return out

    async def deliver_change(self, branch, revision):
        """A change row as the poller would add it, delivered to the scheduler's consumer."""
        changeid = await self.master.db.changes.addChange(
            author="Test Developer <dev@example.invalid>", committer="Test Developer <dev@example.invalid>",
            comments="pushed", revision=revision,
            branch=branch, repository=self.repo.url, codebase="", project="", files=[])
        msg = await self.master.data.get(("changes", changeid))
        self.master.mq.callConsumer(("changes", str(changeid), "new"), msg)
        await self.master.mq.wait_consumed()

    @async_to_deferred
    async def test_activate_with_an_untested_devel_tip_queues_exactly_one_gate_build(self):
        await self.start()
        self.assertEqual(await self.buildsets(), [([GATE_BUILDER], [("devel", self.d1, self.repo.url)])])

    @async_to_deferred
    async def test_activate_when_the_devel_tip_is_tested_and_on_stable_queues_nothing(self):
        await self.record(self.d1)
        self.repo.push("stable", self.d1)
        await self.start()
        self.assertEqual(await self.buildsets(), [])

    @async_to_deferred
    async def test_activate_when_the_devel_tip_is_tested_but_not_on_stable_queues_a_gate_build(self):
        # the pass was recorded but the move never happened (say, a crash): the gate owes a build
        await self.record(self.d1)
        await self.start()
        self.assertEqual(await self.buildsets(), [([GATE_BUILDER], [("devel", self.d1, self.repo.url)])])

    @async_to_deferred
    async def test_activate_with_a_failed_devel_tip_waits_for_a_new_push(self):
        await self.record(self.d1, Result.FAILED)
        await self.start()
        self.assertEqual(await self.buildsets(), [])

    @async_to_deferred
    async def test_activate_without_a_devel_branch_queues_nothing(self):
        self.repo.git("push", "--quiet", self.repo.bare, ":refs/heads/devel")
        await self.start()
        self.assertEqual(await self.buildsets(), [])

    @async_to_deferred
    async def test_a_change_on_devel_queues_one_gate_build_for_its_revision(self):
        await self.record(self.d1)
        self.repo.push("stable", self.d1)
        await self.start()
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.deliver_change("devel", d2)
        self.assertEqual(await self.buildsets(), [([GATE_BUILDER], [("devel", d2, self.repo.url)])])

    @async_to_deferred
    async def test_a_change_on_stable_queues_nothing_and_the_periodic_check_catches_devel(self):
        await self.record(self.d1)
        self.repo.push("stable", self.d1)
        await self.start()
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.deliver_change("stable", self.d1)
        self.assertEqual(await self.buildsets(), [])
        # the devel event was lost; the tips are the truth and the periodic check finds d2
        self.reactor.advance(RECONCILE_INTERVAL)
        self.assertEqual(await self.buildsets(), [([GATE_BUILDER], [("devel", d2, self.repo.url)])])

    @async_to_deferred
    async def test_a_change_while_a_gate_request_is_queued_adds_no_second_buildset(self):
        await self.start()
        self.assertEqual(len(await self.buildsets()), 1)
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.deliver_change("devel", d2)
        self.reactor.advance(RECONCILE_INTERVAL)
        # the queued request gates the newest devel tip when it starts: d2 is batched into it
        self.assertEqual(await self.buildsets(), [([GATE_BUILDER], [("devel", self.d1, self.repo.url)])])

    def earlier_request(self, builderid, complete=0, claimed=False):
        """A gate request from before the start, as Buildbot stores one (with its source stamp)."""
        rows = [
            fakedb.SourceStamp(id=800, branch="devel", revision=self.base, repository=self.repo.url,
                               project=""),
            fakedb.Buildset(id=900, complete=complete),
            fakedb.BuildsetSourceStamp(buildsetid=900, sourcestampid=800),
            fakedb.BuildRequest(id=901, buildsetid=900, builderid=builderid, complete=complete,
                                results=2 if complete else -1),
        ]
        if claimed:
            rows.append(fakedb.BuildRequestClaim(brid=901, masterid=fakedb.FakeDBConnector.MASTER_ID,
                                                 claimed_at=12345678))
        return rows

    async def gate_buildsets(self):
        return [bs.bsid for bs in await self.master.db.buildsets.getBuildsets()]

    @async_to_deferred
    async def test_the_earlier_request_fixture_is_seen_as_queued(self):
        # guards the three tests below: Buildbot must see the fixture as an unclaimed request
        await self.start(self.earlier_request)
        builderid = await self.master.data.updates.findBuilderId(GATE_BUILDER)
        queued = await self.master.db.buildrequests.getBuildRequests(
            builderid=builderid, complete=False, claimed=False)
        self.assertEqual([br.buildrequestid for br in queued], [901])

    @async_to_deferred
    async def test_an_unclaimed_gate_request_from_before_the_start_prevents_a_new_one(self):
        await self.start(self.earlier_request)
        self.assertEqual(await self.gate_buildsets(), [900])

    @async_to_deferred
    async def test_a_claimed_gate_request_does_not_prevent_queueing_the_newer_tip(self):
        # a running gate build may test an older tip; the current tip still needs its own request
        await self.start(lambda builderid: self.earlier_request(builderid, claimed=True))
        self.assertEqual(len(await self.gate_buildsets()), 2)

    def running_build(self, builderid, revision):
        """A gate build from before the start, still running, that decided on ``revision`` (None: not yet)."""
        return [
            *self.earlier_request(builderid, claimed=True),
            fakedb.Worker(id=47, name="worker-1"),
            fakedb.Build(id=700, number=7, buildrequestid=901, builderid=builderid, workerid=47,
                         masterid=fakedb.FakeDBConnector.MASTER_ID, results=None, complete_at=None),
            *([fakedb.BuildProperty(buildid=700, name="lpdeploy_revision", value=revision, source="lpdeploy")]
              if revision else []),
        ]

    @async_to_deferred
    async def test_the_running_build_fixture_is_seen_as_running_with_its_revision(self):
        # guards the two tests below: Buildbot must see the fixture as an unfinished build
        await self.start(lambda builderid: self.running_build(builderid, self.d1))
        (build,) = await self.master.data.get(("builds",))
        self.assertFalse(build["complete"])
        props = await self.master.data.get(("builds", build["buildid"], "properties"))
        self.assertEqual(props["lpdeploy_revision"], (self.d1, "lpdeploy"))

    @async_to_deferred
    async def test_a_running_gate_build_on_the_devel_tip_counts_as_pending(self):
        # issue 9, mutant 4: its verdict is coming; the periodic check must not run the suite again
        await self.start(lambda builderid: self.running_build(builderid, self.d1))
        self.assertEqual(await self.gate_buildsets(), [900])
        self.reactor.advance(RECONCILE_INTERVAL)
        self.assertEqual(await self.gate_buildsets(), [900])

    @async_to_deferred
    async def test_a_running_gate_build_that_has_not_decided_yet_counts_as_pending(self):
        # its decide step will take the devel tip when it runs: a push seen while it starts
        # (say, the poller's first report after a restart) must not queue the same tip twice
        await self.start(lambda builderid: self.running_build(builderid, None))
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.deliver_change("devel", d2)
        self.assertEqual(await self.gate_buildsets(), [900])

    @async_to_deferred
    async def test_a_running_gate_build_on_an_older_tip_does_not_hide_the_newer_tip(self):
        await self.start(lambda builderid: self.running_build(builderid, self.base))
        buildsets = await self.buildsets()
        self.assertEqual(len(buildsets), 2)
        self.assertIn(([GATE_BUILDER], [("devel", self.d1, self.repo.url)]), buildsets)

    @async_to_deferred
    async def test_a_completed_gate_request_does_not_count_as_queued(self):
        await self.start(lambda builderid: self.earlier_request(builderid, complete=1))
        self.assertEqual(len(await self.gate_buildsets()), 2)

    @async_to_deferred
    async def test_a_request_on_another_builder_does_not_count_as_queued(self):
        await self.start(lambda builderid: [
            fakedb.Builder(id=builderid + 50, name=PROMOTE_BUILDER),
            *self.earlier_request(builderid + 50),
        ])
        self.assertEqual(len(await self.gate_buildsets()), 2)

    @async_to_deferred
    async def test_the_buildset_reason_says_why(self):
        await self.start()
        (bs,) = await self.master.db.buildsets.getBuildsets()
        self.assertIn("periodic check", bs.reason)
        self.assertIn(f"devel tip {self.d1[:12]} is not gated yet", bs.reason)


class DuplicateAndOutOfOrderEvents(SchedulerCase):
    """Issue 12: the same push reported twice (poller and hook, or again after a restart), or pushes
    reported in the wrong order: exactly one gate build per tree. Events are hints; the tips decide.

    The set-up and helpers are ``GateSchedulerTests``' (borrowed, not inherited: its tests run once).
    """

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.base = self.repo.commit("Initial release", None)
        self.d1 = self.repo.commit("Add search", self.base)
        self.repo.push("stable", self.base)
        self.repo.push("devel", self.d1)

    start = GateSchedulerTests.start
    record = GateSchedulerTests.record
    buildsets = GateSchedulerTests.buildsets
    deliver_change = GateSchedulerTests.deliver_change
    earlier_request = GateSchedulerTests.earlier_request
    running_build = GateSchedulerTests.running_build
    gate_buildsets = GateSchedulerTests.gate_buildsets

    async def gated(self, sha):
        await self.record(sha)
        self.repo.push("stable", sha)

    async def gate_revisions(self):
        return [stamps[0][1] for _, stamps in await self.buildsets()]

    @async_to_deferred
    async def test_the_same_push_reported_twice_queues_one_gate_build(self):
        await self.gated(self.d1)
        await self.start()
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.deliver_change("devel", d2)
        await self.deliver_change("devel", d2)
        self.assertEqual(await self.gate_revisions(), [d2])

    @async_to_deferred
    async def test_pushes_reported_newest_first_queue_one_gate_build_for_the_devel_tip(self):
        await self.gated(self.d1)
        await self.start()
        d2 = self.repo.commit("Faster search", self.d1)
        d3 = self.repo.commit("Search by author", d2)
        self.repo.push("devel", d3)
        await self.deliver_change("devel", d3)
        await self.deliver_change("devel", d2)  # the older push's report arrives last
        self.assertEqual(await self.gate_revisions(), [d3])

    @async_to_deferred
    async def test_a_late_report_of_a_push_already_gated_and_moved_queues_nothing(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.gated(d2)
        await self.start()
        await self.deliver_change("devel", d2)  # again, after a restart
        await self.deliver_change("devel", self.d1)  # and an older one, out of order
        self.assertEqual(await self.buildsets(), [])

    @async_to_deferred
    async def test_a_report_of_a_push_whose_tree_failed_queues_nothing(self):
        d2 = self.repo.commit("Broken search", self.d1)
        self.repo.push("devel", d2)
        await self.gated(self.d1)
        await self.record(d2, Result.FAILED)
        await self.start()
        await self.deliver_change("devel", d2)
        self.assertEqual(await self.buildsets(), [])

    @async_to_deferred
    async def test_a_new_commit_with_a_tested_tree_is_not_tested_again_only_moved(self):
        # a revert back to a tested tree (another commit, the same tree): one run of the suite per tree;
        # the build queued for it finds the pass in the ledger (Decide) and only moves stable
        d2 = self.repo.commit("Faster search", self.d1)
        revert = self.repo.commit("Revert faster search", d2, content=self.repo.content(self.d1))
        self.assertEqual(self.repo.tree(revert), self.repo.tree(self.d1))
        self.repo.push("devel", revert)
        await self.gated(self.d1)
        await self.start()
        await self.deliver_change("devel", revert)
        await self.deliver_change("devel", revert)
        self.assertEqual(await self.gate_revisions(), [revert])

    @async_to_deferred
    async def test_a_report_while_the_gate_build_of_that_push_runs_queues_nothing(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.start(lambda builderid: self.running_build(builderid, d2))
        await self.deliver_change("devel", d2)
        await self.deliver_change("devel", d2)
        self.reactor.advance(RECONCILE_INTERVAL)
        self.assertEqual(await self.gate_buildsets(), [900])


class CronPromotionTests(SchedulerCase):
    async def make(self, cron="0 6 * * *"):
        sched = CronPromotion(name="promotion-schedule", builderNames=[PROMOTE_BUILDER], cron=cron)
        await self.attachScheduler(sched, OBJECTID, SCHEDULERID, createBuilderDB=True)
        await sched.configureService()
        return sched

    @staticmethod
    def local(*args):
        return datetime.datetime(*args).timestamp()  # naive = the master's local time

    @async_to_deferred
    async def test_next_build_time_is_the_next_cron_instant(self):
        sched = await self.make()
        cases = [
            (self.local(2025, 3, 12, 5, 59, 30), self.local(2025, 3, 12, 6, 0)),
            (self.local(2025, 3, 12, 6, 0), self.local(2025, 3, 13, 6, 0)),  # strictly after
            (self.local(2025, 3, 12, 6, 0, 1), self.local(2025, 3, 13, 6, 0)),
            (self.local(2025, 3, 31, 23, 0), self.local(2025, 4, 1, 6, 0)),
        ]
        for last, expected in cases:
            self.assertEqual(await sched.getNextBuildTime(last), expected, f"after {last}")

    @async_to_deferred
    async def test_weekday_schedules_skip_the_weekend(self):
        sched = await self.make("30 7 * * 1-5")
        friday_after = self.local(2025, 3, 14, 8, 0)
        self.assertEqual(await sched.getNextBuildTime(friday_after), self.local(2025, 3, 17, 7, 30))

    @async_to_deferred
    async def test_never_actuated_counts_from_now(self):
        sched = await self.make()
        self.reactor.advance(self.local(2025, 3, 12, 5, 0))
        self.assertEqual(await sched.getNextBuildTime(None), self.local(2025, 3, 12, 6, 0))

    @async_to_deferred
    async def test_at_the_cron_instant_a_promote_buildset_is_added(self):
        sched = await self.make()
        self.reactor.advance(self.local(2025, 3, 12, 5, 0))
        await sched.activate()
        self.addCleanup(sched.deactivate)
        self.assertEqual(await self.master.db.buildsets.getBuildsets(), [])
        self.reactor.advance(self.local(2025, 3, 12, 6, 0) - self.reactor.seconds())
        (bs,) = await self.master.db.buildsets.getBuildsets()
        self.assertEqual(bs.reason, "scheduled promotion (promotion-schedule)")
        (br,) = await self.master.db.buildrequests.getBuildRequests(bsid=bs.bsid)
        builders = {b.id: b.name for b in await self.master.db.builders.getBuilders()}
        self.assertEqual(builders[br.builderid], PROMOTE_BUILDER)

    def test_an_invalid_cron_expression_is_a_config_error(self):
        from buildbot.config.errors import ConfigErrors

        with self.assertRaises(ConfigErrors):
            CronPromotion(name="promotion-schedule", builderNames=[PROMOTE_BUILDER], cron="every morning")


class CronSlotsAcrossRestartsAndClocks(SchedulerCase):
    """Issue 12 (clock): a slot missed while the masters were down fires once at start, never twice; a clock
    jump backwards does not fire a slot again; a slot another master fired is not fired again.

    Buildbot's fake clock (``TestReactorMixin``) stands for the master's clock; a "restart" is the scheduler
    deactivated and activated again (``Timed`` and lpdeploy read their state from the database only then).
    """

    local = staticmethod(CronPromotionTests.local)

    async def make(self, cron="0 6 * * *"):
        sched = CronPromotion(name="promotion-schedule", builderNames=[PROMOTE_BUILDER], cron=cron)
        await self.attachScheduler(sched, OBJECTID, SCHEDULERID, createBuilderDB=True)
        await sched.configureService()
        return sched

    async def promotions(self):
        return len(await self.master.db.buildsets.getBuildsets())

    def clock_to(self, when):
        self.reactor.advance(when - self.reactor.seconds())  # backwards too: Clock.advance takes negatives

    async def restart(self, sched):
        await sched.deactivate()
        await sched.activate()

    @async_to_deferred
    async def test_a_slot_missed_while_the_masters_were_down_fires_once_at_start(self):
        sched = await self.make()
        yesterday = self.local(2025, 3, 11, 6, 0)
        await sched.setState("last_build", yesterday)  # the last firing before every master went down
        await sched.setState("last_slot", yesterday)
        self.clock_to(self.local(2025, 3, 12, 8, 0))  # today's 06:00 passed while nothing ran
        await sched.activate()
        self.addCleanup(sched.deactivate)
        self.reactor.advance(0)  # Timed fires a slot that is due at once on the reactor's next turn
        self.assertEqual(await self.promotions(), 1, "the missed slot did not fire at start")
        self.clock_to(self.local(2025, 3, 12, 9, 0))
        await self.restart(sched)  # started again after it fired
        self.clock_to(self.local(2025, 3, 13, 5, 59))
        self.assertEqual(await self.promotions(), 1, "the missed slot fired twice")
        self.clock_to(self.local(2025, 3, 13, 6, 0))
        self.assertEqual(await self.promotions(), 2)  # and the next slot still fires, once

    @async_to_deferred
    async def test_several_missed_slots_fire_once_not_once_each(self):
        sched = await self.make("0 * * * *")  # hourly
        await sched.setState("last_build", self.local(2025, 3, 12, 5, 0))
        await sched.setState("last_slot", self.local(2025, 3, 12, 5, 0))
        self.clock_to(self.local(2025, 3, 12, 8, 30))  # 06:00, 07:00 and 08:00 passed
        await sched.activate()
        self.addCleanup(sched.deactivate)
        self.clock_to(self.local(2025, 3, 12, 8, 59))
        self.assertEqual(await self.promotions(), 1)
        self.assertEqual(await sched.getState("last_slot"), self.local(2025, 3, 12, 8, 0))

    @async_to_deferred
    async def test_a_clock_jump_backwards_does_not_fire_a_slot_again(self):
        sched = await self.make()
        self.clock_to(self.local(2025, 3, 12, 5, 0))
        await sched.activate()
        self.addCleanup(sched.deactivate)
        self.clock_to(self.local(2025, 3, 12, 6, 0))
        self.assertEqual(await self.promotions(), 1)
        self.clock_to(self.local(2025, 3, 12, 5, 30))  # the clock is set back half an hour ...
        self.clock_to(self.local(2025, 3, 12, 6, 1))  # ... and passes 06:00 again
        self.assertEqual(await self.promotions(), 1, "the slot fired again after the clock went back")
        self.clock_to(self.local(2025, 3, 12, 5, 30))  # back again, and this time the master restarts
        await self.restart(sched)
        self.clock_to(self.local(2025, 3, 12, 6, 1))
        self.assertEqual(await self.promotions(), 1, "the slot fired again after a restart on a clock set back")

    @async_to_deferred
    async def test_a_slot_another_master_already_fired_is_not_fired_again(self):
        sched = await self.make()
        self.clock_to(self.local(2025, 3, 12, 5, 0))
        await sched.activate()
        self.addCleanup(sched.deactivate)
        # meanwhile another master (this scheduler's earlier owner) fired 06:00: the database says so
        await sched.setState("last_slot", self.local(2025, 3, 12, 6, 0))
        self.clock_to(self.local(2025, 3, 12, 6, 0))
        self.assertEqual(await self.promotions(), 0)
        self.clock_to(self.local(2025, 3, 13, 6, 0))
        self.assertEqual(await self.promotions(), 1)


def test_latest_slot_is_the_newest_cron_instant_not_after_now():
    local = CronPromotionTests.local
    assert latest_slot("0 6 * * *", local(2025, 3, 12, 6, 0)) == local(2025, 3, 12, 6, 0)  # on the slot
    assert latest_slot("0 6 * * *", local(2025, 3, 12, 6, 0) - 0.5) == local(2025, 3, 11, 6, 0)
    assert latest_slot("0 * * * *", local(2025, 3, 12, 8, 30)) == local(2025, 3, 12, 8, 0)
    assert next_slot("0 6 * * *", local(2025, 3, 12, 6, 0)) == local(2025, 3, 13, 6, 0)  # strictly after


def test_a_slot_fires_only_when_newer_than_the_last_fired():
    assert slot_decision(100.0, None).action is Action.MOVE
    assert slot_decision(200.0, 100.0).action is Action.MOVE
    assert slot_decision(100.0, 100.0).action is Action.NOTHING
    assert slot_decision(100.0, 200.0).action is Action.NOTHING
    assert "already fired" in slot_decision(100.0, 100.0).reason
