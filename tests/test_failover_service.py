"""The failover service on two masters sharing one real database, on Buildbot's fake clock.

Master A (id 1) holds the gate's claim; master B (id 2) stands by. Both beat
every 10 s with ``dead_after`` 30 s. A falls silent (its failover loop stops:
a crash, or a pause); B must not take over while A's heartbeat is valid, must
take over on the first beat after it expired — Buildbot's ``masterStopped``
for A, which deletes A's claim rows, then B's gate claims at once instead of
at its 5-minute poll — and audit why. A, resumed, must find its heartbeat
lost and step down from the claim it still believes it holds.

The gate here is a ``ClusteredBuildbotService`` that claims through
Buildbot's own scheduler claim table, as every Buildbot scheduler does.
"""

from __future__ import annotations

from typing import Any

from buildbot.db.schedulers import SchedulerAlreadyClaimedError
from buildbot.test.reactor import TestReactorMixin
from buildbot.util import service
from buildbot.util.twisted import async_to_deferred
from support import make_db_master, temp_dir
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.failover import heartbeat_name
from lpdeploy.core.settings import Cluster
from lpdeploy.facts.services import services
from lpdeploy.master.failover import FailoverService
from lpdeploy.stores.lease import DbLeases


class Gate(service.ClusteredBuildbotService):
    """A scheduler-like service: claims through Buildbot's ``scheduler_masters`` table."""

    activations = 0
    deactivations = 0

    def checkConfig(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _getServiceId(self) -> Any:
        return self.master.db.schedulers.findSchedulerId(self.name)

    @defer.inlineCallbacks
    def _claimService(self) -> Any:
        try:
            yield self.master.db.schedulers.setSchedulerMaster(self.serviceid, self.master.masterid)
        except SchedulerAlreadyClaimedError:
            return False
        return True

    def _unclaimService(self) -> Any:
        return self.master.db.schedulers.setSchedulerMaster(self.serviceid, None)

    def activate(self) -> Any:
        self.activations += 1
        return defer.succeed(None)

    def deactivate(self) -> Any:
        self.deactivations += 1
        return defer.succeed(None)


class TwoMastersFailover(TestReactorMixin, unittest.TestCase):
    @async_to_deferred
    async def setUp(self) -> None:
        self.setup_test_reactor(use_asyncio=False)
        self.reactor.advance(1_800_000_000)
        base = temp_dir(self)
        db_url = "sqlite:///" + f"{base}/shared.sqlite"
        self.a = await make_db_master(self, basedir=f"{base}/a", db_url=db_url, master_id=1)
        self.b = await make_db_master(self, basedir=f"{base}/b", db_url=db_url, master_id=2, wantData=True,
                                      auto_upgrade=False, auto_clean=False)
        for m, name in ((self.a, "host-a:/srv/master"), (self.b, "host-b:/srv/master")):
            m.name = name
            assert await m.db.masters.findMasterId(name) == m.masterid
            await m.db.masters.setMasterState(m.masterid, True)
        self.gate_a, self.gate_b = await self.gate(self.a), await self.gate(self.b)
        self.beat_a, self.beat_b = self.failover(self.a), self.failover(self.b)
        await self.beat_a.tick()
        await self.beat_b.tick()

    async def gate(self, master: Any) -> Gate:
        master.scheduler_manager = service.AsyncMultiService()
        master.change_svc = service.AsyncMultiService()
        await master.scheduler_manager.setServiceParent(master)
        master.change_svc.setServiceParent(master)
        gate = Gate(name="lpdeploy-gate")
        await gate.setServiceParent(master.scheduler_manager)
        await master.scheduler_manager.startService()
        self.addCleanup(master.scheduler_manager.stopService)
        return gate

    def failover(self, master: Any) -> FailoverService:
        svc = FailoverService(name="lpdeploy-failover", cluster=Cluster(heartbeat=10, dead_after=30))
        svc.cluster = Cluster(heartbeat=10, dead_after=30)
        svc.setServiceParent(master)
        return svc

    async def holder(self) -> int | None:
        row = await self.a.db.schedulers.getScheduler(self.gate_a.serviceid)
        return row.masterid

    async def b_beats_until(self, seconds: float) -> None:
        """Advance the clock ``seconds`` in 10 s heartbeats of B only (A is silent)."""
        for _ in range(int(seconds // 10)):
            self.reactor.advance(10)
            await self.beat_b.tick()

    @async_to_deferred
    async def test_a_silent_master_is_taken_over_after_dead_after_and_the_gate_claimed_at_once(self) -> None:
        assert self.gate_a.active and not self.gate_b.active and await self.holder() == 1
        await self.b_beats_until(20)  # A's heartbeat is valid until 30 s after its last beat
        assert not self.gate_b.active and await self.holder() == 1
        masters = {m.id: m.active for m in await self.b.db.masters.getMasters()}
        assert masters == {1: True, 2: True}
        await self.b_beats_until(10)  # 30 s: A's heartbeat expired
        masters = {m.id: m.active for m in await self.b.db.masters.getMasters()}
        assert masters == {1: False, 2: True}
        assert self.gate_b.active and self.gate_b.activations == 1 and await self.holder() == 2
        [entry] = [e for e in await services(self.b).registry.audit_log() if e.action == "failover"]
        assert entry.details["master"] == "host-a:/srv/master" and entry.details["by"] == "host-b:/srv/master"
        assert entry.details["reason"].startswith("master host-a:/srv/master silent since 2027-01-15 08:00:00 UTC")
        assert await DbLeases(self.b).state(heartbeat_name("host-a:/srv/master")) is None
        await self.b_beats_until(30)  # once: A is marked stopped, not taken over again
        assert len([e for e in await services(self.b).registry.audit_log() if e.action == "failover"]) == 1

    @async_to_deferred
    async def test_a_master_that_beats_in_time_is_never_taken_over(self) -> None:
        for _ in range(9):
            self.reactor.advance(10)
            await self.beat_a.tick()
            await self.beat_b.tick()
        assert self.gate_a.active and not self.gate_b.active and await self.holder() == 1
        assert {m.active for m in await self.b.db.masters.getMasters()} == {True}

    @async_to_deferred
    async def test_a_paused_master_resumes_finds_its_heartbeat_lost_and_steps_down(self) -> None:
        await self.b_beats_until(30)
        assert self.gate_b.active and await self.holder() == 2
        assert self.gate_a.active  # A, paused, still believes it holds the gate
        self.reactor.advance(5)
        await self.beat_a.tick()  # resumed
        assert not self.gate_a.active and self.gate_a.deactivations == 1
        assert await self.holder() == 2  # the claim row stays B's: stepping down does not unclaim
        [fenced] = [e for e in await services(self.a).registry.audit_log()
                    if e.action == "failover" and e.details["master"] == "host-a:/srv/master"
                    and e.details["by"] == "host-a:/srv/master"]
        assert "lost its heartbeat" in fenced.details["reason"]
        lease = await DbLeases(self.a).state(heartbeat_name("host-a:/srv/master"))
        assert lease is not None and lease.holder == "host-a:/srv/master"  # beating again, as a standby
        await self.beat_a.tick()
        assert not self.gate_a.active and self.gate_a.deactivations == 1

    @async_to_deferred
    async def test_the_heartbeat_runs_on_its_period_and_a_new_period_applies_at_once(self) -> None:
        beats = []
        self.beat_b.tick = lambda: beats.append(self.reactor.seconds()) or defer.succeed(None)  # type: ignore
        start = self.reactor.seconds()
        await self.beat_b.startService()
        self.reactor.pump([10, 10])
        assert beats == [start, start + 10, start + 20]
        await self.beat_b.reconfigService(Cluster(heartbeat=3, dead_after=9))
        self.reactor.pump([3, 3])
        assert beats[3:] == [start + 20, start + 23, start + 26]
        await self.beat_b.stopService()
        self.reactor.pump([10, 10, 10])
        assert len(beats) == 6
