"""The flow poller in Buildbot's change-source harness, on a real upstream.

``ChangeSourceMixin`` gives a fake master with Buildbot's real database
(SQLite, where the poller keeps its tips through ``StateMixin``) and a data
API whose ``addChange`` checks its arguments, records the call in
``changesAdded`` and then hands it to Buildbot's real ``addChange``, which
writes the change row; so the poller's duplicate check (it reads the
``changes`` table) sees exactly what a running master would. The upstream is
a real bare git repository; the poller reads it through ``lpdeploy.git.upstream``
and a mirror in a real temporary master basedir.

Threads and the master's basedir are set up by ``support.RealUpstreamMixin``:
under ``TestReactorMixin`` real git runs synchronously in the test thread, and
the master gets a fresh temporary basedir.
"""

from __future__ import annotations

import shutil

from buildbot.test import fakedb
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.changesource import ChangeSourceMixin
from buildbot.util.twisted import async_to_deferred
from support import DEV, RealUpstreamMixin
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.model import Release
from lpdeploy.core.settings import parse_settings
from lpdeploy.master.changes import FlowPoller
from lpdeploy.stores.registry import DbRegistry


class PollerCase(RealUpstreamMixin, ChangeSourceMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-poller-")
        self.settings = parse_settings({"repository": {"url": self.repo.url}})
        yield self.setUpChangeSource()
        self.base = self.repo.commit("Initial release", None)
        self.d1 = self.repo.commit("Add search", self.base)
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.base)
        self.repo.push("devel", self.d1)
        self.poller = yield self.new_poller()

    @async_to_deferred
    async def new_poller(self):
        """A poller as a (re)started master creates it: same name, state from the database."""
        if self.changesource is not None:
            await self.changesource.disownServiceParent()
        return await self.attachChangeSource(FlowPoller(name="lpdeploy-poller", settings=self.settings))

    @property
    def changes(self):
        return self.master.data.updates.changesAdded

    async def tips(self):
        return await self.poller.getState("tips", None)


class FirstPoll(PollerCase):
    @async_to_deferred
    async def test_first_poll_records_the_watched_tips_and_reports_nothing(self):
        self.repo.push("feature/x", self.d1)
        await self.poller.poll()
        self.assertEqual(self.changes, [])
        self.assertEqual(await self.tips(), {
            "devel": self.d1, "stable": self.base,
            "production-devel": self.base, "production-stable": self.base,
        })

    @async_to_deferred
    async def test_polling_again_without_a_push_reports_nothing(self):
        await self.poller.poll()
        await self.poller.poll()
        await self.poller.poll()
        self.assertEqual(self.changes, [])


