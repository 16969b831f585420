"""Schedulers: the devel gate, auto-deploys, security branches, the promotion and inspection timers.

Events are hints, the tips are the truth: the gate scheduler answers a push to
devel by making sure one gate build is queued, and on every start (and every
few minutes) it reconciles from the tips, because changes delivered while no
master ran are not replayed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

import croniter
from buildbot import config
from buildbot.data import resultspec
from buildbot.process.properties import Properties
from buildbot.schedulers.base import ReconfigurableBaseScheduler
from buildbot.schedulers.timed import Timed
from twisted.internet import defer, task
from twisted.python import log

from lpdeploy.core import bisect, fix_history, policy
from lpdeploy.core import properties as prop
from lpdeploy.core.freeze_windows import window_state
from lpdeploy.core.model import AUTOMATIC, Action, FixState, JobKind, SecurityFix, Tips
from lpdeploy.core.promotion_schedule import latest_slot, next_slot, slot_decision
from lpdeploy.core.refs import branch_matches
from lpdeploy.core.settings import Settings
from lpdeploy.core.upstream_health import RECOVERED_KEY
from lpdeploy.facts.batch import read_batch
from lpdeploy.facts.embargo import contained_in
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import branch_names
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.security_jobs import queue_job
from lpdeploy.master.sourcestamps import source_stamp
from lpdeploy.master.upstream_watch import read_tips
from lpdeploy.stores.registry import Registry

RECONCILE_INTERVAL = 300  # seconds between reconciliations when no hint arrives
TIP_PRIORITY = 1  # a new devel tip goes before queued bisection probes ...
PROBE_PRIORITY = 0  # ... which only find who broke an older batch


class FlowScheduler(ReconfigurableBaseScheduler):
    """A scheduler configured with lpdeploy's settings that reconciles from the tips on a timer."""

    _timer: task.LoopingCall | None = None

    def checkConfig(self, builderNames: list[str], settings: Settings, **kwargs: Any) -> None:  # type: ignore[override]
        if not isinstance(settings, Settings):
            config.error(f"{type(self).__name__} needs lpdeploy Settings")
        super().checkConfig(builderNames=builderNames, **kwargs)

    @defer.inlineCallbacks
    def reconfigService(self, builderNames: list[str], settings: Settings, **kwargs: Any):  # type: ignore[override]
        self.settings = settings
        yield super().reconfigService(builderNames=builderNames, **kwargs)

    @property
    def upstream(self) -> Upstream:
        return services(self.master).upstream(self.settings.repository.url, self.settings.repository.timeout)

    def start_timer(self, interval: float, reconcile: Callable[[], Coroutine[Any, Any, None]], failed: str) -> None:
        """Call ``reconcile`` now and every ``interval`` seconds while active (Buildbot's clock).

        A call that fails is logged (``failed`` says what failed) and the timer
        keeps going: the next tick reads the tips afresh, so it retries.
        """
        def tick() -> defer.Deferred[None]:
            d = defer.ensureDeferred(reconcile())
            d.addErrback(log.err, f"{self.name}: {failed}")
            return d

        self._timer = task.LoopingCall(tick)
        self._timer.clock = self.master.reactor
        self._timer.start(interval, now=True)

    @defer.inlineCallbacks
    def deactivate(self):
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self._timer = None
        yield super().deactivate()

    async def tips(self) -> Tips | None:
        """The upstream tips, or None (logged) while the upstream cannot be read: a later tick retries.

        ``read_tips`` records the failure ("unreachable since") and backs off.
        """
        return await read_tips(self.master, self.settings, self.name)


