"""Which commits are embargoed, read off a real upstream's tips (design invariant 6).

A security fix stays invisible to users without the security role until it is
merged back into devel. ``embargoed_commits`` reads that off the branch tips
of a real bare upstream (through ``lpdeploy.git.upstream`` and a real mirror), the
history of released fixes and the latest run of each branch recorded in an
``InMemoryRegistry``; ``contained_in`` answers which released fixes a tip
holds; ``shown_subject`` and ``shown_author`` mask what a viewer without the
role may not see.

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

from lpdeploy.core.model import EMBARGOED, FixState, Release, Result, SecurityFix, TestRecord
from lpdeploy.core.refs import short
from lpdeploy.core.settings import parse_settings
from lpdeploy.facts import embargo
from lpdeploy.facts.embargo import contained_in, embargoed_commits, shown_author, shown_subject
from lpdeploy.git.gitops import Mirror
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import InMemoryLedger
from lpdeploy.stores.registry import InMemoryRegistry
from lpdeploy.web.status import flow_status

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

    async def record_run(self, state: FixState = FixState.TESTING,
                         candidate: str | None = None, fix_commit: str | None = None,
                         branch: str = BRANCH) -> SecurityFix:
        """The latest run of ``branch`` (the one row a new push overwrites)."""
        commit = fix_commit or self.x2
        run = SecurityFix(branch=branch, fix_commit=commit, state=state, by="sec-alice",
                          updated_at=1_700_000_000.0, candidate=candidate)
        await self.registry.save_fix(run)
        return run

    async def record_release(self, fix_commit: str | None = None, candidate: str | None = None,
                             branch: str = BRANCH) -> Release:
        """A fix that reached production: appended to the history."""
        commit = fix_commit or self.x2
        release = Release(branch=branch, fix_commit=commit, candidate=candidate or commit,
                          released_at=1_700_000_000.0, by="sec-alice")
        await self.registry.record_release(release)
        return release

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
    async def test_a_released_fix_whose_branch_was_deleted_stays_embargoed(self):
        await self.record_release()
        self.promote_and_delete_branch()
        tips = await self.upstream.fetch()
        self.assertNotIn(BRANCH, tips.heads)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2})

    @async_to_deferred
    async def test_a_released_fix_whose_branch_was_deleted_is_public_once_devel_contains_it(self):
        await self.record_release()
        self.promote_and_delete_branch()
        merged = self.repo.merge(self.d1, self.x2, "Merge security fix back into devel")
        self.repo.push("devel", merged)
        self.assertEqual(await self.embargoed(), set())

    @async_to_deferred
    async def test_the_tips_decide_not_a_state_flag(self):
        # the branch row says promoted and the branch is gone, but devel lacks the release
        await self.record_run(state=FixState.PROMOTED)
        await self.record_release()
        self.promote_and_delete_branch()
        self.assertEqual(await self.embargoed(), {self.x1, self.x2})

    @async_to_deferred
    async def test_a_released_fix_stays_embargoed_after_a_force_pushed_rework_failed(self):
        # the story: v1 (x1 ← x2) released, production-stable at x2; then a reworked v2,
        # branched from s1 and touching the same file, is force-pushed; its build fails to merge it
        # onto production-stable, so the branch row now says v2, failed, no candidate
        await self.record_release()
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.x2)
        v2 = self.repo.commit("Rework the login check", self.s1, path="login.txt")
        self.repo.push(BRANCH, v2)
        await self.record_run(state=FixState.FAILED, fix_commit=v2, candidate=None)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2, v2})

    @async_to_deferred
    async def test_an_earlier_release_stays_embargoed_when_a_later_one_is_merged_back_without_it(self):
        # two releases of one branch; a merge of only the later fix into devel publishes it alone
        y1 = self.repo.commit("Limit upload size", self.s1, path="upload.txt")
        await self.record_release()
        await self.record_release(fix_commit=y1)
        self.promote_and_delete_branch()
        self.repo.push("devel", self.repo.merge(self.d1, y1, "Merge the upload fix"))
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
        await self.record_run(state=FixState.TESTING, candidate=candidate)
        self.assertEqual(await self.embargoed(), {self.x1, self.x2, candidate})

    @async_to_deferred
    async def test_a_recorded_fix_unknown_to_the_upstream_is_hidden_rather_than_guessed(self):
        ghost = "0123456789abcdef" * 2 + "01234567"
        await self.record_release(fix_commit=ghost)
        self.repo.push(BRANCH, self.x2)
        found = await self.embargoed()
        self.assertIn(ghost, found)
        self.assertEqual(found - {ghost}, {self.x1, self.x2})  # the known roots are still walked


class ContainedIn(EmbargoCase):
    """Which released fixes a tip holds: the facts merge-back and status decide on."""

    @async_to_deferred
    async def test_a_tip_holds_its_ancestors_and_itself_only(self):
        await self.upstream.fetch()
        self.repo.push(BRANCH, self.x2)
        await self.upstream.fetch()
        held = await contained_in(self.upstream, self.d1, [self.base, self.s1, self.d1, self.x1, self.x2])
        self.assertEqual(held, {self.base, self.s1, self.d1})
        self.assertEqual(await contained_in(self.upstream, self.x2, [self.x1, self.d1]), {self.x1})

    @async_to_deferred
    async def test_a_commit_the_upstream_lacks_is_not_held_and_no_tip_holds_nothing(self):
        await self.upstream.fetch()
        ghost = "0123456789abcdef" * 2 + "01234567"
        self.assertEqual(await contained_in(self.upstream, self.d1, [ghost, self.s1]), {self.s1})
        self.assertEqual(await contained_in(self.upstream, None, [self.s1]), set())

    @async_to_deferred
    async def test_a_commit_only_on_a_hidden_ref_is_fetched_and_answered(self):
        await self.upstream.fetch()
        candidate = self.repo.merge(self.s1, self.x2, "Merge the fix onto production-stable")
        self.repo.push(f"refs/lpdeploy/candidates/{candidate}", candidate)
        self.assertEqual(await contained_in(self.upstream, self.d1, [candidate]), set())
        merged = self.repo.merge(self.d1, candidate, "Merge back")
        self.repo.push("devel", merged)
        await self.upstream.fetch()
        self.assertEqual(await contained_in(self.upstream, merged, [candidate, self.x1]), {candidate, self.x1})

    @async_to_deferred
    async def test_a_listing_cut_short_does_not_count_the_unlisted_as_held(self):
        # base ← s1 ← d1 (devel) and s1 ← x1 ← x2: from s1's point of view neither x2 nor d1 is held;
        # with room for one listed commit only, "not listed" must not be read as "held"
        self.repo.push(BRANCH, self.x2)
        await self.upstream.fetch()
        self.patch(embargo, "MAX_EMBARGOED", 1)
        self.assertEqual(await contained_in(self.upstream, self.s1, [self.x2, self.d1, self.base]), {self.base})


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


class StatusForViewers(EmbargoCase):
    """``status.json`` (and so ``lpdeploy status`` and the dashboard) for an embargoed production tip."""

    async def status(self, may_see: bool) -> dict:
        return await flow_status(self.upstream, self.ledger, self.registry, self.settings, may_see_security=may_see)

    async def released_then_reworked(self) -> str:
        """The issue's story: v1 (x2) released to production; the branch force-pushed to a failed v2."""
        self.ledger = InMemoryLedger()
        await self.ledger.record(TestRecord(
            tree=self.repo.tree(self.x2), commit=self.x2, suite=self.settings.suite.identity, result=Result.PASSED,
            build_url="http://localhost:8010/#/builders/6/builds/77", build_number=77, finished_at=1_700_000_123.0))
        await self.record_release()
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, self.x2)
        v2 = self.repo.commit("Rework the login check", self.s1, path="login.txt")
        self.repo.push(BRANCH, v2)
        await self.record_run(state=FixState.FAILED, fix_commit=v2, candidate=None)
        return v2

    @async_to_deferred
    async def test_an_embargoed_tip_shows_no_subject_author_time_or_security_build_without_the_role(self):
        await self.released_then_reworked()
        status = await self.status(may_see=False)
        (ps,) = [b for b in status["branches"] if b["name"] == "production-stable"]
        self.assertEqual((ps["subject"], ps["author"], ps["embargoed"]), (f"{self.x2[:12]} embargoed", EMBARGOED, True))
        self.assertIsNone(ps["committed_at"])
        self.assertTrue(ps["tested"])  # that it passed the suite reveals nothing
        self.assertEqual((ps["tested_by"]["build_url"], ps["tested_by"]["build_number"]), ("", None))
        self.assertIsNone(ps["tested_by"]["finished_at"])
        self.assertNotIn("security", status)
        text = repr(status)
        for secret in ("Check the session token", "builds/77", "1700000123"):
            self.assertNotIn(secret, text)

    @async_to_deferred
    async def test_a_security_user_sees_the_tip_its_build_and_the_release_apart_from_the_failed_rework(self):
        v2 = await self.released_then_reworked()
        status = await self.status(may_see=True)
        (ps,) = [b for b in status["branches"] if b["name"] == "production-stable"]
        self.assertEqual(ps["subject"], "Check the session token")
        self.assertEqual(ps["tested_by"]["build_number"], 77)
        self.assertEqual(ps["committed_at"], self.repo.timestamp(self.x2))
        (fix,) = status["security"]["fixes"]
        self.assertEqual((fix["branch"], fix["state"], fix["fix_commit"]), (BRANCH, FixState.FAILED, v2))
        self.assertEqual([(r["fix_commit"], r["state"]) for r in fix["releases"]], [(self.x2, "pending")])
        self.assertTrue(fix["pending"] and fix["embargoed"])
        self.assertEqual(status["security"]["on_production_not_on_stable"], [BRANCH])

    @async_to_deferred
    async def test_once_merged_back_the_release_reads_merged_back(self):
        await self.released_then_reworked()
        self.repo.push("devel", self.repo.merge(self.d1, self.x2, "Merge security fix back into devel"))
        status = await self.status(may_see=True)
        (fix,) = status["security"]["fixes"]
        self.assertEqual([r["state"] for r in fix["releases"]], ["merged-back"])
        self.assertFalse(fix["pending"])
