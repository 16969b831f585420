"""The lease contract on the in-memory store, on Buildbot's real database, and across two masters."""

from __future__ import annotations

import asyncio
import json

import pytest
from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from lease_contract import NAME, SCENARIOS, T0, TTL
from support import add_scenario_tests, make_db_master, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.stores.lease import LEASE_OBJECT, DbLeases, InMemoryLeases, LeaseState


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_leases_honour_the_contract(scenario):
    asyncio.run(scenario(InMemoryLeases()))


class DbLeasesContract(TestReactorMixin, unittest.TestCase):
    """The lease contract on a fresh, real SQLite database; one test per scenario (added below)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.leases = DbLeases(self.master)

    @async_to_deferred
    async def test_a_lease_is_one_object_state_row_until_released(self):
        await self.leases.take(NAME, "a", T0, TTL)
        oid = await self.master.db.state.getObjectId(*LEASE_OBJECT)
        self.assertEqual(await self.master.db.state.getState(oid, f"lease/{NAME}", None),
                         {"holder": "a", "expires": T0 + TTL})
        await self.leases.release(NAME, "a")
        self.assertIsNone(await self.master.db.state.getState(oid, f"lease/{NAME}", None))


add_scenario_tests(DbLeasesContract, SCENARIOS, store="leases", kind="contract", label="lease contract")


class TwoMastersShareOneLease(TestReactorMixin, unittest.TestCase):
    """Two masters on one database file: one lease, one holder, whichever master asks."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        master_a, master_b = yield two_masters_on_one_database(self)
        self.a, self.b = DbLeases(master_a), DbLeases(master_b)

    @async_to_deferred
    async def test_what_one_master_holds_the_other_cannot_take_until_it_expires_or_is_released(self):
        self.assertEqual((await self.a.take(NAME, "m1", T0, TTL)).holder, "m1")
        self.assertEqual((await self.b.take(NAME, "m2", T0 + 1, TTL)).holder, "m1")
        self.assertEqual(await self.b.state(NAME), LeaseState("m1", T0 + TTL))
        # master 1 dies (no renewal): after the expiry master 2 takes over
        self.assertEqual(await self.b.take(NAME, "m2", T0 + TTL, TTL), LeaseState("m2", T0 + 2 * TTL))
        self.assertFalse(await self.a.renew(NAME, "m1", T0 + TTL + 1, TTL))
        self.assertTrue(await self.b.release(NAME, "m2"))
        self.assertEqual((await self.a.take(NAME, "m1", T0 + TTL + 2, TTL)).holder, "m1")

    @async_to_deferred
    async def test_a_write_based_on_a_stale_read_loses_the_compare_and_swap(self):
        # master 2 read the lease as expired; master 1 renewed it before master 2 wrote: master 2's write
        # must change nothing (and so must a release or a create based on that read)
        await self.a.take(NAME, "m1", T0, TTL)
        oid = await self.b._oid()
        key = f"lease/{NAME}"
        stale = json.dumps({"holder": "m1", "expires": T0 + TTL})
        self.assertTrue(await self.a.renew(NAME, "m1", T0 + 30, TTL))
        pool = self.b.master.db.pool
        for new in (LeaseState("m2", T0 + 2 * TTL), None):
            written = await pool.do(lambda conn, new=new: self.b._thd_write(conn, oid, key, stale, new))
            self.assertFalse(written)
            self.assertEqual(await self.b.state(NAME), LeaseState("m1", T0 + 30 + TTL))
        created = await pool.do(lambda conn: self.b._thd_write(conn, oid, key, None, LeaseState("m2", T0)))
        self.assertFalse(created)  # the row exists: an insert based on "it is absent" loses too
        self.assertEqual(await self.b.state(NAME), LeaseState("m1", T0 + 30 + TTL))
