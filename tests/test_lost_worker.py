"""A worker lost while a build starts: the build ends (RETRY) instead of hanging forever.

A real in-process Buildbot master (``RunMasterBase``) with a real local worker
(the ``null`` protocol). The worker's connection is dropped at each moment
Buildbot 4.3 leaves open: right after the build wrote "preparing worker",
"pinging worker", or the end of its preparation step to the database, and
before it looked at its worker again. That is what ``test_e2e_shard_loss`` hit
by chance: the build stayed unfinished and the gate waited on it forever.
``lpdeploy.master.lost_worker`` carries the fix; see its docstring for the defect.

Without the fix the build never finishes; the test then fails after a bounded
wait and finishes the wedged build itself, so the master can still shut down.
"""

from __future__ import annotations

from buildbot.config import BuilderConfig
from buildbot.process.build import Build
from buildbot.process.factory import BuildFactory
from buildbot.process.results import CANCELLED, EXCEPTION, RETRY, SUCCESS
from buildbot.schedulers.triggerable import Triggerable
from buildbot.steps.shell import ShellCommand
from buildbot.test.util.integration import RunMasterBase
from buildbot.util import asyncSleep
from buildbot.util.twisted import async_to_deferred
from support import temp_dir
from twisted.internet import reactor

from lpdeploy.core.settings import parse_settings
from lpdeploy.master import lost_worker

WAIT = 15.0  # seconds; the build ends within a second when the fix is in


class WorkerLostWhileStarting(RunMasterBase):
    proto = "null"

    def setUp(self):
        lost_worker.install()

    async def _run_one_build(self) -> dict:
        """Start one build and wait (bounded) for it to end; a build that never ends fails the test."""
        _, done = self.master.scheduler_manager.namedServices["go"].trigger(waited_for=False, sourcestamps=[])
        done.addErrback(lambda _: None)  # the scheduler stops with the master before a retried build ran
        for _ in range(int(WAIT / 0.1)):
            await asyncSleep(0.1, reactor)
            builds = await self.master.data.get(("builds",))
            if builds and builds[0]["complete"]:
                return builds[0]
        self.fail(f"the build is still unfinished after {WAIT}s: {builds[0]['state_string']!r}")

    @async_to_deferred
    async def _unwedge(self) -> None:
        """Before the master stops: let go of builds a defect left behind, or its shutdown waits for them forever."""
        for build in list(self.master.botmaster.builders["b"].building):
            if build.finished:
                self.master.botmaster.builders["b"].building.remove(build)
                continue
            if build.subs is None:
                build.conn = None
            await build.buildFinished(["wedged"], CANCELLED)  # not RETRY: it would start (and wedge) again

    async def _start(self) -> None:
        await self.setup_master({
            "builders": [BuilderConfig(name="b", workernames=["local1"],
                                       factory=BuildFactory([ShellCommand(command=["true"])]))],
            "schedulers": [Triggerable(name="go", builderNames=["b"])],
        }, basedir=temp_dir(self))
        self.addCleanup(self._unwedge)  # runs before the master's shutdown (cleanups run last first)

    async def _lose_worker_after(self, update: str, matches) -> dict:
        """Drop the worker right after the data update ``update`` whose arguments ``matches``; the build, ended."""
        await self._start()
        worker = self.master.workers.workers["local1"]
        updates = self.master.data.updates
        original = getattr(updates, update)
        dropped: list[tuple] = []

        async def then_drop_the_worker(*args, **kwargs):
            await original(*args, **kwargs)
            if matches(*args, **kwargs) and not dropped:
                dropped.append(args)
                conn = worker.conn
                conn.loseConnection()
                await conn.waitShutdown()  # Worker.detached and Builder.detached have run

        setattr(updates, update, then_drop_the_worker)
        build = await self._run_one_build()
        self.assertTrue(dropped, "the worker was not dropped at that moment")
        return build

    async def _assert_retried(self, build: dict) -> None:
        self.assertEqual(build["results"], RETRY)
        request = await self.master.data.get(("buildrequests", build["buildrequestid"]))
        self.assertFalse(request["complete"], "the request must be queued again for another worker")
        if request["claimed"]:  # on a loaded machine the worker is back already and a new build took the request
            again = [b for b in await self.master.data.get(("builds",))
                     if b["buildrequestid"] == build["buildrequestid"] and b["buildid"] != build["buildid"]]
            self.assertTrue(again, "the request is claimed, but by no new build: the lost build still holds it")
        (preparation,) = [s for s in await self.master.data.get(("builds", build["buildid"], "steps"))
                          if s["name"] == "worker_preparation"]
        self.assertTrue(preparation["complete"])

    @async_to_deferred
    async def test_lost_while_preparing_the_build_is_retried(self):
        build = await self._lose_worker_after("setBuildStateString", lambda _, state: state == "preparing worker")
        await self._assert_retried(build)
        steps = await self.master.data.get(("builds", build["buildid"], "steps"))
        self.assertIn("worker lost while worker_prepare", steps[0]["state_string"])

    @async_to_deferred
    async def test_lost_while_pinging_the_build_is_retried(self):
        build = await self._lose_worker_after("setBuildStateString", lambda _, state: state == "pinging worker")
        await self._assert_retried(build)

    @async_to_deferred
    async def test_lost_right_after_a_successful_ping_the_build_is_retried(self):
        build = await self._lose_worker_after("finishStep", lambda _, results, hidden: results == SUCCESS)
        await self._assert_retried(build)

    @async_to_deferred
    async def test_any_other_failure_to_start_ends_the_build_with_an_exception(self):
        def boom(build, workerforbuilder):
            raise RuntimeError("cannot set up the worker's properties")

        self.patch(Build, "setupWorkerProperties", boom)
        await self._start()
        build = await self._run_one_build()
        self.assertEqual(build["results"], EXCEPTION)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        request = await self.master.data.get(("buildrequests", build["buildrequestid"]))
        self.assertTrue(request["complete"])


def test_every_site_carries_the_fix():
    """The configurator installs the fix: every master built from a site file has it."""
    from lpdeploy.configurator import apply  # here: imported after buildbot.test, a deprecation is an error

    lost_worker.uninstall()  # as a fresh master process starts
    try:
        assert not lost_worker.installed()
        apply({}, parse_settings({"repository": {"url": "file:///srv/upstream.git"}}))
        assert lost_worker.installed()
    finally:
        lost_worker.install()
