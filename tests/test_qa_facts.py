"""The QA report read off a real upstream (``facts/qa.py``): messages, staging, security fixes, the embargo.

A real bare upstream and mirror (``support.GitUpstream``), in-memory stores:
the first-parent commits on stable that production-stable lacks are listed
oldest first with their whole messages (bugs, revert lines), a staging
server (``auto_deploy``) runs some of them, a security fix's merge-back is
exempt, and production-stable's tip, while it is an embargoed fix, is not
named to a viewer without the security role.
"""

from __future__ import annotations

import os

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, temp_dir
from twisted.trial import unittest

from lpdeploy.core.model import EMBARGOED, Deployment, MergeBackAttempt, MergeBackOutcome, Release
from lpdeploy.core.qa import QaMark, QaState
from lpdeploy.core.settings import parse_settings
from lpdeploy.facts.qa import qa_report
from lpdeploy.git.gitops import Mirror
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.qa import InMemoryQaMarks
from lpdeploy.stores.registry import InMemoryRegistry


class QaFacts(TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-qa-facts-")
        self.repo = GitUpstream(base)
        self.upstream = Upstream(Mirror(os.path.join(base, "master", "lpdeploy-mirror.git"), self.repo.url))
        self.registry = InMemoryRegistry()
        self.marks = InMemoryQaMarks()
        self.settings = parse_settings({"repository": {"url": self.repo.url},
                                        "auth": {"roles": {"qa": ["quinn"]}},
                                        "servers": [{"name": "qastaging", "deploy_command": ["true"],
                                                     "auto_deploy": "stable"}]})
        # s1 (production) ← a ← b ← c (stable, devel)
        self.s1 = self.repo.commit("Initial release", None)
        self.a = self.repo.commit("Fix the login page\n\nLP: #1234", self.s1, path="login.txt")
        self.b = self.repo.commit("Speed up search", self.a, path="search.txt")
        self.c = self.repo.commit(f'Revert "Speed up search"\n\nThis reverts commit {self.b}.', self.b,
                                  path="search.txt", content="")
        for branch, sha in (("production-stable", self.s1), ("production-devel", self.s1), ("stable", self.c),
                            ("devel", self.c)):
            self.repo.push(branch, sha)

    async def report(self, may_see_security: bool = False):
        tips = await self.upstream.fetch()
        return await qa_report(self.upstream, self.registry, self.marks, self.settings, tips, may_see_security)

    @async_to_deferred
    async def test_the_first_parent_commits_oldest_first_with_bugs_reverts_and_staging(self):
        await self.registry.record_deployment(Deployment("qastaging", self.a, 1.0, "lpdeploy"))
        await self.marks.mark(QaMark(self.a, QaState.OK, "quinn", 2.0))
        await self.marks.mark(QaMark(self.b, QaState.BAD, "quinn", 3.0, "search 500s"))
        report = await self.report()
        self.assertEqual([r.revision for r in report.rows], [self.a, self.b, self.c])
        self.assertEqual(report.rows[0].bugs, ("1234",))
        self.assertEqual([r.staging for r in report.rows], [("qastaging",), (), ()])
        self.assertEqual(report.rows[1].reverted_by, self.c)
        self.assertEqual(report.deployable, self.c)  # the revert cleared bad
        self.assertEqual(report.base, self.s1)

    @async_to_deferred
    async def test_a_security_fixs_merge_back_never_waits_for_qa(self):
        fix = self.repo.commit("Close the hole", self.s1, path="hole.txt")
        merge = self.repo.merge(self.c, fix, "Merge the security fix back")
        self.repo.push("stable", merge)
        self.repo.push("devel", merge)
        await self.registry.record_release(Release("security/hole", fix, fix, 5.0))
        await self.registry.record_merge_back(MergeBackAttempt(6.0, "job", "sec", fix, MergeBackOutcome.MERGED,
                                                               (fix,), self.c, merge))
        for sha in (self.a, self.b, self.c):
            await self.marks.mark(QaMark(sha, QaState.OK, "quinn", 2.0))
        report = await self.report()
        row = next(r for r in report.rows if r.revision == merge)
        self.assertTrue(row.security)
        self.assertEqual(row.qa, QaState.NEEDS_TESTING)
        self.assertEqual(report.deployable, merge)

    @async_to_deferred
    async def test_production_stables_tip_is_not_named_while_it_is_an_embargoed_fix(self):
        fix = self.repo.commit("Close the hole", self.s1, path="hole.txt")
        self.repo.push("production-stable", fix)
        self.repo.push("security/hole", fix)
        await self.registry.record_release(Release("security/hole", fix, fix, 5.0))
        hidden = await self.report()
        self.assertEqual((hidden.base, hidden.deployable), (EMBARGOED, EMBARGOED))
        self.assertNotIn(fix, repr(hidden))
        seen = await self.report(may_see_security=True)
        self.assertEqual(seen.base, fix)
        self.assertEqual([r.revision for r in seen.rows], [r.revision for r in hidden.rows])
