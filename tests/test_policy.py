"""The release flow's decisions, told as the story: gate, promote, move, reconcile."""

from __future__ import annotations

from lpdeploy.core import policy
from lpdeploy.core.model import Action, Decision, Result, TestRecord
from lpdeploy.core.policy import (
    BranchFacts,
    gate_needed,
    gate_target,
    interrupted_move,
    move_decision,
    promotion_target,
    suite_decision,
)
from lpdeploy.core.refs import short

SUITE = "suite-0123456789ab"
OLD = "1" * 40  # an older commit, behind the target
TARGET = "a" * 40  # the revision under decision
TREE = "b" * 40  # its tree
OTHER = "c" * 40  # a commit with history the target lacks
NEWER = "d" * 40  # a commit that already contains the target


def record(result: Result, build_number: int | None = 42, commit: str = TARGET) -> TestRecord:
    return TestRecord(
        tree=TREE, commit=commit, suite=SUITE, result=result,
        build_url=f"http://localhost:8010/#/builders/1/builds/{build_number}",
        build_number=build_number, finished_at=1_700_000_000.0, duration=3600.0,
    )


PASSED = record(Result.PASSED)
FAILED = record(Result.FAILED, build_number=43)


# --- suite_decision: does this tree need the suite? --------------------------


def test_an_untested_tree_runs_the_suite():
    d = suite_decision(TARGET, TREE, None)
    assert d.action is Action.RUN_SUITE
    assert d.revision == TARGET
    assert d.record is None
    assert short(TREE) in d.reason


def test_a_tree_that_already_passed_skips_the_suite_and_names_the_build():
    d = suite_decision(TARGET, TREE, PASSED)
    assert d.action is Action.SKIP_SUITE
    assert d.revision == TARGET
    assert d.record == PASSED
    assert "build #42" in d.reason
    assert PASSED.build_url in d.reason
    assert "already passed" in d.reason


def test_a_revert_to_a_tested_tree_skips_the_suite_even_if_the_pass_was_on_another_commit():
    d = suite_decision(NEWER, TREE, record(Result.PASSED, commit=OLD))
    assert d.action is Action.SKIP_SUITE
    assert d.revision == NEWER
    assert short(OLD) in d.reason


def test_a_tree_that_failed_runs_the_suite_again():
    d = suite_decision(TARGET, TREE, FAILED)
    assert d.action is Action.RUN_SUITE
    assert d.revision == TARGET
    assert d.record == FAILED
    assert "failed" in d.reason
    assert "build #43" in d.reason


def test_a_pass_without_a_build_number_is_still_described():
    d = suite_decision(TARGET, TREE, record(Result.PASSED, build_number=None))
    assert d.action is Action.SKIP_SUITE
    assert "a build" in d.reason


# --- move_decision: may the gated branches fast-forward? ---------------------


def test_an_untested_revision_is_refused_and_no_branch_moves():
    d = move_decision(TARGET, None, [BranchFacts("stable", OLD, behind_target=True)])
    assert d.action is Action.REFUSE
    assert d.refused
    assert d.branches == ()
    assert (d.revision, d.record) == (TARGET, None)
    assert "stable" in d.reason
    assert "not passed" in d.reason


def test_a_failed_revision_is_refused_and_no_branch_moves():
    d = move_decision(TARGET, FAILED, [BranchFacts("stable", OLD, behind_target=True)])
    assert d.action is Action.REFUSE
    assert d.branches == ()
    assert (d.revision, d.record) == (TARGET, FAILED)


def test_gate_green_moves_stable_forward_to_the_tested_commit():
    d = move_decision(TARGET, PASSED, [BranchFacts("stable", OLD, behind_target=True)])
    assert d.action is Action.MOVE
    assert d.branches == ("stable",)
    assert d.revision == TARGET
    assert d.record == PASSED
    assert "build #42" in d.reason


def test_stable_green_promotion_moves_production_without_suite():
    d = move_decision(
        TARGET, PASSED,
        [BranchFacts("production-devel", OLD, behind_target=True),
         BranchFacts("production-stable", OLD, behind_target=True)],
    )
    assert d.action is Action.MOVE
    assert d.branches == ("production-devel", "production-stable")
    assert "moving production-devel, production-stable" in d.reason