class GateScheduler(FlowScheduler):
    """Keep exactly one gate build queued whenever the devel tip is not yet on stable; bisect failing batches.

    When the gate's run on a tip fails, the batch since stable is bisected
    (``core.bisect``): each round queues one probe build per idle worker (a
    gate build with ``lpdeploy_probe`` set), and the next round is planned
    when the last probe of a round finished. A newer tip goes before queued
    probes (a higher priority), and a tip that passes moves stable past the
    bisection, which then has nothing left to probe.
    """

    _finished: Any = None
    _recovered: Any = None
    _lock: defer.DeferredLock | None = None

    @defer.inlineCallbacks
    def activate(self):
        yield super().activate()
        if not self.enabled:
            return
        self._lock = defer.DeferredLock()
        yield self.startConsumingChanges()
        # a finished gate build is a hint too: it may have left a failure to bisect or a round to follow up
        self._finished = yield self.master.mq.startConsuming(self._build_finished, ("builds", None, "finished"))
        # so is the upstream answering again: what was owed while it was down is owed now
        self._recovered = yield self.master.mq.startConsuming(self._upstream_recovered, RECOVERED_KEY)
        self.start_timer(RECONCILE_INTERVAL, lambda: self.reconcile("periodic check"),
                         "reconciling from the tips failed")

    @defer.inlineCallbacks
    def deactivate(self):
        for consumer in (self._finished, self._recovered):
            if consumer is not None:
                consumer.stopConsuming()
        self._finished = self._recovered = None
        yield super().deactivate()

    def _upstream_recovered(self, key: Any, message: Any) -> defer.Deferred[None]:
        """Called by Buildbot's message queue when a read of the upstream succeeds after failures."""
        d = defer.ensureDeferred(self.reconcile("the upstream answers again"))
        d.addErrback(log.err, f"{self.name}: reconciling after the upstream recovered failed")
        return d

    def _build_finished(self, key: Any, build: dict[str, Any]) -> defer.Deferred[None]:
        """Called by Buildbot's message queue for every finished build (of any builder)."""
        d = defer.ensureDeferred(self._if_gate_build(build))
        d.addErrback(log.err, f"{self.name}: reconciling after a gate build failed")
        return d

    async def _if_gate_build(self, build: dict[str, Any]) -> None:
        ids = [await self.master.data.updates.findBuilderId(n) for n in self.builderNames]
        if build.get("builderid") in ids:
            await self.reconcile(f"gate build {build.get('number')} finished")

    def gotChange(self, change: Any, important: bool) -> defer.Deferred[None]:
        """Called by Buildbot, serialised, for every new change record."""
        if change.branch != self.settings.branches.devel:
            return defer.succeed(None)
        return defer.ensureDeferred(self.reconcile(f"push to {change.branch} ({change.revision[:12]})",
                                                   hint=change.revision))

    async def reconcile(self, why: str, hint: str | None = None) -> None:
        """Queue a gate build if the tips say one is owed and none is queued; then the bisection's probes.

        One reconciliation at a time: pushes, finished builds and the timer
        all call it, and two of them deciding at once would queue twice.
        """
        if self._lock is None:
            self._lock = defer.DeferredLock()
        await self._lock.run(lambda: defer.ensureDeferred(self._reconcile(why, hint)))

    async def _reconcile(self, why: str, hint: str | None) -> None:
        branches = self.settings.branches
        upstream = self.upstream
        tips = await self.tips()
        if tips is None:
            return
        devel_tip = tips.get(branches.devel)
        stable_tip = tips.get(branches.stable)
        record = None
        contains = False
        if devel_tip is not None:
            tree = await upstream.tree_of(devel_tip)
            record = await services(self.master).ledger.lookup(self.settings.suite.identity, tree)
            if stable_tip is not None:
                contains = devel_tip == stable_tip or await upstream.is_ancestor(devel_tip, stable_tip)
        pending = await self._gate_queued() or (devel_tip is not None and await self._testing(devel_tip))
        decision = policy.gate_needed(branches.devel, devel_tip, record, contains, pending)
        if decision.action is not Action.RUN_SUITE:
            log.msg(f"{self.name}: {why}: {decision.reason}")
        else:
            await self.addBuildsetForSourceStamps(
                sourcestamps=[source_stamp(self.settings, branches.devel, hint or devel_tip)],
                reason=f"{why}: {decision.reason}",
                properties=Properties(),
                builderNames=self.builderNames,
                priority=TIP_PRIORITY,
            )
        if devel_tip is not None:
            await self._bisect(why, devel_tip, stable_tip, queued_tip=decision.action is Action.RUN_SUITE)

    async def _bisect(self, why: str, devel_tip: str, stable_tip: str | None, queued_tip: bool) -> None:
        """Queue the next round of probes of a failing batch, one per idle worker, when no probe is pending."""
        if await self._probes_pending():
            return
        batch = await read_batch(self.upstream, services(self.master).ledger, self.settings.suite.identity,
                                 stable_tip, devel_tip)
        if batch.truncated:
            return
        idle = await self._idle_workers() - (1 if queued_tip else 0)  # the tip's run takes a worker first
        step = bisect.plan(batch.chain, batch.known, idle=max(1, idle))
        if step.action is not Action.RUN_SUITE:
            return
        log.msg(f"{self.name}: {why}: {step.reason}")
        for probe in step.probes:
            props = Properties()
            props.setProperty(prop.PROBE, probe, "GateScheduler")
            await self.addBuildsetForSourceStamps(
                sourcestamps=[source_stamp(self.settings, self.settings.branches.devel, probe)],
                reason=f"bisection probe {probe[:12]}: {step.reason}",
                properties=props, builderNames=self.builderNames, priority=PROBE_PRIORITY)

    async def _probes_pending(self) -> bool:
        """Whether a probe is queued or running: a round is planned only when the last one finished.

        A request whose build has finished counts as done: Buildbot announces
        the finished build before it marks the request complete.
        """
        for name in self.builderNames:
            builderid = await self.master.data.updates.findBuilderId(name)
            for br in await self.master.db.buildrequests.getBuildRequests(builderid=builderid, complete=False):
                if not await _is_probe_request(self.master, br):
                    continue
                builds = await self.master.db.builds.getBuilds(buildrequestid=br.buildrequestid)
                if not builds or any(b.complete_at is None for b in builds):
                    return True
        return False

    async def _idle_workers(self) -> int:
        """Connected workers with no build running (every worker serves the gate)."""
        workers = await self.master.data.get(("workers",))
        busy = {b["workerid"] for b in await self.master.data.get(
            ("builds",), filters=[resultspec.Filter("complete", "eq", [False])])}
        return sum(1 for w in workers if w.get("connected_to") and w["workerid"] not in busy)

    async def _testing(self, revision: str) -> bool:
        """Whether a running gate build will deliver a verdict on ``revision``.

        Either it already decided on ``revision``, or it has not decided yet:
        its ``decide`` step takes the devel tip when it runs, so it tests this
        tip (or a newer one). Counting only decided builds let a push seen
        while a build was starting queue a second build of the same tip.
        """
        for name in self.builderNames:
            builderid = await self.master.data.updates.findBuilderId(name)
            running = await self.master.data.get(("builders", builderid, "builds"),
                                                 filters=[resultspec.Filter("complete", "eq", [False])])
            for build in running:
                props = await self.master.data.get(("builds", build["buildid"], "properties")) or {}
                if props.get(prop.PROBE, (None,))[0]:
                    continue  # a bisection probe tests an older commit, never the tip
                if props.get(prop.REVISION, (None,))[0] in (None, revision):
                    return True
        return False

    async def _gate_queued(self) -> bool:
        """Whether a gate request for the tip waits unclaimed: it will test the newest tip when it starts."""
        for name in self.builderNames:
            builderid = await self.master.data.updates.findBuilderId(name)
            for br in await self.master.db.buildrequests.getBuildRequests(builderid=builderid, complete=False,
                                                                          claimed=False):
                if not await _is_probe_request(self.master, br):
                    return True
        return False


