"""Where the flow stands: branch tips, tested trees, servers, cowboys, the freeze, security fixes.

Computed on the master from the upstream tips, the ledger and the registry;
served as JSON by the web plugin (``www.py``) and printed by ``lpdeploy
status``. What a viewer without the security role gets is decided here:
embargoed commits show only their short sha and the word "embargoed" — no
author, no commit time, and no link to the (embargoed) security build that
tested them — and the security section is left out entirely.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lpdeploy.core import fix_history
from lpdeploy.core.bisect import culprit_shown
from lpdeploy.core.errors import GitError
from lpdeploy.core.flaky import DAY, WINDOW_DAYS, counts, visible
from lpdeploy.core.freeze_windows import window_state
from lpdeploy.core.model import Cowboy, FixState, SecurityFix, TestRecord, Tips
from lpdeploy.core.settings import Settings
from lpdeploy.core.upstream_health import UpstreamHealth
from lpdeploy.facts.embargo import contained_in, embargoed_commits, shown_author, shown_subject
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.flaky import FlakyLog
from lpdeploy.stores.ledger import Ledger
from lpdeploy.stores.registry import Registry


async def flow_status(upstream: Upstream, ledger: Ledger, registry: Registry, settings: Settings,
                      may_see_security: bool = False, tips: Tips | None = None,
                      embargoed: set[str] | None = None, now: float | None = None,
                      health: UpstreamHealth | None = None) -> dict[str, Any]:
    """A JSON-ready picture of the flow for one viewer (pass ``tips``/``embargoed`` if already known).

    ``now`` (the master's clock) places the freeze windows: the open ones and
    the next; without it the windows are left out. ``health`` (as recorded
    by the poller and the schedulers) becomes ``upstream``: while the upstream
    does not answer, its ``line`` says "upstream unreachable since <time>" and
    the tips are the mirror's last fetched ones.
    """
    if tips is None:
        tips = await upstream.shown_tips(0)
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
            hidden = tip in embargoed and not may_see_security
            entry.update(subject=shown_subject(tip, commit.subject, embargoed, may_see_security),
                         author=shown_author(tip, commit.author, embargoed, may_see_security),
                         tree=commit.tree, committed_at=None if hidden else commit.timestamp)
            record = await ledger.lookup(settings.suite.identity, commit.tree)
            if record is not None:
                entry["result"] = record.result.value
                entry["tested"] = record.passed
                entry["tested_by"] = _tested_by(record, hidden)
        if name == b.devel:
            entry["culprit"] = await _culprit(upstream, registry, tip, bool(entry["tested"]), embargoed,
                                              may_see_security)
        branches.append(entry)
    freeze = await registry.freeze()
    cowboys = await registry.cowboys()
    unrecorded = {u.server: u.as_json() for u in await registry.unrecorded_changes()}
    servers = [{**await _server(upstream, registry, name, tips.get(b.production_stable), cowboys),
                "unrecorded_change": unrecorded.get(name)}
               for name in (s.name for s in settings.servers)]
    status: dict[str, Any] = {
        "repository": settings.repository.public_url, "suite": settings.suite.identity,
        "suite_command": list(settings.suite.command), "branches": branches,
        "freeze": asdict(freeze) if freeze else None, "servers": servers,
        "upstream": (health or UpstreamHealth()).as_json()}
    if now is not None:
        status["freeze_windows"] = window_state(settings.freeze.windows, now).as_json()
    if may_see_security:
        status["security"] = await _security(upstream, registry, settings, tips)
    return status


async def _culprit(upstream: Upstream, registry: Registry, devel_tip: str | None, devel_passed: bool,
                   embargoed: set[str], may_see_security: bool) -> dict[str, Any] | None:
    """The commit the gate's bisection named, while devel is red (``core.bisect.culprit_shown``).

    A culprit is a devel commit and public; it still goes through the embargo
    masks, so that no path can show a security commit's subject or author.
    """
    culprit = await registry.culprit()
    if culprit is None or devel_tip is None:
        return None
    try:
        on_devel = culprit.revision == devel_tip or await upstream.is_ancestor(culprit.revision, devel_tip)
    except GitError:
        on_devel = False
    if not culprit_shown(culprit, devel_passed, on_devel):
        return None
    sha = culprit.revision
    return {"revision": sha, "subject": shown_subject(sha, culprit.subject, embargoed, may_see_security),
            "author": shown_author(sha, culprit.author, embargoed, may_see_security),
            "build_url": culprit.build_url}


def _tested_by(record: TestRecord, hidden: bool) -> dict[str, Any]:
    """Which build tested a tip; for an embargoed tip that build is a security build: not named."""
    if hidden:
        return {"build_url": "", "build_number": None, "commit": record.commit, "finished_at": None}
    return {"build_url": record.build_url, "build_number": record.build_number,
            "commit": record.commit, "finished_at": record.finished_at}


async def _server(upstream: Upstream, registry: Registry, name: str, target: str | None,
                  cowboys: list[Cowboy]) -> dict[str, Any]:
    dep = await registry.deployment(name)
    behind = None
    if dep is not None and target is not None:
        try:
            behind = await upstream.count_between(dep.revision, target)  # exact, however far
        except GitError:
            behind = None  # the deployed revision is no longer in the upstream
    return {"name": name, "deployed": dep.revision if dep else None,
            "deployed_at": dep.deployed_at if dep else None, "deployed_by": dep.by if dep else None,
            "behind": behind, "cowboys": [c.as_json() for c in cowboys if c.server == name]}


async def _security(upstream: Upstream, registry: Registry, settings: Settings, tips: Tips) -> dict[str, Any]:
    """For security users: each branch's latest run and released fixes, and what stable still lacks."""
    b = settings.branches
    attempts = await registry.merge_backs()
    releases = fix_history.distinct(await registry.releases())
    in_devel = await contained_in(upstream, tips.get(b.devel), [r.candidate for r in releases])
    on_stable = await contained_in(upstream, tips.get(b.stable), [r.fix_commit for r in releases])
    released: dict[str, list[dict[str, Any]]] = {}
    for r in releases:
        released.setdefault(r.branch, []).append({
            **asdict(r), "state": fix_history.release_state(r, in_devel, attempts),
            "on_stable": r.fix_commit in on_stable})
    runs = {f.branch: f for f in await registry.fixes()}
    fixes = [_branch_entry(branch, runs.get(branch), released.get(branch, []))
             for branch in sorted(set(runs) | set(released))]
    return {"fixes": fixes,
            "on_production_not_on_stable": [f["branch"] for f in fixes
                                            if any(not r["on_stable"] for r in f["releases"])]}


def _branch_entry(branch: str, run: SecurityFix | None, released: list[dict[str, Any]]) -> dict[str, Any]:
    """One security branch: its latest run (if any is recorded) and every release of it."""
    state = fix_history.branch_state(run, [r["state"] for r in released])
    pending = any(r["state"] != FixState.MERGED_BACK for r in released)
    latest: dict[str, Any] = asdict(run) if run else {
        "fix_commit": released[-1]["fix_commit"], "candidate": released[-1]["candidate"],
        "by": released[-1]["by"], "updated_at": released[-1]["released_at"], "build_url": released[-1]["build_url"],
        "note": ""}
    return {**latest, "branch": branch, "state": state, "pending": pending,
            "embargoed": pending or state != FixState.MERGED_BACK, "releases": released}




async def flaky_report(log: FlakyLog, settings: Settings, may_see_security: bool, now: float) -> dict[str, Any]:
    """Flaky tests and quarantined failures per test over the last 30 days, for one viewer; the quarantine list.

    Records from security builds are counted only for the security role: they
    name an embargoed build and its revision (invariant 6).
    """
    records = visible(await log.records(since=now - WINDOW_DAYS * DAY), may_see_security)
    return {"suite": settings.suite.identity, "window_days": WINDOW_DAYS,
            "rerun_failures": settings.suite.rerun_failures, "quarantine": list(settings.suite.quarantine),
            "tests": [c.as_json() for c in counts(records, now)]}