def test_a_branch_already_at_the_target_means_nothing_to_do():
    d = move_decision(TARGET, PASSED, [BranchFacts("stable", TARGET)])
    assert d.action is Action.NOTHING
    assert d.reason.startswith("nothing to do")
    assert d.branches == ()
    assert (d.revision, d.record) == (TARGET, PASSED)


def test_a_branch_already_containing_the_target_means_nothing_to_do_and_never_moves_back():
    d = move_decision(TARGET, PASSED, [BranchFacts("stable", NEWER, contains_target=True)])
    assert d.action is Action.NOTHING
    assert d.reason.startswith("nothing to do")
    assert "already contains" in d.reason
    assert d.branches == ()


def test_a_branch_already_at_the_target_needs_no_record_to_do_nothing():
    d = move_decision(TARGET, None, [BranchFacts("stable", TARGET)])
    assert d.action is Action.NOTHING


def test_a_diverged_branch_is_refused_as_not_a_fast_forward_never_forced():
    d = move_decision(TARGET, PASSED, [BranchFacts("production-stable", OTHER)])
    assert d.action is Action.REFUSE
    assert (d.revision, d.record) == (TARGET, PASSED)
    assert "not a fast-forward" in d.reason
    assert "production-stable" in d.reason
    assert d.branches == ()


def test_a_diverged_production_branch_blocks_the_whole_promotion():
    d = move_decision(
        TARGET, PASSED,
        [BranchFacts("production-devel", OLD, behind_target=True), BranchFacts("production-stable", OTHER)],
    )
    assert d.action is Action.REFUSE
    assert d.branches == ()
    assert "not a fast-forward" in d.reason


def test_a_missing_branch_is_created_at_the_tested_revision():
    d = move_decision(TARGET, PASSED, [BranchFacts("production-stable", None)])
    assert d.action is Action.MOVE
    assert d.branches == ("production-stable",)


def test_a_missing_branch_is_not_created_at_an_untested_revision():
    d = move_decision(TARGET, None, [BranchFacts("production-stable", None)])
    assert d.action is Action.REFUSE
    assert d.branches == ()


def test_promotion_moves_only_the_production_branch_that_is_behind():
    d = move_decision(
        TARGET, PASSED,
        [BranchFacts("production-devel", TARGET), BranchFacts("production-stable", OLD, behind_target=True)],
    )
    assert d.action is Action.MOVE
    assert d.branches == ("production-stable",)
    assert d.reason.startswith(f"moving production-stable to {short(TARGET)}")
    assert "production-devel is already at" in d.reason


def test_no_branches_means_nothing_to_do():
    assert move_decision(TARGET, PASSED, []).action is Action.NOTHING


# --- gate_target / promotion_target ------------------------------------------


def test_the_gate_tests_the_devel_tip():
    d = gate_target("devel", TARGET)
    assert d == Decision(Action.RUN_SUITE, d.reason, revision=TARGET)
    assert "devel" in d.reason


def test_the_gate_refuses_when_devel_does_not_exist():
    d = gate_target("devel", None)
    assert d.action is Action.REFUSE
    assert d.revision is None
    assert "devel" in d.reason


def test_promotion_without_a_request_promotes_the_stable_tip():
    d = promotion_target("stable", TARGET, None, False)
    assert d.action is Action.MOVE
    assert d.revision == TARGET


def test_promotion_of_a_requested_revision_on_stable_promotes_that_revision():
    d = promotion_target("stable", NEWER, TARGET, True)
    assert d.action is Action.MOVE
    assert d.revision == TARGET


def test_promotion_of_a_revision_not_on_stable_is_refused_naming_it():
    d = promotion_target("stable", NEWER, OTHER, False)
    assert d.action is Action.REFUSE
    assert short(OTHER) in d.reason
    assert "not on stable" in d.reason


def test_promotion_is_refused_when_stable_does_not_exist():
    for requested in (None, TARGET):
        d = promotion_target("stable", None, requested, True)
        assert d.action is Action.REFUSE
        assert "stable" in d.reason


