"""Who sees which audit entries: security work (who asked for a security build, when) is for the security role."""

from __future__ import annotations

from lpdeploy.core.model import AuditEntry
from lpdeploy.web.www import SECURITY_ACTIONS, visible_audit

ENTRIES = [AuditEntry(1.0, "alice", action, {}) for action in
           ("security-build", "security-promote", "merge-back", "promote", "deploy", "cowboy-add", "freeze")]


def test_a_losa_sees_the_release_flow_but_no_security_work():
    shown = {e.action for e in visible_audit(ENTRIES, {"losa"})}
    assert shown == {"promote", "deploy", "cowboy-add", "freeze"}
    assert not shown & SECURITY_ACTIONS


def test_a_security_user_sees_every_entry():
    assert visible_audit(ENTRIES, {"security"}) == ENTRIES
    assert visible_audit(ENTRIES, {"security", "losa"}) == ENTRIES
