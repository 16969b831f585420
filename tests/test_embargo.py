"""Which commits are embargoed, read off a real upstream's tips (design invariant 6).

A security fix stays invisible to users without the security role until it is
merged back into devel. ``embargoed_commits`` reads that off the branch tips
of a real bare upstream (through ``lpdeploy.upstream`` and a real mirror) and
the fixes recorded in an ``InMemoryRegistry``; ``shown_subject`` and
``shown_author`` mask what a viewer without the role may not see.

Threads: ``TestReactorMixin`` replaces ``threads.deferToThread`` with a
synchronous stand-in, and ``upstream.py`` looks it up at call time, so real git
runs synchronously in the test thread. The upstream is ``support.GitUpstream``.
"""

from __future__ import annotations

import os

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, temp_dir
from twisted.trial import unittest

from lpdeploy.embargo import EMBARGOED, embargoed_commits, shown_author, shown_subject
from lpdeploy.gitops import Mirror
from lpdeploy.model import MERGED_BACK, PROMOTED, TESTING, SecurityFix
from lpdeploy.refs import short
from lpdeploy.registry import InMemoryRegistry
from lpdeploy.settings import parse_settings
from lpdeploy.upstream import Upstream

BRANCH = "security/cve-4242"


class EmbargoCase(TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-embargo-")
        self.repo = GitUpstream(base)
        self.upstream = Upstream(Mirror(os.path.join(base, "master", "lpdeploy-mirror.git"), self.repo.url))
        self.registry = InMemoryRegistry()
        self.settings = parse_settings({"repository": {"url": self.repo.url}})
        # base ← s1 (stable, production-*) ← d1 (devel); the fix x1 ← x2 lives on s1
        self.base = self.repo.commit("Initial release", None)
        self.s1 = self.repo.commit("Stable fix", self.base)
        self.d1 = self.repo.commit("Add search", self.s1)
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.s1)
        self.repo.push("devel", self.d1)
        self.x1 = self.repo.commit("Escape the login form", self.s1, path="login.txt")
        self.x2 = self.repo.commit("Check the session token", self.x1, path="login.txt")

    async def embargoed(self) -> set[str]:
        tips = await self.upstream.fetch()
        return await embargoed_commits(self.upstream, self.registry, self.settings, tips)

    async def record_fix(self, state: str = PROMOTED, candidate: str | None = None, fix_commit: str | None = None,
                         branch: str = BRANCH) -> SecurityFix:
        commit = fix_commit or self.x2
        fix = SecurityFix(branch=branch, fix_commit=commit, state=state, by="sec-alice",
                          updated_at=1_700_000_000.0, candidate=candidate or commit, released=commit)
        await self.registry.save_fix(fix)
        return fix

    def promote_and_delete_branch(self) -> None:
        """The fix reached production (a fast-forward) and its branch was deleted."""
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.x2)
        self.repo.delete(BRANCH)


