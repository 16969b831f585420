"""Failover between masters in seconds instead of Buildbot's 10-15 minutes (``[cluster]``, several masters).

A service of every master (configured only with ``[mq]``). Every
``heartbeat`` seconds it:

1. renews this master's heartbeat lease (``stores.lease``, time to live
   ``dead_after``); a renewal that fails means another master took over
   while this one was silent (``core.failover.own_heartbeat``): logged and
   audited, then a fresh heartbeat is taken;
2. steps down every scheduler and change source this master runs as active
   whose claim row in Buildbot's tables names another master, or none
   (``core.failover.lost_claims``): Buildbot's ``ClusteredBuildbotService``
   never re-checks a claim once active, so a master that was only paused
   would otherwise go on acting beside the survivor forever;
3. judges the other masters (``core.failover.judge``); for each silent one
   it breaks the heartbeat lease (a compare-and-swap: of two survivors one
   wins, and a renewal that lands first keeps the master alive), calls
   Buildbot's ``masterStopped`` for it — which deletes its scheduler and
   change-source claims, finishes its running builds as RETRY and unclaims
   its build requests, exactly what Buildbot does after its own 10-minute
   expiry — audits the take-over with its reason, and makes this master's
   schedulers and poller claim at once instead of at their next 5-minute poll.

Until a paused master's next heartbeat it may still act (poll, decide, move):
every move is a compare-and-swap push and the ledger's first pass wins, so
two masters deciding the same thing move a branch once and record it once.
"""

from __future__ import annotations

from typing import Any

from buildbot.changes.base import ChangeSource
from buildbot.util.service import BuildbotService, ClusteredBuildbotService
from twisted.internet import defer, task
from twisted.python import log

from lpdeploy.core.failover import Action, Peer, heartbeat_name, judge, lost_claims, own_heartbeat
from lpdeploy.core.model import AUTOMATIC, AuditAction, AuditEntry
from lpdeploy.core.settings import Cluster
from lpdeploy.facts.services import services
from lpdeploy.stores.lease import DbLeases

SERVICE_NAME = "lpdeploy-failover"


def clustered(master: Any) -> list[ClusteredBuildbotService]:
    """This master's schedulers and change sources: the services Buildbot runs on one master at a time."""
    return [svc for parent in (master.scheduler_manager, master.change_svc) for svc in parent
            if isinstance(svc, ClusteredBuildbotService)]


async def claim_holder(master: Any, svc: ClusteredBuildbotService) -> int | None:
    """The master id on ``svc``'s claim row (None: unclaimed)."""
    if svc.serviceid is None:
        return None
    if isinstance(svc, ChangeSource):
        row = await master.db.changesources.getChangeSource(svc.serviceid)
    else:
        row = await master.db.schedulers.getScheduler(svc.serviceid)
    return row.masterid if row is not None else None


async def claim_now(svc: ClusteredBuildbotService) -> None:
    """Make an inactive ``svc`` try its claim now, not at its next 5-minute poll.

    Buildbot's poll loop is stopped (waiting for a poll under way) and started
    again, which polls at once: never two polls of one service at a time.
    """
    if svc.active or not svc.running:
        return
    stopped = svc._stopActivityPolling()
    if stopped is not None:
        await stopped
    if not svc.active and svc.running:
        svc._startActivityPolling()


async def step_down(svc: ClusteredBuildbotService) -> None:
    """Stop acting as ``svc``'s claim holder (without touching the claim row: it is another's now)."""
    svc.active = False
    try:
        await svc.deactivate()
    except Exception as e:  # noqa: BLE001 - a half-deactivated service must still poll for its claim again
        log.err(e, f"lpdeploy failover: while stepping {svc.name} down")
    if svc.running and svc._activityPollCall is None:
        svc._startActivityPolling()


class FailoverService(BuildbotService):
    """Heartbeat, self-check and take-over, every ``[cluster] heartbeat`` seconds (see the module doc)."""

    name = SERVICE_NAME

    def checkConfig(self, cluster: Cluster) -> None:  # type: ignore[override]
        pass

    def reconfigService(self, cluster: Cluster) -> defer.Deferred[None]:  # type: ignore[override]
        """Called by Buildbot at start and when ``[cluster]`` changed: a new period applies at once."""
        self.cluster = cluster
        if self._loop is not None and self._loop.running and self._loop.interval != cluster.heartbeat:
            self._loop.stop()
            self._start_loop()
        return defer.succeed(None)

    _loop: task.LoopingCall | None = None
    _had_heartbeat = False

    def startService(self) -> Any:
        d = super().startService()
        self._start_loop()
        return d

    def _start_loop(self) -> None:
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self.tick()))
        self._loop.clock = self.master.reactor
        self._loop.start(self.cluster.heartbeat, now=True)

    def stopService(self) -> Any:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return super().stopService()

    async def tick(self) -> None:
        """One heartbeat; a failure (the database away) is logged and the next tick tries again."""
        try:
            await self._tick()
        except Exception as e:  # noqa: BLE001 - the loop must outlive any one failed beat
            log.err(e, "lpdeploy failover: heartbeat failed (retried at the next one)")

    async def _tick(self) -> None:
        master = self.master
        me, now, ttl = master.name, master.reactor.seconds(), self.cluster.dead_after
        leases = DbLeases(master)
        renewed = await leases.renew(heartbeat_name(me), me, now, ttl)
        fenced = own_heartbeat(me, renewed, self._had_heartbeat, now)
        if fenced is not None:
            await self._record(now, me, fenced.reason)
        if not renewed:
            await leases.take(heartbeat_name(me), me, now, ttl)
            self._had_heartbeat = True
        await self._drop_lost_claims()
        took_over = False
        for decision in judge(me, await self._peers(leases), now, ttl):
            if decision.action is not Action.TAKE_OVER:
                continue
            if not await leases.break_expired(heartbeat_name(decision.peer.name), decision.peer.name, now):
                continue  # it renewed in time, or another survivor took over first
            await self._record(now, decision.peer.name, decision.reason)
            await master.data.updates.masterStopped(name=decision.peer.name, masterid=decision.peer.masterid)
            took_over = True
        if took_over:
            for svc in clustered(master):
                await claim_now(svc)

    async def _peers(self, leases: DbLeases) -> list[Peer]:
        peers = []
        for m in await self.master.db.masters.getMasters():
            if m.id == self.master.masterid:
                continue
            beat = await leases.state(heartbeat_name(m.name))
            peers.append(Peer(m.id, m.name, bool(m.active), beat.expires if beat is not None else None))
        return peers

    async def _drop_lost_claims(self) -> None:
        active = {svc.name: svc for svc in clustered(self.master) if svc.active}
        holders = {name: await claim_holder(self.master, svc) for name, svc in active.items()}
        for name in lost_claims(self.master.masterid, holders):
            log.msg(f"lpdeploy failover: {name} is claimed by master {holders[name]}, not this one; stepping down")
            await step_down(active[name])

    async def _record(self, now: float, master_name: str, reason: str) -> None:
        log.msg(f"lpdeploy failover: {reason}")
        await services(self.master).registry.audit(AuditEntry(now, AUTOMATIC, AuditAction.FAILOVER, {
            "master": master_name, "by": self.master.name, "reason": reason}))
