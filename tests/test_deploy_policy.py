"""The deploy decisions, told as the losa's story: freeze, target, and cowboys on each server.

Pure values in, a ``Decision`` or ``ServerPlan`` out: no Twisted, no git, no clock.
"""

from __future__ import annotations

from lpdeploy.core.model import Action, Cowboy, Freeze, Release, UnrecordedChange
from lpdeploy.core.policy import (
    ServerFacts,
    ServerPlan,
    deploy_target,
    drift_decision,
    frozen_refusal,
    patch_matches,
    rollback_after_failed_check,
    server_plan,
    standing_change,
)
from lpdeploy.core.refs import short

BRANCH = "production-stable"
TARGET = "a" * 40  # the revision being deployed
OLD = "1" * 40  # what the server runs now
FIX = "f" * 40  # a commit carrying a cowboy's real fix
REQUESTED = "c" * 40  # a revision asked for by hand (a rollback, say)
NOW = 1_700_000_000.0


def cowboy(cowboy_id: int = 7, *, server: str = "app1", reason: str = "hot-patched the login form",
           fixed_by: str | None = None, created_by: str = "bob") -> Cowboy:
    return Cowboy(cowboy_id, server, reason, fixed_by, created_by, NOW)


def facts(*cowboys: Cowboy, deployed: str | None = OLD, fixed: tuple[int, ...] = ()) -> ServerFacts:
    return ServerFacts("app1", deployed, tuple(cowboys), frozenset(fixed))


def plan(server: ServerFacts, override_reason: str | None = None, automated: bool = False) -> ServerPlan:
    return server_plan(server, TARGET, override_reason, automated)


# --- the freeze ----------------------------------------------------------------


def test_without_a_freeze_nothing_is_refused():
    assert frozen_refusal(None, "deploy") is None


def test_a_freeze_refuses_the_deploy_naming_who_froze_and_why():
    d = frozen_refusal(Freeze("release week: no changes until Monday", "alice", NOW), "deploy")
    assert d is not None
    assert d.action is Action.REFUSE
    assert d.refused
    assert "deploy" in d.reason
    assert "alice" in d.reason
    assert "release week: no changes until Monday" in d.reason


def test_a_freeze_refuses_a_promotion_in_the_same_words():
    d = frozen_refusal(Freeze("incident 42", "carol", NOW), "promote")
    assert d is not None and d.refused
    assert d.reason.startswith("refusing to promote")
    assert "carol" in d.reason and "incident 42" in d.reason


# --- the target ----------------------------------------------------------------


def test_a_deploy_without_a_revision_takes_the_branch_tip():
    d = deploy_target(BRANCH, TARGET, None, False)
    assert d.action is Action.MOVE
    assert d.revision == TARGET
    assert BRANCH in d.reason and short(TARGET) in d.reason


def test_a_rollback_to_a_revision_on_the_branch_deploys_that_revision():
    d = deploy_target(BRANCH, TARGET, REQUESTED, True)
    assert d.action is Action.MOVE
    assert d.revision == REQUESTED
    assert short(REQUESTED) in d.reason


def test_a_requested_revision_not_on_the_branch_is_refused():
    d = deploy_target(BRANCH, TARGET, REQUESTED, False)
    assert d.action is Action.REFUSE
    assert d.revision == REQUESTED
    assert short(REQUESTED) in d.reason
    assert BRANCH in d.reason


def test_a_missing_branch_refuses_the_deploy():
    d = deploy_target(BRANCH, None, None, False)
    assert d.action is Action.REFUSE
    assert d.revision is None
    assert BRANCH in d.reason and "does not exist" in d.reason


def test_a_missing_branch_refuses_even_a_requested_revision():
    d = deploy_target(BRANCH, None, REQUESTED, True)
    assert d.action is Action.REFUSE
    assert "does not exist" in d.reason


# --- one server, no cowboys -----------------------------------------------------