async def _is_probe_request(master: Any, br: Any) -> bool:
    props = await master.db.buildsets.getBuildsetProperties(br.buildsetid)
    return bool(props.get(prop.PROBE, (None,))[0])


class CronPromotion(Timed):
    """Start a promote build on a cron schedule (``[promotion] schedule``): each slot once, ever.

    Buildbot's ``Timed`` keeps ``last_build`` (when it last actuated) in the
    database and asks ``getNextBuildTime`` from it, so a slot missed while the
    masters were down is due at once on start. On top of that this scheduler
    records the *slot* each firing stands for (``last_slot``, also in the
    database) before it queues the build, and re-reads it before every firing:
    a slot not newer than the recorded one never fires again — not after a
    restart, not when the clock jumps backwards, not on a second master whose
    memory is stale (``core.promotion_schedule``).
    """

    last_slot: float | None = None

    def checkConfig(self, builderNames: list[str], cron: str, **kwargs: Any) -> None:  # type: ignore[override]
        if not croniter.croniter.is_valid(cron):
            config.error(f"promotion.schedule: {cron!r} is not a cron expression")
        super().checkConfig(builderNames=builderNames,
                            reason="scheduled promotion (%(name)s)", **kwargs)

    @defer.inlineCallbacks
    def reconfigService(self, builderNames: list[str], cron: str, **kwargs: Any):  # type: ignore[override]
        self.cron = cron
        yield super().reconfigService(builderNames=builderNames,
                                      reason="scheduled promotion (%(name)s)", **kwargs)

    @defer.inlineCallbacks
    def activate(self):
        """Called by Buildbot on the master that runs this scheduler: read the last fired slot, then ``Timed``'s."""
        self.last_slot = yield self.getState(LAST_SLOT, None)
        yield super().activate()

    def getNextBuildTime(self, lastActuated: float | None) -> defer.Deferred[float]:
        """Called by ``Timed`` on start and after each actuation: the next cron instant, master local time.

        Counted from the later of the last actuation and the last fired slot
        (from now only when neither was ever recorded): never from the clock
        alone, which may have gone backwards. In the past means due now.
        """
        known = [t for t in (lastActuated, self.last_slot) if t is not None]
        return defer.succeed(next_slot(self.cron, max(known) if known else self.now()))

    @defer.inlineCallbacks
    def startBuild(self):
        """Called by ``Timed`` when a slot is due: queue the promotion unless this slot was fired already."""
        slot = latest_slot(self.cron, self.now())
        fired = yield self.getState(LAST_SLOT, None)  # the database, not memory: another master may have fired it
        decision = slot_decision(slot, fired)
        log.msg(f"{self.name}: {decision.reason}")
        if decision.action is not Action.MOVE:
            self.last_slot = fired
            return
        yield self.setState(LAST_SLOT, slot)  # before the build: a crash loses this slot, never doubles it
        self.last_slot = slot
        yield super().startBuild()


