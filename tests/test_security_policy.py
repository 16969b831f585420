"""Security fixes as the story tells them, on plain values: what a security build tests, what the
history of released fixes keeps embargoed, when a promotion would lose a fix, which merge-back is due
and what it brings into devel (``policy.py`` and ``fix_history.py``)."""

from __future__ import annotations

import pytest

from lpdeploy.core.fix_history import (
    PendingFix,
    branch_state,
    brought_in,
    distinct,
    embargo_roots,
    lost_fixes,
    manual_merge_back_target,
    merge_back_plan,
    pending,
    release_due,
    release_state,
    security_build_due,
)
from lpdeploy.core.model import Action, FixState, MergeBackAttempt, MergeBackOutcome, Release, SecurityFix
from lpdeploy.core.policy import lost_fix_refusal, security_candidate
from lpdeploy.core.refs import short

BRANCH = "security/cve-4242"
OTHER = "security/cve-9999"
PS = "production-stable"
FIX = "f1" * 20  # the security branch tip
PS_TIP = "a5" * 20  # the production-stable tip
TARGET = "7a" * 20  # a stable revision under promotion
V1, C1 = "11" * 20, "c1" * 20  # fix v1 and the candidate that carried it to production
V2, C2 = "22" * 20, "c2" * 20
B1, CB = "b1" * 20, "cb" * 20  # a later fix on another branch, built on production (so CB contains C1)
T0 = 1_700_000_000.0


def run(state: FixState = FixState.TESTING, fix_commit: str = FIX,
        candidate: str | None = FIX, branch: str = BRANCH) -> SecurityFix:
    return SecurityFix(branch=branch, fix_commit=fix_commit, state=state, by="sec-alice", updated_at=T0,
                       candidate=candidate)


def release(fix_commit: str = V1, candidate: str = C1, branch: str = BRANCH, at: float = T0) -> Release:
    return Release(branch=branch, fix_commit=fix_commit, candidate=candidate, released_at=at, by="sec-alice")


def attempt(candidate: str, outcome: str, at: float = T0 + 100, brought: tuple[str, ...] = ()) -> MergeBackAttempt:
    return MergeBackAttempt(at=at, job="0" * 32, by="lpdeploy", candidate=candidate, outcome=outcome,
                            brought=brought or (candidate,))


# --- security_candidate: what a security build tests ------------------------------


def test_a_missing_security_branch_is_refused_naming_it():
    d = security_candidate(BRANCH, None, PS, PS_TIP, False)
    assert d.action is Action.REFUSE
    assert d.refused
    assert BRANCH in d.reason
    assert "does not exist" in d.reason


def test_the_security_branch_is_only_named_by_the_label_it_is_given():
    # the steps pass a neutral label: their reasons become build properties
    for based in (True, False):
        d = security_candidate("the security branch", FIX, PS, PS_TIP, based)
        assert "the security branch at" in d.reason
    assert security_candidate("the security branch", None, PS, PS_TIP, False).reason == \
        "the security branch does not exist upstream"


def test_a_missing_production_stable_is_refused_naming_it():
    d = security_candidate(BRANCH, FIX, PS, None, False)
    assert d.action is Action.REFUSE
    assert PS in d.reason
    assert "does not exist" in d.reason
    assert d.revision is None


def test_with_both_branches_missing_the_security_branch_is_named_first():
    d = security_candidate(BRANCH, None, PS, None, False)
    assert d.action is Action.REFUSE
    assert BRANCH in d.reason


def test_a_fix_based_on_production_stable_is_tested_as_is():
    d = security_candidate(BRANCH, FIX, PS, PS_TIP, True)
    assert d.action is Action.MOVE
    assert d.revision == FIX
    assert short(FIX) in d.reason and short(PS_TIP) in d.reason
    assert "as is" in d.reason


def test_a_fix_not_based_on_production_stable_is_merged_first():
    d = security_candidate(BRANCH, FIX, PS, PS_TIP, False)
    assert d.action is Action.RUN_SUITE
    assert d.revision is None  # no revision: merge onto production-stable, then test the merge
    assert short(FIX) in d.reason and short(PS_TIP) in d.reason
    assert "merge" in d.reason


