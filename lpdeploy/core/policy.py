"""Pure decisions of the release flow: gate, promotion, branch moves.

Each function takes facts (tips, ledger records, ancestry answers already
computed by ``gitops``) and returns a ``Decision`` saying what to do and why.
Nothing here runs git, reads the clock or touches Twisted, so every rule is
unit-tested on plain values and the adapters stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lpdeploy.core.freeze_windows import WindowState
from lpdeploy.core.model import Action, Cowboy, Decision, Freeze, Release, TestRecord, UnrecordedChange
from lpdeploy.core.refs import short


@dataclass(frozen=True)
class BranchFacts:
    """Where one branch stands relative to a target revision."""

    name: str
    tip: str | None  # None: the branch does not exist yet
    behind_target: bool = False  # tip is an ancestor of the target (a fast-forward is possible)
    contains_target: bool = False  # target is an ancestor of tip (nothing to move)


def suite_decision(revision: str, tree: str, record: TestRecord | None) -> Decision:
    """Run the suite on ``revision`` unless its tree already passed it.

    "Already tested" means this exact tree passed this suite: a revert to a
    tested state, a merge that produces a tested tree and a fast-forward of
    stable are all the same tree, so running the suite again would only cost
    hours and prove nothing new.
    """
    if record is not None and record.passed:
        return Decision(
            Action.SKIP_SUITE,
            f"tree {short(tree)} of {short(revision)} already passed the suite in {record.describe()}; "
            "not running it again",
            revision=revision,
            record=record,
        )
    if record is not None:
        return Decision(
            Action.RUN_SUITE,
            f"tree {short(tree)} failed the suite in {record.describe()}; running it again",
            revision=revision,
            record=record,
        )
    return Decision(
        Action.RUN_SUITE,
        f"tree {short(tree)} of {short(revision)} has not passed the suite yet; running it",
        revision=revision,
    )


def interrupted_move(target: str, tips: dict[str, str | None], interrupted: int | None,
                     recorded: bool) -> Decision:
    """A re-run after a master crash: record the move the interrupted build made, once.

    A master killed after its push, before it recorded the move, leaves the
    branches at the target and no record of who moved them; Buildbot runs the
    request again after the restart, and that re-run finds nothing to do.
    When an earlier build of the same request was interrupted (``interrupted``:
    its number) having decided this ``target``, every branch of ``tips`` is
    exactly at the target and no move to it is recorded yet (``recorded``),
    the move was that build's: MOVE says to record it now, NOTHING otherwise.
    """
    if interrupted is None:
        return Decision(Action.NOTHING, "no earlier build of this request was interrupted", revision=target)
    if not tips or any(tip != target for tip in tips.values()):
        return Decision(Action.NOTHING, f"not every branch is at {short(target)}: the interrupted build "
                                        f"#{interrupted} did not move them all", revision=target)
    if recorded:
        return Decision(Action.NOTHING, f"the move to {short(target)} is already recorded", revision=target)
    return Decision(Action.MOVE, f"{', '.join(tips)} already at {short(target)}: moved by build #{interrupted}, "
                                 "which a master crash interrupted before it recorded the move; recorded now",
                    revision=target, branches=tuple(tips))


def landed_push(pushed: tuple[str, ...], target: str, tips: Mapping[str, str]) -> Decision | None:
    """After a push whose outcome was unknown: the move to record, if the upstream shows it landed.

    A lost reply (a timeout, a dropped connection) leaves a push that may have
    landed. The retry reads the tips: every branch it pushed at ``target``
    means the push landed — a ``MOVE`` to record (once, by the build that
    pushed), not to push again. Anything else: None, decide afresh (the push
    is atomic, so no branch moved, or someone else moved them).
    """
    if pushed and all(tips.get(b) == target for b in pushed):
        return Decision(Action.MOVE, f"moved {', '.join(pushed)} to {short(target)}: the upstream shows the push "
                        "landed though its reply was lost", revision=target, branches=pushed)
    return None


def retry_delay(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: doubling from ``base``, never above ``cap``."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))


def move_decision(target: str, record: TestRecord | None, branches: list[BranchFacts]) -> Decision:
    """May the gated ``branches`` be fast-forwarded to ``target``, and which of them need it?

    A gated branch only ever points at a tested tree (so no record, no move), and
    only ever moves forward: a branch with commits the target lacks is refused,
    never forced.
    """
    to_move: list[str] = []
    notes: list[str] = []
    for b in branches:
        if b.tip == target:
            notes.append(f"{b.name} is already at {short(target)}")
        elif b.tip is None:
            to_move.append(b.name)
        elif b.contains_target:
            notes.append(f"{b.name} at {short(b.tip)} already contains {short(target)}")
        elif b.behind_target:
            to_move.append(b.name)
        else:
            return Decision(
                Action.REFUSE,
                f"refusing to move {b.name} from {short(b.tip)} to {short(target)}: not a fast-forward "
                f"({b.name} has commits that {short(target)} lacks)",
                revision=target,
                record=record,
            )
    if not to_move:
        return Decision(Action.NOTHING, "nothing to do: " + "; ".join(notes), revision=target, record=record)
    if record is None or not record.passed:
        return Decision(
            Action.REFUSE,
            f"refusing to move {', '.join(to_move)} to {short(target)}: "
            "its tree has not passed the suite",
            revision=target,
            record=record,
        )
    reason = f"moving {', '.join(to_move)} to {short(target)} (tested in {record.describe()})"
    if notes:
        reason += "; " + "; ".join(notes)
    return Decision(Action.MOVE, reason, revision=target, branches=tuple(to_move), record=record)


def gate_target(devel: str, devel_tip: str | None) -> Decision:
    """The gate always tests the devel tip: queued pushes batch into the newest one."""
    if devel_tip is None:
        return Decision(Action.REFUSE, f"branch {devel} does not exist upstream")
    return Decision(Action.RUN_SUITE, f"gating {devel} at {short(devel_tip)}", revision=devel_tip)


def probe_target(devel: str, devel_tip: str | None, probe: str, on_devel: bool, on_stable: bool) -> Decision:
    """A bisection probe tests exactly its commit, while that commit is on devel and stable lacks it.

    A probe whose commit stable already holds is moot (a newer tip passed and
    moved stable past the bisection, which then stops); one devel no longer
    holds (history rewritten) names nothing to bisect.
    """
    if devel_tip is None:
        return Decision(Action.REFUSE, f"branch {devel} does not exist upstream")
    if not on_devel:
        return Decision(Action.NOTHING, f"probe {short(probe)} is no longer on {devel}; nothing to bisect",
                        revision=probe)
    if on_stable:
        return Decision(Action.NOTHING, f"stable already holds probe {short(probe)}: the bisection is over",
                        revision=probe)
    return Decision(Action.RUN_SUITE, f"bisection probe: testing {short(probe)} of the failing batch on {devel}",
                    revision=probe)


def target_on_branch(verb: str, branch: str, tip: str | None, requested: str | None,
                     requested_on_branch: bool) -> Decision:
    """The branch tip, or a requested revision the branch already holds; anything else is refused.

    Only revisions a branch holds may travel on from it: that is what keeps an
    untested side commit off production (promote) and off servers (deploy).
    """
    if tip is None:
        return Decision(Action.REFUSE, f"branch {branch} does not exist upstream")
    if requested is None:
        return Decision(Action.MOVE, f"{verb} the {branch} tip {short(tip)}", revision=tip)
    if not requested_on_branch:
        return Decision(Action.REFUSE, f"revision {short(requested)} is not on {branch}", revision=requested)
    return Decision(Action.MOVE, f"{verb} {short(requested)} from {branch}", revision=requested)


def promotion_target(
    stable: str, stable_tip: str | None, requested: str | None, requested_on_stable: bool
) -> Decision:
    """Promote the stable tip, or a requested revision that stable already holds."""
    return target_on_branch("promoting", stable, stable_tip, requested, requested_on_stable)


def gate_needed(
    devel: str,
    devel_tip: str | None,
    record: TestRecord | None,
    stable_contains_devel_tip: bool,
    gate_pending: bool,
) -> Decision:
    """Reconciliation from the tips: does the gate owe a build right now?

    Called when a scheduler starts (changes delivered while no master ran are
    not replayed) and after every hint. A failed tip waits for a new push
    rather than being retried on every restart.
    """
    if devel_tip is None:
        return Decision(Action.NOTHING, f"branch {devel} does not exist upstream")
    if gate_pending:
        return Decision(Action.NOTHING, f"a gate build for {devel} is already queued or running")
    if record is not None and record.passed and stable_contains_devel_tip:
        return Decision(Action.NOTHING, f"{devel} tip {short(devel_tip)} is tested and on stable")
    if record is not None and not record.passed:
        return Decision(
            Action.NOTHING,
            f"{devel} tip {short(devel_tip)} failed in {record.describe()}; waiting for a new push",
        )
    return Decision(Action.RUN_SUITE, f"{devel} tip {short(devel_tip)} is not gated yet", revision=devel_tip)


# --- deployments -----------------------------------------------------------


@dataclass(frozen=True)
class ServerFacts:
    """What is known about one server before a rollout to ``target``."""

    name: str
    deployed: str | None  # the revision it runs, None if never deployed by lpdeploy
    cowboys: tuple[Cowboy, ...] = ()  # its active cowboys
    fixed_in_target: frozenset[int] = frozenset()  # ids of cowboys whose fix the target contains
    unrecorded: UnrecordedChange | None = None  # a change an inspection found and nobody recorded
    patch_matches: tuple[tuple[int, str], ...] = ()  # (cowboy id, the target's commit with the same patch id)
    target_tree: str | None = None  # the tree of the target: an unrecorded change to exactly it undoes nothing


@dataclass(frozen=True)
class ServerPlan:
    """What a rollout does to one server, and why."""

    server: str
    action: Action  # MOVE (deploy), NOTHING (unchanged) or REFUSE
    reason: str
    retire: tuple[int, ...] = ()  # cowboys that retire once this deploy succeeded
    overridden: tuple[int, ...] = ()  # cowboys deployed over, by a losa's audited override
    over_unrecorded: bool = False  # deployed over an unrecorded change (the override), cleared once deployed
    patch_matches: tuple[tuple[int, str], ...] = ()  # retiring cowboys whose patch the target has: (id, commit)


def frozen_refusal(freeze: Freeze | None, what: str, windows: WindowState | None = None) -> Decision | None:
    """While frozen, promotions and deploys are refused with the freeze's reason; the gate runs on.

    The losa's manual freeze and the site's freeze windows combine: any one of
    them refuses, and the reason names each, with when the windows end (the
    manual freeze ends when a losa thaws it).
    """
    why = []
    if freeze is not None:
        why.append(f"frozen by {freeze.by}: {freeze.reason}")
    if windows is not None and windows.frozen:
        why.append(windows.describe())
    if not why:
        return None
    return Decision(Action.REFUSE, f"refusing to {what}: " + "; and ".join(why))


def deploy_target(
    branch: str, tip: str | None, requested: str | None, requested_on_branch: bool
) -> Decision:
    """Deploy the branch tip, or a requested revision the branch holds (a rollback is one)."""
    return target_on_branch("deploying", branch, tip, requested, requested_on_branch)


def server_plan(server: ServerFacts, target: str, override_reason: str | None, automated: bool) -> ServerPlan:
    """May ``target`` be deployed to ``server``? Never over a cowboy whose fix it lacks.

    A cowboy is a hand-applied patch: deploying a revision without its real fix
    would silently undo it. Only a losa's explicit override (with a reason, and
    never from an automated deploy) may do that. An unrecorded change (a
    server found running a tree lpdeploy did not deploy there) blocks the
    same way, its two hashes in the reason.
    """
    fixed = tuple(c.id for c in server.cowboys if c.id in server.fixed_in_target)
    blocking = [c for c in server.cowboys if c.id not in server.fixed_in_target]
    matches = tuple((i, sha) for i, sha in server.patch_matches if i in fixed)
    if server.deployed == target:
        return ServerPlan(server.name, Action.NOTHING, f"{server.name} already runs {short(target)}",
                          retire=fixed, patch_matches=matches)
    was = f" (was {short(server.deployed)})" if server.deployed else " (first deployment)"
    blocks = [f"cowboy #{c.id} by {c.created_by}: {c.reason}"
              + (f" (fixed by {short(c.fixed_by)}, not in {short(target)})" if c.fixed_by else " (no fix recorded)")
              for c in blocking]
    change = server.unrecorded if server.unrecorded and server.unrecorded.found != server.target_tree else None
    if change is not None:  # like a cowboy nobody recorded: deploying would silently undo it
        blocks.append(unrecorded_text(change))
    if blocks:
        listed = "; ".join(blocks)
        if override_reason and not automated:
            return ServerPlan(server.name, Action.MOVE,
                              f"deploying {short(target)} to {server.name}{was} OVER {listed}; "
                              f"override: {override_reason}",
                              retire=fixed, overridden=tuple(c.id for c in blocking),
                              over_unrecorded=change is not None, patch_matches=matches)
        return ServerPlan(server.name, Action.REFUSE,
                          f"refusing to deploy {short(target)} to {server.name}: it carries {listed}")
    reason = f"deploying {short(target)} to {server.name}{was}"
    if fixed:
        reason += f"; it contains the fix of cowboy {', '.join(f'#{i}' for i in fixed)}, which retires"
        reason += "".join(f" (#{i}: {patch_match_text(sha)})" for i, sha in matches)
    return ServerPlan(server.name, Action.MOVE, reason, retire=fixed, patch_matches=matches)


def patch_match_text(commit: str) -> str:
    """Why a cowboy with a patch counts as fixed: the commit that makes the same change."""
    return f"commit {short(commit)} makes the same change as its patch (same git patch-id)"


def patch_matches(patches: dict[int, str], commits: list[tuple[str, str]]) -> dict[int, str]:
    """Which cowboys' patches a target already holds: cowboy id → the oldest commit with the same patch id.

    ``patches``: cowboy id → the patch id of its diff; ``commits``: (sha,
    patch id) of the commits between the server's deployed revision (and the
    cowboy's base) and the target, newest first as ``git log`` lists them;
    "" for a commit without one (a merge), which matches nothing. The same
    change committed under another commit id (cherry-picked, rebased,
    re-applied by hand) has the same patch id: the target contains the fix.
    """
    first: dict[str, str] = {}
    for sha, pid in reversed(commits):  # oldest first: name the commit that brought the change
        if pid:
            first.setdefault(pid, sha)
    return {cowboy: first[pid] for cowboy, pid in patches.items() if pid in first}


def unrecorded_text(change: UnrecordedChange) -> str:
    """How an unrecorded change is named in a refusal: the server and both hashes."""
    return (f"an unrecorded change (it runs tree {short(change.found)}, lpdeploy deployed tree "
            f"{short(change.expected)} of {short(change.revision)}; record a cowboy for it or deploy over it "
            "with --override-cowboys --reason)")


def drift_decision(server: str, deployed: str | None, deployed_tree: str | None, seen: str,
                   has_cowboy: bool, override_reason: str | None, automated: bool,
                   target_tree: str | None = None) -> Decision:
    """Does ``server`` run what lpdeploy deployed there? A change nobody recorded blocks its rollouts.

    ``seen`` is what the server's ``inspect_command`` printed (a git tree
    sha); ``deployed_tree`` the tree of the revision lpdeploy last deployed
    there. A mismatch with a recorded cowboy is that cowboy (``server_plan``
    already decided about it). Without one it is an unrecorded change: like a
    cowboy, only a losa's override with a reason (never an automated deploy)
    deploys over it; recording a cowboy for it turns it into a known one. A
    server that already runs the target's tree (``target_tree``: a deploy
    that ran but was not recorded, e.g. the master died) loses nothing.
    """
    if deployed is None or deployed_tree is None:
        return Decision(Action.NOTHING, f"{server}: nothing deployed by lpdeploy to compare with")
    if seen == deployed_tree:
        return Decision(Action.NOTHING, f"{server} runs tree {short(seen)} of {short(deployed)}, as deployed")
    if has_cowboy:
        return Decision(Action.NOTHING, f"{server} runs tree {short(seen)}, not {short(deployed_tree)} of "
                                        f"{short(deployed)}: its recorded cowboy")
    if seen == target_tree:
        return Decision(Action.NOTHING, f"{server} runs tree {short(seen)}, the target's: deploying it undoes nothing")
    change = (f"unrecorded change on {server}: it runs tree {short(seen)}, lpdeploy deployed tree "
              f"{short(deployed_tree)} ({short(deployed)}) there")
    if override_reason and not automated:
        return Decision(Action.MOVE, f"deploying OVER an {change}; override: {override_reason}")
    return Decision(Action.REFUSE, f"refusing to deploy to {server}: {change}; record a cowboy for it "
                                   "(lpdeploy cowboy add) or deploy over it with --override-cowboys --reason")


def standing_change(server: str, deployed: str | None, deployed_tree: str | None, seen: str,
                    has_cowboy: bool, standing: UnrecordedChange | None, now: float,
                    by: str) -> UnrecordedChange | None:
    """After an inspection of ``server``: the unrecorded change that stands now, or None (cleared).

    A mismatch with no recorded cowboy stands (found again, it keeps when it
    was first found); a match, or a cowboy recorded for the server, clears it.
    Nothing deployed by lpdeploy to compare with leaves what stood as it was.
    """
    if deployed is None or deployed_tree is None:
        return standing
    if seen == deployed_tree or has_cowboy:
        return None
    if standing is not None and (standing.revision, standing.expected, standing.found) == (deployed, deployed_tree,
                                                                                           seen):
        return standing
    return UnrecordedChange(server, deployed, deployed_tree, seen, now, by)


def rollback_after_failed_check(server: str, target: str, previous: str | None,
                                missing: list[Release]) -> Decision:
    """After ``target``'s check failed on ``server``: roll it back to what it ran before, if that is safe.

    ``missing``: the released security fixes ``previous`` lacks
    (``fix_history.lost_fixes``). Production never loses a security fix, so a
    rollback past one is refused: the server keeps ``target`` (which has the
    fix) and a person must fix forward. With nothing recorded before, there is
    nothing to roll back to. MOVE carries the revision to roll back to.
    """
    keeps = f"{server} runs {short(target)}, which failed its check"
    if previous is None:
        return Decision(Action.REFUSE, f"not rolling {server} back: lpdeploy never deployed it before; {keeps}")
    if previous == target:
        return Decision(Action.REFUSE, f"not rolling {server} back: it ran {short(target)} before too; {keeps}")
    if missing:
        names = ", ".join(short(f.fix_commit) for f in missing)
        return Decision(Action.REFUSE, f"not rolling {server} back to {short(previous)}: that would take the "
                                       f"released security fix {names} off it; {keeps}: fix it forward",
                        revision=previous)
    return Decision(Action.MOVE, f"rolling {server} back to {short(previous)}", revision=previous)


# --- security fixes --------------------------------------------------------


def security_candidate(branch: str, fix_tip: str | None, ps_branch: str, ps_tip: str | None,
                       fix_contains_ps: bool) -> Decision:
    """What a security build tests: the fix itself if it is based on production-stable, else their merge.

    MOVE with the fix as revision: test it as is. RUN_SUITE without a revision:
    merge it onto production-stable first and test (and later promote) the merge.
    ``branch`` is only shown: the security steps pass a neutral label, because
    their reasons become build properties and a branch name can be a secret.
    """
    if fix_tip is None:
        return Decision(Action.REFUSE, f"{branch} does not exist upstream")
    if ps_tip is None:
        return Decision(Action.REFUSE, f"branch {ps_branch} does not exist upstream")
    if fix_contains_ps:
        return Decision(Action.MOVE, f"{branch} at {short(fix_tip)} is based on {ps_branch} at {short(ps_tip)}; "
                                     "testing it as is (the ledger is not consulted for security fixes)",
                        revision=fix_tip)
    return Decision(Action.RUN_SUITE, f"{branch} at {short(fix_tip)} is not based on the {ps_branch} tip "
                                      f"{short(ps_tip)}; testing their merge")


def lost_fix_refusal(target: str, missing: list[Release], ps_branch: str,
                     verb: str = "promote") -> Decision | None:
    """Production never loses a security fix: refuse a promotion (or deploy) whose target lacks one.

    ``missing``: the released fixes the target lacks (``fix_history.lost_fixes``).
    Promote and deploy builds are readable by everyone, and a security branch's
    name can itself be a secret: the reason names each fix by its short sha only.
    """
    if not missing:
        return None
    names = ", ".join(short(f.fix_commit) for f in missing)
    where = ps_branch if verb == "promote" else "the servers"
    return Decision(Action.REFUSE,
                    f"refusing to {verb} {short(target)}: {where} would lose the embargoed security fix {names}; "
                    "this resumes once stable contains it (after the merge-back)", revision=target)
