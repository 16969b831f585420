"""Where the flow stands: branch tips, their commits and whether each tree is tested.

Computed on the master from the upstream tips and the ledger, served as JSON
by the web plugin (``www.py``), printed by ``lpdeploy status``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lpdeploy.errors import GitError
from lpdeploy.ledger import Ledger
from lpdeploy.model import Cowboy
from lpdeploy.registry import Registry
from lpdeploy.settings import Settings
from lpdeploy.upstream import Upstream

BEHIND_LIMIT = 1000  # count at most this many commits behind


async def flow_status(upstream: Upstream, ledger: Ledger, registry: Registry,
                      settings: Settings) -> dict[str, Any]:
    """A JSON-ready picture of the flow branches, the servers and the freeze."""
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
    freeze = await registry.freeze()
    cowboys = await registry.cowboys()
    servers = [await _server(upstream, registry, name, tips.get(b.production_stable), cowboys)
               for name in (s.name for s in settings.servers)]
    return {"repository": settings.repository.url, "suite": settings.suite.identity,
            "suite_command": list(settings.suite.command), "branches": branches,
            "freeze": asdict(freeze) if freeze else None, "servers": servers}


async def _server(upstream: Upstream, registry: Registry, name: str, target: str | None,
                  cowboys: list[Cowboy]) -> dict[str, Any]:
    dep = await registry.deployment(name)
    behind = None
    if dep is not None and target is not None:
        try:
            behind = len(await upstream.commits_between(dep.revision, target, limit=BEHIND_LIMIT))
        except GitError:
            behind = None  # the deployed revision is no longer in the upstream
    return {"name": name, "deployed": dep.revision if dep else None,
            "deployed_at": dep.deployed_at if dep else None, "deployed_by": dep.by if dep else None,
            "behind": behind, "cowboys": [c.as_json() for c in cowboys if c.server == name]}