LAST_SLOT = "last_slot"  # the object_state key of the newest promotion slot fired


class AutoDeployScheduler(FlowScheduler):
    """Redeploy ``auto_deploy = "stable"`` servers whenever the stable tip moves.

    Automated deploys go through the same plan as a losa's (cowboys, freeze)
    but never override a cowboy.
    """

    @property
    def servers(self) -> list[str]:
        return [s.name for s in self.settings.servers if s.auto_deploy == "stable"]

    @defer.inlineCallbacks
    def activate(self):
        yield super().activate()
        if not self.enabled:
            return
        yield self.startConsumingChanges()
        self.start_timer(RECONCILE_INTERVAL, lambda: self.reconcile("periodic check"),
                         "reconciling auto deploys failed")

    def gotChange(self, change: Any, important: bool) -> defer.Deferred[None]:
        """Called by Buildbot, serialised, for every new change record."""
        if change.branch != self.settings.branches.stable:
            return defer.succeed(None)
        return defer.ensureDeferred(self.reconcile(f"{change.branch} moved to {change.revision[:12]}"))

    async def reconcile(self, why: str) -> None:
        if not self.servers or await _queued(self.master, self.builderNames):
            return
        tips = await self.tips()
        stable_tip = tips.get(self.settings.branches.stable) if tips else None
        if stable_tip is None:
            return
        registry = services(self.master).registry
        behind = [s for s in self.servers
                  if getattr(await registry.deployment(s), "revision", None) != stable_tip]
        if not behind:
            return
        props = Properties()
        props.setProperty(prop.AUTO, True, "AutoDeployScheduler")
        props.setProperty("servers", behind, "AutoDeployScheduler")
        await self.addBuildsetForSourceStamps(
            sourcestamps=[source_stamp(self.settings, self.settings.branches.stable, stable_tip)],
            reason=f"auto deploy ({why}): {', '.join(behind)} to {stable_tip[:12]}",
            properties=props, builderNames=self.builderNames)


class InspectScheduler(FlowScheduler):
    """Start an inspect build every ``[deploy] inspect_interval`` seconds (and when a master takes it over).

    A scheduler is claimed by one master of a cluster, so one timer runs. A
    tick while an inspect build is queued or running adds nothing: slow
    servers never pile up inspections.
    """

    @defer.inlineCallbacks
    def activate(self):
        yield super().activate()
        interval = self.settings.deploy.inspect_interval
        if not self.enabled or not interval:
            return
        self.start_timer(interval, self.inspect, "starting an inspection failed")

    async def inspect(self) -> None:
        if not any(s.inspect_command for s in self.settings.servers) or await _busy(self.master, self.builderNames):
            return
        await self.addBuildsetForSourceStamps(
            sourcestamps=[source_stamp(self.settings)], reason="inspection: what do the servers run?",
            properties=Properties(), builderNames=self.builderNames)


async def _queued(master: Any, builder_names: list[str]) -> bool:
    """Whether a request for one of these builders waits unclaimed."""
    for name in builder_names:
        builderid = await master.data.updates.findBuilderId(name)
        if await master.db.buildrequests.getBuildRequests(builderid=builderid, complete=False, claimed=False):
            return True
    return False


