"""QA state per revision: what a QA engineer marked, and which revision is deployable.

Launchpad's release process QA'd every revision that reached staging and
promoted only revisions "deployable as tip": everything between production
and them QA'd. This module is that rule, pure: it takes the first-parent
commits on stable that production-stable lacks (oldest first, with their
messages), the marks people made, and returns one row per commit and the
``deployable`` revision, with the first commit that blocks beyond it, why,
and who must act.

* ``ok`` and ``untestable`` pass; ``needs-testing`` (no mark) and ``bad`` stop
  the line.
* A ``bad`` commit is cleared by marking it again or by a later commit on
  stable that reverts it (git's ``This reverts commit <sha>.`` line): from that
  revert on, the bad change is gone, so the line may run past it; the
  revisions between the bad commit and its revert still carry it and are
  not deployable. An unmarked revert of a bad commit passes by itself: it
  brings back a state that was QA'd.
* Security fixes never wait for QA (their merge-back commits on stable are
  exempt); they are shown as such.

Nothing here runs git or reads the clock; ``facts/qa.py`` gathers the facts.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lpdeploy.core.model import AUTOMATIC, Action, Decision, Role
from lpdeploy.core.refs import short


class QaState(enum.StrEnum):
    """A commit's QA state (``lpdeploy qa list``); the last three are what people mark."""

    NEEDS_TESTING = "needs-testing"
    OK = "ok"
    BAD = "bad"
    UNTESTABLE = "untestable"


MARKS = (QaState.OK, QaState.BAD, QaState.UNTESTABLE)
MARKERS = frozenset({Role.QA, Role.LOSA})  # the roles that may mark; everyone else is refused
PASSING = frozenset({QaState.OK, QaState.UNTESTABLE})
# the default ``[qa] bug_pattern``: Launchpad's "LP: #1234" and the forges' "Fixes #1234"
DEFAULT_BUG_PATTERN = r"(?:LP:\s*#|Fixes\s+#)(\d+)"
_REVERTS = re.compile(r"^This reverts commit ([0-9a-f]{40})\b", re.MULTILINE)


@dataclass(frozen=True)
class QaMark:
    """One person's verdict on one revision; the newest mark of a revision is its state."""

    revision: str
    state: QaState
    by: str
    at: float
    reason: str = ""

    def __post_init__(self) -> None:  # rows and JSON hold the plain string
        object.__setattr__(self, "state", QaState(self.state))
        if self.state is QaState.NEEDS_TESTING:
            raise ValueError("needs-testing is the absence of a mark, not a mark")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """A first-parent commit on stable that production-stable lacks, as ``facts/qa.py`` read it."""

    sha: str
    subject: str
    author: str
    message: str = ""  # the whole commit message: bug references, revert lines
    staging: tuple[str, ...] = ()  # the staging servers (``auto_deploy``) that run it already
    security: bool = False  # a security fix's merge-back: never waits for QA


@dataclass(frozen=True)
class QaRow:
    """One undeployed commit as ``lpdeploy qa list`` and the deployment report show it."""

    revision: str
    subject: str
    author: str
    qa: QaState
    bugs: tuple[str, ...] = ()
    staging: tuple[str, ...] = ()
    security: bool = False
    marked_by: str | None = None
    marked_at: float | None = None
    reason: str = ""
    reverted_by: str | None = None  # a later commit on stable that reverts this one

    @property
    def passes(self) -> bool:
        """Does this commit, on its own, let the line run on? (A reverted bad one: only from its revert on.)"""
        return self.security or self.qa in PASSING

    def as_json(self, bug_url: str | None = None) -> dict[str, Any]:
        out = asdict(self)
        out["bugs"] = [{"bug": b, "url": bug_link(b, bug_url)} for b in self.bugs]
        out["staging"] = list(self.staging)
        out["on_staging"] = bool(self.staging)
        return out


@dataclass(frozen=True)
class Blocker:
    """The first commit that stops the line beyond ``deployable``: which, why, and who must act."""

    revision: str
    why: str
    who: str


