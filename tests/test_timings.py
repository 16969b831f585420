"""Recorded durations per suite: the same scenarios on both stores.

``InMemoryTimings`` runs them under ``asyncio``; ``DbTimings`` runs them on a
real Buildbot database (``fakemaster.make_master(self, wantDb=True)``: the real
``DBConnector`` on SQLite with the full schema, as ``test_db_registry.py`` does),
so its reads and writes go through the real ``object_state`` table. The master
and the per-scenario tests come from ``support.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import add_scenario_tests, make_db_master
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.stores.timings import TIMINGS_OBJECT, DbTimings, InMemoryTimings

SUITE = "suite-0123456789ab"
OTHER_SUITE = "suite-ba9876543210"


# --- the scenarios ---------------------------------------------------------------------


async def an_unknown_suite_has_no_durations(timings: Any) -> None:
    assert await timings.durations(SUITE) == {}
    await timings.save(OTHER_SUITE, {"a": 1.0})
    assert await timings.durations(SUITE) == {}


async def saved_durations_are_read_back(timings: Any) -> None:
    durations = {"pkg.TestA.test_x": 1.5, "pkg.TestA.test_y": 0.001, "test_03": 120.0, "zero": 0.0}
    await timings.save(SUITE, durations)
    assert await timings.durations(SUITE) == durations
    # and again: a read does not consume anything
    got = await timings.durations(SUITE)
    assert got == durations
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in got.items())


async def suites_are_independent(timings: Any) -> None:
    await timings.save(SUITE, {"a": 1.0, "b": 2.0})
    await timings.save(OTHER_SUITE, {"a": 9.0})
    assert await timings.durations(SUITE) == {"a": 1.0, "b": 2.0}
    assert await timings.durations(OTHER_SUITE) == {"a": 9.0}
    await timings.save(OTHER_SUITE, {})
    assert await timings.durations(SUITE) == {"a": 1.0, "b": 2.0}


async def a_save_replaces_what_was_there(timings: Any) -> None:
    await timings.save(SUITE, {"a": 1.0, "b": 2.0})
    await timings.save(SUITE, {"b": 3.0, "c": 4.0})
    assert await timings.durations(SUITE) == {"b": 3.0, "c": 4.0}
    await timings.save(SUITE, {})
    assert await timings.durations(SUITE) == {}


async def changing_a_returned_or_saved_dict_changes_nothing_stored(timings: Any) -> None:
    saved = {"a": 1.0}
    await timings.save(SUITE, saved)
    saved["a"] = 99.0
    saved["b"] = 2.0
    got = await timings.durations(SUITE)
    assert got == {"a": 1.0}
    got["a"] = 50.0
    assert await timings.durations(SUITE) == {"a": 1.0}


Scenario = Callable[[Any], Awaitable[None]]

SCENARIOS: list[Scenario] = [
    an_unknown_suite_has_no_durations,
    saved_durations_are_read_back,
    suites_are_independent,
    a_save_replaces_what_was_there,
    changing_a_returned_or_saved_dict_changes_nothing_stored,
]


# --- in memory -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_timings_pass_the_scenario(scenario):
    asyncio.run(scenario(InMemoryTimings()))


def test_every_scenario_in_this_module_is_listed():
    defined = {name for name, obj in globals().items()
               if asyncio.iscoroutinefunction(obj) and obj.__module__ == __name__}
    assert defined == {s.__name__ for s in SCENARIOS}


def test_a_scenario_can_fail_on_a_store_that_merges_instead_of_replacing():
    class Merges(InMemoryTimings):
        async def save(self, suite, durations):
            await super().save(suite, {**await self.durations(suite), **durations})

    with pytest.raises(AssertionError):
        asyncio.run(a_save_replaces_what_was_there(Merges()))


# --- on a real Buildbot database -----------------------------------------------------------


class DbTimingsScenarios(TestReactorMixin, unittest.TestCase):
    """Every scenario on a fresh, real database; one test per scenario (added below)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.timings = DbTimings(self.master)

    def test_the_database_is_a_real_sqlite_database(self):
        self.assertEqual(self.master.db.pool.engine.dialect.name, "sqlite")
        self.assertIn("object_state", self.master.db.model.metadata.tables)

    @async_to_deferred
    async def test_durations_live_in_object_state_under_the_timings_object(self):
        await self.timings.save(SUITE, {"a": 1.5})
        oid = await self.master.db.state.getObjectId(*TIMINGS_OBJECT)
        self.assertEqual(await self.master.db.state.getState(oid, f"durations/{SUITE}", None), {"a": 1.5})

    @async_to_deferred
    async def test_a_new_store_on_the_same_master_reads_what_was_saved(self):
        await self.timings.save(SUITE, {"a": 1.5, "b": 2.0})
        self.assertEqual(await DbTimings(self.master).durations(SUITE), {"a": 1.5, "b": 2.0})


add_scenario_tests(DbTimingsScenarios, SCENARIOS, store="timings", kind="scenario", label="timings scenario")
