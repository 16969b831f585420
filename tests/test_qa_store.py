"""The QA mark store: the same scenarios on the in-memory twin and on Buildbot's real database.

Marking again replaces a mark (that is how bad is cleared by hand); the marks
survive a restart (a new store on the same database reads them) and two
masters sharing a database see each other's marks.
"""

from __future__ import annotations

from typing import Any

import pytest
from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import add_scenario_tests, make_db_master, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.qa import QaMark, QaState
from lpdeploy.stores.qa import DbQaMarks, InMemoryQaMarks

REV_A, REV_B = "a" * 40, "b" * 40


async def a_mark_is_read_back_as_written(store: Any) -> None:
    await store.mark(QaMark(REV_A, QaState.BAD, "quinn", 10.0, "500 on the login page"))
    assert await store.marks() == {REV_A: QaMark(REV_A, QaState.BAD, "quinn", 10.0, "500 on the login page")}


async def marking_again_replaces_the_mark(store: Any) -> None:
    await store.mark(QaMark(REV_A, QaState.BAD, "quinn", 10.0, "broken"))
    await store.mark(QaMark(REV_B, QaState.OK, "quinn", 11.0))
    await store.mark(QaMark(REV_A, QaState.OK, "bob", 12.0, "works after the config fix"))
    found = await store.marks()
    assert found[REV_A].state is QaState.OK and found[REV_A].by == "bob"
    assert found[REV_B].state is QaState.OK and len(found) == 2


async def a_mark_of_something_not_a_commit_id_is_refused(store: Any) -> None:
    for bad in ("abc", "../../x", "A" * 40):
        with pytest.raises(ValueError):
            await store.mark(QaMark(bad, QaState.OK, "quinn", 1.0))
    assert await store.marks() == {}


SCENARIOS = [a_mark_is_read_back_as_written, marking_again_replaces_the_mark,
             a_mark_of_something_not_a_commit_id_is_refused]


class InMemoryQaMarksContract(unittest.TestCase):
    def setUp(self) -> None:
        self.store = InMemoryQaMarks()


class DbQaMarksContract(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.store = DbQaMarks(self.master)


add_scenario_tests(InMemoryQaMarksContract, SCENARIOS, store="store", kind="contract", label="qa marks")
add_scenario_tests(DbQaMarksContract, SCENARIOS, store="store", kind="contract", label="qa marks")


class MarksAreSharedAndSurvive(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master_a, self.master_b = yield two_masters_on_one_database(self)

    @async_to_deferred
    async def test_what_one_master_marks_a_new_store_on_the_other_reads(self):
        await DbQaMarks(self.master_a).mark(QaMark(REV_A, QaState.UNTESTABLE, "quinn", 5.0, "needs prod data"))
        found = await DbQaMarks(self.master_b).marks()
        self.assertEqual(found[REV_A].state, QaState.UNTESTABLE)
        self.assertEqual(found[REV_A].reason, "needs prod data")