class Pushes(PollerCase):
    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        yield self.poller.poll()  # the first poll: tips known from here on

    @async_to_deferred
    async def test_a_push_to_devel_is_one_change_with_the_commit_subject(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)
        ch = self.changes[0]
        self.assertEqual(ch["branch"], "devel")
        self.assertEqual(ch["revision"], d2)
        self.assertEqual(ch["comments"], "Faster search")
        self.assertEqual(ch["author"], DEV)
        self.assertEqual(ch["repository"], self.repo.url)
        self.assertEqual(ch["codebase"], "")
        self.assertEqual(ch["when_timestamp"], self.repo.timestamp(d2))
        self.assertEqual((await self.tips())["devel"], d2)

    @async_to_deferred
    async def test_a_push_names_the_previous_tip_as_a_plain_property(self):
        # Buildbot's addChange takes plain property values and adds the source ('Change') itself
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.poll()
        self.assertEqual(self.changes[0]["properties"], {"lpdeploy_previous_tip": self.d1})

    @async_to_deferred
    async def test_the_previous_tip_reaches_the_database_as_the_sha(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.poll()
        (row,) = await self.master.db.changes.getChanges()
        self.assertEqual(row.properties.get("lpdeploy_previous_tip"), (self.d1, "Change"))

    @async_to_deferred
    async def test_a_fast_forward_of_stable_to_a_commit_seen_on_devel_is_a_change(self):
        # the case stock GitPoller misses: no new commit, only a tip that moved
        self.repo.push("stable", self.d1)
        await self.poller.poll()
        self.assertEqual([(c["branch"], c["revision"], c["comments"]) for c in self.changes],
                         [("stable", self.d1, "Add search")])

    @async_to_deferred
    async def test_several_branches_moving_at_once_are_one_change_each(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        self.repo.push("stable", self.d1)
        self.repo.push("production-stable", self.d1)
        await self.poller.poll()
        self.assertEqual(sorted((c["branch"], c["revision"]) for c in self.changes), [
            ("devel", d2), ("production-stable", self.d1), ("stable", self.d1)])

    @async_to_deferred
    async def test_a_security_branch_leaves_no_change_record(self):
        # a change record is readable by everyone: security branches are watched by their scheduler
        fix = self.repo.commit("Fix XSS in the login form (CVE-2099-0001)", self.base,
                               author="Sec Person <sec@example.invalid>")
        self.repo.push("security/login-xss", fix)
        await self.poller.poll()
        self.assertEqual(self.changes, [])

    @async_to_deferred
    async def test_production_moved_to_an_embargoed_fix_is_reported_without_its_text(self):
        secret_author = "Sec Person <sec@example.invalid>"
        subject = "Fix XSS in the login form (CVE-2099-0001)"
        fix = self.repo.commit(subject, self.base, author=secret_author)
        self.repo.push("security/login-xss", fix)
        self.repo.push("production-stable", fix)
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)
        ch = self.changes[0]
        self.assertEqual((ch["branch"], ch["revision"]), ("production-stable", fix))
        shown = " ".join(str(ch[k]) for k in ("comments", "author", "committer", "properties"))
        for secret in (subject, "XSS", "CVE-2099-0001", "Sec Person", "sec@example.invalid"):
            self.assertNotIn(secret, shown)
        self.assertIn("embargoed", ch["comments"])
        # dated when it was seen, not when the embargoed fix was committed
        self.assertEqual(ch["when_timestamp"], int(self.reactor.seconds()))
        self.assertNotEqual(ch["when_timestamp"], self.repo.timestamp(fix))

    @async_to_deferred
    async def test_a_released_fix_stays_hidden_in_change_records_after_its_branch_moved_on(self):
        # v1 released (recorded in the history); the branch now holds a reworked v2
        subject = "Fix XSS in the login form (CVE-2099-0001)"
        v1 = self.repo.commit(subject, self.base, author="Sec Person <sec@example.invalid>")
        await DbRegistry(self.master).record_release(Release("security/login-xss", v1, v1, 1.0))
        self.repo.push("security/login-xss", self.repo.commit("Rework", self.base))
        self.repo.push("production-stable", v1)
        await self.poller.poll()
        (ch,) = self.changes
        self.assertEqual((ch["revision"], ch["author"], ch["comments"]), (v1, "embargoed", f"{v1[:12]} embargoed"))

    @async_to_deferred
    async def test_a_branch_outside_the_flow_is_not_reported(self):
        d2 = self.repo.commit("Experiment", self.d1)
        self.repo.push("feature/experiment", d2)
        self.repo.push("security", d2)  # not security/*: the pattern needs a sub-branch
        await self.poller.poll()
        self.assertEqual(self.changes, [])
        self.assertNotIn("feature/experiment", await self.tips())

    @async_to_deferred
    async def test_a_push_is_reported_once(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.poll()
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)

    @async_to_deferred
    async def test_a_deleted_branch_is_forgotten_and_reported_when_it_comes_back(self):
        d2 = self.repo.commit("Short-lived production", self.base)
        self.repo.push("production-devel", d2)
        await self.poller.poll()
        self.repo.delete("production-devel")
        await self.poller.poll()
        self.assertNotIn("production-devel", await self.tips())
        self.assertEqual(len(self.changes), 1)
        # (recreated at the very same commit it counts as already reported: the newest change names it)
        d3 = self.repo.commit("Production again", self.base)
        self.repo.push("production-devel", d3)
        await self.poller.poll()
        self.assertEqual([c["revision"] for c in self.changes], [d2, d3])

    @async_to_deferred
    async def test_an_unreachable_upstream_reports_nothing_and_keeps_the_tips(self):
        before = await self.tips()
        shutil.rmtree(self.repo.bare)
        await self.poller.poll()
        self.assertEqual(self.changes, [])
        self.assertEqual(await self.tips(), before)

    @async_to_deferred
    async def test_a_failed_report_is_not_lost(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        recorded = self.changes
        fake = self.master.data.updates.addChange

        def broken(**kwargs):
            raise RuntimeError("database went away")

        self.patch(self.master.data.updates, "addChange", broken)
        with self.assertRaises(RuntimeError):
            await self.poller.poll()
        self.patch(self.master.data.updates, "addChange", fake)
        await self.poller.poll()
        self.assertEqual([(c["branch"], c["revision"]) for c in recorded], [("devel", d2)])


class Restarts(PollerCase):
    @async_to_deferred
    async def test_tips_survive_a_new_poller_instance_on_the_same_database(self):
        await self.poller.poll()
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)
        self.poller = await self.new_poller()
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)

    @async_to_deferred
    async def test_a_push_while_the_master_was_down_is_reported_by_the_new_poller(self):
        await self.poller.poll()
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        self.poller = await self.new_poller()
        await self.poller.poll()
        self.assertEqual([(c["branch"], c["revision"]) for c in self.changes], [("devel", d2)])

    @async_to_deferred
    async def test_a_change_recorded_before_a_crash_is_not_reported_again(self):
        # the last run reported d2 and crashed before saving the new tip
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.setState("tips", {"devel": self.d1, "stable": self.base,
                                            "production-devel": self.base, "production-stable": self.base})
        await self.master.db.insert_test_data([
            fakedb.Change(changeid=1, branch="devel", revision=d2, repository=self.repo.url,
                          author=DEV, comments="Faster search", project="", codebase=""),
        ])
        await self.poller.poll()
        self.assertEqual(self.changes, [])
        self.assertEqual((await self.tips())["devel"], d2)

    @async_to_deferred
    async def test_an_older_change_in_the_database_does_not_hide_a_new_tip(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.setState("tips", {"devel": self.d1, "stable": self.base,
                                            "production-devel": self.base, "production-stable": self.base})
        await self.master.db.insert_test_data([
            fakedb.Change(changeid=1, branch="devel", revision=d2, repository=self.repo.url,
                          author=DEV, comments="Faster search", project="", codebase=""),
            fakedb.Change(changeid=2, branch="devel", revision=self.d1, repository=self.repo.url,
                          author=DEV, comments="Add search", project="", codebase=""),
        ])
        await self.poller.poll()
        self.assertEqual([(c["branch"], c["revision"]) for c in self.changes], [("devel", d2)])

    @async_to_deferred
    async def test_a_change_in_another_repository_does_not_hide_a_new_tip(self):
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.setState("tips", {"devel": self.d1, "stable": self.base,
                                            "production-devel": self.base, "production-stable": self.base})
        await self.master.db.insert_test_data([
            fakedb.Change(changeid=1, branch="devel", revision=d2, repository="file:///elsewhere.git",
                          author=DEV, comments="Faster search", project="", codebase=""),
        ])
        await self.poller.poll()
        self.assertEqual([(c["branch"], c["revision"]) for c in self.changes], [("devel", d2)])

    @async_to_deferred
    async def test_real_change_rows_make_a_replayed_poll_report_nothing(self):
        # report through Buildbot's addChange, then lose the saved tips as a crash would
        await self.poller.poll()
        first_tips = await self.tips()
        d2 = self.repo.commit("Faster search", self.d1)
        self.repo.push("devel", d2)
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)
        await self.poller.setState("tips", first_tips)  # as if the crash came before setState
        await self.poller.poll()
        self.assertEqual(len(self.changes), 1)
        self.assertEqual(len(await self.master.db.changes.getChanges()), 1)