@dataclass(frozen=True)
class QaReport:
    """The undeployed commits (oldest first) and how far the QA'd line reaches."""

    base: str | None  # production-stable
    rows: tuple[QaRow, ...] = ()
    deployable: str | None = None  # the newest revision deployable as tip; the base when none beyond it
    blocker: Blocker | None = None
    left_behind: tuple[str, ...] = ()  # the commits beyond deployable, oldest first
    tips: frozenset[str] = frozenset()  # every revision deployable as tip (a bad one not yet reverted is in none)

    def position(self, sha: str) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r.revision == sha), None)

    def as_json(self, bug_url: str | None = None) -> dict[str, Any]:
        return {"base": self.base, "deployable": self.deployable,
                "blocker": asdict(self.blocker) if self.blocker else None,
                "left_behind": list(self.left_behind),
                "commits": [r.as_json(bug_url) for r in self.rows]}


def mark_refusal(user: str | None, roles: set[str]) -> str | None:
    """Why ``user`` (with ``roles``) may not mark revisions, or None: deny by default, like every control action."""
    if not user:
        return "not allowed: log in as a user with the qa or losa role to mark revisions"
    if not roles & MARKERS:
        return f"not allowed: user {user!r} may not mark revisions (marking needs the qa or losa role)"
    return None


def bug_refs(message: str, pattern: str = DEFAULT_BUG_PATTERN) -> tuple[str, ...]:
    """The bug numbers a commit message names (the pattern's first group, else its whole match), in order, once."""
    found = []
    for m in re.finditer(pattern, message):
        found.append(m.group(1) if m.groups() else m.group(0))
    return tuple(dict.fromkeys(found))


def bug_link(bug: str, bug_url: str | None) -> str | None:
    """``[qa] bug_url`` with ``{bug}`` substituted, or None when no URL is configured."""
    return bug_url.replace("{bug}", bug) if bug_url else None


def reverted(message: str) -> tuple[str, ...]:
    """The commits a message says it reverts (git revert's ``This reverts commit <sha>.`` lines)."""
    return tuple(_REVERTS.findall(message))


def qa_report(base: str | None, commits: Sequence[Candidate], marks: Mapping[str, QaMark],
              bug_pattern: str = DEFAULT_BUG_PATTERN, qa_users: Sequence[str] = (),
              staging_servers: Sequence[str] = ()) -> QaReport:
    """Each commit's QA state, and the newest revision such that everything from ``base`` up to it passes.

    ``commits``: the first-parent commits on stable that ``base``
    (production-stable) lacks, oldest first. ``marks``: the newest mark of
    each revision. ``qa_users`` and ``staging_servers`` only make the
    blocker's reason name who must act and where to test.
    """
    where = {c.sha: i for i, c in enumerate(commits)}
    reverted_by: dict[str, str] = {}
    for i, c in enumerate(commits):
        for target in reverted(c.message):
            if where.get(target, i) < i:
                reverted_by.setdefault(target, c.sha)
    rows = [_row(c, marks.get(c.sha), reverted_by, marks, bug_pattern) for c in commits]
    deployable, pending = base, set()  # pending: bad commits passed over, waiting for their revert
    blocker, tips = None, set()
    for row in rows:
        if row.qa is QaState.BAD and row.reverted_by and not row.security:
            pending.add(row.revision)
        elif not row.passes:
            blocker = _blocker(row, qa_users, staging_servers)
            break
        pending -= {bad for bad, revert in reverted_by.items() if revert == row.revision}
        if not pending:
            deployable = row.revision
            tips.add(row.revision)
    cut = where[deployable] + 1 if deployable in where else 0
    return QaReport(base, tuple(rows), deployable, blocker, tuple(r.revision for r in rows[cut:]), frozenset(tips))


