"""Security fixes as the story tells them: what a security build tests, when a promotion
would lose a fix, when a fix is merged back, and how long it stays embargoed."""

from __future__ import annotations

import pytest

from lpdeploy.model import (
    CONFLICT,
    FAILED,
    MERGED_BACK,
    MERGING,
    PROMOTED,
    QUEUED,
    TESTING,
    Action,
    SecurityFix,
)
from lpdeploy.policy import lost_fix_refusal, merge_back_due, security_candidate
from lpdeploy.refs import short

BRANCH = "security/cve-4242"
PS = "production-stable"
FIX = "f1" * 20  # the security branch tip
PS_TIP = "a5" * 20  # the production-stable tip
RELEASED = "e7" * 20  # the fix commit that reached production
TARGET = "7a" * 20  # a stable revision under promotion
ALL_STATES = (QUEUED, TESTING, FAILED, PROMOTED, MERGING, CONFLICT, MERGED_BACK)


def fix(state: str = PROMOTED, branch: str = BRANCH, fix_commit: str = FIX,
        released: str | None = RELEASED) -> SecurityFix:
    return SecurityFix(branch=branch, fix_commit=fix_commit, state=state, by="sec-alice",
                       updated_at=1_700_000_000.0, candidate=fix_commit, released=released)


# --- security_candidate: what a security build tests ------------------------------


def test_a_missing_security_branch_is_refused_naming_it():
    d = security_candidate(BRANCH, None, PS, PS_TIP, False)
    assert d.action is Action.REFUSE
    assert d.refused
    assert BRANCH in d.reason
    assert "does not exist" in d.reason


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
    assert not d.refused
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


# --- lost_fix_refusal: production never loses a security fix ------------------------


def test_a_promotion_that_loses_no_fix_is_not_refused():
    assert lost_fix_refusal(TARGET, [], PS) is None


def test_a_promotion_that_would_lose_a_fix_is_refused_naming_branch_and_released_commit():
    d = lost_fix_refusal(TARGET, [fix()], PS)
    assert d is not None
    assert d.action is Action.REFUSE
    assert d.revision == TARGET
    assert BRANCH in d.reason
    assert short(RELEASED) in d.reason
    assert short(TARGET) in d.reason
    assert PS in d.reason
    # the released commit is named, not the newer (untested) branch tip
    assert short(FIX) not in d.reason


def test_a_lost_fix_without_a_released_commit_is_named_by_its_fix_commit():
    d = lost_fix_refusal(TARGET, [fix(released=None)], PS)
    assert d is not None and d.refused
    assert short(FIX) in d.reason


def test_every_lost_fix_is_named():
    other = fix(branch="security/cve-9999", fix_commit="0b" * 20, released="c3" * 20)
    d = lost_fix_refusal(TARGET, [fix(), other], PS)
    assert d is not None and d.refused
    for f in (fix(), other):
        assert f.branch in d.reason
        assert short(f.released) in d.reason


# --- merge_back_due: merge back once every server runs the fix -----------------------


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s != PROMOTED])
def test_only_a_promoted_fix_is_merged_back(state):
    assert merge_back_due(fix(state), ["app1"], {"app1"}) is False
    assert merge_back_due(fix(state), [], set()) is False


def test_a_promoted_fix_is_merged_back_once_every_server_runs_it():
    assert merge_back_due(fix(), ["app1", "app2"], {"app1", "app2"}) is True


def test_a_promoted_fix_waits_while_a_server_does_not_run_it():
    assert merge_back_due(fix(), ["app1", "app2"], {"app1"}) is False
    assert merge_back_due(fix(), ["app1", "app2"], set()) is False


def test_a_server_outside_the_configuration_does_not_count():
    assert merge_back_due(fix(), ["app1", "app2"], {"app1", "old-app9"}) is False


def test_with_no_servers_configured_a_promoted_fix_is_due_at_once():
    assert merge_back_due(fix(), [], set()) is True


# --- SecurityFix: embargoed and pending by state ----------------------------------------


@pytest.mark.parametrize("state,embargoed,pending", [
    (QUEUED, True, False),
    (TESTING, True, False),
    (FAILED, True, False),
    (PROMOTED, True, True),
    (MERGING, True, True),
    (CONFLICT, True, True),
    (MERGED_BACK, False, False),
])
def test_a_fix_is_embargoed_until_merged_back_and_pending_while_on_production(state, embargoed, pending):
    f = fix(state)
    assert f.embargoed is embargoed
    assert f.pending is pending