def test_security_decisions_never_consult_the_ledger():
    for based in (True, False):
        assert security_candidate(BRANCH, FIX, PS, PS_TIP, based).record is None


# --- embargo_roots: what stays embargoed until devel or stable holds it ----------------


def test_a_released_fix_stays_a_root_after_its_branch_moved_on_and_its_rework_failed():
    # the story: v1 released, then a force-pushed v2 failed; the branch row now says v2
    roots = embargo_roots([V2], [release(V1, C1)], [run(FixState.FAILED, fix_commit=V2, candidate=None)])
    assert {V1, C1, V2} <= roots


def test_every_release_of_the_history_is_a_root():
    roots = embargo_roots([], [release(V1, C1), release(V2, C2, at=T0 + 5)], [])
    assert roots == {V1, C1, V2, C2}


def test_security_tips_and_fixes_under_test_are_roots():
    assert embargo_roots([FIX], [], []) == {FIX}
    assert embargo_roots([], [], [run(FixState.TESTING, fix_commit=V2, candidate=C2)]) == {V2, C2}
    assert embargo_roots([], [], [run(FixState.FAILED, fix_commit=V2, candidate=None)]) == {V2}


def test_nothing_is_a_root_without_security_work():
    assert embargo_roots([], [], []) == set()


# --- the history: one release per candidate, pending until devel holds it ---------------


def test_a_candidate_recorded_twice_counts_once_and_the_first_record_wins():
    first, again = release(at=T0), release(at=T0 + 60)
    assert distinct([again, first]) == [first]


def test_releases_are_pending_until_devel_holds_their_candidate():
    history = [release(V1, C1), release(B1, CB, branch=OTHER, at=T0 + 10)]
    assert pending(history, set()) == history
    assert pending(history, {C1}) == [history[1]]
    assert pending(history, {C1, CB}) == []


def test_devel_holding_the_fix_commit_but_not_the_candidate_leaves_it_pending():
    # the candidate (the fix merged onto production) is what merges back
    assert pending([release(V1, C1)], {V1}) == [release(V1, C1)]


# --- lost_fixes and lost_fix_refusal: production never loses a released fix -------------


def test_a_target_lacking_a_released_fix_commit_loses_it():
    history = [release(V1, C1), release(V2, C2, at=T0 + 5)]
    assert lost_fixes(history, {V1}) == [history[1]]
    assert lost_fixes(history, {V1, V2}) == []


def test_a_released_fix_is_kept_whatever_the_branch_row_says_now():
    # lost_fixes reads the history only: no branch row (failed rework or not) can make it forget v1
    assert lost_fixes([release(V1, C1)], set()) == [release(V1, C1)]


def test_the_same_fix_released_through_two_candidates_is_named_once():
    history = [release(V1, C1), release(V1, C2, at=T0 + 5)]
    assert lost_fixes(history, set()) == [history[0]]


def test_a_promotion_that_loses_no_fix_is_not_refused():
    assert lost_fix_refusal(TARGET, [], PS) is None


def test_a_refused_promotion_names_the_fix_by_its_short_sha_and_never_by_its_branch():
    d = lost_fix_refusal(TARGET, [release(V1, C1, branch="security/SECRET-login")], PS)
    assert d is not None and d.action is Action.REFUSE
    assert d.revision == TARGET
    assert short(V1) in d.reason and short(TARGET) in d.reason and PS in d.reason
    assert "security/" not in d.reason and "SECRET" not in d.reason
    assert "stable contains it" in d.reason


def test_every_lost_fix_is_named():
    d = lost_fix_refusal(TARGET, [release(V1, C1), release(B1, CB, branch=OTHER)], PS)
    assert d is not None and d.refused
    assert short(V1) in d.reason and short(B1) in d.reason