# --- gate_needed: reconciling from the tips ----------------------------------


def test_reconcile_with_a_gate_already_pending_does_nothing():
    d = gate_needed("devel", TARGET, None, False, gate_pending=True)
    assert d.action is Action.NOTHING
    assert "already queued or running" in d.reason


def test_reconcile_with_devel_tested_and_on_stable_does_nothing():
    d = gate_needed("devel", TARGET, PASSED, True, gate_pending=False)
    assert d.action is Action.NOTHING
    assert "tested and on stable" in d.reason


def test_reconcile_with_a_failed_devel_tip_waits_for_a_new_push():
    d = gate_needed("devel", TARGET, FAILED, False, gate_pending=False)
    assert d.action is Action.NOTHING
    assert "waiting for a new push" in d.reason


def test_reconcile_with_an_untested_devel_tip_runs_the_gate():
    d = gate_needed("devel", TARGET, None, False, gate_pending=False)
    assert d.action is Action.RUN_SUITE
    assert d.revision == TARGET


def test_reconcile_with_a_tested_devel_tip_not_yet_on_stable_runs_the_gate():
    # e.g. the master stopped between the pass and the stable move: no lost promotion
    d = gate_needed("devel", TARGET, PASSED, False, gate_pending=False)
    assert d.action is Action.RUN_SUITE
    assert d.revision == TARGET


def test_reconcile_without_a_devel_branch_does_nothing():
    d = gate_needed("devel", None, None, False, gate_pending=False)
    assert d.action is Action.NOTHING
    assert "does not exist" in d.reason


# --- interrupted_move: a re-run after a master crash records the move the killed build made, once -----------

BOTH_AT_TARGET = {"production-devel": TARGET, "production-stable": TARGET}


def test_a_rerun_records_the_move_its_interrupted_build_made():
    d = interrupted_move(TARGET, BOTH_AT_TARGET, interrupted=7, recorded=False)
    assert d.action is Action.MOVE and d.revision == TARGET
    assert d.branches == ("production-devel", "production-stable")
    assert "moved by build #7, which a master crash interrupted before it recorded the move" in d.reason


def test_a_move_already_recorded_is_not_recorded_again():
    d = interrupted_move(TARGET, BOTH_AT_TARGET, interrupted=7, recorded=True)
    assert d.action is Action.NOTHING
    assert "already recorded" in d.reason


def test_without_an_interrupted_build_nothing_is_claimed():
    assert interrupted_move(TARGET, BOTH_AT_TARGET, interrupted=None, recorded=False).action is Action.NOTHING


def test_a_branch_not_exactly_at_the_target_was_not_moved_by_the_interrupted_build():
    # production-devel already held a newer commit: the interrupted build cannot have put it at the target
    d = interrupted_move(TARGET, {"production-devel": NEWER, "production-stable": TARGET}, interrupted=7,
                         recorded=False)
    assert d.action is Action.NOTHING
    assert "did not move them all" in d.reason


# --- faults (issue 12) ---------------------------------------------------------------


def test_a_push_of_unknown_outcome_landed_when_every_pushed_branch_is_at_the_target():
    d = policy.landed_push(("production-devel", "production-stable"), "b" * 40,
                           {"production-devel": "b" * 40, "production-stable": "b" * 40})
    assert d is not None and d.action is Action.MOVE
    assert d.branches == ("production-devel", "production-stable")
    assert "reply was lost" in d.reason


def test_a_push_of_unknown_outcome_did_not_land_when_one_branch_is_elsewhere():
    assert policy.landed_push(("production-devel", "production-stable"), "b" * 40,
                              {"production-devel": "b" * 40, "production-stable": "a" * 40}) is None
    assert policy.landed_push((), "b" * 40, {"stable": "b" * 40}) is None  # nothing was pushed: nothing to record


def test_retry_delays_double_and_stay_bounded():
    assert [policy.retry_delay(n, 2, 30) for n in range(0, 7)] == [0, 2, 4, 8, 16, 30, 30]
    assert policy.retry_delay(10_000, 2, 30) == 30
