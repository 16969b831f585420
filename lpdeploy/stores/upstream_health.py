"""Whether the upstream answered lpdeploy's reads, and since when not: one interface, two stores.

One JSON value per upstream URL in Buildbot's database (``object_state``), so
"upstream unreachable since <time>" survives a restart and reads the same on
every master. Last writer wins: every writer has just read the upstream
itself, and the newest read is the truth.
"""

from __future__ import annotations

from typing import Any, Protocol

from lpdeploy.core.upstream_health import UpstreamHealth

HEALTH_OBJECT = ("lpdeploy-upstream-health", "lpdeploy.stores.upstream_health.DbUpstreamHealth")


class UpstreamHealthStore(Protocol):
    """What both stores promise (``tests/test_upstream_health.py``)."""

    async def get(self, url: str) -> UpstreamHealth:
        """The latest recorded health of ``url``; healthy when nothing was ever recorded."""

    async def save(self, url: str, health: UpstreamHealth) -> None:
        """Record ``health`` as the latest of ``url`` (last writer wins)."""


class InMemoryUpstreamHealth:
    def __init__(self) -> None:
        self._by_url: dict[str, UpstreamHealth] = {}

    async def get(self, url: str) -> UpstreamHealth:
        return self._by_url.get(url, UpstreamHealth())

    async def save(self, url: str, health: UpstreamHealth) -> None:
        self._by_url[url] = health


class DbUpstreamHealth:
    def __init__(self, master: Any) -> None:
        self.master = master

    async def _oid(self) -> int:
        return await self.master.db.state.getObjectId(*HEALTH_OBJECT)

    async def get(self, url: str) -> UpstreamHealth:
        return UpstreamHealth.from_json(await self.master.db.state.getState(await self._oid(), url, None))

    async def save(self, url: str, health: UpstreamHealth) -> None:
        raw = health.as_json()
        del raw["line"], raw["reachable"]  # derived: computed again when read
        await self.master.db.state.setState(await self._oid(), url, raw)
