"""QA marks: who said a revision is ok, bad or untestable, and when.

One interface, two stores, like the registry: ``DbQaMarks`` keeps the newest
mark of each revision in Buildbot's database (``object_state``, one row per
revision: several masters share it and it survives restarts);
``InMemoryQaMarks`` serves pure tests. Marking a revision again replaces its
mark (last writer wins: that is how a ``bad`` is cleared by hand). The
history of marks is the audit trail (``AuditAction.QA_MARK``), written by the
adapters that mark.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Protocol

import sqlalchemy as sa

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.qa import QaMark
from lpdeploy.core.refs import validate_revision

QA_OBJECT = ("lpdeploy-qa", "lpdeploy.stores.qa.DbQaMarks")


class QaMarks(Protocol):
    """What every QA mark store promises (``tests/test_qa_store.py`` holds both stores to it)."""

    async def mark(self, mark: QaMark) -> None:
        """Record ``mark`` as the state of ``mark.revision``, replacing any earlier mark of it.

        ``ValueError`` for a revision that is not a full commit id."""

    async def marks(self) -> dict[str, QaMark]:
        """The newest mark of every revision ever marked, by revision."""


class InMemoryQaMarks:
    def __init__(self) -> None:
        self._marks: dict[str, QaMark] = {}

    async def mark(self, mark: QaMark) -> None:
        _check(mark)
        self._marks[mark.revision] = mark

    async def marks(self) -> dict[str, QaMark]:
        return dict(self._marks)


class DbQaMarks:
    """The marks in Buildbot's database."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._objectid: int | None = None

    async def _oid(self) -> int:
        if self._objectid is None:
            self._objectid = await self.master.db.state.getObjectId(*QA_OBJECT)
        return self._objectid

    async def mark(self, mark: QaMark) -> None:
        _check(mark)
        await self.master.db.state.setState(await self._oid(), f"mark/{mark.revision}", asdict(mark))

    async def marks(self) -> dict[str, QaMark]:
        oid = await self._oid()

        def thd(conn: Any) -> list[Any]:
            tbl = self.master.db.model.object_state
            q = sa.select(tbl.c.value_json).where(tbl.c.objectid == oid, tbl.c.name.like("mark/%"))
            return [json.loads(r.value_json) for r in conn.execute(q)]

        rows = await self.master.db.pool.do(thd)
        return {r["revision"]: QaMark(**r) for r in rows}


def _check(mark: QaMark) -> None:
    try:
        validate_revision(mark.revision)
    except InvalidInput as e:
        raise ValueError(f"not a commit id: {mark.revision!r}") from e
