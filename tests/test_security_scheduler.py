"""What queues security work, in Buildbot's scheduler harness: the security scheduler and the forms.

``SchedulerMixin`` gives a fake master with Buildbot's real database and data
API: buildsets, build requests and their properties land in real tables, and
the registry is the real ``DbRegistry``. The upstream is a real bare git
repository (``support.RealUpstreamMixin``; git runs synchronously).

Two promises are checked here. Nothing secret enters a buildset: the
branch name (which can itself be a secret) and who asked stay in the job,
master-side; the buildset carries only its token. And nothing can get
stuck: what is owed is derived from the tips, the history of released fixes
and the pending build requests, so a failing follow-up push or a merge-back
lost in a crash never stops the merge-back of what was released.
"""

from __future__ import annotations

import importlib
import warnings

from buildbot.test import fakedb
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.scheduler import SchedulerMixin
from buildbot.util.twisted import async_to_deferred
from support import RealUpstreamMixin
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.model import (
    Deployment,
    FixState,
    JobKind,
    MergeBackAttempt,
    MergeBackOutcome,
    Release,
    SecurityFix,
)
from lpdeploy.core.properties import JOB as JOB_PROPERTY
from lpdeploy.core.settings import parse_settings
from lpdeploy.master.schedulers import SecurityScheduler
from lpdeploy.stores.registry import DbRegistry

SECURITY_BUILDER, MERGE_BACK_BUILDER = "lpdeploy-security", "lpdeploy-merge-back"
SECRET = "SECRET-4242-xyzzy"
BRANCH = f"security/{SECRET}"
OTHER = "security/SECRET-5555-plugh"
T0 = 1_700_000_000.0


