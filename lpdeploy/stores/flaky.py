"""Flaky tests and the failing tests of failed runs: one interface, a database store and an in-memory twin.

Flaky records (``core.flaky.FlakyRecord``) are appended, one row each
(``flaky/<time>/<token>`` in ``object_state``), so two runs recording at
once never overwrite each other. The failing test ids of a failed sharded
run are kept per suite and tree (last writer wins: a later run of the same
tree says the same or newer): a bisection re-checks them before it names a
culprit.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Protocol

import sqlalchemy as sa

from lpdeploy.core.flaky import FlakyRecord

FLAKY_OBJECT = ("lpdeploy-flaky", "lpdeploy.flaky.DbFlakyLog")


class FlakyLog(Protocol):
    """What both stores promise (``tests/test_flaky_store.py`` runs one contract on both)."""

    async def record(self, rec: FlakyRecord) -> None:
        """Append one record; never replaces another."""

    async def records(self, since: float = 0.0) -> list[FlakyRecord]:
        """Every record at or after ``since``, oldest first."""

    async def save_failed(self, suite: str, tree: str, tests: list[str]) -> None:
        """The ids that failed the latest failed run of ``tree`` under ``suite``."""

    async def failed(self, suite: str, tree: str) -> list[str] | None:
        """What ``save_failed`` kept for ``tree``, or None when nothing was kept (not sharded, never failed)."""


class InMemoryFlakyLog:
    def __init__(self) -> None:
        self._records: list[FlakyRecord] = []
        self._failed: dict[tuple[str, str], list[str]] = {}

    async def record(self, rec: FlakyRecord) -> None:
        self._records.append(rec)

    async def records(self, since: float = 0.0) -> list[FlakyRecord]:
        return sorted((r for r in self._records if r.at >= since), key=lambda r: r.at)

    async def save_failed(self, suite: str, tree: str, tests: list[str]) -> None:
        self._failed[(suite, tree)] = list(tests)

    async def failed(self, suite: str, tree: str) -> list[str] | None:
        found = self._failed.get((suite, tree))
        return None if found is None else list(found)


class DbFlakyLog:
    """The flaky log in Buildbot's database (``object_state``), shared by every master."""

    def __init__(self, master: Any) -> None:
        self.master = master

    async def _oid(self) -> int:
        return await self.master.db.state.getObjectId(*FLAKY_OBJECT)

    async def record(self, rec: FlakyRecord) -> None:
        await self.master.db.state.setState(await self._oid(), f"flaky/{rec.at:020.6f}/{secrets.token_hex(8)}",
                                            rec.as_json())

    async def records(self, since: float = 0.0) -> list[FlakyRecord]:
        oid = await self._oid()
        low = f"flaky/{max(0.0, since):020.6f}"

        def thd(conn: Any) -> list[FlakyRecord]:
            tbl = self.master.db.model.object_state
            q = sa.select(tbl.c.value_json).where(
                tbl.c.objectid == oid, tbl.c.name >= low, tbl.c.name < "flaky0").order_by(tbl.c.name)
            return [FlakyRecord.from_json(json.loads(r.value_json)) for r in conn.execute(q)]

        return await self.master.db.pool.do(thd)

    async def save_failed(self, suite: str, tree: str, tests: list[str]) -> None:
        await self.master.db.state.setState(await self._oid(), f"failed/{suite}/{tree}", list(tests))

    async def failed(self, suite: str, tree: str) -> list[str] | None:
        found = await self.master.db.state.getState(await self._oid(), f"failed/{suite}/{tree}", None)
        return None if found is None else [str(t) for t in found]
