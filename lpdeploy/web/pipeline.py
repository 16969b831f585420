"""Everything the Pipeline dashboard shows, for one viewer: gathered on the master.

Builds on ``status.flow_status`` (tips, tested marks, servers, cowboys,
freeze, security fixes — already masked for the viewer) and adds how far each
stage is ahead of the next, what a promotion would bring and whether it
would skip the suite, and the numbers from flow events.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lpdeploy.core.errors import GitError
from lpdeploy.core.insights import lead_times, suite_numbers
from lpdeploy.core.model import EventKind
from lpdeploy.core.settings import Settings
from lpdeploy.facts.embargo import embargoed_commits, shown_author, shown_subject
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import Ledger
from lpdeploy.stores.registry import Registry
from lpdeploy.web.status import flow_status

PREVIEW_LIMIT = 50  # commits listed in the promotion preview; the count above it is exact


async def pipeline_view(upstream: Upstream, ledger: Ledger, registry: Registry, settings: Settings,
                        may_see_security: bool, now: float) -> dict[str, Any]:
    fetched = await upstream.fetch()
    embargoed = await embargoed_commits(upstream, registry, settings, fetched)
    status = await flow_status(upstream, ledger, registry, settings, may_see_security, fetched, embargoed, now)
    tips = {b["name"]: b["tip"] for b in status["branches"]}
    b = settings.branches
    nxt = {b.devel: b.stable, b.stable: b.production_stable, b.production_devel: None, b.production_stable: None}
    for entry in status["branches"]:
        entry["ahead"] = await _count(upstream, tips.get(nxt[entry["name"]] or ""), entry["tip"]) \
            if nxt[entry["name"]] else None
    preview, total = [], 0
    if tips.get(b.stable):
        try:
            total = await upstream.count_between(tips.get(b.production_stable), tips[b.stable])
            commits = await upstream.commits_between(tips.get(b.production_stable), tips[b.stable], PREVIEW_LIMIT)
        except GitError:
            commits = []
        preview = [{"sha": c.sha, "subject": shown_subject(c.sha, c.subject, embargoed, may_see_security),
                    "author": shown_author(c.sha, c.author, embargoed, may_see_security)} for c in commits]
    stable = next(e for e in status["branches"] if e["name"] == b.stable)
    ps_tip, stable_tip = tips.get(b.production_stable), tips.get(b.stable)
    blocked = bool(ps_tip and stable_tip and ps_tip != stable_tip
                   and not await upstream.contains(stable_tip, ps_tip))
    events = await registry.events(since=now - 31 * 86400)
    moved = sorted({str(e.details["revision"]) for e in events
                    if e.action == EventKind.MOVED and e.details.get("revision")})
    pushed = {rev: float(ts) for rev, ts in (await upstream.commit_times(moved)).items()}
    numbers = suite_numbers(events, now)
    return {
        **status,
        "promotion": {"commits": preview, "count": total, "skips_suite": bool(stable.get("tested")), "blocked": blocked,
                      "nothing": bool(tips.get(b.stable)) and tips.get(b.stable) == tips.get(b.production_stable)},
        "lead_times": [asdict(x) | {"total": x.total} for x in lead_times(events, pushed, now)],
        "numbers": asdict(numbers) | {"runs_per_production_revision": numbers.runs_per_production_revision},
        "now": now,
    }


async def _count(upstream: Upstream, base: str | None, tip: str | None) -> int | None:
    """How many commits ``tip`` has that ``base`` lacks: exact (``rev-list --count``), never cut off."""
    if not tip:
        return None
    try:
        return await upstream.count_between(base, tip)
    except GitError:
        return None
