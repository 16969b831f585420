"""The Pipeline dashboard's snapshot: one computation for many viewers, no git when warm (issue 15, part 2).

A real upstream (``support.GitUpstream``) whose production branches run a
released security fix (embargoed: devel does not have it), a real mirror, a
fake master with Buildbot's fake message queue. Every git process lpdeploy
starts goes through ``gitops.run_git``; the tests count them around each
render. The embargo (design invariant 6) still holds per viewer: a viewer
without the security role never gets the security user's picture, whichever
was computed first.

Threads: ``TestReactorMixin`` replaces ``threads.deferToThread`` with a
synchronous stand-in, so real git runs in the test thread; the upstream's
clock is the test reactor's.
"""

from __future__ import annotations

import os

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, make_db_master, temp_dir
from twisted.trial import unittest

from lpdeploy.core.model import Freeze, Release
from lpdeploy.core.settings import parse_settings
from lpdeploy.git import gitops
from lpdeploy.git.gitops import Mirror
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import InMemoryLedger
from lpdeploy.stores.registry import InMemoryRegistry
from lpdeploy.web.snapshot import DashboardSnapshot

SECRET = "Fix the login bypass SECRETx4711"
POLL = 60


class SnapshotCase(TestReactorMixin, unittest.TestCase):
    @async_to_deferred
    async def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-snapshot-")
        self.repo = GitUpstream(base)
        self.master = await make_db_master(self, wantMq=True)
        self.master.mq.verifyMessages = False
        self.upstream = Upstream(Mirror(os.path.join(base, "master", "lpdeploy-mirror.git"), self.repo.url),
                                 clock=self.reactor.seconds)
        self.registry = InMemoryRegistry()
        self.ledger = InMemoryLedger()
        self.settings = parse_settings({"repository": {"url": self.repo.url, "poll_interval": POLL}})
        root = self.repo.commit("Initial release", None)
        self.stable = self.repo.commit("Stable work", root)
        self.devel = self.repo.commit("Add search", self.stable)
        self.fix = self.repo.commit(SECRET, self.stable, path="login.txt")
        self.repo.push("stable", self.stable)
        self.repo.push("devel", self.devel)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.fix)
        await self.registry.record_release(Release(branch="security/cve-4711", fix_commit=self.fix,
                                                   candidate=self.fix, released_at=1.0, by="sec-alice"))
        self.snapshot = DashboardSnapshot(self.master)
        self.git_calls: list[list[str]] = []
        real = gitops.run_git

        def counted(args, *rest, **kwargs):
            self.git_calls.append(list(args))
            return real(args, *rest, **kwargs)

        self.patch(gitops, "run_git", counted)

    async def render(self, security: bool) -> tuple[dict, list[list[str]]]:
        """One viewer's picture, and the git commands its render ran."""
        before = len(self.git_calls)
        view = await self.snapshot.view(self.upstream, self.ledger, self.registry, self.settings,
                                        may_see_security=security, now=self.reactor.seconds())
        return view, self.git_calls[before:]

    def fetches(self, calls: list[list[str]]) -> list[list[str]]:
        return [c for c in calls if "fetch" in c]

    def build_finished(self) -> None:
        self.master.mq.callConsumer(("builds", "1", "finished"), {"buildid": 1})

    def stage(self, view: dict, name: str) -> dict:
        return next(b for b in view["branches"] if b["name"] == name)


class OneComputationNoGitWhenWarm(SnapshotCase):
    @async_to_deferred
    async def test_a_warm_render_runs_no_git_for_either_role(self):
        _, cold = await self.render(security=False)
        self.assertTrue(cold, "the first render computed nothing")
        self.assertEqual(len(self.fetches(cold)), 1)  # nobody had fetched yet
        _, warm = await self.render(security=False)
        self.assertEqual(warm, [])
        _, other_role = await self.render(security=True)
        self.assertEqual(other_role, [])  # computed with the first, from the same git answers
        _, warm = await self.render(security=True)
        self.assertEqual(warm, [])

    @async_to_deferred
    async def test_many_viewers_of_both_roles_cost_one_computation(self):
        for _ in range(8):
            await self.render(security=False)
            await self.render(security=True)
        self.assertEqual(self.snapshot.computations, 1)


