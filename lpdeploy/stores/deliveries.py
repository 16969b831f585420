"""Webhook deliveries seen before: one interface, a database store and an in-memory twin.

A replayed hook must change nothing, on any master and after a restart: a
captured, validly signed request sent again to another master, or after the
master restarted, would otherwise pass as new. So the keys that recognise a
delivery (``lpdeploy.core.webhook.replay_keys``: its delivery id and its body
digest) live in Buildbot's database (``object_state``), one row per key,
created with ``atomicCreateState``: of two masters receiving the same
delivery at once, exactly one sees it as new.

Bounded: at most ``limit`` keys are kept (10 000 by default: the last 5 000
deliveries). When a delivery takes the count over the limit, the oldest keys
are forgotten down to nine tenths of it, so the whole table is read once per
``limit / 10`` keys rather than on every hook. A delivery older than that is
new again, which costs one extra read of the tips: a hook is only a hint.

Both stores pass the same contract tests (``tests/test_deliveries.py``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

import sqlalchemy as sa

DELIVERIES_OBJECT = ("lpdeploy-webhook", "lpdeploy.deliveries.DbDeliveries")
LIMIT = 10_000
_PREFIX = "seen/"


class Deliveries(Protocol):
    async def first_seen(self, keys: tuple[str, ...], now: float) -> bool:
        """Record ``keys``; True when none of them had been recorded (and not yet forgotten) before."""

    async def count(self) -> int:
        """How many keys are remembered."""


def _keep(limit: int) -> int:
    return limit - limit // 10


class InMemoryDeliveries:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._seen: dict[str, float] = {}

    async def first_seen(self, keys: tuple[str, ...], now: float) -> bool:
        new = True
        for key in keys:
            new &= key not in self._seen
            self._seen.setdefault(key, now)
        if len(self._seen) > self.limit:
            oldest = sorted(self._seen.items(), key=lambda kv: (kv[1], kv[0]))
            for key, _ in oldest[:len(oldest) - _keep(self.limit)]:
                del self._seen[key]
        return new

    async def count(self) -> int:
        return len(self._seen)


class DbDeliveries:
    """Seen keys in Buildbot's database, shared by every master."""

    def __init__(self, master: Any, limit: int = LIMIT) -> None:
        self.master = master
        self.limit = limit

    async def _oid(self) -> int:
        return await self.master.db.state.getObjectId(*DELIVERIES_OBJECT)

    async def first_seen(self, keys: tuple[str, ...], now: float) -> bool:
        oid = await self._oid()
        new = True
        for key in keys:
            mine = {"at": now, "by": uuid.uuid4().hex}
            found = await self.master.db.state.atomicCreateState(oid, _PREFIX + key, lambda m=mine: m)
            new &= found == mine
        await self.master.db.pool.do(lambda conn: self._prune(conn, oid))
        return new

    async def count(self) -> int:
        oid = await self._oid()
        return await self.master.db.pool.do(lambda conn: self._count(conn, oid))

    def _count(self, conn: Any, oid: int) -> int:
        tbl = self.master.db.model.object_state
        q = sa.select(sa.func.count()).select_from(tbl).where(tbl.c.objectid == oid)
        return int(conn.execute(q).scalar())

    def _prune(self, conn: Any, oid: int) -> None:
        """Forget the oldest keys down to nine tenths of the limit, once the limit is passed (a thread)."""
        if self._count(conn, oid) <= self.limit:
            return
        tbl = self.master.db.model.object_state
        rows = conn.execute(sa.select(tbl.c.name, tbl.c.value_json).where(tbl.c.objectid == oid)).fetchall()
        oldest = sorted(rows, key=lambda r: (float(json.loads(r.value_json).get("at", 0)), r.name))
        doomed = [r.name for r in oldest[:len(oldest) - _keep(self.limit)]]
        for start in range(0, len(doomed), 500):
            conn.execute(tbl.delete().where(tbl.c.objectid == oid, tbl.c.name.in_(doomed[start:start + 500])))
        conn.commit()
