"""The far side of a restart: a new process reads what an earlier one left in the database.

Not a test module (pytest does not collect it by itself): ``test_db_ledger.py``
runs it in a fresh Python process, the way a master restarts, with
``LPDEPLOY_PROBE`` naming the database, the lookups to make and the file to
write the answers to. In-process "restart" tests (a second master, a new
store instance) cannot tell a database from a module-level dict; a new
process can (design invariant 8).
"""

from __future__ import annotations

import json
import os

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import make_db_master
from twisted.trial import unittest

from lpdeploy.stores.ledger import DbLedger, to_json


class LedgerAfterARestart(TestReactorMixin, unittest.TestCase):
    @async_to_deferred
    async def test_read(self):
        probe = json.loads(os.environ["LPDEPLOY_PROBE"])
        self.setup_test_reactor()
        # join the existing database: neither upgrade nor clean it
        master = await make_db_master(self, db_url=probe["db_url"], auto_upgrade=False, auto_clean=False)
        ledger = DbLedger(master)
        found = []
        for suite, tree in probe["lookups"]:
            rec = await ledger.lookup(suite, tree)
            found.append(to_json(rec) if rec is not None else None)
        with open(probe["out"], "w", encoding="utf-8") as f:
            json.dump(found, f)
