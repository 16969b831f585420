"""The auto-deploy scheduler (``auto_deploy = "stable"`` servers) in Buildbot's scheduler harness.

Same set-up as ``test_gate_scheduler.py``: Buildbot's real database behind
``addBuildset``, a real bare upstream, change rows delivered through the
message queue. What is checked is what the scheduler queues: one automatic
deploy build for the servers behind the stable tip, nothing when none is
behind or a request already waits, and only stable's moves count.
"""

from __future__ import annotations

from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.scheduler import SchedulerMixin
from buildbot.util.twisted import async_to_deferred
from support import RealUpstreamMixin
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core import properties as prop
from lpdeploy.core.model import Deployment
from lpdeploy.core.settings import parse_settings
from lpdeploy.facts.services import services
from lpdeploy.master.schedulers import AutoDeployScheduler

DEPLOY_BUILDER = "lpdeploy-deploy"
OBJECTID, SCHEDULERID = 71, 72


class AutoDeploys(RealUpstreamMixin, SchedulerMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-auto-")
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": "qastaging", "deploy_command": ["deploy", "{revision}"], "auto_deploy": "stable"},
                        {"name": "staging", "deploy_command": ["deploy", "{revision}"], "auto_deploy": "stable"},
                        {"name": "app1", "deploy_command": ["deploy", "{revision}"]}]})
        yield self.setUpScheduler()
        self.s1 = self.repo.commit("Initial release", None)
        self.repo.push("stable", self.s1)

    async def start(self) -> AutoDeployScheduler:
        sched = AutoDeployScheduler(name="auto-deploy", builderNames=[DEPLOY_BUILDER], settings=self.settings)
        await self.attachScheduler(sched, OBJECTID, SCHEDULERID, createBuilderDB=True)
        await sched.configureService()
        await sched.activate()
        self.addCleanup(sched.deactivate)
        return sched

    async def deployed(self, server: str, revision: str) -> None:
        await services(self.master).registry.record_deployment(Deployment(server, revision, 1.0, "lpdeploy", ""))

    async def queued(self) -> list[tuple[list[str], str | None, bool]]:
        """[(servers, revision, automatic)] of every buildset in the database."""
        out = []
        for bs in await self.master.db.buildsets.getBuildsets():
            props = await self.master.db.buildsets.getBuildsetProperties(bs.bsid)
            (ssid,) = bs.sourcestamps
            stamp = await self.master.db.sourcestamps.getSourceStamp(ssid)
            out.append((props["servers"][0], stamp.revision, props[prop.AUTO][0]))
        return out

    async def deliver_change(self, branch: str, revision: str) -> None:
        changeid = await self.master.db.changes.addChange(
            author="Dev <dev@example.invalid>", committer="Dev <dev@example.invalid>", comments="pushed",
            revision=revision, branch=branch, repository=self.repo.url, codebase="", project="", files=[])
        msg = await self.master.data.get(("changes", changeid))
        self.master.mq.callConsumer(("changes", str(changeid), "new"), msg)
        await self.master.mq.wait_consumed()

    @async_to_deferred
    async def test_activate_queues_one_automatic_deploy_of_the_servers_behind_stable(self):
        await self.deployed("qastaging", self.s1)
        await self.start()
        # staging never got anything; qastaging runs the tip; app1 is not automatic
        self.assertEqual(await self.queued(), [(["staging"], self.s1, True)])

    @async_to_deferred
    async def test_nothing_is_queued_when_every_automatic_server_runs_the_stable_tip(self):
        await self.deployed("qastaging", self.s1)
        await self.deployed("staging", self.s1)
        await self.start()
        self.assertEqual(await self.queued(), [])

    @async_to_deferred
    async def test_a_move_of_stable_queues_a_deploy_but_a_waiting_request_is_not_doubled(self):
        await self.deployed("qastaging", self.s1)
        await self.deployed("staging", self.s1)
        await self.start()
        s2 = self.repo.commit("Add search", self.s1)
        self.repo.push("stable", s2)
        await self.deliver_change("stable", s2)
        self.assertEqual(await self.queued(), [(["qastaging", "staging"], s2, True)])
        await self.deliver_change("stable", s2)  # the same move heard again while the first request waits
        self.assertEqual(len(await self.queued()), 1)

    @async_to_deferred
    async def test_moves_of_other_branches_are_not_its_business(self):
        await self.deployed("qastaging", self.s1)
        await self.deployed("staging", self.s1)
        await self.start()
        d1 = self.repo.commit("Work in progress", self.s1)
        self.repo.push("devel", d1)
        await self.deliver_change("devel", d1)
        self.assertEqual(await self.queued(), [])
