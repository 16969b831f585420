"""The database-outage fix: a call that cannot reach PostgreSQL waits and tries again; other errors do not.

The end-to-end case (PostgreSQL stopped during a gate build) is in
``test_e2e_failover.py``; here the rule itself, around Buildbot's pool function.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from buildbot.db.pool import DBThreadPool

from lpdeploy.master import db_outage


def error(message: str, invalidated: bool = False) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception(message), connection_invalidated=invalidated)


@pytest.mark.parametrize("message", [
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused',
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
    "FATAL: the database system is shutting down",
    "FATAL: the database system is starting up",
])
def test_postgresqls_words_for_an_unreachable_server_are_recognised(message: str) -> None:
    assert db_outage.unreachable(message, invalidated=False)


def test_other_errors_are_not_waited_for_unless_the_connection_was_invalidated() -> None:
    assert not db_outage.unreachable('duplicate key value violates unique constraint "object_state_pkey"', False)
    assert not db_outage.unreachable("syntax error at or near", False)
    assert db_outage.unreachable("SSL SYSCALL error", invalidated=True)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    slept: list[float] = []
    monkeypatch.setattr(db_outage.time, "sleep", slept.append)
    return slept


def run(monkeypatch: pytest.MonkeyPatch, outcomes: list[Any]) -> Any:
    """``_waiting_thd`` around a stand-in for Buildbot's function that raises or returns ``outcomes`` in turn."""
    tried = []

    def original(self: Any, with_engine: bool, callable: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(1)
        outcome = outcomes[len(tried) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(db_outage, "_ORIGINAL_THD", original)
    return db_outage._waiting_thd(None, False, lambda conn: None), len(tried)


def test_a_call_made_while_the_database_restarts_waits_and_then_succeeds(monkeypatch, calls) -> None:
    refused = error("connection failed: Connection refused")
    result = run(monkeypatch, [refused, refused, error("x", invalidated=True), "rows"])
    assert result == ("rows", 4)
    assert calls == [0.5, 1.0, 2.0]


def test_another_database_error_is_raised_at_once(monkeypatch, calls) -> None:
    with pytest.raises(sa.exc.OperationalError):
        run(monkeypatch, [error("deadlock detected"), "rows"])
    assert calls == []


def test_the_wait_is_bounded(monkeypatch, calls) -> None:
    monkeypatch.setattr(db_outage, "WAIT", 3.0)  # 0.5 + 1 + 2 > 3: the third wait would pass the bound
    with pytest.raises(sa.exc.OperationalError):
        run(monkeypatch, [error("Connection refused")] * 10)
    assert calls == [0.5, 1.0]


def test_the_configurator_installs_the_fix() -> None:
    from lpdeploy import configurator
    from lpdeploy.core.settings import parse_settings

    db_outage.uninstall()
    configurator.apply({}, parse_settings({"repository": {"url": "file:///srv/lp.git"}}))
    assert db_outage.installed()
    assert DBThreadPool._DBThreadPool__thd is db_outage._waiting_thd  # type: ignore[attr-defined]
