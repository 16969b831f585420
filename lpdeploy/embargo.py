"""Which commits are embargoed, and how they are shown to people without the security role.

A security fix is embargoed until it is merged back into devel. Rather than
trusting a state flag, the rule is read off the tips: a commit is embargoed
when a security branch (or a recorded fix) reaches it and neither devel nor
stable does. The moment the merge-back lands on devel, its commits are public.
"""

from __future__ import annotations

from lpdeploy.errors import GitError
from lpdeploy.model import Tips
from lpdeploy.refs import branch_matches, short
from lpdeploy.registry import Registry
from lpdeploy.settings import Settings
from lpdeploy.upstream import Upstream

EMBARGOED = "embargoed"
SECURITY_ROLE = "security"
MAX_EMBARGOED = 5000  # commits looked at; a security branch is a handful of commits


async def embargoed_commits(upstream: Upstream, registry: Registry, settings: Settings, tips: Tips) -> set[str]:
    """Every commit a security branch or recorded fix reaches that devel and stable do not."""
    b = settings.branches
    secret = {sha for name, sha in tips.heads.items() if branch_matches(name, b.security)}
    for fix in await registry.fixes():
        secret |= {fix.fix_commit} | ({fix.candidate} if fix.candidate else set())
    if not secret:
        return set()
    public = [sha for sha in (tips.get(b.devel), tips.get(b.stable)) if sha]
    found: set[str] = set()
    for sha in sorted(secret):
        try:
            await upstream.fetch_revision(sha)
            found |= {c.sha for c in await upstream.commits_between(public, sha, limit=MAX_EMBARGOED)}
        except GitError:
            found.add(sha)  # unknown to us: hide it rather than guess
    return found


def shown_subject(sha: str, subject: str, embargoed: set[str], may_see: bool) -> str:
    """The subject as a viewer may see it: an embargoed one is only its short sha and the word."""
    if sha in embargoed and not may_see:
        return f"{short(sha)} {EMBARGOED}"
    return subject


def shown_author(sha: str, author: str, embargoed: set[str], may_see: bool) -> str:
    return EMBARGOED if sha in embargoed and not may_see else author
