"""What the history of released security fixes implies: pure decisions.

A fix that reached production is recorded once, as a ``Release`` (branch, fix
commit, candidate), in an append-only history that nothing rewrites. A
security branch can be force-pushed, fail its next build or be deleted; the
per-branch ``SecurityFix`` row then describes that newer run, but the history
still holds every fix production carries. So every rule about released fixes
is derived from the history plus facts read off the tips, and none from a
state that a later push (or a crash) could overwrite or leave behind:

* **embargo**: every release's fix commit and candidate stays a root of the
  embargo until devel or stable contains it (``embargo_roots``);
* **production never loses a fix**: a promotion or deploy target must contain
  every released fix commit (``lost_fixes``);
* **merge-back**: a release is pending until devel contains its candidate
  (``pending``). No "merging" state is stored: a merge-back build lost in a
  crash leaves nothing stuck, because the scheduler's next look finds the
  release still pending and no merge-back queued or running, and queues it
  again (``merge_back_plan``).

Nothing here runs git, reads the clock or touches Twisted: the adapters
(``embargo.py``, the steps, ``SecurityScheduler``, ``status.py``) gather the
facts and show the reasons.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from lpdeploy.core.model import (
    Action,
    Decision,
    FixState,
    MergeBackAttempt,
    MergeBackOutcome,
    Release,
    SecurityFix,
)
from lpdeploy.core.refs import short

RETRY_AFTER = 300.0  # seconds before an automatic merge-back that failed (not conflicted) is tried again


def distinct(releases: Iterable[Release]) -> list[Release]:
    """One release per candidate (the first recorded), oldest first."""
    seen: dict[str, Release] = {}
    for r in sorted(releases, key=lambda r: r.released_at):
        seen.setdefault(r.candidate, r)
    return list(seen.values())


def embargo_roots(security_tips: Iterable[str], releases: Iterable[Release],
                  runs: Iterable[SecurityFix]) -> set[str]:
    """The commits whose history not yet in devel or stable is embargoed.

    Every security branch tip, every fix under test (the latest run of each
    branch) and — whatever happened to its branch since — every fix commit and
    candidate that ever reached production.
    """
    roots = set(security_tips)
    for run in runs:
        roots |= {sha for sha in (run.fix_commit, run.candidate) if sha}
    for r in releases:
        roots |= {r.fix_commit, r.candidate}
    return roots


def pending(releases: Iterable[Release], in_devel: Collection[str]) -> list[Release]:
    """Released fixes not merged back yet: devel lacks their candidate (``in_devel``: the ones it holds)."""
    return [r for r in distinct(releases) if r.candidate not in in_devel]


def lost_fixes(releases: Iterable[Release], kept: Collection[str]) -> list[Release]:
    """Released fixes a target would drop: their fix commit is not among ``kept`` (what the target holds)."""
    lost: dict[str, Release] = {}
    for r in distinct(releases):
        if r.fix_commit not in kept:
            lost.setdefault(r.fix_commit, r)
    return list(lost.values())


def release_due(servers: Sequence[str], running_it: Collection[str]) -> bool:
    """A release may be merged back once every configured server runs it (with no servers: at once)."""
    return all(s in running_it for s in servers)


@dataclass(frozen=True)
class PendingFix:
    """A pending release and the facts a merge-back decision needs about it."""

    release: Release
    due: bool  # every configured server runs it
    brings: tuple[str, ...]  # candidates of the pending releases its merge brings into devel (itself included)


def brought_in(candidate: str, pending_releases: Sequence[Release], ancestors: Collection[str]) -> list[Release]:
    """The pending releases that merging ``candidate`` brings into devel.

    ``ancestors``: the candidates among ``pending_releases`` that ``candidate``
    contains. A later fix is built on production-stable, which holds every
    earlier release, so its merge carries the earlier fixes with it.
    """
    return [r for r in pending_releases if r.candidate == candidate or r.candidate in ancestors]


def merge_back_plan(fixes: Sequence[PendingFix], attempts: Sequence[MergeBackAttempt], now: float,
                    retry_after: float = RETRY_AFTER) -> Decision:
    """Which automatic merge-back is due now: MOVE with the candidate to merge, or NOTHING and why.

    A merge is due only when every released fix it would bring into devel is
    due; of those, the one bringing the most is chosen (so fixes that travel
    together are merged together). A merge that conflicted is not tried again
    automatically (a new release, a resolved merge pushed to devel, or a
    manual ``lpdeploy merge-back`` moves on); one that failed otherwise is
    retried after ``retry_after`` seconds.
    """
    due = {f.release.candidate for f in fixes if f.due}
    reasons: list[str] = []
    for f in sorted(fixes, key=lambda f: (len(f.brings), f.release.released_at), reverse=True):
        candidate = f.release.candidate
        waiting = [c for c in f.brings if c not in due]
        if waiting:
            reasons.append(f"{short(candidate)} would bring {', '.join(short(c) for c in waiting)}, "
                           "which not every server runs yet")
            continue
        last = next((a for a in reversed(attempts) if a.candidate == candidate), None)
        if last is not None and last.outcome == MergeBackOutcome.CONFLICT:
            reasons.append(f"{short(candidate)} conflicted with devel; waiting for a resolution")
            continue
        if last is not None and last.outcome == MergeBackOutcome.GAVE_UP and now - last.at < retry_after:
            reasons.append(f"{short(candidate)} failed {now - last.at:.0f} s ago; retrying later")
            continue
        together = f" together with {len(f.brings) - 1} earlier fix(es)" if len(f.brings) > 1 else ""
        return Decision(Action.MOVE, f"merging {short(candidate)} back{together}: every server runs it",
                        revision=candidate)
    return Decision(Action.NOTHING, "; ".join(reasons) or "no released fix is pending")


def manual_merge_back_target(branch: str, releases: Iterable[Release], in_devel: Collection[str]) -> Decision:
    """What ``lpdeploy merge-back BRANCH`` merges: the newest pending release of ``branch``.

    MOVE with its candidate; NOTHING when devel already holds every release of
    the branch; REFUSE when the branch never reached production.
    """
    mine = [r for r in distinct(releases) if r.branch == branch]
    if not mine:
        return Decision(Action.REFUSE, "this security branch has not reached production; nothing to merge back")
    waiting = [r for r in mine if r.candidate not in in_devel]
    if not waiting:
        return Decision(Action.NOTHING, f"devel already holds {short(mine[-1].candidate)}, the newest release "
                                        "of this branch", revision=mine[-1].candidate)
    newest = waiting[-1]
    return Decision(Action.MOVE, f"merging {short(newest.candidate)} back", revision=newest.candidate)


def security_build_due(tip: str, run: SecurityFix | None, frozen: bool) -> Decision:
    """Does a security branch at ``tip`` need a security build? Asked only while none is queued or running.

    A new tip always does. So does a run stuck at queued or testing (nothing
    is queued or running, so its build was lost), and a fix refused at
    promotion once no freeze stops it. A tested, failed or promoted tip waits
    for a new push.
    """
    if run is None or run.fix_commit != tip:
        return Decision(Action.RUN_SUITE, f"new tip {short(tip)}", revision=tip)
    if run.state in (FixState.QUEUED, FixState.TESTING):
        return Decision(Action.RUN_SUITE, f"the build of {short(tip)} was lost; queueing it again", revision=tip)
    if run.state == FixState.REFUSED and not frozen:
        return Decision(Action.RUN_SUITE, f"{short(tip)} was refused at promotion; preparing it again",
                        revision=tip)
    return Decision(Action.NOTHING, f"{short(tip)} is {run.state}; waiting for a new push", revision=tip)


def release_state(release: Release, in_devel: Collection[str], attempts: Sequence[MergeBackAttempt]) -> FixState:
    """Where one released fix stands: merged-back (devel holds it), conflict (its last merge did), or pending."""
    if release.candidate in in_devel:
        return FixState.MERGED_BACK
    last = next((a for a in reversed(attempts) if release.candidate in (a.candidate, *a.brought)), None)
    if last is not None and last.outcome == MergeBackOutcome.CONFLICT:
        return FixState.CONFLICT
    return FixState.PENDING


def branch_state(run: SecurityFix | None, release_states: Sequence[FixState]) -> FixState:
    """One word for a security branch: its latest run, unless that run is the release itself.

    A branch whose latest run reached production reads as its newest
    release's state (promoted while pending); a newer run (testing a rework,
    or failed) is shown as such, and its released fixes are listed apart.
    """
    newest = release_states[-1] if release_states else None
    if run is None or run.state in (FixState.PROMOTED, FixState.MERGING, FixState.CONFLICT, FixState.MERGED_BACK):
        if newest is None:
            return run.state if run else FixState.PENDING
        return FixState.PROMOTED if newest == FixState.PENDING else newest
    return run.state