def test_a_refused_deploy_says_the_servers_would_lose_it():
    d = lost_fix_refusal(TARGET, [release()], PS, verb="deploy")
    assert d is not None and "refusing to deploy" in d.reason and "the servers would lose" in d.reason


# --- release_due: every configured server runs it ----------------------------------------


def test_a_release_is_due_once_every_server_runs_it():
    assert release_due(["app1", "app2"], {"app1", "app2"})
    assert not release_due(["app1", "app2"], {"app1"})
    assert not release_due(["app1", "app2"], {"app1", "old-app9"})


def test_with_no_servers_a_release_is_due_at_once():
    assert release_due([], set())


# --- brought_in: merging a candidate brings the earlier fixes it contains ---------------


def test_merging_a_later_candidate_brings_the_earlier_pending_ones_it_contains():
    earlier, later = release(V1, C1), release(B1, CB, branch=OTHER, at=T0 + 10)
    assert brought_in(CB, [earlier, later], ancestors={C1}) == [earlier, later]
    assert brought_in(C1, [earlier, later], ancestors=set()) == [earlier]


# --- merge_back_plan: which automatic merge-back is due -----------------------------------


def fact(r: Release, due: bool, brings: tuple[str, ...] | None = None) -> PendingFix:
    return PendingFix(r, due, brings or (r.candidate,))


def test_a_due_release_is_merged_back():
    d = merge_back_plan([fact(release(), True)], [], T0)
    assert d.action is Action.MOVE and d.revision == C1


def test_a_release_not_every_server_runs_waits():
    d = merge_back_plan([fact(release(), False)], [], T0)
    assert d.action is Action.NOTHING
    assert short(C1) in d.reason


def test_nothing_pending_is_nothing_to_do():
    assert merge_back_plan([], [], T0).action is Action.NOTHING


def test_a_merge_that_would_bring_an_earlier_fix_not_yet_due_is_not_due():
    # CB contains C1; only CB's servers are known to run it: merging CB would publish C1 early
    earlier, later = release(V1, C1), release(B1, CB, branch=OTHER, at=T0 + 10)
    d = merge_back_plan([fact(earlier, False), fact(later, True, (C1, CB))], [], T0)
    assert d.action is Action.NOTHING
    assert "would bring" in d.reason and short(C1) in d.reason


def test_fixes_that_travel_together_are_merged_together():
    earlier, later = release(V1, C1), release(B1, CB, branch=OTHER, at=T0 + 10)
    d = merge_back_plan([fact(earlier, True), fact(later, True, (C1, CB))], [], T0)
    assert d.action is Action.MOVE and d.revision == CB
    assert "together with 1 earlier fix" in d.reason


def test_the_earlier_fix_alone_is_merged_while_the_later_one_is_not_due():
    earlier, later = release(V1, C1), release(B1, CB, branch=OTHER, at=T0 + 10)
    d = merge_back_plan([fact(earlier, True), fact(later, False, (C1, CB))], [], T0)
    assert d.action is Action.MOVE and d.revision == C1


def test_a_conflicted_merge_is_not_retried_automatically():
    d = merge_back_plan([fact(release(), True)], [attempt(C1, MergeBackOutcome.CONFLICT)], T0 + 10_000)
    assert d.action is Action.NOTHING and "conflict" in d.reason


def test_a_new_release_after_a_conflict_is_tried_again():
    earlier, rework = release(V1, C1), release(V2, C2, at=T0 + 500)
    d = merge_back_plan([fact(earlier, True), fact(rework, True, (C1, C2))], [attempt(C1, MergeBackOutcome.CONFLICT)],
                        T0 + 600)
    assert d.action is Action.MOVE and d.revision == C2


def test_a_failed_merge_back_is_retried_after_a_while():
    failed = [attempt(C1, MergeBackOutcome.GAVE_UP, at=T0)]
    assert merge_back_plan([fact(release(), True)], failed, T0 + 10).action is Action.NOTHING
    assert merge_back_plan([fact(release(), True)], failed, T0 + 301).action is Action.MOVE


