"""The QA report read off the upstream and the stores: facts for ``core/qa.py``'s rule.

One place gathers them for every reader — ``lpdeploy qa list`` (``qa.json``),
the dashboard's deployment report and the promote build with
``[promotion] require_qa`` — so all three see the same ``deployable``.
"""

from __future__ import annotations

from dataclasses import replace

from lpdeploy.core import qa
from lpdeploy.core.errors import GitError
from lpdeploy.core.model import EMBARGOED, AuditAction, AuditEntry, Tips
from lpdeploy.core.settings import Settings
from lpdeploy.facts.embargo import embargoed_commits, shown_author, shown_subject
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.qa import QaMarks
from lpdeploy.stores.registry import Registry

QA_LIMIT = 5000  # undeployed first-parent commits looked at (~200 land a month)
STAGING_LIMIT = 50000  # commits a staging server may lag behind stable and still be told apart exactly


def staging_servers(settings: Settings) -> list[str]:
    """The servers QA tests on: those that follow stable by themselves (``auto_deploy``)."""
    return [s.name for s in settings.servers if s.auto_deploy]


async def qa_report(upstream: Upstream, registry: Registry, marks: QaMarks, settings: Settings, tips: Tips,
                    may_see_security: bool) -> qa.QaReport:
    """The undeployed commits on stable with their QA state, and ``deployable``, as this viewer may see them.

    The rule is decided on the whole facts, so every viewer gets the same
    ``deployable``; a commit under embargo (none can be on stable, but the
    rule is checked, not assumed) is then shown without its subject, author,
    bugs and mark reason to a viewer without the security role.
    """
    b = settings.branches
    stable, base = tips.get(b.stable), tips.get(b.production_stable)
    if stable is None:
        return qa.QaReport(base)
    commits = list(reversed(await upstream.first_parents(base, stable, QA_LIMIT)))
    messages = await upstream.first_parent_messages(base, stable, QA_LIMIT)
    exempt = {a.merge for a in await registry.merge_backs() if a.merge}
    exempt |= {sha for r in await registry.releases() for sha in (r.candidate, r.fix_commit)}
    staged = await _staged(upstream, registry, settings, stable, [c.sha for c in commits])
    candidates = [qa.Candidate(c.sha, c.subject, c.author, messages.get(c.sha, ""),
                               tuple(s for s in staged if c.sha in staged[s]), c.sha in exempt) for c in commits]
    report = qa.qa_report(base, candidates, await marks.marks(), settings.qa.bug_pattern,
                          settings.auth.users_with("qa"), staging_servers(settings))
    if may_see_security:
        return report
    hidden = await embargoed_commits(upstream, registry, settings, tips)
    rows = tuple(replace(r, subject=shown_subject(r.revision, r.subject, hidden, False),
                         author=shown_author(r.revision, r.author, hidden, False), bugs=(), reason=EMBARGOED)
                 if r.revision in hidden else r for r in report.rows)
    # production-stable's tip is a released fix until its merge-back: not even its id is shown here
    base = EMBARGOED if base in hidden else base
    deployable = base if report.deployable == report.base else report.deployable
    return replace(report, base=base, deployable=deployable, rows=rows)


async def _staged(upstream: Upstream, registry: Registry, settings: Settings, stable: str,
                  shas: list[str]) -> dict[str, set[str]]:
    """For each staging server, which of ``shas`` the revision it runs contains."""
    out: dict[str, set[str]] = {}
    for name in staging_servers(settings):
        dep = await registry.deployment(name)
        if dep is None:
            out[name] = set()
            continue
        try:
            missing = {c.sha for c in await upstream.commits_between(dep.revision, stable, STAGING_LIMIT)}
        except GitError:
            out[name] = set()
            continue
        out[name] = {sha for sha in shas if sha not in missing}
    return out


async def record_mark(marks: QaMarks, registry: Registry, mark: qa.QaMark) -> None:
    """Mark a revision (replacing its earlier mark) and audit it: the one way a mark is made.

    People mark through ``/plugins/lpdeploy/qa/mark`` (``lpdeploy qa``, the
    dashboard's buttons); a rollout whose check failed marks its revision bad.
    """
    await marks.mark(mark)
    await registry.audit(AuditEntry(mark.at, mark.by, AuditAction.QA_MARK, {
        "revision": mark.revision, "state": mark.state, "reason": mark.reason}))
