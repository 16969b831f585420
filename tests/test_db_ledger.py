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

import json
import os
import subprocess
import sys

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from ledger_contract import COMMIT, OTHER_COMMIT, OTHER_SUITE, OTHER_TREE, SCENARIOS, SUITE, TREE, make_record
from support import add_scenario_tests, make_db_master, temp_dir, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.model import Result
from lpdeploy.stores.ledger import LEDGER_OBJECT, DbLedger, from_json


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


class LedgerAcrossARealRestart(TestReactorMixin, unittest.TestCase):
    """What one process records, a new process on the same database file finds (design invariant 8).

    The two-master tests above share one Python process, so a store that kept
    entries in a module-level dict would pass them; here the reader is a new
    process (``restart_probe.py``), as after a master restart.
    """

    TESTS = os.path.dirname(os.path.abspath(__file__))

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.base = temp_dir(self)
        self.db_url = "sqlite:///" + os.path.join(self.base, "state.sqlite")
        self.master = yield make_db_master(self, basedir=os.path.join(self.base, "before"), db_url=self.db_url)

    def read_in_a_new_process(self, lookups):
        out = os.path.join(self.base, "found.json")
        probe = {"db_url": self.db_url, "lookups": lookups, "out": out}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             os.path.join(self.TESTS, "restart_probe.py") + "::LedgerAfterARestart::test_read"],
            cwd=os.path.dirname(self.TESTS), env={**os.environ, "LPDEPLOY_PROBE": json.dumps(probe)},
            capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        with open(out, encoding="utf-8") as f:
            return [from_json(d) if d is not None else None for d in json.load(f)]

    @async_to_deferred
    async def test_passes_and_failures_recorded_before_a_restart_are_found_after_it(self):
        ledger = DbLedger(self.master)
        passed = make_record(Result.PASSED, build_number=41)
        failed = make_record(Result.FAILED, tree=OTHER_TREE, build_number=42)
        other_suite = make_record(Result.PASSED, suite=OTHER_SUITE, build_number=43)
        for rec in (passed, failed, other_suite):
            await ledger.record(rec)
        found = self.read_in_a_new_process([[SUITE, TREE], [SUITE, OTHER_TREE], [OTHER_SUITE, TREE],
                                            [OTHER_SUITE, OTHER_TREE]])
        self.assertEqual(found, [passed, failed, other_suite, None])
