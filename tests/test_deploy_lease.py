"""One deploy at a time across masters: the deploy steps hold the ``deploy`` lease in the shared database.

Buildbot's harness (``TestBuildStepMixin``, the test reactor's clock) on a
real database; another master's deploy is a lease held under another name.
"""

from __future__ import annotations

from buildbot.process.results import EXCEPTION, RETRY, SUCCESS
from buildbot.test import fakedb
from buildbot.util.twisted import async_to_deferred
from test_deploy_steps import DeployCase

from lpdeploy.master.steps import deploy_lease
from lpdeploy.master.steps.deploy import PlanDeploy, RunDeploys
from lpdeploy.master.steps.deploy_lease import DEPLOY_LEASE, LEASE_TTL, ReleaseDeployLease, holder
from lpdeploy.stores.lease import DbLeases
from lpdeploy.stores.registry import DbRegistry

OTHER = "master 2 (other) build 5"


class DeployLease(DeployCase):
    def setUp(self):
        d = super().setUp()
        self.leases = DbLeases(self.master)
        return d

    async def other_master_deploys(self, expires_in: float = LEASE_TTL) -> None:
        now = self.reactor.seconds()
        got = await self.leases.take(DEPLOY_LEASE, OTHER, now - LEASE_TTL + expires_in, LEASE_TTL)
        self.assertEqual(got.holder, OTHER)

    @async_to_deferred
    async def test_a_plan_waits_while_another_master_deploys_and_goes_on_once_it_is_released(self):
        self.history()
        await self.other_master_deploys()
        step = self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=SUCCESS)
        running = self.run_step()
        self.reactor.advance(30)  # the other deploy runs on: this plan waits, deciding nothing
        self.assertFalse(running.called)
        self.assertIsNone(self.prop("lpdeploy_plan"))
        self.assertTrue(await self.leases.release(DEPLOY_LEASE, OTHER))
        self.reactor.advance(deploy_lease.WAIT_POLL)
        await running
        self.assertEqual(self.plans()["app1"]["action"], "move")
        self.assertEqual((await self.leases.state(DEPLOY_LEASE)).holder, holder(step))
        self.assertIn(f"waiting: another deploy holds the deploy lease ({OTHER})", self.log("decision"))

    @async_to_deferred
    async def test_a_dead_masters_lease_frees_itself_after_its_time_to_live(self):
        self.history()
        await self.other_master_deploys(expires_in=10)  # its master died: nobody renews it
        step = self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=SUCCESS)
        running = self.run_step()
        self.reactor.advance(8)
        self.assertFalse(running.called)
        for _ in range(2):
            self.reactor.advance(deploy_lease.WAIT_POLL)
        await running
        self.assertEqual((await self.leases.state(DEPLOY_LEASE)).holder, holder(step))

    async def other_build(self, buildid: int, complete: bool) -> str:
        """A deploy build of another master, in the shared database (finished as RETRY when ``complete``)."""
        await self.master.db.insert_test_data([
            fakedb.Master(id=buildid, name=f"other-{buildid}"),
            fakedb.Worker(id=buildid, name=f"worker-{buildid}"),
            fakedb.Builder(id=buildid, name=f"deploy-{buildid}"),
            fakedb.Buildset(id=buildid),
            fakedb.BuildRequest(id=buildid, buildsetid=buildid, builderid=buildid),
            fakedb.Build(id=buildid, number=1, buildrequestid=buildid, builderid=buildid, workerid=buildid,
                         masterid=buildid, results=RETRY if complete else None,
                         complete_at=12345999 if complete else None),
        ])
        return f"master {buildid} (other-{buildid}) build {buildid}"

    @async_to_deferred
    async def test_a_lease_left_by_a_build_that_is_over_is_taken_over_at_once(self):
        # a master killed during a deploy: on restart Buildbot finished its build (RETRY) and queued the
        # request again; the re-run must not wait LEASE_TTL for a lease nobody renews
        self.history()
        dead = await self.other_build(901, complete=True)
        await self.leases.take(DEPLOY_LEASE, dead, self.reactor.seconds(), LEASE_TTL)
        step = self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()  # no clock advance: no wait at all
        self.assertEqual((await self.leases.state(DEPLOY_LEASE)).holder, holder(step))
        self.assertIn(f"the deploy lease was left by a build that is over ({dead}); taking it over",
                      self.log("decision"))

    @async_to_deferred
    async def test_a_lease_held_by_a_running_build_of_another_master_is_waited_for(self):
        self.history()
        alive = await self.other_build(902, complete=False)
        await self.leases.take(DEPLOY_LEASE, alive, self.reactor.seconds(), LEASE_TTL)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=SUCCESS)
        running = self.run_step()
        self.reactor.advance(LEASE_TTL / 2)
        self.assertFalse(running.called)
        self.assertEqual((await self.leases.state(DEPLOY_LEASE)).holder, alive)
        self.assertTrue(await self.leases.release(DEPLOY_LEASE, alive))
        self.reactor.advance(deploy_lease.WAIT_POLL)
        await running

    @async_to_deferred
    async def test_the_lease_is_renewed_while_the_build_runs_and_the_last_step_releases_it(self):
        self.history()
        step = self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        me = holder(step)
        first = await self.leases.state(DEPLOY_LEASE)
        self.reactor.advance(LEASE_TTL * 3)  # a long rollout: renewals keep the lease its own
        renewed = await self.leases.state(DEPLOY_LEASE)
        self.assertEqual(renewed.holder, me)
        self.assertGreater(renewed.expires, first.expires + 2 * LEASE_TTL)
        self.assertEqual((await self.leases.take(DEPLOY_LEASE, OTHER, self.reactor.seconds(), LEASE_TTL)).holder,
                         me)
        self.assertTrue(await deploy_lease.release(step))  # what ReleaseDeployLease.run does
        self.assertIsNone(await self.leases.state(DEPLOY_LEASE))
        self.reactor.advance(LEASE_TTL)  # the renewals stopped with it
        self.assertIsNone(await self.leases.state(DEPLOY_LEASE))

    @async_to_deferred
    async def test_a_rollout_whose_lease_was_taken_by_another_deploys_nothing_more(self):
        self.history()
        step = self.setup_flow_step(RunDeploys(settings=self.settings))
        plan = {"server": "app1", "retire": [], "overridden": []}
        registry = DbRegistry(self.master)
        await self.leases.take(DEPLOY_LEASE, holder(step), self.reactor.seconds(), LEASE_TTL)
        self.assertIsNone(await step._changed_since_plan(registry, plan))  # held: the next server may go
        # this build's renewals failed (the database was unreachable), the lease expired, another master took it
        self.reactor.advance(LEASE_TTL)
        await self.leases.take(DEPLOY_LEASE, OTHER, self.reactor.seconds(), LEASE_TTL)
        self.assertFalse(await deploy_lease.still_held(step))
        reason = await step._changed_since_plan(registry, plan)
        self.assertIn("deploy lease expired and was taken by another deploy", reason)


    @async_to_deferred
    async def test_a_later_step_never_takes_back_a_lease_it_lost(self):
        # the plan took the lease; the database was unreachable past the lease's time to live; another master
        # took it, deployed and released it: this build's plan is out of date and must not go on
        self.history()
        step = self.setup_flow_step(RunDeploys(settings=self.settings))
        self.assertIsNone(await deploy_lease.hold(step))
        self.addCleanup(lambda: deploy_lease.release(step))
        self.assertIsNone(await deploy_lease.keep(step))  # still its own: go on
        getattr(step.build, deploy_lease._LOOP).stop()  # its renewals fail from now on (no database)
        self.reactor.advance(LEASE_TTL + 1)
        self.assertEqual((await self.leases.take(DEPLOY_LEASE, OTHER, self.reactor.seconds(), LEASE_TTL)).holder,
                         OTHER)
        self.assertTrue(await self.leases.release(DEPLOY_LEASE, OTHER))
        reason = await deploy_lease.keep(step)
        self.assertIn("the deploy lease was lost since the plan", reason or "")
        self.assertIsNone(await self.leases.state(DEPLOY_LEASE))  # free: not taken back

    @async_to_deferred
    async def test_a_stopped_build_stops_waiting_for_the_lease(self):
        self.history()
        await self.other_master_deploys()
        step = self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=EXCEPTION)  # how Buildbot ends an interrupted step
        running = self.run_step()
        self.reactor.advance(deploy_lease.WAIT_POLL)
        self.assertFalse(running.called)
        step.interrupt("stopped in the UI")  # the UI's cancel, the CLI's Ctrl-C
        self.reactor.advance(deploy_lease.WAIT_POLL)
        await running
        self.assertIn("stopped while it waited for the deploy lease", self.prop("lpdeploy_reason"))
        self.assertIsNone(self.prop("lpdeploy_plan"))
        self.assertEqual((await self.leases.state(DEPLOY_LEASE)).holder, OTHER)


def test_the_release_step_runs_whatever_happened_before_it():
    from lpdeploy import configurator
    from lpdeploy.core.settings import parse_settings

    c: dict = {}
    configurator.apply(c, parse_settings({"repository": {"url": "file:///srv/lp.git"}}))
    deploy = next(b for b in c["builders"] if b.name == configurator.DEPLOY_BUILDER)
    last = deploy.factory.steps[-1]
    assert last.step_class is ReleaseDeployLease
    assert last.kwargs.get("alwaysRun", True) is True and ReleaseDeployLease().alwaysRun is True