class EmbargoedCommits(EmbargoCase):
    @async_to_deferred
    async def test_nothing_is_embargoed_without_security_branches_or_fixes(self):
        self.assertEqual(await self.embargoed(), set())

    @async_to_deferred
    async def test_commits_only_on_a_security_branch_are_embargoed(self):
        self.repo.push(BRANCH, self.x2)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2})

    @async_to_deferred
    async def test_every_security_branch_is_embargoed(self):
        self.repo.push(BRANCH, self.x2)
        y1 = self.repo.commit("Limit upload size", self.s1, path="upload.txt")
        self.repo.push("security/cve-5555", y1)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2, y1})

    @async_to_deferred
    async def test_branches_outside_the_security_pattern_are_not_embargoed(self):
        self.repo.push("feature/login", self.x2)
        self.repo.push("security-notes", self.x1)
        self.repo.push("security/team/cve-1", self.x2)  # '*' does not cross '/'
        self.assertEqual(await self.embargoed(), set())

    @async_to_deferred
    async def test_the_pattern_comes_from_the_settings(self):
        self.settings = parse_settings({"repository": {"url": self.repo.url},
                                        "branches": {"security": "sec-*"}})
        self.repo.push("sec-4242", self.x1)
        self.repo.push(BRANCH, self.x2)  # not a security branch under this pattern
        self.assertEqual(await self.embargoed(), {self.x1})

    @async_to_deferred
    async def test_after_the_merge_into_devel_nothing_is_embargoed(self):
        self.repo.push(BRANCH, self.x2)
        merged = self.repo.merge(self.d1, self.x2, f"Merge {BRANCH} back into devel")
        self.repo.push("devel", merged)
        # the branch still exists, but devel now reaches every one of its commits
        self.assertEqual(await self.embargoed(), set())

    @async_to_deferred
    async def test_a_partly_merged_fix_keeps_its_unmerged_commit_embargoed(self):
        self.repo.push(BRANCH, self.x2)
        merged = self.repo.merge(self.d1, self.x1, "Merge the first half")
        self.repo.push("devel", merged)
        self.assertEqual(await self.embargoed(), {self.x2})

    @async_to_deferred
    async def test_a_fix_on_stable_is_public(self):
        self.repo.push(BRANCH, self.x2)
        self.repo.push("stable", self.x2)
        self.assertEqual(await self.embargoed(), set())

    @async_to_deferred
    async def test_public_commits_below_the_fix_are_not_embargoed(self):
        self.repo.push(BRANCH, self.x2)
        found = await self.embargoed()
        for public in (self.base, self.s1, self.d1):
            self.assertNotIn(public, found)

    @async_to_deferred
    async def test_a_recorded_fix_whose_branch_was_deleted_stays_embargoed(self):
        await self.record_fix()
        self.promote_and_delete_branch()
        tips = await self.upstream.fetch()
        self.assertNotIn(BRANCH, tips.heads)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2})

    @async_to_deferred
    async def test_a_recorded_fix_whose_branch_was_deleted_is_public_once_devel_contains_it(self):
        await self.record_fix()
        self.promote_and_delete_branch()
        merged = self.repo.merge(self.d1, self.x2, "Merge security fix back into devel")
        self.repo.push("devel", merged)
        self.assertEqual(await self.embargoed(), set())

    @async_to_deferred
    async def test_the_tips_decide_not_the_state_flag(self):
        # recorded as merged back, but devel lacks it (the merge was reverted by a force-push)
        await self.record_fix(state=MERGED_BACK)
        self.promote_and_delete_branch()
        self.assertEqual(await self.embargoed(), {self.x1, self.x2})

    @async_to_deferred
    async def test_a_merge_candidate_reachable_only_from_a_hidden_ref_is_embargoed(self):
        # production-stable moved on after the fix was branched: the security build tested their merge,
        # published under a hidden ref; the branch is gone and nothing else reaches the fix
        s2 = self.repo.commit("Another stable fix", self.s1, path="other.txt")
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, s2)
        self.repo.push("devel", self.repo.merge(self.d1, s2, "Merge stable"))
        candidate = self.repo.merge(s2, self.x2, f"Merge {BRANCH} onto production-stable")
        self.repo.push(f"refs/lpdeploy/candidates/{candidate}", candidate)
        await self.record_fix(state=TESTING, candidate=candidate)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2, candidate})

    @async_to_deferred
    async def test_a_recorded_fix_unknown_to_the_upstream_is_hidden_rather_than_guessed(self):
        ghost = "0123456789abcdef" * 2 + "01234567"
        await self.record_fix(fix_commit=ghost)
        found = await self.embargoed()
        self.assertIn(ghost, found)


class ShownToViewers(unittest.TestCase):
    SHA = "c0ffee" + "1" * 34
    OTHER = "beef" + "2" * 36

    def test_an_embargoed_subject_is_only_its_short_sha_and_the_word_for_a_viewer_without_the_role(self):
        shown = shown_subject(self.SHA, "Fix the login bypass CVE-4242", {self.SHA}, may_see=False)
        self.assertEqual(shown, f"{short(self.SHA)} embargoed")
        self.assertEqual(shown, f"{self.SHA[:12]} {EMBARGOED}")
        self.assertNotIn("login", shown)

    def test_a_viewer_with_the_role_sees_the_embargoed_subject(self):
        self.assertEqual(shown_subject(self.SHA, "Fix the login bypass", {self.SHA}, may_see=True),
                         "Fix the login bypass")

    def test_a_public_subject_is_shown_to_everyone(self):
        for may_see in (False, True):
            self.assertEqual(shown_subject(self.OTHER, "Add search", {self.SHA}, may_see), "Add search")

    def test_an_embargoed_author_is_masked_for_a_viewer_without_the_role(self):
        self.assertEqual(shown_author(self.SHA, "Sec Alice <alice@example.invalid>", {self.SHA}, False),
                         EMBARGOED)
        self.assertEqual(EMBARGOED, "embargoed")

    def test_an_embargoed_author_is_shown_to_a_viewer_with_the_role(self):
        self.assertEqual(shown_author(self.SHA, "Sec Alice <alice@example.invalid>", {self.SHA}, True),
                         "Sec Alice <alice@example.invalid>")

    def test_a_public_author_is_shown_to_everyone(self):
        for may_see in (False, True):
            self.assertEqual(shown_author(self.OTHER, "Dev <dev@example.invalid>", {self.SHA}, may_see),
                             "Dev <dev@example.invalid>")
