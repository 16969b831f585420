"""Recorded test durations per suite, for partitioning shards: one interface, two stores.

The durations of one suite are one JSON object in Buildbot's database,
read once per sharded run and written once after it. Two runs finishing at
once may each overwrite the other's update: durations are a hint for
balancing, never a decision, so last-writer-wins is good enough.
"""

from __future__ import annotations

from typing import Any, Protocol

TIMINGS_OBJECT = ("lpdeploy-timings", "lpdeploy.timings.DbTimings")


class Timings(Protocol):
    """What both timing stores promise (``tests/test_timings.py``)."""

    async def durations(self, suite: str) -> dict[str, float]:
        """Test id → seconds its last run took under ``suite``; empty when nothing is recorded.

        The caller owns the dict it gets: changing it changes nothing stored.
        """

    async def save(self, suite: str, durations: dict[str, float]) -> None:
        """Replace every duration of ``suite`` with ``durations`` (last writer wins: a hint, not a decision)."""


class InMemoryTimings:
    def __init__(self) -> None:
        self._by_suite: dict[str, dict[str, float]] = {}

    async def durations(self, suite: str) -> dict[str, float]:
        return dict(self._by_suite.get(suite, {}))

    async def save(self, suite: str, durations: dict[str, float]) -> None:
        self._by_suite[suite] = dict(durations)


class DbTimings:
    def __init__(self, master: Any) -> None:
        self.master = master

    async def _oid(self) -> int:
        return await self.master.db.state.getObjectId(*TIMINGS_OBJECT)

    async def durations(self, suite: str) -> dict[str, float]:
        found = await self.master.db.state.getState(await self._oid(), f"durations/{suite}", None)
        return {str(k): float(v) for k, v in (found or {}).items()}

    async def save(self, suite: str, durations: dict[str, float]) -> None:
        await self.master.db.state.setState(await self._oid(), f"durations/{suite}", durations)
