"""Where the flow stands: branch tips, their commits and whether each tree is tested.

Computed on the master from the upstream tips and the ledger, served as JSON
by the web plugin (``www.py``), printed by ``lpdeploy status``.
"""

from __future__ import annotations

from typing import Any

from lpdeploy.ledger import Ledger
from lpdeploy.settings import Settings
from lpdeploy.upstream import Upstream


async def flow_status(upstream: Upstream, ledger: Ledger, settings: Settings) -> dict[str, Any]:
    """A JSON-ready picture of the four flow branches."""
    tips = await upstream.fetch()
    b = settings.branches
    roles = {b.devel: "devel", b.stable: "stable", b.production_devel: "production-devel",
             b.production_stable: "production-stable"}
    branches = []
    for name in b.flow:
        tip = tips.get(name)
        entry: dict[str, Any] = {"name": name, "role": roles[name], "tip": tip, "tested": False,
                                 "result": None, "tested_by": None, "subject": None, "author": None}
        if tip is not None:
            commit = await upstream.commit(tip)
            entry.update(subject=commit.subject, author=commit.author, tree=commit.tree,
                         committed_at=commit.timestamp)
            record = await ledger.lookup(settings.suite.identity, commit.tree)
            if record is not None:
                entry["result"] = record.result.value
                entry["tested"] = record.passed
                entry["tested_by"] = {"build_url": record.build_url, "build_number": record.build_number,
                                      "commit": record.commit, "finished_at": record.finished_at}
        branches.append(entry)
    return {"repository": settings.repository.url, "suite": settings.suite.identity,
            "suite_command": list(settings.suite.command), "branches": branches}