def security_forms():
    """``lpdeploy.master.security_forms``, imported with Twisted's deprecation warnings silenced.

    It imports Buildbot's ``forcesched``, which touches a deprecated Twisted
    API on import; ``buildbot.test`` (imported by every harness test module)
    turns warnings into errors for whatever is imported after it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("lpdeploy.master.security_forms")


class QueueCase(RealUpstreamMixin, SchedulerMixin, TestReactorMixin, unittest.TestCase):
    SERVERS: list[dict] = [{"name": "app1", "deploy_command": ["deploy", "{server}", "{revision}"]},
                           {"name": "staging", "deploy_command": ["deploy", "{server}", "{revision}"],
                            "auto_deploy": "stable"}]

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-security-sched-")
        self.settings = parse_settings({"repository": {"url": self.repo.url}, "servers": self.SERVERS})
        yield self.setUpScheduler()
        self.registry = DbRegistry(self.master)
        self.base = self.repo.commit("Initial release", None)
        self.s1 = self.repo.commit("Stable fix", self.base)
        self.d1 = self.repo.commit("Add search", self.s1)
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.s1)
        self.repo.push("devel", self.d1)

    async def buildsets(self) -> list[dict]:
        """Every buildset as a reader of the data API sees it: builders, reason, properties, source stamps."""
        builders = {b.id: b.name for b in await self.master.db.builders.getBuilders()}
        out = []
        for bs in await self.master.db.buildsets.getBuildsets():
            brs = await self.master.db.buildrequests.getBuildRequests(bsid=bs.bsid)
            props = await self.master.db.buildsets.getBuildsetProperties(bs.bsid)
            stamps = [await self.master.db.sourcestamps.getSourceStamp(ssid) for ssid in bs.sourcestamps]
            out.append({"bsid": bs.bsid, "builders": sorted(builders[br.builderid] for br in brs),
                        "reason": bs.reason, "properties": {k: v for k, (v, _) in props.items()},
                        "stamps": [(s.branch, s.revision) for s in stamps], "brids": [br.buildrequestid for br in brs]})
        return out

    async def jobs(self) -> list:
        return [await self.registry.job(bs["properties"][JOB_PROPERTY]) for bs in await self.buildsets()]

    def assert_nothing_secret(self, buildset: dict, *secrets: str) -> None:
        text = repr(buildset)
        for secret in (SECRET, "security/", "SECRET-5555", *secrets):
            self.assertNotIn(secret, text)
        self.assertEqual(set(buildset["properties"]) - {JOB_PROPERTY, "scheduler"}, set())

    async def complete(self, brids: list[int]) -> None:
        """The build of these requests finished (the requests are no longer pending)."""
        await self.master.db.buildrequests.claimBuildRequests(brids)
        await self.master.db.buildrequests.completeBuildRequests(brids, 0)


class SecuritySchedulerCase(QueueCase):
    @async_to_deferred
    async def start(self) -> SecurityScheduler:
        sched = SecurityScheduler(name="lpdeploy-security", builderNames=[SECURITY_BUILDER], settings=self.settings,
                                  merge_back_builder=MERGE_BACK_BUILDER)
        await self.attachScheduler(sched, 71, 72, createBuilderDB=True)
        await self.master.db.insert_test_data([fakedb.Builder(id=400, name=MERGE_BACK_BUILDER)])
        await sched.configureService()  # applies the settings; not activated: the tests call reconcile()
        self.sched = sched
        return sched

    def fix(self, subject: str, parent: str, branch: str = BRANCH, path: str = "login.txt") -> str:
        sha = self.repo.commit(f"{subject} {SECRET}", parent, path=path)
        self.repo.push(branch, sha)
        return sha

    async def released(self, fix: str, branch: str = BRANCH, at: float = T0) -> Release:
        """``fix`` reached production as itself."""
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, fix)
        r = Release(branch, fix, fix, at, by="alice")
        await self.registry.record_release(r)
        return r


class SecurityBuilds(SecuritySchedulerCase):
    @async_to_deferred
    async def test_a_push_queues_a_security_build_whose_buildset_carries_only_a_token(self):
        await self.start()
        fix = self.fix("Escape the login form", self.s1)
        await self.sched.reconcile()
        (bs,) = await self.buildsets()
        self.assertEqual(bs["builders"], [SECURITY_BUILDER])
        self.assertEqual(bs["reason"], "security build")
        self.assertEqual(bs["stamps"], [("", None)])
        self.assert_nothing_secret(bs, fix)
        (job,) = await self.jobs()
        self.assertEqual((job.kind, job.branch, job.requested_by, job.automatic),
                         (JobKind.SECURITY_BUILD, BRANCH, "lpdeploy (push)", True))
        run = await self.registry.fix(BRANCH)
        self.assertEqual((run.fix_commit, run.state), (fix, FixState.QUEUED))

    @async_to_deferred
    async def test_one_at_a_time_and_a_tip_already_queued_is_not_queued_again(self):
        await self.start()
        self.fix("Escape the login form", self.s1)
        self.fix("Limit upload size", self.s1, branch=OTHER, path="upload.txt")
        await self.sched.reconcile()
        await self.sched.reconcile()
        (bs,) = await self.buildsets()
        await self.complete(bs["brids"])
        await self.registry.save_fix(SecurityFix(BRANCH, self.repo.tip(BRANCH), FixState.FAILED, "alice", T0))
        await self.sched.reconcile()
        self.assertEqual([j.branch for j in await self.jobs()], [BRANCH, OTHER])

    @async_to_deferred
    async def test_a_build_lost_in_a_crash_is_queued_again(self):
        # recorded as testing, but no request is queued or running: the build was lost
        await self.start()
        fix = self.fix("Escape the login form", self.s1)
        await self.registry.save_fix(SecurityFix(BRANCH, fix, FixState.TESTING, "alice", T0, candidate=fix))
        await self.sched.reconcile()
        self.assertEqual([j.branch for j in await self.jobs()], [BRANCH])

    @async_to_deferred
    async def test_a_tested_tip_waits_for_a_new_push(self):
        await self.start()
        fix = self.fix("Escape the login form", self.s1)
        await self.registry.save_fix(SecurityFix(BRANCH, fix, FixState.FAILED, "alice", T0))
        await self.sched.reconcile()
        self.assertEqual(await self.buildsets(), [])


class MergeBacks(SecuritySchedulerCase):
    async def merge_back_jobs(self) -> list:
        return [j for j in await self.jobs() if j.kind == JobKind.MERGE_BACK]

    @async_to_deferred
    async def test_a_released_fix_every_server_runs_is_merged_back_with_a_token_only(self):
        await self.start()
        v1 = self.fix("Escape the login form", self.s1)
        await self.registry.save_fix(SecurityFix(BRANCH, v1, FixState.PROMOTED, "alice", T0, candidate=v1))
        await self.released(v1)
        await self.sched.reconcile()
        self.assertEqual(await self.merge_back_jobs(), [])  # app1 does not run it yet
        await self.registry.record_deployment(Deployment("app1", v1, T0, "bob"))
        await self.sched.reconcile()
        (bs,) = [b for b in await self.buildsets() if b["builders"] == [MERGE_BACK_BUILDER]]
        self.assertEqual(bs["reason"], "merge-back")
        self.assert_nothing_secret(bs, v1)
        (job,) = await self.merge_back_jobs()
        self.assertEqual((job.branch, job.candidate, job.automatic), (BRANCH, v1, True))

    @async_to_deferred
    async def test_a_failing_follow_up_push_does_not_stop_the_merge_back_of_what_was_released(self):
        # issue 10, item 2: v1 released and on app1; a reworked v2 force-pushed, its build failed
        await self.start()
        v1 = self.fix("Escape the login form", self.s1)
        await self.released(v1)
        await self.registry.record_deployment(Deployment("app1", v1, T0, "bob"))
        v2 = self.fix("Rework the login check", self.base)
        await self.registry.save_fix(SecurityFix(BRANCH, v2, FixState.FAILED, "alice", T0 + 5, note="does not merge"))
        await self.sched.reconcile()
        (job,) = await self.merge_back_jobs()
        self.assertEqual(job.candidate, v1)

    @async_to_deferred
    async def test_a_merge_back_lost_in_a_crash_is_queued_again_and_never_twice_at_once(self):
        await self.start()
        v1 = self.fix("Escape the login form", self.s1)
        await self.released(v1)
        await self.registry.record_deployment(Deployment("app1", v1, T0, "bob"))
        await self.sched.reconcile()
        await self.sched.reconcile()  # queued (or running): not queued again
        (first,) = [b for b in await self.buildsets() if b["builders"] == [MERGE_BACK_BUILDER]]
        await self.master.db.buildrequests.claimBuildRequests(first["brids"])
        await self.sched.reconcile()  # running: still not again
        self.assertEqual(len(await self.merge_back_jobs()), 1)
        # the master died mid-build: the request ended without a merge; devel still lacks v1
        await self.master.db.buildrequests.completeBuildRequests(first["brids"], 4)
        await self.sched.reconcile()
        self.assertEqual([j.candidate for j in await self.merge_back_jobs()], [v1, v1])

    @async_to_deferred
    async def test_a_fix_devel_holds_is_not_merged_back(self):
        await self.start()
        v1 = self.fix("Escape the login form", self.s1)
        await self.released(v1)
        await self.registry.record_deployment(Deployment("app1", v1, T0, "bob"))
        self.repo.push("devel", self.repo.merge(self.d1, v1, "merged by hand"))
        await self.sched.reconcile()
        self.assertEqual(await self.merge_back_jobs(), [])

    @async_to_deferred
    async def test_a_conflicted_merge_back_is_not_queued_again(self):
        await self.start()
        v1 = self.fix("Escape the login form", self.s1)
        await self.released(v1)
        await self.registry.record_deployment(Deployment("app1", v1, T0, "bob"))
        await self.registry.record_merge_back(MergeBackAttempt(T0 + 1, "0" * 32, "lpdeploy", v1,
                                                               MergeBackOutcome.CONFLICT, (v1,)))
        await self.sched.reconcile()
        self.assertEqual(await self.merge_back_jobs(), [])

    @async_to_deferred
    async def test_a_later_fix_waits_until_every_fix_it_brings_is_due_then_brings_them_together(self):
        # issue 10, item 3: A released; B built on production (holding A) released; app1 runs A only
        await self.start()
        a = self.fix("Escape the login form", self.s1)
        await self.released(a)
        await self.registry.record_deployment(Deployment("app1", self.s1, T0, "bob"))
        b = self.fix("Limit upload size", a, branch=OTHER, path="upload.txt")
        await self.released(b, branch=OTHER, at=T0 + 10)
        await self.sched.reconcile()
        self.assertEqual(await self.merge_back_jobs(), [])  # app1 runs neither
        await self.registry.record_deployment(Deployment("app1", b, T0 + 20, "bob"))
        await self.sched.reconcile()
        (job,) = await self.merge_back_jobs()
        self.assertEqual((job.branch, job.candidate), (OTHER, b))  # b's merge brings a with it

    @async_to_deferred
    async def test_auto_deploy_servers_do_not_hold_a_merge_back_back(self):
        # "staging" follows stable, which gets the fix only through the merge-back itself
        await self.start()
        v1 = self.fix("Escape the login form", self.s1)
        await self.released(v1)
        await self.registry.record_deployment(Deployment("app1", v1, T0, "bob"))
        await self.registry.record_deployment(Deployment("staging", self.s1, T0, "lpdeploy"))
        await self.sched.reconcile()
        self.assertEqual(len(await self.merge_back_jobs()), 1)


class Forms(QueueCase):
    """The security-build and merge-back forms: a branch becomes a job; bad ones are a 400 naming the rule."""

    @async_to_deferred
    async def start(self, name: str = "security-build", kind: str = JobKind.SECURITY_BUILD,
                    builder: str = SECURITY_BUILDER):
        forms = security_forms()
        sched = forms.SecurityForceScheduler(name=name, builderNames=[builder], settings=self.settings, kind=kind)
        await self.attachScheduler(sched, 81, 82, createBuilderDB=True)
        await sched.configureService()
        # the data API finds force schedulers through the master (the fake one lacks this lookup)
        self.master.allSchedulers = lambda: [sched]
        self.sched = sched
        return sched

    async def post(self, name: str, **fields):
        """A form post as the REST API hands it over, with the logged-in user as owner."""
        return await self.master.data.control("force", {"owner": "alice", **fields}, ("forceschedulers", name))

    @async_to_deferred
    async def test_a_forced_security_build_keeps_branch_and_owner_out_of_the_buildset(self):
        await self.start()
        await self.post("security-build", security_branch=BRANCH, reason="my reason", lpdeploy_job="f" * 32)
        (bs,) = await self.buildsets()
        self.assertEqual(bs["reason"], "security build")  # the typed reason is ignored
        self.assert_nothing_secret(bs, "alice", "my reason")
        self.assertNotEqual(bs["properties"][JOB_PROPERTY], "f" * 32)  # a smuggled token is ignored
        (job,) = await self.jobs()
        self.assertEqual((job.kind, job.branch, job.requested_by, job.automatic),
                         (JobKind.SECURITY_BUILD, BRANCH, "alice", False))

    @async_to_deferred
    async def test_a_forced_merge_back_keeps_branch_and_owner_out_of_the_buildset(self):
        await self.start("merge-back", JobKind.MERGE_BACK, MERGE_BACK_BUILDER)
        await self.post("merge-back", security_branch=BRANCH)
        (bs,) = await self.buildsets()
        self.assertEqual((bs["builders"], bs["reason"]), ([MERGE_BACK_BUILDER], "merge-back"))
        self.assert_nothing_secret(bs, "alice")
        (job,) = await self.jobs()
        self.assertEqual((job.kind, job.branch, job.requested_by, job.candidate),
                         (JobKind.MERGE_BACK, BRANCH, "alice", None))

    @async_to_deferred
    async def test_bad_branches_are_refused_naming_the_rule_and_nothing_is_queued(self):
        from buildbot.www.rest import BadJsonRpc2  # the data API's "400 Bad Request"

        await self.start()
        for bad, rule in (("--upload-pack=touch /tmp/x", "must not start with '-'"),
                          ("devel", "does not match 'security/*'"),
                          ("security/" + "x" * 300, "longer than 200 characters"),
                          ("security/a b", "only letters, digits"),
                          ("", "must not be empty")):
            with self.assertRaises(BadJsonRpc2) as e:
                await self.post("security-build", security_branch=bad)
            self.assertIn(rule, e.exception.message["security_branch"], bad)
        self.assertEqual(await self.buildsets(), [])
