"""A fix lpdeploy carries for Buildbot 4.3: a worker lost while a build prepares must not wedge the build.

The defect (``buildbot/process/build.py``, 4.3.0). ``Build.startBuild`` marks
the build "preparing worker", then "pinging worker", each a database write
during which the reactor runs other events. When the worker's connection drops
in that window, ``Worker.detached`` and then ``Builder.detached`` run, and
``WorkerForBuilder.detached`` sets ``workerforbuilder.worker = None``. The build
then finds no worker (``ready_or_failure`` False) or its ping raises
(``Ping().ping(self.worker.conn)`` on None), and calls
``buildPreparationFailure``, which quarantines the worker through
``self.workerforbuilder.worker.putInQuarantine()``: an ``AttributeError``. It
escapes ``startBuild`` (logged as "from a running build; this is a serious
error"), so ``buildFinished`` never runs: the build stays unfinished in
"preparing worker" / "pinging worker", its build request stays claimed, and
whatever waits for it waits forever — the parent's Trigger or ``RunShards``,
and a master shutdown (``BotMaster.cleanShutdown`` waits for every build; its
``abortPingIfAny`` later errbacks the ping watcher the failed ping left behind,
which is the ``PingException`` in the log).

The fix. ``install()`` wraps ``Build.buildPreparationFailure``: when the worker
is already gone there is nothing to quarantine, so the failure is recorded on
the preparation step and ``startBuild`` goes on to ``buildFinished(RETRY)``, as
Buildbot intends for a lost worker; the request is queued again for another
worker. Every other case runs Buildbot's own code unchanged. Remove this module
when Buildbot's ``buildPreparationFailure`` checks for a detached worker.
"""

from __future__ import annotations

from typing import Any

from buildbot.process.build import Build
from buildbot.process.results import EXCEPTION
from buildbot.util.twisted import async_to_deferred
from twisted.python import failure, log

_ORIGINAL = Build.buildPreparationFailure


@async_to_deferred
async def _preparation_failure(build: Any, why: Any, state_string: str) -> None:
    """``Build.buildPreparationFailure``, safe when the worker detached during the preparation."""
    if build.stopped or build.workerforbuilder.worker is not None:
        await _ORIGINAL(build, why, state_string)
        return
    log.msg(f"{build}: the worker was lost while {state_string}; nothing to quarantine, the build is retried")
    step = build._preparation_step
    if isinstance(why, failure.Failure):
        await step.addLogWithFailure(why)
    elif isinstance(why, Exception):
        await step.addLogWithException(why)
    updates = build.master.data.updates
    await updates.setStepStateString(step.stepid, f"worker lost while {state_string}")
    await updates.finishStep(step.stepid, EXCEPTION, False)


def install() -> None:
    """Patch ``Build.buildPreparationFailure`` (idempotent); called by the configurator for every site."""
    Build.buildPreparationFailure = _preparation_failure  # type: ignore[method-assign]


def installed() -> bool:
    return Build.buildPreparationFailure is _preparation_failure  # type: ignore[comparison-overlap]
