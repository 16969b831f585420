"""``status.json`` names the bisection's culprit under devel while devel is red, and only then.

A real upstream, the in-memory ledger and registry (the same contract as the
database stores), and ``web.status.flow_status`` — what ``lpdeploy status
--json`` prints and the Pipeline dashboard draws.
"""

from __future__ import annotations

import os

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, temp_dir
from twisted.trial import unittest

from lpdeploy.core.bisect import Culprit, culprit_shown
from lpdeploy.core.model import Result, TestRecord
from lpdeploy.core.settings import parse_settings
from lpdeploy.git.gitops import Mirror
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import InMemoryLedger
from lpdeploy.stores.registry import InMemoryRegistry
from lpdeploy.web.status import flow_status

URL = "http://localhost:8010/#/builders/1/builds/9"


def test_the_culprit_shows_only_while_devel_is_red_and_holds_it() -> None:
    c = Culprit("a" * 40, "Break it", "Ann <ann@example.invalid>", URL, "b" * 40, None, 1.0)
    assert culprit_shown(c, devel_passed=False, on_devel=True)
    assert not culprit_shown(c, devel_passed=True, on_devel=True)
    assert not culprit_shown(c, devel_passed=False, on_devel=False)
    assert not culprit_shown(None, devel_passed=False, on_devel=True)


class CulpritInStatus(TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-culprit-")
        self.repo = GitUpstream(base)
        self.upstream = Upstream(Mirror(os.path.join(base, "master", "lpdeploy-mirror.git"), self.repo.url))
        self.ledger = InMemoryLedger()
        self.registry = InMemoryRegistry()
        self.settings = parse_settings({"repository": {"url": self.repo.url}})
        # s1 (stable, production-*) ← c1 ← c2 (the culprit) ← c3 (devel, failed)
        self.s1 = self.repo.commit("Initial release", None)
        self.c1 = self.repo.commit("Good change", self.s1)
        self.c2 = self.repo.commit("Break it", self.c1, author="Ann <ann@example.invalid>")
        self.c3 = self.repo.commit("More on top", self.c2)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.s1)
        self.repo.push("stable", self.c1)
        self.repo.push("devel", self.c3)

    async def record(self, sha: str, result: Result) -> None:
        await self.ledger.record(TestRecord(tree=self.repo.tree(sha), commit=sha, suite=self.settings.suite.identity,
                                            result=result, build_url=URL, build_number=9, finished_at=1.0))

    async def culprits(self) -> dict:
        status = await flow_status(self.upstream, self.ledger, self.registry, self.settings)
        return {b["role"]: b.get("culprit") for b in status["branches"]}

    async def found(self) -> None:
        await self.record(self.c3, Result.FAILED)
        await self.registry.save_culprit(Culprit(self.c2, "Break it", "Ann <ann@example.invalid>", URL, self.c3,
                                                 self.c1, 1.0))

    @async_to_deferred
    async def test_a_red_devel_carries_the_culprit_object(self):
        await self.found()
        culprits = await self.culprits()
        self.assertEqual(culprits["devel"], {"revision": self.c2, "subject": "Break it",
                                             "author": "Ann <ann@example.invalid>", "build_url": URL})
        self.assertEqual({k: v for k, v in culprits.items() if k != "devel"},
                         {"stable": None, "production-devel": None, "production-stable": None})

    @async_to_deferred
    async def test_no_culprit_is_null(self):
        await self.record(self.c3, Result.FAILED)
        self.assertIsNone((await self.culprits())["devel"])

    @async_to_deferred
    async def test_a_green_devel_tip_clears_the_culprit(self):
        await self.found()
        c4 = self.repo.commit("Fix it", self.c3)
        self.repo.push("devel", c4)
        self.assertIsNotNone((await self.culprits())["devel"])  # an untested fix: devel still red
        await self.record(c4, Result.PASSED)
        self.assertIsNone((await self.culprits())["devel"])

    @async_to_deferred
    async def test_a_culprit_devel_no_longer_holds_is_not_shown(self):
        await self.found()
        self.repo.push("devel", self.c1)  # history rewritten past the culprit
        self.assertIsNone((await self.culprits())["devel"])