def test_a_server_never_deployed_gets_its_first_deployment():
    p = plan(facts(deployed=None))
    assert p.server == "app1"
    assert p.action is Action.MOVE
    assert "(first deployment)" in p.reason
    assert short(TARGET) in p.reason
    assert p.retire == () and p.overridden == ()


def test_a_server_on_an_older_revision_moves_and_says_what_it_was():
    p = plan(facts(deployed=OLD))
    assert p.action is Action.MOVE
    assert f"(was {short(OLD)})" in p.reason
    assert "first deployment" not in p.reason
    assert p.retire == () and p.overridden == ()


def test_a_server_already_at_the_target_is_left_alone():
    p = plan(facts(deployed=TARGET))
    assert p.server == "app1"
    assert p.action is Action.NOTHING
    assert "already runs" in p.reason and short(TARGET) in p.reason
    assert p.retire == () and p.overridden == ()


# --- cowboys ----------------------------------------------------------------------


def test_rollout_never_overwrites_a_cowboy_without_its_fix():
    p = plan(facts(cowboy(7, reason="hot-patched the login form", created_by="bob")))
    assert p.server == "app1"
    assert p.action is Action.REFUSE
    assert "#7" in p.reason
    assert "bob" in p.reason
    assert "hot-patched the login form" in p.reason
    assert "no fix recorded" in p.reason
    assert p.retire == () and p.overridden == ()


def test_a_cowboy_whose_recorded_fix_is_not_in_the_target_still_blocks():
    p = plan(facts(cowboy(7, fixed_by=FIX)))
    assert p.action is Action.REFUSE
    assert "#7" in p.reason
    assert short(FIX) in p.reason
    assert "no fix recorded" not in p.reason


def test_every_blocking_cowboy_is_named_in_the_refusal():
    p = plan(facts(cowboy(7, created_by="bob", reason="patch one"),
                   cowboy(9, created_by="dave", reason="patch two", fixed_by=FIX)))
    assert p.action is Action.REFUSE
    for text in ("#7", "bob", "patch one", "#9", "dave", "patch two"):
        assert text in p.reason


def test_a_cowboy_whose_fix_is_in_the_target_is_deployed_over_and_retires():
    p = plan(facts(cowboy(7, fixed_by=FIX), fixed=(7,)))
    assert p.action is Action.MOVE
    assert p.retire == (7,)
    assert p.overridden == ()
    assert "#7" in p.reason


def test_a_fixed_cowboy_does_not_excuse_another_one_without_its_fix():
    p = plan(facts(cowboy(7, fixed_by=FIX, reason="cache tweak"), cowboy(8, reason="login hotfix"), fixed=(7,)))
    assert p.action is Action.REFUSE
    assert "#8" in p.reason and "login hotfix" in p.reason
    assert "#7" not in p.reason and "cache tweak" not in p.reason  # only what blocks is named
    # nothing is deployed, so nothing retires yet
    assert p.retire == ()


def test_a_losa_may_override_a_cowboy_with_a_reason():
    p = plan(facts(cowboy(7)), override_reason="patch is obsolete, checked with bob")
    assert p.server == "app1"
    assert p.action is Action.MOVE
    assert p.overridden == (7,)
    assert p.retire == ()
    assert "patch is obsolete, checked with bob" in p.reason
    assert "#7" in p.reason


def test_an_override_retires_the_fixed_cowboys_and_overrides_only_the_others():
    p = plan(facts(cowboy(7, fixed_by=FIX), cowboy(8), fixed=(7,)), override_reason="urgent security rollout")
    assert p.action is Action.MOVE
    assert p.retire == (7,)
    assert p.overridden == (8,)
    assert "urgent security rollout" in p.reason


def test_an_override_is_not_needed_when_every_cowboy_is_fixed():
    p = plan(facts(cowboy(7, fixed_by=FIX), fixed=(7,)), override_reason="just in case")
    assert p.action is Action.MOVE
    assert p.overridden == ()
    assert p.retire == (7,)


