"""A worker lost while a build prepares: the build ends (RETRY) instead of hanging forever.

A real in-process Buildbot master (``RunMasterBase``) with a real local worker
(the ``null`` protocol). The worker's connection is dropped at the exact moment
Buildbot 4.3 leaves open: after the build wrote "preparing worker" or "pinging
worker" to the database and before it looked at its worker. That is what
``test_e2e_shard_loss`` hit by chance (2 runs in 5): the build stayed
unfinished and the gate waited on it forever. ``lpdeploy.lost_worker`` carries
the fix; see its docstring for the defect.

Without the fix the build never finishes; the test then fails after a bounded
wait and finishes the wedged build itself, so the master can still shut down.
"""

from __future__ import annotations

from buildbot.config import BuilderConfig
from buildbot.process.factory import BuildFactory
from buildbot.process.results import RETRY
from buildbot.schedulers.triggerable import Triggerable
from buildbot.steps.shell import ShellCommand
from buildbot.test.util.integration import RunMasterBase
from buildbot.util import asyncSleep
from buildbot.util.twisted import async_to_deferred
from support import temp_dir
from twisted.internet import reactor

from lpdeploy import lost_worker
from lpdeploy.settings import parse_settings

WAIT = 15.0  # seconds; the build ends within a second when the fix is in


class WorkerLostWhilePreparing(RunMasterBase):
    proto = "null"

    def setUp(self):
        lost_worker.install()

    async def _lose_worker_when(self, state: str) -> dict:
        """Force a build; drop the worker right after the build's state becomes ``state``; the build, when done."""
        await self.setup_master({
            "builders": [BuilderConfig(name="b", workernames=["local1"],
                                       factory=BuildFactory([ShellCommand(command=["true"])]))],
            "schedulers": [Triggerable(name="go", builderNames=["b"])],
        }, basedir=temp_dir(self))
        worker = self.master.workers.workers["local1"]
        updates = self.master.data.updates
        set_state = updates.setBuildStateString
        dropped: list[int] = []

        async def drop_the_worker_on(buildid, state_string):
            await set_state(buildid, state_string)
            if state_string == state and not dropped:
                dropped.append(buildid)
                conn = worker.conn
                conn.loseConnection()
                await conn.waitShutdown()  # Worker.detached and Builder.detached have run

        updates.setBuildStateString = drop_the_worker_on
        _, done = self.master.scheduler_manager.namedServices["go"].trigger(waited_for=False, sourcestamps=[])
        done.addErrback(lambda _: None)  # the scheduler stops with the master before the retried build ran
        for _ in range(int(WAIT / 0.1)):
            await asyncSleep(0.1, reactor)
            builds = await self.master.data.get(("builds",))
            if builds and builds[0]["complete"]:
                break
        self.assertEqual(dropped, [builds[0]["buildid"]], "the worker was not dropped at that moment")
        if not builds[0]["complete"]:
            for build in list(self.master.botmaster.builders["b"].building):
                await build.buildFinished(["wedged"], RETRY)  # let the master shut down
            self.fail(f"the build is still unfinished after {WAIT}s: {builds[0]['state_string']!r}")
        return builds[0]

    @async_to_deferred
    async def test_lost_while_pinging_the_build_is_retried(self):
        build = await self._lose_worker_when("pinging worker")
        self.assertEqual(build["results"], RETRY)
        request = await self.master.data.get(("buildrequests", build["buildrequestid"]))
        self.assertFalse(request["complete"], "the request must be queued again for another worker")
        self.assertFalse(request["claimed"])

    @async_to_deferred
    async def test_lost_while_preparing_the_build_is_retried(self):
        build = await self._lose_worker_when("preparing worker")
        self.assertEqual(build["results"], RETRY)
        steps = await self.master.data.get(("builds", build["buildid"], "steps"))
        self.assertEqual(steps[0]["name"], "worker_preparation")
        self.assertIn("worker lost while worker_prepare", steps[0]["state_string"])


def test_every_site_carries_the_fix(tmp_path):
    """The configurator installs the fix: every master built from a site file has it."""
    from buildbot.process.build import Build

    from lpdeploy.configurator import apply  # here: imported after buildbot.test, a deprecation is an error

    Build.buildPreparationFailure = lost_worker._ORIGINAL  # as a fresh master process starts
    try:
        assert not lost_worker.installed()
        apply({}, parse_settings({"repository": {"url": "file:///srv/upstream.git"}}))
        assert lost_worker.installed()
    finally:
        lost_worker.install()
