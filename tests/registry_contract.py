"""The registry contract: scenarios every ``Registry`` implementation must pass.

Each scenario is a plain ``async`` function taking a fresh, empty registry and
asserting on it; it does not care how it is awaited. ``test_registry.py`` runs
them against ``InMemoryRegistry`` and ``test_db_registry.py`` against
``DbRegistry`` on a real Buildbot database (``tests/`` has no ``__init__.py``,
so pytest puts it on ``sys.path`` and the module imports by its bare name)::

    from registry_contract import SCENARIOS
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from lpdeploy.core.bisect import Culprit
from lpdeploy.core.errors import InvalidInput, LpDeployError
from lpdeploy.core.model import (
    AuditEntry,
    Cowboy,
    CowboyPatch,
    CowboyState,
    Deployment,
    FixState,
    Freeze,
    JobKind,
    MergeBackAttempt,
    MergeBackOutcome,
    PatchUpload,
    Release,
    SecurityFix,
    SecurityJob,
    UnrecordedChange,
)
from lpdeploy.stores.registry import UPLOAD_TTL, UnknownCowboy, new_job_token, new_upload_token

T0 = 1_700_000_000.25
FIX = "f" * 40
REV_A = "a" * 40
REV_B = "b" * 40
REV_C = "c" * 40
BRANCH = "security/cve-4242"
AS_JSON_KEYS = {"id", "server", "reason", "fixed_by", "created_by", "created_at", "active"}


async def _add_three(registry: Any) -> list[Cowboy]:
    return [
        await registry.add_cowboy("app1", "hot-patched the login form", None, "bob", T0),
        await registry.add_cowboy("app2", "cache tweak", FIX, "alice", T0 + 1),
        await registry.add_cowboy("app1", "logging turned up", None, "carol", T0 + 2.5),
    ]


async def _expect_unknown(awaitable: Awaitable[Any], cowboy_id: int) -> UnknownCowboy:
    try:
        await awaitable
    except UnknownCowboy as e:
        assert e.cowboy_id == cowboy_id
        return e
    raise AssertionError(f"ending cowboy {cowboy_id} did not raise UnknownCowboy")


# --- cowboys ------------------------------------------------------------------


async def a_new_registry_has_no_cowboys(registry: Any) -> None:
    assert await registry.cowboys() == []
    assert await registry.cowboys(include_ended=True) == []


async def cowboy_ids_start_at_one_and_increase(registry: Any) -> None:
    added = await _add_three(registry)
    assert [c.id for c in added] == [1, 2, 3]


async def an_added_cowboy_holds_what_was_given(registry: Any) -> None:
    c = await registry.add_cowboy("app2", "cache tweak", FIX, "alice", T0)
    assert c == Cowboy(1, "app2", "cache tweak", FIX, "alice", T0)
    assert c.state == CowboyState.ACTIVE and c.active
    assert c.ended_at is None and c.ended_by is None and c.end_reason is None


async def active_cowboys_are_listed_in_id_order(registry: Any) -> None:
    added = await _add_three(registry)
    assert await registry.cowboys() == added
    assert await registry.cowboys(include_ended=True) == added


async def a_retired_cowboy_leaves_the_active_list(registry: Any) -> None:
    c1, c2, c3 = await _add_three(registry)
    ended = await registry.end_cowboy(c2.id, CowboyState.RETIRED, "deployer", "its fix is deployed", T0 + 100)
    assert ended.id == c2.id and ended.server == c2.server and ended.reason == c2.reason
    assert ended.state == CowboyState.RETIRED and not ended.active
    assert ended.ended_at == T0 + 100
    assert ended.ended_by == "deployer"
    assert ended.end_reason == "its fix is deployed"
    assert await registry.cowboys() == [c1, c3]
    assert await registry.cowboys(include_ended=True) == [c1, ended, c3]


async def a_removed_cowboy_is_kept_with_its_end(registry: Any) -> None:
    (c1, *_) = await _add_three(registry)
    ended = await registry.end_cowboy(c1.id, CowboyState.REMOVED, "alice", "patch reverted by hand", T0 + 5)
    assert ended.state == CowboyState.REMOVED and not ended.active
    assert (ended.ended_at, ended.ended_by, ended.end_reason) == (T0 + 5, "alice", "patch reverted by hand")
    assert [c.id for c in await registry.cowboys()] == [2, 3]
    listed = await registry.cowboys(include_ended=True)
    assert listed[0] == ended


async def ending_a_cowboy_twice_raises_unknown_cowboy(registry: Any) -> None:
    c = await registry.add_cowboy("app1", "hot patch", None, "bob", T0)
    first = await registry.end_cowboy(c.id, CowboyState.RETIRED, "deployer", "fix deployed", T0 + 1)
    await _expect_unknown(registry.end_cowboy(c.id, CowboyState.REMOVED, "alice", "again", T0 + 2), c.id)
    # the first end stands
    assert await registry.cowboys(include_ended=True) == [first]


async def ending_an_unknown_cowboy_raises_unknown_cowboy(registry: Any) -> None:
    await _expect_unknown(registry.end_cowboy(1, CowboyState.REMOVED, "alice", "typo", T0), 1)
    await _add_three(registry)
    await _expect_unknown(registry.end_cowboy(99, CowboyState.RETIRED, "alice", "typo", T0), 99)
    assert len(await registry.cowboys()) == 3


async def a_cowboy_cannot_be_ended_as_active(registry: Any) -> None:
    c = await registry.add_cowboy("app1", "hot patch", None, "bob", T0)
    try:
        await registry.end_cowboy(c.id, CowboyState.ACTIVE, "alice", "?", T0 + 1)
    except (ValueError, LpDeployError):
        pass
    else:
        raise AssertionError("ending a cowboy as 'active' was accepted")
    assert await registry.cowboys() == [c]


async def ids_are_never_reused_after_an_end(registry: Any) -> None:
    *_, c3 = await _add_three(registry)
    await registry.end_cowboy(c3.id, CowboyState.REMOVED, "alice", "gone", T0 + 10)
    c4 = await registry.add_cowboy("app3", "another patch", None, "bob", T0 + 11)
    assert c4.id == 4
    assert [c.id for c in await registry.cowboys()] == [1, 2, 4]


async def a_cowboy_as_json_holds_its_fields_and_whether_it_is_active(registry: Any) -> None:
    c = await registry.add_cowboy("app2", "cache tweak", FIX, "alice", T0)
    data = c.as_json()
    assert AS_JSON_KEYS <= set(data)
    assert data["id"] == 1 and data["server"] == "app2" and data["reason"] == "cache tweak"
    assert data["fixed_by"] == FIX and data["created_by"] == "alice" and data["created_at"] == T0
    assert data["active"] is True
    assert json.loads(json.dumps(data)) == data
    ended = await registry.end_cowboy(c.id, CowboyState.RETIRED, "deployer", "fixed", T0 + 1)
    assert ended.as_json()["active"] is False
    (listed,) = await registry.cowboys(include_ended=True)
    assert listed.as_json() == ended.as_json()


# --- deployments and the freeze ---------------------------------------------------


async def a_server_has_no_deployment_until_one_is_recorded(registry: Any) -> None:
    assert await registry.deployment("app1") is None
    dep = Deployment("app1", REV_A, T0, "alice", "http://localhost:8010/#/builders/3/builds/1")
    await registry.record_deployment(dep)
    assert await registry.deployment("app1") == dep
    assert await registry.deployment("app2") is None


async def the_latest_deployment_of_a_server_wins(registry: Any) -> None:
    await registry.record_deployment(Deployment("app1", REV_A, T0, "alice"))
    other = Deployment("app2", REV_A, T0 + 1, "bob")
    await registry.record_deployment(other)
    latest = Deployment("app1", REV_B, T0 + 60, "carol", "http://localhost:8010/#/builders/3/builds/2")
    await registry.record_deployment(latest)
    assert await registry.deployment("app1") == latest
    assert await registry.deployment("app2") == other


async def an_unrecorded_change_stands_per_server_until_cleared(registry: Any) -> None:
    assert await registry.unrecorded_changes() == []
    assert await registry.clear_unrecorded_change("app1") is None
    first = UnrecordedChange("app2", REV_A, "1" * 40, "2" * 40, T0, "inspect")
    await registry.record_unrecorded_change(first)
    await registry.record_unrecorded_change(UnrecordedChange("app1", REV_B, "3" * 40, "4" * 40, T0 + 1))
    newer = UnrecordedChange("app2", REV_A, "1" * 40, "5" * 40, T0 + 2, "bob")
    await registry.record_unrecorded_change(newer)  # replaces app2's
    assert [c.server for c in await registry.unrecorded_changes()] == ["app1", "app2"]
    assert (await registry.unrecorded_changes())[1] == newer
    assert await registry.clear_unrecorded_change("app2") == newer
    assert await registry.clear_unrecorded_change("app2") is None
    assert [c.server for c in await registry.unrecorded_changes()] == ["app1"]


async def a_cowboys_patch_is_kept_whole_and_patch_ids_are_cached_by_commit(registry: Any) -> None:
    diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-caf\xe9\n+caf\udce9\n"  # not UTF-8 too
    assert await registry.cowboy_patch(1) is None
    await registry.save_cowboy_patch(CowboyPatch(1, "9" * 40, REV_A, diff))
    await registry.save_cowboy_patch(CowboyPatch(2, "8" * 40, None, diff))
    assert await registry.cowboy_patch(1) == CowboyPatch(1, "9" * 40, REV_A, diff)
    assert (await registry.cowboy_patch(2)).base is None
    assert await registry.patch_ids([REV_A, REV_B]) == {}
    await registry.save_patch_ids({REV_A: "9" * 40, REV_B: ""})  # "": a commit without a patch id (a merge)
    await registry.save_patch_ids({REV_C: "7" * 40})
    assert await registry.patch_ids([REV_B, REV_A, FIX]) == {REV_A: "9" * 40, REV_B: ""}
    await registry.save_patch_ids({REV_A: "9" * 40, FIX: "5" * 40})  # saved again beside a new one: both kept
    assert await registry.patch_ids([REV_A, FIX]) == {REV_A: "9" * 40, FIX: "5" * 40}
    many = [f"{i:040x}" for i in range(1, 1201)]  # more than one batch of names
    await registry.save_patch_ids({s: "6" * 40 for s in many})
    assert len(await registry.patch_ids(many + [REV_C])) == 1201


DIFF = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"


async def _refused(claim: Awaitable[str], words: str) -> str:
    """The one-line message of a refused claim (``InvalidInput``), checked to hold ``words``."""
    try:
        await claim
    except InvalidInput as e:
        assert words in str(e) and "\n" not in str(e), str(e)
        return str(e)
    raise AssertionError(f"the claim was not refused ({words})")


async def an_upload_is_claimed_once_by_its_uploader(registry: Any) -> None:
    token = new_upload_token()
    await registry.save_patch_upload(PatchUpload(token, DIFF, "bob", T0))
    assert await registry.claim_patch_upload(token, "bob", T0 + 5) == DIFF
    await _refused(registry.claim_patch_upload(token, "bob", T0 + 6), "already used")  # single use


async def an_upload_cannot_be_claimed_by_another_user_and_stays_for_its_uploader(registry: Any) -> None:
    token = new_upload_token()
    await registry.save_patch_upload(PatchUpload(token, DIFF, "bob", T0))
    await _refused(registry.claim_patch_upload(token, "mallory", T0 + 1), "uploaded by another user")
    assert await registry.claim_patch_upload(token, "bob", T0 + 2) == DIFF


async def an_expired_upload_is_refused_and_gone(registry: Any) -> None:
    token, fresh = new_upload_token(), new_upload_token()
    await registry.save_patch_upload(PatchUpload(token, DIFF, "bob", T0))
    await _refused(registry.claim_patch_upload(token, "bob", T0 + UPLOAD_TTL + 1), "expired")
    await _refused(registry.claim_patch_upload(token, "bob", T0 + 1), "already used")  # removed when refused
    await registry.save_patch_upload(PatchUpload(fresh, DIFF, "bob", T0))
    assert await registry.claim_patch_upload(fresh, "bob", T0 + UPLOAD_TTL) == DIFF  # the bound itself is kept


async def uploads_left_unclaimed_are_purged_by_a_later_upload(registry: Any) -> None:
    old, new = new_upload_token(), new_upload_token()
    await registry.save_patch_upload(PatchUpload(old, DIFF, "bob", T0))
    await registry.save_patch_upload(PatchUpload(new, DIFF, "bob", T0 + UPLOAD_TTL + 1))
    await _refused(registry.claim_patch_upload(old, "bob", T0 + 1), "already used")  # purged, not just refused
    assert await registry.claim_patch_upload(new, "bob", T0 + UPLOAD_TTL + 2) == DIFF


async def an_upload_token_that_is_not_a_token_finds_nothing_and_cannot_be_saved(registry: Any) -> None:
    token = new_upload_token()
    await registry.save_patch_upload(PatchUpload(token, DIFF, "bob", T0))
    for bad in (token + "x", token[:-1], "../" + token[3:], None, 42, ""):
        await _refused(registry.claim_patch_upload(bad, "bob", T0 + 1), "no such upload")
    try:
        await registry.save_patch_upload(PatchUpload("not-a-token", DIFF, "bob", T0))
    except ValueError:
        pass
    else:
        raise AssertionError("an upload was saved under a name new_upload_token cannot make")
    assert await registry.claim_patch_upload(token, "bob", T0 + 1) == DIFF


async def the_freeze_is_set_read_and_thawed(registry: Any) -> None:
    assert await registry.freeze() is None
    freeze = Freeze("release week", "alice", T0)
    await registry.set_freeze(freeze)
    assert await registry.freeze() == freeze
    await registry.set_freeze(None)
    assert await registry.freeze() is None


async def a_new_freeze_replaces_the_old_one(registry: Any) -> None:
    await registry.set_freeze(Freeze("release week", "alice", T0))
    newer = Freeze("incident 42", "bob", T0 + 30)
    await registry.set_freeze(newer)
    assert await registry.freeze() == newer


async def thawing_when_not_frozen_leaves_it_unfrozen(registry: Any) -> None:
    await registry.set_freeze(None)
    assert await registry.freeze() is None


# --- audit ------------------------------------------------------------------------


async def a_new_registry_has_an_empty_audit_log(registry: Any) -> None:
    assert await registry.audit_log() == []


async def audit_entries_come_back_newest_first_with_their_details(registry: Any) -> None:
    c = await registry.add_cowboy("app1", "hot patch", None, "bob", T0)
    entries = [
        AuditEntry(T0, "bob", "cowboy-add", {"cowboy": c.as_json()}),
        AuditEntry(T0 + 10, "alice", "freeze", {"reason": "release week"}),
        AuditEntry(T0 + 20.5, "alice", "deploy", {"server": "app1", "revision": REV_A, "previous": None}),
    ]
    for e in entries:
        await registry.audit(e)
    log = await registry.audit_log()
    assert log == entries[::-1]
    assert log[-1].details["cowboy"]["reason"] == "hot patch"
    assert log[0].details["previous"] is None


async def audit_entries_recorded_at_the_same_time_come_back_newest_first(registry: Any) -> None:
    # one deploy audits retire, override and deploy with one reading of the clock
    entries = [AuditEntry(T0, "deployer", f"step-{i}", {"n": i}) for i in range(8)]
    for e in entries:
        await registry.audit(e)
    assert [e.action for e in await registry.audit_log()] == [e.action for e in reversed(entries)]


async def the_audit_log_limit_keeps_the_newest(registry: Any) -> None:
    entries = [AuditEntry(T0 + i, "alice", "thaw", {"was": None}) for i in range(5)]
    for e in entries:
        await registry.audit(e)
    assert await registry.audit_log(limit=2) == [entries[4], entries[3]]
    assert len(await registry.audit_log()) == 5


# --- flow events --------------------------------------------------------------------


async def a_new_registry_has_no_events(registry: Any) -> None:
    assert await registry.events() == []


async def events_come_back_oldest_first_with_their_details(registry: Any) -> None:
    moved = AuditEntry(T0 + 20, "lpdeploy (automatic)", "moved", {"revision": REV_B, "branches": ["stable"]})
    run = AuditEntry(T0, "lpdeploy (automatic)", "suite-run", {"revision": REV_A, "duration": 12.5, "passed": True})
    for e in (moved, run):
        await registry.record_event(e)
    assert await registry.events() == [run, moved]


async def events_since_a_time_leave_out_the_older_ones(registry: Any) -> None:
    entries = [AuditEntry(T0 + i * 10, "lpdeploy", "moved", {"n": i}) for i in range(4)]
    for e in entries:
        await registry.record_event(e)
    assert await registry.events(since=T0 + 15) == entries[2:]
    assert await registry.events(since=T0 + 20) == entries[2:]
    assert await registry.events(since=T0 + 31) == []


async def events_are_not_audit_entries(registry: Any) -> None:
    await registry.record_event(AuditEntry(T0, "lpdeploy", "moved", {}))
    assert await registry.audit_log() == []
    await registry.audit(AuditEntry(T0, "bob", "freeze", {}))
    assert [e.action for e in await registry.events()] == ["moved"]


# --- security work: the latest run per branch ------------------------------------------


def _run(branch: str = BRANCH, fix_commit: str = REV_A, state: str = FixState.TESTING, **kw: Any) -> SecurityFix:
    return SecurityFix(branch=branch, fix_commit=fix_commit, state=state, by="alice", updated_at=T0, **kw)


async def a_new_registry_has_no_security_runs(registry: Any) -> None:
    assert await registry.fixes() == []
    assert await registry.fix(BRANCH) is None


async def a_saved_run_is_read_back_whole(registry: Any) -> None:
    run = _run(candidate=REV_B, build_url="http://localhost:8010/#/builders/5/builds/1", note="")
    await registry.save_fix(run)
    assert await registry.fix(BRANCH) == run
    assert await registry.fixes() == [run]
    assert await registry.fix("security/other") is None


async def a_new_push_replaces_the_run_of_its_branch_only(registry: Any) -> None:
    other = _run(branch="security/cve-1111", fix_commit=REV_C, state=FixState.PROMOTED, candidate=REV_C)
    await registry.save_fix(_run(state=FixState.PROMOTED, candidate=REV_A))
    await registry.save_fix(other)
    newer = _run(fix_commit=REV_B, state=FixState.FAILED, note="does not merge: conflict in login.txt")
    await registry.save_fix(newer)
    assert await registry.fix(BRANCH) == newer
    assert await registry.fixes() == [other, newer]  # ordered by branch name


# --- security work: the append-only history of released fixes ------------------------------


async def a_new_registry_has_no_releases(registry: Any) -> None:
    assert await registry.releases() == []


async def releases_are_kept_in_the_order_they_reached_production(registry: Any) -> None:
    later = Release("security/cve-1111", REV_C, REV_C, T0 + 50, by="bob", job="1" * 32)
    first = Release(BRANCH, REV_A, REV_B, T0, by="alice", job="0" * 32, build_url="http://x/#/builders/5/builds/2")
    await registry.record_release(later)
    await registry.record_release(first)
    assert await registry.releases() == [first, later]


async def a_new_run_of_the_branch_does_not_touch_its_releases(registry: Any) -> None:
    released = Release(BRANCH, REV_A, REV_B, T0)
    await registry.record_release(released)
    await registry.save_fix(_run(fix_commit=REV_C, state=FixState.FAILED, candidate=None))
    assert await registry.releases() == [released]


async def every_release_of_a_branch_is_kept(registry: Any) -> None:
    v1, v2 = Release(BRANCH, REV_A, REV_A, T0), Release(BRANCH, REV_B, REV_C, T0 + 10)
    await registry.record_release(v1)
    await registry.record_release(v2)
    assert await registry.releases() == [v1, v2]


async def a_release_recorded_again_keeps_the_first_record(registry: Any) -> None:
    first = Release(BRANCH, REV_A, REV_B, T0, by="alice")
    await registry.record_release(first)
    await registry.record_release(Release(BRANCH, REV_A, REV_B, T0 + 99, by="someone else"))
    assert await registry.releases() == [first]


# --- security work: merge-back attempts ----------------------------------------------------


async def a_new_registry_has_no_merge_back_attempts(registry: Any) -> None:
    assert await registry.merge_backs() == []


async def merge_back_attempts_come_back_oldest_first_with_what_they_brought(registry: Any) -> None:
    conflict = MergeBackAttempt(T0, "0" * 32, "lpdeploy", REV_B, MergeBackOutcome.CONFLICT, (REV_B,), devel_tip=REV_A,
                                note="conflict in login.txt")
    merged = MergeBackAttempt(T0 + 60, "1" * 32, "alice", REV_C, MergeBackOutcome.MERGED, (REV_B, REV_C),
                              devel_tip=REV_A,
                              merge="d" * 40)
    await registry.record_merge_back(merged)
    await registry.record_merge_back(conflict)
    listed = await registry.merge_backs()
    assert listed == [conflict, merged]
    assert listed[1].brought == (REV_B, REV_C)


# --- security work: jobs (what a build was asked to do, kept master-side) ---------------------


async def a_saved_job_is_found_by_its_token_only(registry: Any) -> None:
    job = SecurityJob(new_job_token(), JobKind.SECURITY_BUILD, BRANCH, "alice", T0)
    await registry.save_job(job)
    assert await registry.job(job.token) == job
    assert await registry.job(new_job_token()) is None


async def a_job_records_what_its_build_decided(registry: Any) -> None:
    job = SecurityJob(new_job_token(), JobKind.MERGE_BACK, BRANCH, "lpdeploy (automatic)", T0, automatic=True,
                      candidate=REV_B)
    await registry.save_job(job)
    decided = SecurityJob(job.token, JobKind.SECURITY_BUILD, BRANCH, "alice", T0, fix_commit=REV_A, candidate=REV_B,
                          tree=REV_C)
    await registry.save_job(decided)
    assert await registry.job(job.token) == decided


async def a_job_token_that_is_not_a_token_finds_nothing_and_cannot_be_saved(registry: Any) -> None:
    for bad in ("", "../fix/security/x", "A" * 32, "0" * 31, None, 42):
        assert await registry.job(bad) is None, bad
    try:
        await registry.save_job(SecurityJob("not-a-token", JobKind.SECURITY_BUILD, BRANCH, "alice", T0))
    except (ValueError, LpDeployError):
        pass
    else:
        raise AssertionError("a job with a malformed token was saved")


async def stored_states_come_back_as_the_core_enums(registry: Any) -> None:
    """Rows hold plain words (JSON); what a store returns holds the enums every module compares with."""
    c = await registry.add_cowboy("app1", "hot patch", None, "bob", T0)
    await registry.end_cowboy(c.id, CowboyState.RETIRED, "lpdeploy", "fixed", T0 + 1)
    await registry.save_fix(_run(state=FixState.REFUSED))
    await registry.record_merge_back(MergeBackAttempt(T0, "1" * 32, "alice", REV_A, MergeBackOutcome.GAVE_UP))
    job = SecurityJob(new_job_token(), JobKind.MERGE_BACK, BRANCH, "alice", T0)
    await registry.save_job(job)
    (ended,) = await registry.cowboys(include_ended=True)
    assert ended.state is CowboyState.RETIRED
    assert (await registry.fix(BRANCH)).state is FixState.REFUSED
    assert (await registry.merge_backs())[0].outcome is MergeBackOutcome.GAVE_UP
    assert (await registry.job(job.token)).kind is JobKind.MERGE_BACK


# --- the gate's bisection: the culprit of a failing batch ---------------------------------------


async def a_new_registry_names_no_culprit(registry: Any) -> None:
    assert await registry.culprit() is None


async def a_saved_culprit_is_read_back_whole_and_a_new_one_replaces_it(registry: Any) -> None:
    first = Culprit(REV_A, "Break the build", "Ann <ann@example.com>", "http://m/#/builders/1/builds/7",
                    REV_C, REV_B, T0)
    await registry.save_culprit(first)
    assert await registry.culprit() == first
    second = Culprit(REV_B, "Break it again", "Bob <bob@example.com>", "http://m/#/builders/1/builds/9",
                     REV_C, None, T0 + 1)
    await registry.save_culprit(second)
    assert await registry.culprit() == second
    await registry.save_culprit(None)
    assert await registry.culprit() is None


Scenario = Callable[[Any], Awaitable[None]]

SCENARIOS: list[Scenario] = [
    an_upload_is_claimed_once_by_its_uploader,
    an_upload_cannot_be_claimed_by_another_user_and_stays_for_its_uploader,
    an_expired_upload_is_refused_and_gone,
    uploads_left_unclaimed_are_purged_by_a_later_upload,
    an_upload_token_that_is_not_a_token_finds_nothing_and_cannot_be_saved,
    a_cowboys_patch_is_kept_whole_and_patch_ids_are_cached_by_commit,
    an_unrecorded_change_stands_per_server_until_cleared,
    a_new_registry_names_no_culprit,
    a_saved_culprit_is_read_back_whole_and_a_new_one_replaces_it,
    a_new_registry_has_no_cowboys,
    cowboy_ids_start_at_one_and_increase,
    an_added_cowboy_holds_what_was_given,
    active_cowboys_are_listed_in_id_order,
    a_retired_cowboy_leaves_the_active_list,
    a_removed_cowboy_is_kept_with_its_end,
    ending_a_cowboy_twice_raises_unknown_cowboy,
    ending_an_unknown_cowboy_raises_unknown_cowboy,
    a_cowboy_cannot_be_ended_as_active,
    ids_are_never_reused_after_an_end,
    a_cowboy_as_json_holds_its_fields_and_whether_it_is_active,
    a_server_has_no_deployment_until_one_is_recorded,
    the_latest_deployment_of_a_server_wins,
    the_freeze_is_set_read_and_thawed,
    a_new_freeze_replaces_the_old_one,
    thawing_when_not_frozen_leaves_it_unfrozen,
    a_new_registry_has_an_empty_audit_log,
    audit_entries_come_back_newest_first_with_their_details,
    audit_entries_recorded_at_the_same_time_come_back_newest_first,
    the_audit_log_limit_keeps_the_newest,
    a_new_registry_has_no_events,
    events_come_back_oldest_first_with_their_details,
    events_since_a_time_leave_out_the_older_ones,
    events_are_not_audit_entries,
    a_new_registry_has_no_security_runs,
    a_saved_run_is_read_back_whole,
    a_new_push_replaces_the_run_of_its_branch_only,
    a_new_registry_has_no_releases,
    releases_are_kept_in_the_order_they_reached_production,
    a_new_run_of_the_branch_does_not_touch_its_releases,
    every_release_of_a_branch_is_kept,
    a_release_recorded_again_keeps_the_first_record,
    a_new_registry_has_no_merge_back_attempts,
    merge_back_attempts_come_back_oldest_first_with_what_they_brought,
    a_saved_job_is_found_by_its_token_only,
    a_job_records_what_its_build_decided,
    a_job_token_that_is_not_a_token_finds_nothing_and_cannot_be_saved,
    stored_states_come_back_as_the_core_enums,
]
