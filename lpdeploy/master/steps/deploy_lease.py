"""One deploy at a time across every master: the deploy builds hold a lease in the shared database.

The deploy builder's ``MasterLock`` serialises the deploys of one master; a
second master knows nothing of it. So the deploy steps also take the
``deploy`` lease (``stores.lease``) before they decide or deploy anything,
wait while another build holds it, renew it every ``RENEW_EVERY`` seconds
while the build runs, and release it in the build's last step (which runs
whatever happened before). A master that dies stops renewing: its lease
expires ``LEASE_TTL`` seconds after the last renewal and the next deploy, on
any master, goes ahead. Before each server the rollout checks that the lease
is still its own (a renewal that failed for longer than ``LEASE_TTL`` —
a database outage — means another master may be deploying now): if not, it
stops and deploys nothing more.

A lease whose holder's build is over is free at once, not after
``LEASE_TTL``: a master killed during a deploy leaves its lease behind, and
when it restarts (or another master expires it) Buildbot marks that build
finished (RETRY) and queues its request again; the re-run must not wait a
minute for a lease nobody holds. A build that is over deploys nothing more,
so taking its lease over is safe.
"""

from __future__ import annotations

import re
from typing import Any

from buildbot.process import buildstep, results
from twisted.internet import defer, task

from lpdeploy.stores.lease import DbLeases

DEPLOY_LEASE = "deploy"
LEASE_TTL = 60.0  # seconds a lease outlives its holder's last renewal
RENEW_EVERY = 15.0  # a renewal may fail three times in a row before the lease is at risk
WAIT_POLL = 2.0  # seconds between two tries of a busy lease
WAIT_MAX = 6 * 3600.0  # a rollout of many servers takes long; waiting longer than this is an error
_HOLDER_BUILD = re.compile(r" build (\d+)$")  # the build id at the end of ``holder()``
_LOOP = "lpdeploy_deploy_lease_renewal"  # the build's attribute holding its renewal loop (this process only)


def holder(step: buildstep.BuildStep) -> str:
    """This build, named so that any master's log says who holds the lease."""
    return f"master {step.master.masterid} ({step.master.name}) build {step.build.buildid}"


async def hold(step: Any) -> str | None:
    """Take the deploy lease for ``step``'s build, waiting while another build holds it; keep it renewed.

    Returns None once held, else the reason to refuse (waited ``WAIT_MAX``).
    """
    leases = DbLeases(step.master)
    me = holder(step)
    reactor = step.master.reactor
    deadline = reactor.seconds() + WAIT_MAX
    told = None
    while True:
        if getattr(step, "stopped", False):  # a stop (UI cancel, CLI Ctrl-C) ends the wait, not only the build
            return "the build was stopped while it waited for the deploy lease"
        got = await leases.take(DEPLOY_LEASE, me, reactor.seconds(), LEASE_TTL)
        if got.holder == me:
            break
        if await holder_is_over(step, got.holder):
            step.say(f"the deploy lease was left by a build that is over ({got.holder}); taking it over")
            await leases.release(DEPLOY_LEASE, got.holder)  # only if it still holds it: compare-and-swap
            continue
        if got.holder != told:
            step.say(f"waiting: another deploy holds the deploy lease ({got.holder})")
            step.description = ["waiting for another master's deploy"]
            step.updateSummary()
            told = got.holder
        if reactor.seconds() >= deadline:
            return f"another deploy held the deploy lease for over {WAIT_MAX / 3600:.0f} hours ({got.holder})"
        await task.deferLater(reactor, WAIT_POLL)
    if getattr(step.build, _LOOP, None) is None:
        loop = task.LoopingCall(lambda: defer.ensureDeferred(_renew(step, leases, me)))
        loop.clock = reactor
        setattr(step.build, _LOOP, loop)
        loop.start(RENEW_EVERY, now=False).addErrback(lambda f: None)
    return None


async def holder_is_over(step: Any, holder_name: str) -> bool:
    """Whether ``holder_name`` (a ``holder()``) is a build that has finished (a killed master's are, on restart)."""
    found = _HOLDER_BUILD.search(holder_name)
    if found is None:
        return False  # not a build's name: wait for it to expire
    build = await step.master.db.builds.getBuild(int(found.group(1)))
    return build is not None and build.complete_at is not None  # unknown: wait for it to expire


async def keep(step: Any) -> str | None:
    """For a later step of a build: None while the lease it took is still its own, else why to stop.

    Taking the lease again would be wrong: if it expired (the database was
    unreachable) and another master deployed meanwhile, this build's plan is
    out of date. A step that runs in a build that never took it takes it now.
    """
    if getattr(step.build, _LOOP, None) is None:
        return await hold(step)
    if not await still_held(step):
        return "the deploy lease was lost since the plan (another deploy took it); nothing deployed, plan again"
    return None


async def _renew(step: Any, leases: DbLeases, me: str) -> None:
    if getattr(step.build, "finished", False):  # the release step did not run (the build was stopped): let the lease go
        await release(step)
        return
    try:
        await leases.renew(DEPLOY_LEASE, me, step.master.reactor.seconds(), LEASE_TTL)
    except Exception:  # noqa: BLE001 - a database hiccup: the next renewal tries again; still_held() tells
        pass


async def still_held(step: Any) -> bool:
    """Renew now; False when the lease is no longer this build's (expired and taken by another)."""
    return bool(await DbLeases(step.master).renew(DEPLOY_LEASE, holder(step), step.master.reactor.seconds(),
                                                  LEASE_TTL))


async def release(step: Any) -> bool:
    loop = getattr(step.build, _LOOP, None)
    if loop is not None and loop.running:
        loop.stop()
    setattr(step.build, _LOOP, None)
    return bool(await DbLeases(step.master).release(DEPLOY_LEASE, holder(step)))


class ReleaseDeployLease(buildstep.BuildStep):
    """The deploy build's last step: let the next deploy, on any master, go ahead."""

    name = "release deploy lease"
    description = ["releasing the deploy lease"]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("alwaysRun", True)
        kwargs.setdefault("hideStepIf", lambda result, step: result == results.SUCCESS)
        super().__init__(**kwargs)

    async def run(self) -> int:
        released = await release(self)
        self.descriptionDone = ["deploy lease released" if released else "deploy lease was not held"]
        return results.SUCCESS
