"""The inspection timer (``[deploy] inspect_interval``) in Buildbot's scheduler harness.

Buildbot's real database behind ``addBuildset`` and a fake clock: what is
checked is what the scheduler queues — an inspect build on activation and
one per interval after, none while one is still queued (a slow inspection
never piles up), and none with the interval at 0.
"""

from __future__ import annotations

from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.scheduler import SchedulerMixin
from buildbot.util.twisted import async_to_deferred
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.settings import parse_settings
from lpdeploy.master.schedulers import InspectScheduler

INSPECT_BUILDER = "lpdeploy-inspect"
OBJECTID, SCHEDULERID = 81, 82


class InspectTimer(SchedulerMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        yield self.setUpScheduler()

    async def start(self, interval: int) -> InspectScheduler:
        settings = parse_settings({
            "repository": {"url": "https://git.example.invalid/lp.git"},
            "deploy": {"inspect_interval": interval},
            "servers": [{"name": "app1", "deploy_command": ["deploy"], "inspect_command": ["what-runs", "{server}"]}]})
        sched = InspectScheduler(name="lpdeploy-inspect", builderNames=[INSPECT_BUILDER], settings=settings)
        await self.attachScheduler(sched, OBJECTID, SCHEDULERID, createBuilderDB=True)
        await sched.configureService()
        await sched.activate()
        self.addCleanup(sched.deactivate)
        return sched

    async def buildsets(self) -> int:
        return len(await self.master.db.buildsets.getBuildsets())

    async def finish_all(self) -> None:
        for br in await self.master.db.buildrequests.getBuildRequests(complete=False):
            await self.master.db.buildrequests.completeBuildRequests([br.buildrequestid], 0)

    @async_to_deferred
    async def test_an_inspection_is_queued_at_once_and_every_interval_after(self):
        await self.start(900)
        self.assertEqual(await self.buildsets(), 1)
        await self.finish_all()
        self.reactor.advance(899)
        self.assertEqual(await self.buildsets(), 1)
        self.reactor.advance(1)
        self.assertEqual(await self.buildsets(), 2)

    @async_to_deferred
    async def test_no_second_inspection_while_one_is_still_queued(self):
        await self.start(900)
        self.reactor.advance(900)
        self.reactor.advance(900)
        self.assertEqual(await self.buildsets(), 1)

    @async_to_deferred
    async def test_an_interval_of_zero_turns_the_timer_off(self):
        await self.start(0)
        self.reactor.advance(86400)
        self.assertEqual(await self.buildsets(), 0)
