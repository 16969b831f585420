"""The store of webhook deliveries seen before: one contract, run on the in-memory twin and on a real
database; then two masters on one database, where a delivery seen by one is a replay on the other.

Every scenario gets a store whose limit is 10 keys (5 deliveries of two keys).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from buildbot.test.reactor import TestReactorMixin
from support import add_scenario_tests, make_db_master, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.stores.deliveries import DELIVERIES_OBJECT, DbDeliveries, Deliveries, InMemoryDeliveries

LIMIT = 10


def keys(n: int) -> tuple[str, str]:
    return (f"id-{n}", f"body-{n}")


async def a_first_delivery_is_new_and_the_same_again_is_not(store: Deliveries) -> None:
    assert await store.first_seen(keys(1), now=100) is True
    assert await store.first_seen(keys(1), now=101) is False
    assert await store.first_seen(keys(2), now=102) is True


async def a_known_delivery_id_with_a_new_body_is_not_new(store: Deliveries) -> None:
    await store.first_seen(("id-1", "body-1"), now=100)
    assert await store.first_seen(("id-1", "body-2"), now=101) is False


async def a_known_body_with_a_new_delivery_id_is_not_new(store: Deliveries) -> None:
    await store.first_seen(("id-1", "body-1"), now=100)
    assert await store.first_seen(("id-2", "body-1"), now=101) is False


async def every_key_of_a_replay_is_remembered_too(store: Deliveries) -> None:
    await store.first_seen(("id-1", "body-1"), now=100)
    await store.first_seen(("id-2", "body-1"), now=101)  # a replay under a new id: the id is now known
    assert await store.first_seen(("id-2", "body-3"), now=102) is False


async def the_store_keeps_at_most_its_limit_and_forgets_the_oldest_first(store: Deliveries) -> None:
    for n in range(1, 6):
        assert await store.first_seen(keys(n), now=100 + n) is True
    assert await store.count() == LIMIT
    assert await store.first_seen(keys(6), now=106) is True  # 12 keys: the oldest go, down to 9
    assert await store.count() == LIMIT - LIMIT // 10
    for n in (6, 5, 4, 3):
        assert await store.first_seen(keys(n), now=107) is False, f"delivery {n} forgotten too early"
    assert await store.first_seen(keys(1), now=108) is True, "the oldest delivery was not forgotten"
    assert await store.count() <= LIMIT


async def nothing_is_remembered_at_first(store: Deliveries) -> None:
    assert await store.count() == 0


SCENARIOS = [a_first_delivery_is_new_and_the_same_again_is_not, a_known_delivery_id_with_a_new_body_is_not_new,
             a_known_body_with_a_new_delivery_id_is_not_new, every_key_of_a_replay_is_remembered_too,
             the_store_keeps_at_most_its_limit_and_forgets_the_oldest_first, nothing_is_remembered_at_first]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_deliveries_honour_the_contract(scenario):
    asyncio.run(scenario(InMemoryDeliveries(limit=LIMIT)))


class DbDeliveriesContract(TestReactorMixin, unittest.TestCase):
    """The deliveries contract on a fresh, real database; one test per scenario (added below)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.store = DbDeliveries(self.master, limit=LIMIT)


add_scenario_tests(DbDeliveriesContract, SCENARIOS, store="store", kind="db", label="DbDeliveries")


class TwoMasters(TestReactorMixin, unittest.TestCase):
    """Two masters sharing one database: a delivery is new on exactly one of them."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.a, self.b = yield two_masters_on_one_database(self)

    @defer.inlineCallbacks
    def test_a_delivery_seen_by_one_master_is_a_replay_on_the_other(self):
        first = yield defer.ensureDeferred(DbDeliveries(self.a).first_seen(keys(1), now=100))
        again = yield defer.ensureDeferred(DbDeliveries(self.b).first_seen(keys(1), now=101))
        self.assertEqual((first, again), (True, False))

    @defer.inlineCallbacks
    def test_of_two_masters_racing_on_one_delivery_only_the_first_to_write_accepts_it(self):
        # Buildbot calls _test_timing_hook between its check and its insert: master b writes the key there
        oid = yield self.a.db.state.getObjectId(*DELIVERIES_OBJECT)
        tbl = self.a.db.model.object_state

        def b_writes_first(conn):
            conn.execute(tbl.insert().values(objectid=oid, name="seen/id-1",
                                             value_json=json.dumps({"at": 99, "by": "master-b"})))
            conn.commit()

        self.patch(self.a.db.state, "_test_timing_hook", b_writes_first)
        first = yield defer.ensureDeferred(DbDeliveries(self.a).first_seen(("id-1",), now=100))
        self.assertFalse(first)

    @defer.inlineCallbacks
    def test_a_restarted_master_still_knows_the_delivery(self):
        # a new store object on the same database is what a restart leaves: nothing lives in memory
        yield defer.ensureDeferred(DbDeliveries(self.a).first_seen(keys(1), now=100))
        again = yield defer.ensureDeferred(DbDeliveries(self.a).first_seen(keys(1), now=200))
        self.assertFalse(again)