def test_a_merged_attempt_does_not_block_a_new_merge_when_devel_lost_it():
    # the tips are the truth: recorded as merged, yet still pending (devel was rewritten)
    d = merge_back_plan([fact(release(), True)], [attempt(C1, MergeBackOutcome.MERGED)], T0 + 10)
    assert d.action is Action.MOVE


# --- manual merge-back: the newest pending release of the branch --------------------------


def test_a_manual_merge_back_takes_the_newest_pending_release_of_the_branch():
    history = [release(V1, C1), release(V2, C2, at=T0 + 5), release(B1, CB, branch=OTHER, at=T0 + 9)]
    d = manual_merge_back_target(BRANCH, history, set())
    assert d.action is Action.MOVE and d.revision == C2


def test_a_manual_merge_back_of_a_branch_that_never_reached_production_is_refused_without_its_name():
    d = manual_merge_back_target(BRANCH, [release(B1, CB, branch=OTHER)], set())
    assert d.refused and BRANCH not in d.reason and "has not reached production" in d.reason


def test_a_manual_merge_back_of_a_merged_branch_is_nothing_to_do():
    d = manual_merge_back_target(BRANCH, [release(V1, C1)], {C1})
    assert d.action is Action.NOTHING and short(C1) in d.reason


# --- security_build_due: which tips need a security build ---------------------------------


def test_a_new_tip_needs_a_security_build():
    assert security_build_due(FIX, None, False).action is Action.RUN_SUITE
    assert security_build_due(FIX, run(FixState.FAILED, fix_commit=V1), False).action is Action.RUN_SUITE


@pytest.mark.parametrize("state", [FixState.QUEUED, FixState.TESTING])
def test_a_tip_recorded_as_queued_or_testing_with_nothing_running_was_lost_and_is_queued_again(state):
    d = security_build_due(FIX, run(state), False)
    assert d.action is Action.RUN_SUITE and "lost" in d.reason


@pytest.mark.parametrize("state", [FixState.FAILED, FixState.PROMOTED])
def test_a_tested_tip_waits_for_a_new_push(state):
    assert security_build_due(FIX, run(state), False).action is Action.NOTHING


def test_a_refused_fix_is_prepared_again_unless_frozen():
    assert security_build_due(FIX, run(FixState.REFUSED), False).action is Action.RUN_SUITE
    assert security_build_due(FIX, run(FixState.REFUSED), True).action is Action.NOTHING


# --- what status shows ------------------------------------------------------------------


def test_a_release_reads_merged_back_conflict_or_pending():
    r = release()
    assert release_state(r, {C1}, []) == FixState.MERGED_BACK
    assert release_state(r, set(), [attempt(C1, MergeBackOutcome.CONFLICT)]) == FixState.CONFLICT
    assert release_state(r, set(), [attempt(CB, MergeBackOutcome.CONFLICT, brought=(C1, CB))]) == FixState.CONFLICT
    gave_up_later = [attempt(C1, MergeBackOutcome.CONFLICT), attempt(C1, MergeBackOutcome.GAVE_UP, at=T0 + 200)]
    assert release_state(r, set(), gave_up_later) == FixState.PENDING
    assert release_state(r, set(), []) == FixState.PENDING


def test_a_branch_whose_rework_failed_reads_failed_and_lists_its_release_apart():
    assert branch_state(run(FixState.FAILED, fix_commit=V2), [FixState.PENDING]) == FixState.FAILED


def test_a_promoted_branch_reads_as_its_newest_release():
    assert branch_state(run(FixState.PROMOTED), [FixState.PENDING]) == FixState.PROMOTED
    assert branch_state(run(FixState.PROMOTED), [FixState.MERGED_BACK, FixState.PENDING]) == FixState.PROMOTED
    assert branch_state(run(FixState.PROMOTED), [FixState.PENDING, FixState.MERGED_BACK]) == FixState.MERGED_BACK
    assert branch_state(run(FixState.PROMOTED), [FixState.CONFLICT]) == FixState.CONFLICT
    assert branch_state(None, [FixState.MERGED_BACK]) == FixState.MERGED_BACK