def test_an_automated_deploy_can_never_override_a_cowboy():
    p = plan(facts(cowboy(7)), override_reason="the scheduler says so", automated=True)
    assert p.action is Action.REFUSE
    assert p.overridden == ()
    assert "#7" in p.reason


def test_an_override_without_a_reason_is_refused():
    p = plan(facts(cowboy(7)), override_reason="")
    assert p.action is Action.REFUSE
    assert p.overridden == ()


def test_no_override_at_all_is_refused():
    p = plan(facts(cowboy(7)), override_reason=None)
    assert p.action is Action.REFUSE


def test_a_server_already_at_the_target_retires_its_fixed_cowboy_without_deploying():
    p = plan(facts(cowboy(7, fixed_by=FIX), deployed=TARGET, fixed=(7,)))
    assert p.action is Action.NOTHING
    assert p.retire == (7,)
    assert p.overridden == ()


def test_a_server_already_at_the_target_keeps_an_unfixed_cowboy_without_a_refusal():
    # nothing is deployed, so nothing is overwritten: not a refusal, and the cowboy stays
    p = plan(facts(cowboy(7), deployed=TARGET))
    assert p.action is Action.NOTHING
    assert p.retire == () and p.overridden == ()


# --- after a failed check ----------------------------------------------------


def test_a_failed_check_rolls_the_server_back_to_what_it_ran_before():
    d = rollback_after_failed_check("app1", TARGET, OLD, [])
    assert d.action is Action.MOVE and d.revision == OLD
    assert d.reason == f"rolling app1 back to {short(OLD)}"


def test_a_failed_check_never_rolls_back_past_a_released_security_fix():
    fix = Release("security/cve-77", FIX, FIX, NOW)
    d = rollback_after_failed_check("app1", TARGET, OLD, [fix])
    assert d.refused
    assert f"released security fix {short(FIX)}" in d.reason and "fix it forward" in d.reason
    assert "cve-77" not in d.reason  # builds name fixes by sha: a branch name can be a secret


def test_a_failed_check_on_a_first_deployment_has_nothing_to_roll_back_to():
    d = rollback_after_failed_check("app1", TARGET, None, [])
    assert d.refused and "never deployed it before" in d.reason and short(TARGET) in d.reason


# --- what the server really runs ---------------------------------------------

TREE, OTHER_TREE = "e" * 40, "d" * 40


def test_a_server_running_the_deployed_tree_has_no_drift():
    assert drift_decision("app1", OLD, TREE, TREE, False, None, False).action is Action.NOTHING


def test_an_unrecorded_change_is_refused_even_for_an_automated_override():
    assert drift_decision("app1", OLD, TREE, OTHER_TREE, False, None, False).refused
    assert drift_decision("app1", OLD, TREE, OTHER_TREE, False, "I know", True).refused  # automated: never
    d = drift_decision("app1", OLD, TREE, OTHER_TREE, False, "I know", False)
    assert d.action is Action.MOVE and "override: I know" in d.reason


def test_a_recorded_cowboy_or_no_deployment_leaves_the_decision_to_the_plan():
    assert drift_decision("app1", OLD, TREE, OTHER_TREE, True, None, False).action is Action.NOTHING
    assert drift_decision("app1", None, None, OTHER_TREE, False, None, False).action is Action.NOTHING


# --- unrecorded changes: found by an inspection, standing until recorded or deployed over ---------------

CHANGE = UnrecordedChange("app1", OLD, TREE, OTHER_TREE, NOW - 60, "lpdeploy")


def test_a_standing_unrecorded_change_refuses_the_rollout_naming_both_trees():
    p = server_plan(ServerFacts("app1", OLD, (), frozenset(), CHANGE), TARGET, None, False)
    assert p.action is Action.REFUSE
    assert f"it runs tree {short(OTHER_TREE)}, lpdeploy deployed tree {short(TREE)} of {short(OLD)}" in p.reason


