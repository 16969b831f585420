"""Every count people read is exact, however far apart the stages are (issue 15, part 1).

The history has distances above every limit the code ever had (1,000 for
"ahead"/"behind", 200 for the deployment report, 50 for the promotion
preview), written in a second by ``git fast-import``:

    root ← 1,100 commits ← production-* ← 1,100 ← stable ← 1,001 ← devel
    app1 runs root (1,100 behind production-stable)

Every number is compared with ``git rev-list --count`` run by the test
itself; where a list is shortened, the text says how many there are and
where to see all of them.

Threads: ``TestReactorMixin`` replaces ``threads.deferToThread`` with a
synchronous stand-in, so real git runs in the test thread.
"""

from __future__ import annotations

import os
import subprocess

from big_history import count, extend
from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, temp_dir
from twisted.trial import unittest

from lpdeploy.core.model import Deployment
from lpdeploy.core.settings import parse_settings
from lpdeploy.git.gitops import Mirror
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.steps.deploy import deployment_report
from lpdeploy.stores.ledger import InMemoryLedger
from lpdeploy.stores.registry import InMemoryRegistry
from lpdeploy.tools.cli import _reports
from lpdeploy.web.dashboard import make_app
from lpdeploy.web.pipeline import pipeline_view
from lpdeploy.web.status import flow_status

NOW = 1_800_000_000.0


class ExactCounts(TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-counts-")
        self.repo = GitUpstream(base)
        bare = self.repo.bare
        self.root = extend(bare, "refs/scratch/root", None, 1, "root")
        self.production = extend(bare, "refs/heads/production-stable", self.root, 1_100, "released")
        subprocess.run(["git", f"--git-dir={bare}", "update-ref", "refs/heads/production-devel", self.production],
                       check=True)
        self.stable = extend(bare, "refs/heads/stable", self.production, 1_100, "tested")
        self.devel = extend(bare, "refs/heads/devel", self.stable, 1_001, "landed")
        self.upstream = Upstream(Mirror(os.path.join(base, "master", "lpdeploy-mirror.git"), self.repo.url))
        self.registry = InMemoryRegistry()
        self.settings = parse_settings({"repository": {"url": self.repo.url},
                                        "servers": [{"name": "app1", "deploy_command": ["true"]}]})

    def expected(self, base: str | None, tip: str) -> int:
        return count(self.repo.bare, base, tip)

    @async_to_deferred
    async def test_status_counts_a_server_far_behind_exactly(self):
        await self.registry.record_deployment(Deployment("app1", self.root, NOW, "earlier"))
        status = await flow_status(self.upstream, InMemoryLedger(), self.registry, self.settings)
        [server] = status["servers"]
        self.assertEqual(server["behind"], self.expected(self.root, self.production))
        self.assertEqual(server["behind"], 1_100)

    @async_to_deferred
    async def test_the_dashboard_counts_every_stage_exactly_and_says_when_a_list_is_shortened(self):
        await self.registry.record_deployment(Deployment("app1", self.root, NOW, "earlier"))
        view = await pipeline_view(self.upstream, InMemoryLedger(), self.registry, self.settings,
                                   may_see_security=False, now=NOW)
        ahead = {b["name"]: b["ahead"] for b in view["branches"]}
        self.assertEqual(ahead["devel"], self.expected(self.stable, self.devel))
        self.assertEqual(ahead["stable"], self.expected(self.production, self.stable))
        self.assertEqual((ahead["devel"], ahead["stable"]), (1_001, 1_100))
        self.assertEqual(view["promotion"]["count"], self.expected(self.production, self.stable))
        self.assertEqual(len(view["promotion"]["commits"]), 50)
        app = make_app()
        with app.test_request_context("/fragment"):
            from flask import render_template
            html = render_template("pipeline_content.html", v=view, user=None, roles=set(),
                                   settings=self.settings, api="/api/v2/", refresh=5)
        self.assertIn("1,001 commits ahead of the next stage", html)
        self.assertIn("1,100 commits ahead of the next stage", html)
        self.assertIn("1,100 behind production-stable", html)
        self.assertIn("1,100 commits; the newest 50 shown", html)
        self.assertIn("git log production-stable..stable", html)

    @async_to_deferred
    async def test_a_long_deployment_report_says_how_many_and_keeps_the_full_list(self):
        await self.upstream.fetch()
        report, full = await deployment_report(self.upstream, "app1", self.root, self.stable)
        n = self.expected(self.root, self.stable)
        self.assertEqual(n, 2_200)
        self.assertIn("2,200 new commit(s); the newest 200 shown (all: the log 'full report app1' of this build):",
                      report)
        self.assertEqual(len([line for line in report.splitlines() if line.startswith("  ")]), 200)
        self.assertIsNotNone(full)
        listed = [line for line in full.splitlines() if line.startswith("  ")]
        self.assertEqual(len(listed), n)
        self.assertIn("released 1 (", listed[-1])  # the oldest new commit is there too
        # the CLI prints the short report, or with --all the full one
        logs = {"deploy app1": "ran", "report app1": report, "full report app1": full}
        self.assertEqual(_reports(logs, everything=False), [report])
        self.assertEqual(_reports(logs, everything=True), [full])

    @async_to_deferred
    async def test_a_long_rollback_report_counts_exactly(self):
        await self.upstream.fetch()
        report, full = await deployment_report(self.upstream, "app1", self.stable, self.production)
        self.assertIn("ROLLBACK: 1,100 commit(s) removed; the newest 200 shown", report)
        self.assertEqual(len([line for line in full.splitlines() if line.startswith("  ")]), 1_100)

    @async_to_deferred
    async def test_a_short_report_is_complete_and_has_no_second_log(self):
        await self.upstream.fetch()
        tip = extend(self.repo.bare, "refs/heads/production-stable", self.stable, 3, "hotfix")
        await self.upstream.fetch()
        report, full = await deployment_report(self.upstream, "app1", self.stable, tip)
        self.assertIn("3 new commit(s):\n", report)
        self.assertNotIn("shown", report)
        self.assertIsNone(full)

    @async_to_deferred
    async def test_a_first_deployment_counts_the_whole_history(self):
        await self.upstream.fetch()
        report, full = await deployment_report(self.upstream, "app1", None, self.production)
        self.assertIn(f"the history holds 1,101 commit(s); the newest 50 shown (all: git log {self.production})",
                      report)
        self.assertEqual(self.expected(None, self.production), 1_101)
        self.assertIsNone(full)
