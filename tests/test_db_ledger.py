"""The DB-backed ledger against a real Buildbot database (design invariant 8).

``fakemaster.make_master(self, wantDb=True)`` gives a master whose ``db`` is
Buildbot's real ``DBConnector`` (``FakeDBConnector`` only adds test-data
helpers) on a real SQLite database with the full, upgraded schema; so
``DbLedger`` runs its real queries on the real ``object_state`` table.

Every scenario of ``ledger_contract.py`` (the same list ``test_ledger.py`` runs
against ``InMemoryLedger``) runs here against a fresh ``DbLedger``. Then two
masters share one SQLite *file*, like two masters sharing one database: what
one records, the other reads, and the first pass recorded wins on both. The
masters and the per-scenario tests come from ``support.py``.
"""

from __future__ import annotations

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from ledger_contract import COMMIT, OTHER_COMMIT, SCENARIOS, SUITE, TREE, make_record
from support import add_scenario_tests, make_db_master, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.ledger import LEDGER_OBJECT, DbLedger
from lpdeploy.model import Result


class DbLedgerContract(TestReactorMixin, unittest.TestCase):
    """The ledger contract on a fresh, real database; one test per scenario (added below)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.ledger = DbLedger(self.master)

    def test_the_database_is_a_real_sqlite_database(self):
        # the point of this module: not a mock, Buildbot's real connector and schema
        self.assertEqual(self.master.db.pool.engine.dialect.name, "sqlite")
        self.assertIn("object_state", self.master.db.model.metadata.tables)

    @async_to_deferred
    async def test_entries_live_in_object_state_under_the_ledger_object(self):
        rec = make_record(Result.PASSED)
        await self.ledger.record(rec)
        oid = await self.master.db.state.getObjectId(*LEDGER_OBJECT)
        stored = await self.master.db.state.getState(oid, f"passed/{SUITE}/{TREE}", None)
        self.assertEqual(stored["commit"], COMMIT)
        self.assertEqual(stored["build_number"], rec.build_number)


add_scenario_tests(DbLedgerContract, SCENARIOS, store="ledger", kind="contract", label="ledger contract")


class TwoMastersShareOneDatabase(TestReactorMixin, unittest.TestCase):
    """Two masters, each with its own basedir and DbLedger, on one SQLite file."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        # the second master neither re-creates nor cleans the schema: it joins the database (see support)
        self.master_a, self.master_b = yield two_masters_on_one_database(self)
        self.a = DbLedger(self.master_a)
        self.b = DbLedger(self.master_b)

    def test_the_masters_have_separate_connections_to_one_file(self):
        self.assertIsNot(self.master_a.db, self.master_b.db)
        self.assertEqual(str(self.master_a.db.pool.engine.url), str(self.master_b.db.pool.engine.url))

    @async_to_deferred
    async def test_a_pass_recorded_on_one_master_is_found_on_the_other(self):
        self.assertIsNone(await self.b.lookup(SUITE, TREE))
        rec = make_record(Result.PASSED, build_number=41)
        await self.a.record(rec)
        self.assertEqual(await self.b.lookup(SUITE, TREE), rec)
        self.assertEqual(await self.a.lookup(SUITE, TREE), rec)

    @async_to_deferred
    async def test_both_masters_recording_a_pass_agree_on_the_first(self):
        first = make_record(Result.PASSED, build_number=1)
        second = make_record(Result.PASSED, build_number=2, commit=OTHER_COMMIT, finished_at=1_700_000_100.0)
        self.assertEqual(await self.a.record(first), first)
        # master b ran the same tree concurrently; its answer is master a's pass
        self.assertEqual(await self.b.record(second), first)
        self.assertEqual(await self.a.lookup(SUITE, TREE), first)
        self.assertEqual(await self.b.lookup(SUITE, TREE), first)

    @async_to_deferred
    async def test_a_failure_on_one_master_does_not_erase_a_pass_from_the_other(self):
        passed = make_record(Result.PASSED, build_number=1)
        await self.a.record(passed)
        await self.b.record(make_record(Result.FAILED, build_number=2, finished_at=1_700_000_100.0))
        self.assertEqual(await self.a.lookup(SUITE, TREE), passed)
        self.assertEqual(await self.b.lookup(SUITE, TREE), passed)

    @async_to_deferred
    async def test_a_fresh_ledger_instance_reads_what_an_earlier_one_wrote(self):
        # a restart: a new DbLedger (new objectid lookup) on the other master
        rec = make_record(Result.FAILED, build_number=9)
        await self.a.record(rec)
        self.assertEqual(await DbLedger(self.master_b).lookup(SUITE, TREE), rec)