class EmbargoPerViewer(SnapshotCase):
    async def check_pictures(self, first_security: bool) -> None:
        first, _ = await self.render(security=first_security)
        second, _ = await self.render(security=not first_security)
        public, secret = (second, first) if first_security else (first, second)
        self.assertNotIn(SECRET, repr(public))
        self.assertNotIn("security", public)
        self.assertEqual(self.stage(public, "production-stable")["subject"], f"{self.fix[:12]} embargoed")
        self.assertEqual(self.stage(secret, "production-stable")["subject"], SECRET)
        self.assertIn("security", secret)

    @async_to_deferred
    async def test_a_viewer_without_the_role_after_a_security_user_gets_the_masked_picture(self):
        await self.check_pictures(first_security=True)

    @async_to_deferred
    async def test_a_security_user_after_an_anonymous_viewer_gets_the_full_picture(self):
        await self.check_pictures(first_security=False)


class KeptFreshByTheFlow(SnapshotCase):
    @async_to_deferred
    async def test_a_tip_move_seen_by_the_pollers_fetch_is_shown_without_a_fetch_of_its_own(self):
        await self.render(security=False)
        newer = self.repo.commit("Add the export button", self.devel)
        self.repo.push("devel", newer)
        self.reactor.advance(5)
        view, calls = await self.render(security=False)
        self.assertEqual(calls, [])  # nobody saw the move yet: the picture stands
        self.assertEqual(self.stage(view, "devel")["tip"], self.devel)
        await self.upstream.fetch()  # the poller's fetch
        view, calls = await self.render(security=False)
        self.assertEqual(self.stage(view, "devel")["tip"], newer)
        self.assertEqual(self.stage(view, "devel")["ahead"], 2)
        self.assertEqual(self.fetches(calls), [])

    @async_to_deferred
    async def test_a_finished_build_refreshes_the_picture(self):
        view, _ = await self.render(security=False)
        self.assertIsNone(view["freeze"])
        await self.registry.set_freeze(Freeze("release party", "losa-bob", 2.0))
        view, _ = await self.render(security=False)
        self.assertIsNone(view["freeze"])  # cached: nothing announced a change yet
        self.build_finished()  # the freeze build finished
        view, calls = await self.render(security=False)
        self.assertEqual(view["freeze"]["reason"], "release party")
        self.assertEqual(self.fetches(calls), [])  # the tips of a fetch younger than the poll interval

    @async_to_deferred
    async def test_a_push_of_ours_refreshes_the_picture(self):
        await self.render(security=False)
        await self.upstream.fetch()
        newer = self.repo.commit("Tested work", self.stable)
        self.repo.push("devel", newer)
        await self.upstream.fetch_revision(newer)
        await self.upstream.push([gitops.Move("stable", self.stable, newer)])
        view, _ = await self.render(security=False)
        self.assertEqual(self.stage(view, "stable")["tip"], newer)

    @async_to_deferred
    async def test_at_most_one_fetch_per_poll_interval_and_a_picture_no_older_than_it(self):
        _, calls = await self.render(security=False)
        self.assertEqual(len(self.fetches(calls)), 1)
        self.reactor.advance(POLL - 1)
        self.build_finished()
        _, calls = await self.render(security=False)
        self.assertTrue(calls)  # recomputed...
        self.assertEqual(self.fetches(calls), [])  # ...from the fetch of a minute ago
        self.reactor.advance(POLL - 1)
        _, calls = await self.render(security=False)
        self.assertEqual(calls, [])  # the picture is 59 s old: it stands
        self.reactor.advance(1)
        view, calls = await self.render(security=False)  # no event, but as old as the poll interval
        self.assertEqual(len(self.fetches(calls)), 1)
        self.assertEqual(view["now"], self.reactor.seconds())