def _row(c: Candidate, mark: QaMark | None, reverted_by: Mapping[str, str], marks: Mapping[str, QaMark],
         bug_pattern: str) -> QaRow:
    bugs = bug_refs(c.message, bug_pattern)
    if mark is not None:
        return QaRow(c.sha, c.subject, c.author, mark.state, bugs, c.staging, c.security, mark.by, mark.at,
                     mark.reason, reverted_by.get(c.sha) if mark.state is QaState.BAD else None)
    undoes = [t for t in reverted(c.message)
              if reverted_by.get(t) == c.sha and t in marks and marks[t].state is QaState.BAD]
    if undoes:  # an unmarked revert of a bad commit brings back a QA'd state
        return QaRow(c.sha, c.subject, c.author, QaState.OK, bugs, c.staging, c.security, AUTOMATIC, None,
                     f"reverts {', '.join(short(t) for t in undoes)}, marked bad")
    return QaRow(c.sha, c.subject, c.author, QaState.NEEDS_TESTING, bugs, c.staging, c.security)


def _blocker(row: QaRow, qa_users: Sequence[str], staging_servers: Sequence[str]) -> Blocker:
    qa = f"the qa role ({', '.join(qa_users)})" if qa_users else "the qa role"
    if row.qa is QaState.BAD:
        why = f"{short(row.revision)} was marked bad by {row.marked_by}" + (f": {row.reason}" if row.reason else "")
        return Blocker(row.revision, why + "; it must be reverted on stable, or marked again",
                       f"{row.author} (its author), or {qa}")
    if row.staging:
        why = f"{short(row.revision)} is not QA'd yet; it is on {', '.join(row.staging)}, ready to test"
    elif staging_servers:
        why = f"{short(row.revision)} is not QA'd yet, and not yet on {', '.join(staging_servers)}"
    else:
        why = f"{short(row.revision)} is not QA'd yet"
    return Blocker(row.revision, why, qa)


def promotion_decision(report: QaReport, requested: str | None) -> Decision:
    """``[promotion] require_qa``: promote the ``deployable`` revision; refuse a requested one beyond it.

    MOVE carries the revision to promote and says what it leaves behind and
    why; NOTHING when nothing beyond production-stable is deployable; REFUSE
    names the commit that blocks.
    """
    behind = ""
    if report.left_behind:
        n = len(report.left_behind)
        behind = f"; left behind: {n} commit{'' if n == 1 else 's'}"
        if report.blocker is not None:
            behind += f" ({report.blocker.why}; waiting for {report.blocker.who})"
    if requested is not None and requested != report.deployable:
        at = report.position(requested)
        if at is None:
            return Decision(Action.REFUSE, f"refusing to promote {short(requested)}: it is not one of the "
                                           "first-parent commits on stable that production-stable lacks",
                            revision=requested)
        if requested not in report.tips:
            return Decision(Action.REFUSE, f"refusing to promote {short(requested)}: it is beyond the deployable "
                                           f"revision {short(report.deployable or '')}; "
                                           + _blocking(report, requested), revision=requested)
        return Decision(Action.MOVE, f"promoting {short(requested)}, QA'd (deployable up to "
                                     f"{short(report.deployable or '')})", revision=requested)
    if report.deployable is None or report.deployable == report.base:
        why = f": {report.blocker.why}; waiting for {report.blocker.who}" if report.blocker else ""
        return Decision(Action.NOTHING, f"nothing QA'd to promote beyond production-stable{why}",
                        revision=report.base)
    return Decision(Action.MOVE, f"promoting the deployable revision {short(report.deployable)}{behind}",
                    revision=report.deployable)


def _blocking(report: QaReport, requested: str) -> str:
    """Why ``requested`` is not deployable as tip: the first commit up to it that stops the line."""
    at = report.position(requested) or 0
    for row in report.rows[:at + 1]:
        if row.qa is QaState.BAD and not row.security and (
                row.reverted_by is None or at < (report.position(row.reverted_by) or 0)):
            who = report.blocker.who if report.blocker and report.blocker.revision == row.revision else row.author
            return (f"blocked by {short(row.revision)}, marked bad by {row.marked_by}"
                    + (f": {row.reason}" if row.reason else "")
                    + (f" (reverted only by {short(row.reverted_by)})" if row.reverted_by else "")
                    + f"; waiting for {who}")
        if not row.passes and row.qa is not QaState.BAD:
            who = report.blocker.who if report.blocker else "the qa role"
            return f"blocked by {short(row.revision)}, {row.qa}; waiting for {who}"
    return "the commits up to it are not all QA'd"
