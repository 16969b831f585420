"""The ledger of tested trees: one interface, a database store and an in-memory one.

"Already tested" means: this exact tree passed this suite. Passes and failures
are kept apart so that a later failure (a flaky run) never erases the fact that
a tree once passed, and so that two masters recording the same pass agree:
the first pass recorded wins (an atomic create), failures are last-writer-wins.

Both stores pass the same contract tests (``tests/test_ledger.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

from lpdeploy.core.model import Result, TestRecord

LEDGER_OBJECT = ("lpdeploy-ledger", "lpdeploy.ledger.DbLedger")


class Ledger(Protocol):
    async def lookup(self, suite: str, tree: str) -> TestRecord | None:
        """The pass of ``tree`` under ``suite`` if any, else its latest failure, else None."""

    async def record(self, rec: TestRecord) -> TestRecord:
        """Store a result; returns the entry that ``lookup`` now answers."""


def to_json(rec: TestRecord) -> dict[str, Any]:
    return {
        "tree": rec.tree, "commit": rec.commit, "suite": rec.suite, "result": rec.result.value,
        "build_url": rec.build_url, "build_number": rec.build_number,
        "finished_at": rec.finished_at, "duration": rec.duration,
    }


def from_json(d: dict[str, Any]) -> TestRecord:
    return TestRecord(
        tree=d["tree"], commit=d["commit"], suite=d["suite"], result=Result(d["result"]),
        build_url=d["build_url"], build_number=d.get("build_number"),
        finished_at=float(d["finished_at"]), duration=float(d.get("duration", 0.0)),
    )


def _key(result: Result, suite: str, tree: str) -> str:
    return f"{result.value}/{suite}/{tree}"


class InMemoryLedger:
    """The ledger for pure tests and benchmarks: same contract, a dict behind it."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    async def lookup(self, suite: str, tree: str) -> TestRecord | None:
        for result in (Result.PASSED, Result.FAILED):
            found = self._entries.get(_key(result, suite, tree))
            if found is not None:
                return from_json(found)
        return None

    async def record(self, rec: TestRecord) -> TestRecord:
        key = _key(rec.result, rec.suite, rec.tree)
        if rec.passed:
            self._entries.setdefault(key, to_json(rec))
        else:
            self._entries[key] = to_json(rec)
        found = await self.lookup(rec.suite, rec.tree)
        assert found is not None
        return found


class DbLedger:
    """The ledger in Buildbot's database (``object_state``), shared by every master."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._objectid: int | None = None

    async def _oid(self) -> int:
        if self._objectid is None:
            self._objectid = await self.master.db.state.getObjectId(*LEDGER_OBJECT)
        return self._objectid

    async def lookup(self, suite: str, tree: str) -> TestRecord | None:
        oid = await self._oid()
        for result in (Result.PASSED, Result.FAILED):
            found = await self.master.db.state.getState(oid, _key(result, suite, tree), None)
            if found is not None:
                return from_json(found)
        return None

    async def record(self, rec: TestRecord) -> TestRecord:
        oid = await self._oid()
        key = _key(rec.result, rec.suite, rec.tree)
        if rec.passed:
            # first pass wins; a second master recording the same tree gets the first entry
            await self.master.db.state.atomicCreateState(oid, key, lambda: to_json(rec))
        else:
            await self.master.db.state.setState(oid, key, to_json(rec))
        found = await self.lookup(rec.suite, rec.tree)
        assert found is not None
        return found
