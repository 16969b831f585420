"""Where the flow stands: branch tips, tested trees, servers, cowboys, the freeze, security fixes.

Computed on the master from the upstream tips, the ledger and the registry;
served as JSON by the web plugin (``www.py``) and printed by ``lpdeploy
status``. What a viewer without the security role gets is decided here:
embargoed commits show only their short sha and the word "embargoed", and
the security section is left out entirely.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lpdeploy.embargo import EMBARGOED, embargoed_commits, shown_author, shown_subject
from lpdeploy.errors import GitError
from lpdeploy.ledger import Ledger
from lpdeploy.model import Cowboy, SecurityFix, Tips
from lpdeploy.registry import Registry
from lpdeploy.settings import Settings
from lpdeploy.upstream import Upstream

BEHIND_LIMIT = 1000  # count at most this many commits behind


async def flow_status(upstream: Upstream, ledger: Ledger, registry: Registry, settings: Settings,
                      may_see_security: bool = False, tips: Tips | None = None,
                      embargoed: set[str] | None = None) -> dict[str, Any]:
    """A JSON-ready picture of the flow for one viewer (pass ``tips``/``embargoed`` if already known)."""
    if tips is None:
        tips = await upstream.fetch()
    b = settings.branches
    if embargoed is None:
        embargoed = await embargoed_commits(upstream, registry, settings, tips)
    roles = {b.devel: "devel", b.stable: "stable", b.production_devel: "production-devel",
             b.production_stable: "production-stable"}
    branches = []
    for name in b.flow:
        tip = tips.get(name)
        entry: dict[str, Any] = {"name": name, "role": roles[name], "tip": tip, "tested": False,
                                 "result": None, "tested_by": None, "subject": None, "author": None,
                                 "embargoed": bool(tip and tip in embargoed)}
        if tip is not None:
            commit = await upstream.commit(tip)
            entry.update(subject=shown_subject(tip, commit.subject, embargoed, may_see_security),
                         author=shown_author(tip, commit.author, embargoed, may_see_security),
                         tree=commit.tree, committed_at=commit.timestamp)
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
    status: dict[str, Any] = {
        "repository": settings.repository.public_url, "suite": settings.suite.identity,
        "suite_command": list(settings.suite.command), "branches": branches,
        "freeze": asdict(freeze) if freeze else None, "servers": servers}
    if may_see_security:
        status["security"] = await _security(upstream, registry, settings, tips)
    return status


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


async def _security(upstream: Upstream, registry: Registry, settings: Settings, tips: Tips) -> dict[str, Any]:
    """For security users: every fix, and those on production that stable does not hold yet."""
    stable = tips.get(settings.branches.stable)
    fixes = []
    for fix in await registry.fixes():
        entry = {**asdict(fix), "embargoed": fix.embargoed, "pending": fix.pending,
                 "on_stable": await _contains(upstream, stable, fix.released)}
        fixes.append(entry)
    return {"fixes": fixes,
            "on_production_not_on_stable": [f["branch"] for f in fixes if f["released"] and not f["on_stable"]]}


async def _contains(upstream: Upstream, tip: str | None, rev: str | None) -> bool:
    if not tip or not rev:
        return False
    try:
        return rev == tip or await upstream.is_ancestor(rev, tip)
    except GitError:
        return False


def fix_line(fix: SecurityFix) -> str:
    """One line about a fix, for the CLI and logs (shas and names only)."""
    return f"{fix.branch} {fix.state} {fix.fix_commit[:12]}" + (f" ({EMBARGOED})" if fix.embargoed else "")