class SecurityScheduler(FlowScheduler):
    """Watch the security branches and the released fixes; queue security builds and merge-backs.

    Security branches leave no change records (those are public), so this
    scheduler reads the tips itself every ``poll_interval``. Nothing it acts on
    is a stored state that could be left behind: a security build is owed for a
    new tip, or for a tip whose build was lost (recorded as queued or testing,
    yet nothing is queued or running); a merge-back is owed for released fixes
    (the append-only history) that devel lacks and every server runs, when no
    merge-back is queued or running. A failing follow-up push to a branch or a
    merge-back lost in a crash therefore cannot stop the merge-back of what
    was released. Both kinds go one at a time; the builds carry only a job
    token (``security_jobs``).
    """

    def checkConfig(self, builderNames: list[str], settings: Settings, merge_back_builder: str,  # type: ignore[override]
                    **kwargs: Any) -> None:
        super().checkConfig(builderNames=builderNames, settings=settings, **kwargs)

    @defer.inlineCallbacks
    def reconfigService(self, builderNames: list[str], settings: Settings, merge_back_builder: str,  # type: ignore[override]
                        **kwargs: Any):
        self.merge_back_builder = merge_back_builder
        yield super().reconfigService(builderNames=builderNames, settings=settings, **kwargs)

    @defer.inlineCallbacks
    def activate(self):
        yield super().activate()
        if not self.enabled:
            return
        self.start_timer(self.settings.repository.poll_interval, self.reconcile,
                         "watching the security branches failed")

    async def reconcile(self) -> None:
        tips = await self.tips()
        if tips is None:
            return
        registry = services(self.master).registry
        await self._security_builds(registry, tips)
        await self._merge_backs(registry, tips)

    async def _security_builds(self, registry: Registry, tips: Tips) -> None:
        if await _busy(self.master, self.builderNames):
            return  # one at a time; a later tick picks the rest up
        frozen = await registry.freeze() is not None or \
            window_state(self.settings.freeze.windows, self.master.reactor.seconds()).frozen
        for branch in branch_names(tips.heads):
            if not branch_matches(branch, self.settings.branches.security):
                continue
            tip = tips.heads[branch]
            run = await registry.fix(branch)
            decision = fix_history.security_build_due(tip, run, frozen)
            if decision.action is not Action.RUN_SUITE:
                continue
            log.msg(f"{self.name}: queueing a security build: {decision.reason}")
            now = self.master.reactor.seconds()
            await registry.save_fix(SecurityFix(branch, tip, FixState.QUEUED, PUSHED_BY, now) if run is None else
                                    dataclasses.replace(run, fix_commit=tip, state=FixState.QUEUED, by=PUSHED_BY,
                                                        updated_at=now))
            await queue_job(self, self.settings, JobKind.SECURITY_BUILD, branch, PUSHED_BY, self.builderNames,
                            automatic=True)
            return

    async def _merge_backs(self, registry: Registry, tips: Tips) -> None:
        releases = fix_history.distinct(await registry.releases())
        devel_tip = tips.get(self.settings.branches.devel)
        if not releases or devel_tip is None:
            return
        upstream = self.upstream
        candidates = [r.candidate for r in releases]
        pending = fix_history.pending(releases, await contained_in(upstream, devel_tip, candidates))
        if not pending or await _busy(self.master, [self.merge_back_builder]):
            return
        # auto_deploy servers follow stable, which holds a fix only after its merge-back
        servers = [s.name for s in self.settings.servers if s.auto_deploy is None]
        running: dict[str, set[str]] = {}  # server -> the pending candidates it runs
        for s in servers:
            dep = await registry.deployment(s)
            running[s] = await contained_in(upstream, dep.revision if dep else None,
                                            [r.candidate for r in pending])
        facts = []
        for r in pending:
            ancestors = await contained_in(upstream, r.candidate, [p.candidate for p in pending])
            brings = tuple(p.candidate for p in fix_history.brought_in(r.candidate, pending, ancestors))
            with_it = {s for s in servers if r.candidate in running[s]}
            facts.append(fix_history.PendingFix(r, fix_history.release_due(servers, with_it), brings))
        decision = fix_history.merge_back_plan(facts, await registry.merge_backs(), self.master.reactor.seconds())
        log.msg(f"{self.name}: merge-back: {decision.reason}")
        if decision.action is Action.MOVE and decision.revision:
            branch = next(r.branch for r in pending if r.candidate == decision.revision)
            await queue_job(self, self.settings, JobKind.MERGE_BACK, branch, AUTOMATIC,
                            [self.merge_back_builder], automatic=True, candidate=decision.revision)


PUSHED_BY = "lpdeploy (push)"


async def _busy(master: Any, builder_names: list[str]) -> bool:
    """Whether a request for one of these builders is queued or its build is running."""
    for name in builder_names:
        builderid = await master.data.updates.findBuilderId(name)
        if await master.db.buildrequests.getBuildRequests(builderid=builderid, complete=False):
            return True
    return False
