"""A fix lpdeploy carries for Buildbot 4.3: a worker lost while a build starts must not wedge the build.

The defect (``buildbot/process/build.py``, 4.3.0). ``Build.startBuild`` writes
"preparing worker", "pinging worker" and the preparation step's end to the
database, and during each write the reactor runs other events. When the
worker's connection drops in such a window, ``Worker.detached`` sets
``worker.conn = None`` and then ``WorkerForBuilder.detached`` sets
``workerforbuilder.worker = None``. What ``startBuild`` does next raises:

- no worker to prepare, or a ping on ``None.conn``: ``buildPreparationFailure``
  quarantines the worker through ``self.workerforbuilder.worker.putInQuarantine()``
  (``AttributeError``);
- the ping had succeeded: ``assert workerforbuilder.worker is not None``, or
  ``self.conn.notifyOnDisconnect`` on a ``None`` connection.

The exception escapes ``startBuild`` (logged as "from a running build; this is
a serious error"), so ``buildFinished`` never runs: the build stays unfinished
in "preparing worker" / "pinging worker", its build request stays claimed, and
whatever waits for it waits forever — the parent's Trigger or ``RunShards``,
and a master shutdown (``BotMaster.cleanShutdown`` waits for every build; its
``abortPingIfAny`` later errbacks the ping watcher the failed ping left behind,
which is the ``PingException`` in the log). ``test_e2e_shard_loss`` hit it in 2
runs of 5 before this fix, and the third window in 1 of 20 with only the first
part of the fix below.

The fix, installed by ``install()``:

- ``Build.buildPreparationFailure``: when the worker is already gone there is
  nothing to quarantine; the failure is recorded on the preparation step and
  ``startBuild`` goes on to ``buildFinished(RETRY)``, as Buildbot intends;
- ``Build.startBuild``: if it fails after the build is in the database and
  before it finished, the build is finished — RETRY when its worker is gone
  (the request is queued again for another worker, as for a worker lost
  mid-build), EXCEPTION otherwise — instead of hanging.

Every other case runs Buildbot's own code unchanged. Remove this module when
Buildbot's ``startBuild`` survives a worker detaching while it starts.
"""

from __future__ import annotations

from typing import Any

from buildbot.process.build import Build
from buildbot.process.results import EXCEPTION, RETRY
from buildbot.util.twisted import async_to_deferred
from twisted.python import failure, log

_ORIGINAL_PREPARATION_FAILURE = Build.buildPreparationFailure
_ORIGINAL_START = Build.startBuild


def _worker_gone(workerforbuilder: Any) -> bool:
    return workerforbuilder.worker is None or workerforbuilder.worker.conn is None


async def _record_on_preparation_step(build: Any, why: Any, state: str) -> None:
    """Log ``why`` on the preparation step and finish it (EXCEPTION), unless it is finished already."""
    step = getattr(build, "_preparation_step", None)
    if step is None or step.stepid is None:
        return
    found = await build.master.data.get(("steps", step.stepid))
    if found is not None and found["complete"]:
        return
    if isinstance(why, failure.Failure):
        await step.addLogWithFailure(why)
    elif isinstance(why, Exception):
        await step.addLogWithException(why)
    updates = build.master.data.updates
    await updates.setStepStateString(step.stepid, state)
    await updates.finishStep(step.stepid, EXCEPTION, False)


@async_to_deferred
async def _preparation_failure(build: Any, why: Any, state_string: str) -> None:
    """``Build.buildPreparationFailure``, safe when the worker detached during the preparation."""
    if build.stopped or build.workerforbuilder.worker is not None:
        await _ORIGINAL_PREPARATION_FAILURE(build, why, state_string)
        return
    log.msg(f"{build}: the worker was lost while {state_string}; nothing to quarantine, the build is retried")
    await _record_on_preparation_step(build, why, f"worker lost while {state_string}")


@async_to_deferred
async def _start_build(build: Any, workerforbuilder: Any) -> None:
    """``Build.startBuild``, which finishes the build when starting it fails instead of leaving it unfinished."""
    try:
        await _ORIGINAL_START(build, workerforbuilder)
    except Exception:
        why = failure.Failure()
        if build.finished or getattr(build, "stopBuildConsumer", None) is None:
            raise  # finished after all, or not in the database yet: Buildbot's own handling
        if getattr(build, "subs", None) is None:
            build.conn = None  # no disconnect subscription was made: buildFinished must not undo one
        if _worker_gone(workerforbuilder):
            log.msg(f"{build}: the worker was lost while the build started ({why.getErrorMessage() or why.type}); "
                    "the build is retried")
            await _record_on_preparation_step(build, why, "worker lost while the build started")
            await build.buildFinished(["worker", "lost", "while", "starting"], RETRY)
        else:
            log.err(why, f"{build}: starting the build failed; it ends with an exception")
            await _record_on_preparation_step(build, why, "starting the build failed")
            await build.buildFinished(["starting", "the", "build", "failed"], EXCEPTION)


def install() -> None:
    """Patch ``Build`` (idempotent); called by the configurator for every site."""
    Build.buildPreparationFailure = _preparation_failure  # type: ignore[method-assign]
    Build.startBuild = _start_build  # type: ignore[method-assign]


def installed() -> bool:
    return (Build.buildPreparationFailure is _preparation_failure  # type: ignore[comparison-overlap]
            and Build.startBuild is _start_build)  # type: ignore[comparison-overlap]


def uninstall() -> None:
    """Buildbot's own code again (for tests that show the defect)."""
    Build.buildPreparationFailure = _ORIGINAL_PREPARATION_FAILURE  # type: ignore[method-assign]
    Build.startBuild = _ORIGINAL_START  # type: ignore[method-assign]
