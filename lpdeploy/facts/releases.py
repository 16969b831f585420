"""What the upstream says about the released security fixes: facts for ``fix_history``'s rules.

One home for "production never loses a released fix" (invariant: a
promotion, a deploy or a rollback must not take a released fix off the
servers): the promote and deploy steps both ask ``lost_fixes`` and refuse
through ``policy.lost_fix_refusal``.
"""

from __future__ import annotations

from lpdeploy.core import fix_history
from lpdeploy.core.model import Release
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.registry import Registry


async def lost_fixes(upstream: Upstream, registry: Registry, target: str) -> list[Release]:
    """The released fixes (the append-only history, not the branch rows) that ``target`` lacks."""
    releases = await registry.releases()
    kept = {r.fix_commit for r in releases if await upstream.contains(target, r.fix_commit)}
    return fix_history.lost_fixes(releases, kept)
