"""The words lpdeploy stores, sends and prints stay exactly as they were (issue 11).

The enums of ``lpdeploy.core.model`` name values that cross module
boundaries, and the same strings sit in Buildbot's database (registry rows,
build properties), in ``status.json`` and in what ``lpdeploy`` prints. A
renamed value would orphan every stored row, so each value is pinned here,
and so is every build property name.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from lpdeploy.core import properties as prop
from lpdeploy.core.model import (
    OK_OUTCOMES,
    AuditAction,
    BuildOutcome,
    Cowboy,
    CowboyState,
    EventKind,
    FixState,
    FlowKind,
    JobKind,
    MergeBackAttempt,
    MergeBackOutcome,
    Result,
    Role,
    SecurityFix,
    SecurityJob,
    ServerStatus,
)
from lpdeploy.core.qa import QaState
from lpdeploy.core.results import TestStatus
from lpdeploy.core.settings import KNOWN_ROLES

STORED = {
    Result: {"PASSED": "passed", "FAILED": "failed"},
    Role: {"SECURITY": "security", "LOSA": "losa", "QA": "qa"},
    QaState: {"NEEDS_TESTING": "needs-testing", "OK": "ok", "BAD": "bad", "UNTESTABLE": "untestable"},
    FlowKind: {"GATE": "gate", "PROMOTE": "promote", "DEPLOY": "deploy", "ADMIN": "admin", "SECURITY": "security"},
    BuildOutcome: {"MOVED": "moved", "NOTHING": "nothing", "DEPLOYED": "deployed", "DONE": "done",
                   "REFUSED": "refused", "FAILED": "failed"},
    ServerStatus: {"DEPLOYED": "deployed", "UNCHANGED": "unchanged", "REFUSED": "refused", "FAILED": "failed",
                   "ROLLED_BACK": "rolled-back", "CHECK_FAILED": "check-failed", "STOPPED": "stopped"},
    CowboyState: {"ACTIVE": "active", "RETIRED": "retired", "REMOVED": "removed"},
    FixState: {"QUEUED": "queued", "TESTING": "testing", "FAILED": "failed", "REFUSED": "refused",
               "PROMOTED": "promoted", "PENDING": "pending", "MERGING": "merging", "CONFLICT": "conflict",
               "MERGED_BACK": "merged-back"},
    MergeBackOutcome: {"MERGED": "merged", "NOTHING_TO_MERGE": "nothing", "CONFLICT": "conflict",
                       "GAVE_UP": "failed"},
    JobKind: {"SECURITY_BUILD": "security-build", "MERGE_BACK": "merge-back"},
    EventKind: {"SUITE_RUN": "suite-run", "SUITE_SKIPPED": "suite-skipped", "MOVED": "moved",
                "DEPLOYED": "deployed"},
    TestStatus: {"PASSED": "success", "FAILED": "fail", "SKIPPED": "skip"},
    AuditAction: {"PROMOTE": "promote", "DEPLOY": "deploy", "DEPLOY_CHECK_FAILED": "deploy-check-failed",
                  "UNRECORDED_CHANGE": "unrecorded-change", "FAILOVER": "failover", "COWBOY_ADD": "cowboy-add",
                  "COWBOY_REMOVE": "cowboy-remove", "COWBOY_RETIRE": "cowboy-retire",
                  "COWBOY_OVERRIDE": "cowboy-override", "FREEZE": "freeze", "THAW": "thaw",
                  "SECURITY_BUILD": "security-build", "SECURITY_PROMOTE": "security-promote",
                  "MERGE_BACK": "merge-back", "QA_MARK": "qa-mark"},
}


@pytest.mark.parametrize("enum", list(STORED), ids=lambda e: e.__name__)
def test_every_stored_value_keeps_its_exact_string(enum: type) -> None:
    assert {m.name: m.value for m in enum} == STORED[enum]  # type: ignore[attr-defined]
    for member in enum:  # type: ignore[attr-defined]
        assert json.dumps(member) == json.dumps(member.value)  # JSON (REST, object_state) sees the plain word
        assert f"{member}" == member.value  # and so do summaries and log lines


def test_the_cli_accepts_exactly_the_successful_outcomes() -> None:
    assert set(OK_OUTCOMES) == {"moved", "nothing", "deployed", "done"}


def test_the_site_file_knows_exactly_the_three_roles() -> None:
    assert set(KNOWN_ROLES) == {"security", "losa", "qa"}


def test_rows_stored_as_plain_strings_load_as_enums() -> None:
    fix = SecurityFix.from_json({"branch": "security/x", "fix_commit": "a" * 40, "state": "promoted",
                                 "by": "alice", "updated_at": 1.0})
    assert fix.state is FixState.PROMOTED
    attempt = MergeBackAttempt.from_json({"at": 1.0, "job": "1" * 32, "by": "lpdeploy", "candidate": "b" * 40,
                                          "outcome": "failed"})
    assert attempt.outcome is MergeBackOutcome.GAVE_UP
    job = SecurityJob.from_json({"token": "1" * 32, "kind": "merge-back", "branch": "security/x",
                                 "requested_by": "alice", "requested_at": 1.0})
    assert job.kind is JobKind.MERGE_BACK
    cowboy = Cowboy(1, "app1", "hot patch", None, "bob", 1.0, state="retired")  # type: ignore[arg-type]
    assert cowboy.state is CowboyState.RETIRED and not cowboy.active
    assert json.loads(json.dumps(cowboy.as_json()))["state"] == "retired"
    assert json.loads(json.dumps(asdict(fix)))["state"] == "promoted"


def test_a_stored_word_lpdeploy_never_wrote_is_refused() -> None:
    with pytest.raises(ValueError):
        SecurityFix.from_json({"branch": "security/x", "fix_commit": "a" * 40, "state": "promotd",
                               "by": "alice", "updated_at": 1.0})


def test_every_build_property_keeps_its_name() -> None:
    names = {k: v for k, v in vars(prop).items() if k.isupper()}
    assert names == {
        "OUTCOME": "lpdeploy_outcome", "REASON": "lpdeploy_reason", "REVISION": "lpdeploy_revision",
        "TREE": "lpdeploy_tree", "SUITE": "lpdeploy_suite", "RUN_SUITE": "lpdeploy_run_suite",
        "PROBE": "lpdeploy_probe", "CULPRIT": "lpdeploy_culprit",
        "CHECKOUT_BRANCH": "lpdeploy_checkout_branch", "AUTO": "lpdeploy_auto", "PLAN": "lpdeploy_plan",
        "RUN_DEPLOY": "lpdeploy_run_deploy", "SERVERS": "lpdeploy_servers", "ACTION": "lpdeploy_action",
        "COWBOY_IDS": "lpdeploy_cowboy_ids", "PATCH_UPLOAD": "lpdeploy_patch_upload",
        "JOB": "lpdeploy_job", "PARENT_BUILDID": "lpdeploy_parent_buildid",
        "SHARD": "lpdeploy_shard", "ATTEMPT": "lpdeploy_attempt", "PREVIOUS_TIP": "lpdeploy_previous_tip",
        "QA": "lpdeploy_qa",
    }
