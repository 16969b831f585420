"""Which commits are embargoed, and how they are shown to people without the security role.

A security fix is embargoed until it is merged back into devel. Rather than
trusting a state flag, the rule is read off the tips: a commit is embargoed
when a security branch, a fix under test or a fix that ever reached
production (the append-only history, ``fix_history.embargo_roots``) reaches
it, and neither devel nor stable does. A force-push, a failed rework or a
deleted branch cannot lift it; the moment the merge-back lands on devel, its
commits are public.
"""

from __future__ import annotations

from collections.abc import Iterable

from lpdeploy.core.errors import GitError
from lpdeploy.core.fix_history import embargo_roots
from lpdeploy.core.model import EMBARGOED, Tips
from lpdeploy.core.refs import branch_matches, short
from lpdeploy.core.settings import Settings
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.registry import Registry

MAX_EMBARGOED = 5000  # commits looked at; the fixes not yet in devel are a handful of commits


async def embargoed_commits(upstream: Upstream, registry: Registry, settings: Settings, tips: Tips) -> set[str]:
    """Every commit a security branch, a fix under test or a released fix reaches that devel and stable do not."""
    b = settings.branches
    security_tips = [sha for name, sha in tips.heads.items() if branch_matches(name, b.security)]
    roots = embargo_roots(security_tips, await registry.releases(), await registry.fixes())
    if not roots:
        return set()
    public = [sha for sha in (tips.get(b.devel), tips.get(b.stable)) if sha]
    known = set(await upstream.commit_times(sorted(roots)))  # one git call: which the mirror holds
    found: set[str] = set()
    for sha in sorted(roots - known):
        try:
            await upstream.fetch_revision(sha)
            known.add(sha)
        except GitError:
            found.add(sha)  # unknown to us: hide it rather than guess
    if known:
        found |= {c.sha for c in await upstream.commits_between(public, sorted(known), limit=MAX_EMBARGOED)}
    return found


async def contained_in(upstream: Upstream, tip: str | None, shas: Iterable[str]) -> set[str]:
    """Which of ``shas`` the commit ``tip`` contains, in a few git calls however long the history.

    A commit the upstream does not have is not contained. Used for the
    released fixes: which devel holds (merged back), which stable holds.
    """
    wanted = set(shas)
    if not tip or not wanted:
        return set()
    known = set(await upstream.commit_times(sorted(wanted)))
    for sha in sorted(wanted - known):
        try:
            await upstream.fetch_revision(sha)
            known.add(sha)
        except GitError:
            pass
    if not known:
        return set()
    listed = await upstream.commits_between(tip, sorted(known), limit=MAX_EMBARGOED)
    outside = {c.sha for c in listed}
    held = {sha for sha in known if sha not in outside}
    if len(listed) >= MAX_EMBARGOED:  # cut short: "not listed" no longer proves "contained"
        held = {sha for sha in held if sha == tip or await upstream.is_ancestor(sha, tip)}
    return held


def shown_subject(sha: str, subject: str, embargoed: set[str], may_see: bool) -> str:
    """The subject as a viewer may see it: an embargoed one is only its short sha and the word."""
    if sha in embargoed and not may_see:
        return f"{short(sha)} {EMBARGOED}"
    return subject


def shown_author(sha: str, author: str, embargoed: set[str], may_see: bool) -> str:
    return EMBARGOED if sha in embargoed and not may_see else author
