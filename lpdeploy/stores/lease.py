"""Leases across masters: one holder at a time, each lease expiring unless its holder renews it.

A Buildbot ``MasterLock`` serialises the builds of one master only; masters
sharing a database need the rule written in that database. A lease is one row
of ``object_state`` (``lease/<name>``: holder and expiry time); every change is
a compare-and-swap on the row as it was read (the row's JSON text), so of two
masters taking a free lease at once exactly one wins. A holder renews its
lease while it works; a holder that died stops renewing, and once the expiry
passes anyone may take the lease: a dead master's lease frees itself.

Expiry times are the takers' clocks (``now``): masters' clocks must agree to
well within a lease's time to live (NTP does).

One interface, two stores: ``DbLeases`` in Buildbot's database and
``InMemoryLeases`` for pure tests, both run through the same contract
(``tests/lease_contract.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

LEASE_OBJECT = ("lpdeploy-leases", "lpdeploy.stores.lease.DbLeases")


@dataclass(frozen=True)
class LeaseState:
    """Who holds a lease, and until when (seconds since the epoch)."""

    holder: str
    expires: float

    def free_at(self, now: float) -> bool:
        return now >= self.expires


class Leases(Protocol):
    async def take(self, name: str, holder: str, now: float, ttl: float) -> LeaseState:
        """Take (or, for its holder, extend) ``name`` until ``now + ttl`` if it is free, expired or ours.

        Returns the lease as it stands afterwards: taken iff its ``holder`` is ``holder``.
        """

    async def renew(self, name: str, holder: str, now: float, ttl: float) -> bool:
        """Extend ``name`` to ``now + ttl`` only while ``holder`` still holds it; False when it was lost."""

    async def release(self, name: str, holder: str) -> bool:
        """Free ``name`` if ``holder`` holds it (expired or not); False when someone else does."""

    async def break_expired(self, name: str, holder: str, now: float) -> bool:
        """Free ``name`` if ``holder`` holds it and it expired by ``now``; False when renewed, taken or free.

        How another master declares a silent holder dead: of two masters
        breaking the same lease, and of a break racing the holder's renewal,
        exactly one wins, and a renewal that landed first keeps the lease.
        """

    async def state(self, name: str) -> LeaseState | None:
        """The lease as stored (possibly expired), None when free."""


def _may_take(current: LeaseState | None, holder: str, now: float) -> bool:
    return current is None or current.holder == holder or current.free_at(now)


def _may_break(current: LeaseState | None, holder: str, now: float) -> bool:
    return current is not None and current.holder == holder and current.free_at(now)


class InMemoryLeases:
    """Leases in a dict: the same contract, for pure tests."""

    def __init__(self) -> None:
        self._leases: dict[str, LeaseState] = {}

    async def take(self, name: str, holder: str, now: float, ttl: float) -> LeaseState:
        if _may_take(self._leases.get(name), holder, now):
            self._leases[name] = LeaseState(holder, now + ttl)
        return self._leases[name]

    async def renew(self, name: str, holder: str, now: float, ttl: float) -> bool:
        current = self._leases.get(name)
        if current is None or current.holder != holder:
            return False
        self._leases[name] = LeaseState(holder, now + ttl)
        return True

    async def release(self, name: str, holder: str) -> bool:
        current = self._leases.get(name)
        if current is None or current.holder != holder:
            return False
        del self._leases[name]
        return True

    async def break_expired(self, name: str, holder: str, now: float) -> bool:
        if not _may_break(self._leases.get(name), holder, now):
            return False
        del self._leases[name]
        return True

    async def state(self, name: str) -> LeaseState | None:
        return self._leases.get(name)


def _state(value_json: str | None) -> LeaseState | None:
    if value_json is None:
        return None
    d = json.loads(value_json)
    return LeaseState(str(d["holder"]), float(d["expires"]))


def _json(state: LeaseState) -> str:
    return json.dumps({"holder": state.holder, "expires": state.expires})


class DbLeases:
    """Leases in Buildbot's database (``object_state``), shared by every master."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._objectid: int | None = None

    async def _oid(self) -> int:
        if self._objectid is None:
            self._objectid = await self.master.db.state.getObjectId(*LEASE_OBJECT)
        return self._objectid

    def _thd_write(self, conn: Any, oid: int, key: str, old: str | None, new: LeaseState | None) -> bool:
        """Write ``new`` (None: delete) only if the row is still ``old`` (None: absent); True if written."""
        tbl = self.master.db.model.object_state
        where = [tbl.c.objectid == oid, tbl.c.name == key]
        try:
            if old is None:
                assert new is not None
                conn.execute(tbl.insert().values(objectid=oid, name=key, value_json=_json(new)))
                done = True
            elif new is None:
                done = conn.execute(tbl.delete().where(*where, tbl.c.value_json == old)).rowcount == 1
            else:
                done = conn.execute(tbl.update().where(*where, tbl.c.value_json == old)
                                    .values(value_json=_json(new))).rowcount == 1
            conn.commit()
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            conn.rollback()  # another master inserted the row first
            return False
        return done

    @staticmethod
    def _thd_read(conn: Any, tbl: Any, oid: int, key: str) -> str | None:
        row = conn.execute(sa.select(tbl.c.value_json).where(tbl.c.objectid == oid, tbl.c.name == key)).fetchone()
        return row.value_json if row is not None else None

    async def _swap(self, name: str, decide: Callable[[LeaseState | None], LeaseState | None]) -> LeaseState | None:
        """Read the row, let ``decide(current)`` say what it becomes (a state, or None to delete), write it
        only if the row is still what was read; return the row as it stands afterwards."""
        oid = await self._oid()
        key = f"lease/{name}"

        def thd(conn: Any) -> LeaseState | None:
            tbl = self.master.db.model.object_state
            for _ in range(3):  # a lost race re-reads: the winner's row then decides
                old = self._thd_read(conn, tbl, oid, key)
                current = _state(old)
                new = decide(current)
                if new == current:
                    return current
                if self._thd_write(conn, oid, key, old, new):
                    return new
            return _state(self._thd_read(conn, tbl, oid, key))

        return await self.master.db.pool.do(thd)

    async def take(self, name: str, holder: str, now: float, ttl: float) -> LeaseState:
        def decide(current: LeaseState | None) -> LeaseState | None:
            return LeaseState(holder, now + ttl) if _may_take(current, holder, now) else current

        taken = await self._swap(name, decide)
        assert taken is not None
        return taken

    async def renew(self, name: str, holder: str, now: float, ttl: float) -> bool:
        def decide(current: LeaseState | None) -> LeaseState | None:
            return LeaseState(holder, now + ttl) if current is not None and current.holder == holder else current

        after = await self._swap(name, decide)
        return after is not None and after.holder == holder and after.expires == now + ttl

    async def release(self, name: str, holder: str) -> bool:
        released = False

        def decide(current: LeaseState | None) -> LeaseState | None:
            nonlocal released
            released = current is not None and current.holder == holder
            return None if released else current

        after = await self._swap(name, decide)
        return released and after is None

    async def break_expired(self, name: str, holder: str, now: float) -> bool:
        broken = False

        def decide(current: LeaseState | None) -> LeaseState | None:
            nonlocal broken
            broken = _may_break(current, holder, now)
            return None if broken else current

        after = await self._swap(name, decide)
        return broken and after is None

    async def state(self, name: str) -> LeaseState | None:
        return await self._swap(name, lambda current: current)
