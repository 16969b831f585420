"""Schedulers: the devel gate, auto-deploys, security branches, and the promotion timer.

Events are hints, the tips are the truth: the gate scheduler answers a push to
devel by making sure one gate build is queued, and on every start (and every
few minutes) it reconciles from the tips, because changes delivered while no
master ran are not replayed.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import croniter
from buildbot import config
from buildbot.data import resultspec
from buildbot.process.properties import Properties
from buildbot.schedulers.base import ReconfigurableBaseScheduler
from buildbot.schedulers.timed import Timed
from twisted.internet import defer, task
from twisted.python import log

from lpdeploy.core import fix_history, policy
from lpdeploy.core.errors import LpDeployError
from lpdeploy.core.freeze_windows import window_state
from lpdeploy.core.model import MERGE_BACK, QUEUED, SECURITY_BUILD, Action, SecurityFix, Tips
from lpdeploy.core.refs import branch_matches
from lpdeploy.core.settings import Settings
from lpdeploy.facts.embargo import contained_in
from lpdeploy.git.gitops import branch_names
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.security_jobs import queue_job
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.registry import DbRegistry

RECONCILE_INTERVAL = 300  # seconds between reconciliations when no hint arrives


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
        return Upstream.of(self.master, self.settings.repository.url)

    def start_timer(self, interval: float, tick: Any) -> None:
        """Call ``tick`` now and every ``interval`` seconds while active (Buildbot's clock)."""
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
        """The upstream tips, or None (logged) while the upstream cannot be read: a later tick retries."""
        try:
            return await self.upstream.fetch()
        except LpDeployError as e:
            log.msg(f"{self.name}: cannot read the upstream tips ({e}); will retry")
            return None


class GateScheduler(FlowScheduler):
    """Keep exactly one gate build queued whenever the devel tip is not yet on stable."""

    @defer.inlineCallbacks
    def activate(self):
        yield super().activate()
        if not self.enabled:
            return
        yield self.startConsumingChanges()
        self.start_timer(RECONCILE_INTERVAL, lambda: self._reconcile_logged("periodic check"))

    def gotChange(self, change: Any, important: bool) -> defer.Deferred[None]:
        """Called by Buildbot, serialised, for every new change record."""
        if change.branch != self.settings.branches.devel:
            return defer.succeed(None)
        return defer.ensureDeferred(self.reconcile(f"push to {change.branch} ({change.revision[:12]})",
                                                   hint=change.revision))

    def _reconcile_logged(self, why: str) -> defer.Deferred[None]:
        d = defer.ensureDeferred(self.reconcile(why))
        d.addErrback(log.err, f"{self.name}: reconciling from the tips failed")
        return d

    async def reconcile(self, why: str, hint: str | None = None) -> None:
        """Queue a gate build if the tips say one is owed and none is queued."""
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
            record = await DbLedger(self.master).lookup(self.settings.suite.identity, tree)
            if stable_tip is not None:
                contains = devel_tip == stable_tip or await upstream.is_ancestor(devel_tip, stable_tip)
        pending = await self._gate_queued() or (devel_tip is not None and await self._testing(devel_tip))
        decision = policy.gate_needed(branches.devel, devel_tip, record, contains, pending)
        if decision.action is not Action.RUN_SUITE:
            log.msg(f"{self.name}: {why}: {decision.reason}")
            return
        await self.addBuildsetForSourceStamps(
            sourcestamps=[{
                "codebase": "", "repository": self.settings.repository.url,
                "branch": branches.devel, "revision": hint or devel_tip, "project": "",
            }],
            reason=f"{why}: {decision.reason}",
            properties=Properties(),
            builderNames=self.builderNames,
        )

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
                if props.get("lpdeploy_revision", (None,))[0] in (None, revision):
                    return True
        return False

    async def _gate_queued(self) -> bool:
        """Whether a gate request waits unclaimed: it will test the newest tip when it starts."""
        return await _queued(self.master, self.builderNames)


class CronPromotion(Timed):
    """Start a promote build on a cron schedule (``[promotion] schedule``)."""

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

    def getNextBuildTime(self, lastActuated: float | None) -> defer.Deferred[float]:
        """Called by ``Timed`` after each actuation: the next cron instant, master local time."""
        ts = lastActuated or self.now()
        start = datetime.datetime.fromtimestamp(ts).astimezone()
        return defer.succeed(croniter.croniter(self.cron, start).get_next(float))


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
        self.start_timer(RECONCILE_INTERVAL, self._tick)

    def _tick(self) -> defer.Deferred[None]:
        d = defer.ensureDeferred(self.reconcile("periodic check"))
        d.addErrback(log.err, f"{self.name}: reconciling auto deploys failed")
        return d

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
        registry = DbRegistry(self.master)
        behind = [s for s in self.servers
                  if getattr(await registry.deployment(s), "revision", None) != stable_tip]
        if not behind:
            return
        props = Properties()
        props.setProperty("lpdeploy_auto", True, "AutoDeployScheduler")
        props.setProperty("servers", behind, "AutoDeployScheduler")
        await self.addBuildsetForSourceStamps(
            sourcestamps=[{"codebase": "", "repository": self.settings.repository.url,
                           "branch": self.settings.branches.stable, "revision": stable_tip, "project": ""}],
            reason=f"auto deploy ({why}): {', '.join(behind)} to {stable_tip[:12]}",
            properties=props, builderNames=self.builderNames)


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
        self.start_timer(self.settings.repository.poll_interval, self._tick)

    def _tick(self) -> defer.Deferred[None]:
        d = defer.ensureDeferred(self.reconcile())
        d.addErrback(log.err, f"{self.name}: watching the security branches failed")
        return d

    async def reconcile(self) -> None:
        tips = await self.tips()
        if tips is None:
            return
        registry = DbRegistry(self.master)
        await self._security_builds(registry, tips)
        await self._merge_backs(registry, tips)

    async def _security_builds(self, registry: DbRegistry, tips: Tips) -> None:
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
            await registry.save_fix(SecurityFix(branch, tip, QUEUED, PUSHED_BY, now) if run is None else
                                    dataclasses.replace(run, fix_commit=tip, state=QUEUED, by=PUSHED_BY,
                                                        updated_at=now))
            await queue_job(self, self.settings, SECURITY_BUILD, branch, PUSHED_BY, self.builderNames,
                            automatic=True)
            return

    async def _merge_backs(self, registry: DbRegistry, tips: Tips) -> None:
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
            await queue_job(self, self.settings, MERGE_BACK, branch, "lpdeploy (automatic)",
                            [self.merge_back_builder], automatic=True, candidate=decision.revision)


PUSHED_BY = "lpdeploy (push)"


async def _busy(master: Any, builder_names: list[str]) -> bool:
    """Whether a request for one of these builders is queued or its build is running."""
    for name in builder_names:
        builderid = await master.data.updates.findBuilderId(name)
        if await master.db.buildrequests.getBuildRequests(builderid=builderid, complete=False):
            return True
    return False
