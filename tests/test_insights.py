"""The dashboard's numbers (lpdeploy/core/insights.py): lead times and suite runs avoided, from flow events."""

from __future__ import annotations

import pytest

from lpdeploy.core.insights import DAY, lead_times, suite_numbers
from lpdeploy.core.model import AuditEntry

NOW = 1_800_000_000.0
A, B, C = "a" * 40, "b" * 40, "c" * 40


def event(at: float, action: str, **details: object) -> AuditEntry:
    return AuditEntry(at, "lpdeploy (automatic)", action, dict(details))


def moved(at: float, kind: str, revision: str) -> AuditEntry:
    return event(at, "moved", kind=kind, revision=revision, branches=["x"])


def test_a_promoted_revision_has_its_push_gate_promotion_and_first_deploy() -> None:
    events = [
        moved(NOW - 900, "promote", A),
        event(NOW - 800, "deployed", server="app1", revision=A),
        moved(NOW - 2000, "gate", A),
        event(NOW - 700, "deployed", server="app2", revision=A),  # a later deploy: not the first
    ]
    (lt,) = lead_times(events, {A: NOW - 3000}, NOW)
    assert (lt.revision, lt.pushed, lt.stable, lt.production, lt.deployed) == (A, NOW - 3000, NOW - 2000,
                                                                              NOW - 900, NOW - 800)
    assert lt.total == 2200  # push → first deploy


def test_a_security_release_counts_as_production_and_an_undeployed_one_ends_at_production() -> None:
    (lt,) = lead_times([moved(NOW - 100, "security", B)], {B: NOW - 400}, NOW)
    assert (lt.stable, lt.deployed, lt.total) == (None, None, 300)  # never gated: it skipped stable


def test_only_moves_to_production_in_the_window_with_a_known_push_count() -> None:
    events = [
        moved(NOW - 10, "gate", A),  # stable only: not production
        moved(NOW - 31 * DAY, "promote", B),  # older than 30 days
        moved(NOW - 10, "promote", C),  # no push time known
        moved(NOW - 5, "promote", A),
    ]
    assert [lt.revision for lt in lead_times(events, {A: NOW - 50, B: NOW - 40 * DAY}, NOW)] == [A]
    assert [lt.revision for lt in lead_times(events, {A: NOW - 50, B: NOW - 40 * DAY}, NOW, days=40)] == [B, A]


def test_lead_times_come_oldest_first_whatever_the_event_order() -> None:
    events = [moved(NOW - 10, "promote", B), moved(NOW - 20, "promote", A)]
    assert [lt.revision for lt in lead_times(events, {A: NOW - 30, B: NOW - 30}, NOW)] == [A, B]


def test_suite_numbers_count_runs_skips_saved_time_and_production_revisions() -> None:
    events = [
        event(NOW - 100, "suite-run", revision=A, passed=True),
        event(NOW - 90, "suite-run", revision=B, passed=False),
        event(NOW - 80, "suite-skipped", revision=A, saved=600.0),
        event(NOW - 70, "suite-skipped", revision=A, saved=None),  # an old entry without a duration
        moved(NOW - 60, "promote", A),
        moved(NOW - 50, "security", C),
        moved(NOW - 40, "promote", A),  # the same revision again: counted once
        moved(NOW - 30, "gate", B),  # not production
        event(NOW - 31 * DAY, "suite-run", revision=C, passed=True),  # outside the window
    ]
    n = suite_numbers(events, NOW)
    assert (n.runs, n.avoided, n.saved_seconds, n.production_revisions) == (2, 2, 600.0, 2)
    assert n.runs_per_production_revision == 1.0


def test_no_production_revision_means_no_ratio() -> None:
    assert suite_numbers([event(NOW, "suite-run", revision=A)], NOW).runs_per_production_revision is None


@pytest.mark.parametrize("action", ["audit", "promote", "deploy"])
def test_audit_entries_are_not_flow_events(action: str) -> None:
    """Audit actions (``promote``, ``deploy``) share the table's shape, not its meaning: never counted."""
    n = suite_numbers([event(NOW, action, revision=A, kind="promote")], NOW)
    assert (n.runs, n.avoided, n.production_revisions) == (0, 0, 0)