def test_only_a_losas_override_deploys_over_an_unrecorded_change_never_an_automated_deploy():
    facts_ = ServerFacts("app1", OLD, (), frozenset(), CHANGE)
    assert server_plan(facts_, TARGET, "the edit was a test", True).action is Action.REFUSE
    p = server_plan(facts_, TARGET, "the edit was a test", False)
    assert (p.action, p.over_unrecorded) == (Action.MOVE, True)
    assert "OVER an unrecorded change" in p.reason and "override: the edit was a test" in p.reason
    assert server_plan(ServerFacts("app1", OLD), TARGET, "x", False).over_unrecorded is False


def test_an_inspection_that_finds_a_mismatch_without_a_cowboy_records_it():
    assert standing_change("app1", OLD, TREE, OTHER_TREE, False, None, NOW, "lpdeploy") == UnrecordedChange(
        "app1", OLD, TREE, OTHER_TREE, NOW, "lpdeploy")


def test_found_again_it_keeps_when_it_was_first_found_a_different_tree_is_a_new_finding():
    assert standing_change("app1", OLD, TREE, OTHER_TREE, False, CHANGE, NOW, "x") is CHANGE
    third = "9" * 40
    assert standing_change("app1", OLD, TREE, third, False, CHANGE, NOW, "x") == UnrecordedChange(
        "app1", OLD, TREE, third, NOW, "x")


def test_a_match_or_a_recorded_cowboy_clears_it_and_nothing_to_compare_keeps_it():
    assert standing_change("app1", OLD, TREE, TREE, False, CHANGE, NOW, "x") is None
    assert standing_change("app1", OLD, TREE, OTHER_TREE, True, CHANGE, NOW, "x") is None
    assert standing_change("app1", OLD, None, OTHER_TREE, False, CHANGE, NOW, "x") is CHANGE


# --- a cowboy's patch: the same change under another commit id ------------------------------------------

PID, OTHER_PID = "9" * 40, "8" * 40


def test_a_commit_with_the_patch_id_of_a_cowboys_patch_fixes_it_naming_the_oldest_such_commit():
    commits = [("c" * 40, PID), ("b" * 40, ""), ("a" * 40, PID), ("d" * 40, OTHER_PID)]  # newest first
    assert patch_matches({3: PID}, commits) == {3: "a" * 40}
    assert patch_matches({3: PID, 4: "7" * 40}, commits) == {3: "a" * 40}
    assert patch_matches({5: ""}, commits) == {}  # a commit without a patch id matches nothing
    assert patch_matches({3: PID}, []) == {}


def test_a_patch_match_retires_the_cowboy_and_the_plan_says_which_commit():
    c = cowboy(3)
    p = server_plan(ServerFacts("app1", OLD, (c,), frozenset({3}), None, ((3, FIX),)), TARGET, None, False)
    assert (p.action, p.retire, p.patch_matches) == (Action.MOVE, (3,), ((3, FIX),))
    assert f"commit {short(FIX)} makes the same change as its patch (same git patch-id)" in p.reason


def test_an_unrecorded_change_to_exactly_the_targets_tree_undoes_nothing_and_does_not_block():
    # a deploy of the target ran on the server but was never recorded (the master died before it could)
    p = server_plan(ServerFacts("app1", OLD, (), frozenset(), CHANGE, target_tree=OTHER_TREE), TARGET, None, False)
    assert (p.action, p.over_unrecorded) == (Action.MOVE, False)
    assert server_plan(ServerFacts("app1", OLD, (), frozenset(), CHANGE, target_tree=TREE), TARGET, None,
                       False).action is Action.REFUSE
    assert drift_decision("app1", OLD, TREE, OTHER_TREE, False, None, True, target_tree=OTHER_TREE).action \
        is Action.NOTHING
    assert drift_decision("app1", OLD, TREE, OTHER_TREE, False, None, True, target_tree=TREE).refused
