"""A fix lpdeploy carries for Buildbot 4.3 on PostgreSQL: a database away for a while is waited for.

The defect (``buildbot/db/pool.py``, 4.3.0). ``DBThreadPool`` retries a
query after an ``OperationalError`` only when the engine strategy says so,
and for PostgreSQL that is never: the base strategy knows MySQL's "Lost
connection" and SQLite's "database is locked" only. The connection is also
taken from the pool outside the retry loop. So while PostgreSQL restarts
(a fail-over, ``pg_ctl restart``, a network blip) every database call fails
at once: a build step whose end cannot be written raises inside Buildbot's
own error handling ("error while formatting exceptions", "Unhandled Error"),
and the build **never finishes** — its request stays claimed, the gate sees
a build still testing that tip, and the flow stops until the master is
restarted. ``tests/test_e2e_failover.py`` showed it.

The fix, installed by ``install()``: a database call that fails because the
database cannot be reached — the connection is refused, the server is
shutting down or starting up, or a pooled connection was cut (SQLAlchemy
invalidates the pool then, so the next try connects afresh) — is tried again
in its database thread, waiting 0.5 s, then 1, 2, up to 5 s between tries,
for up to ``WAIT`` seconds of waiting in all; then the error is raised as before. Everything
else runs Buildbot's own code unchanged. While the database is away the
reactor keeps running; what needs the database waits for it, in order.

Only errors raised before the server could have done anything (no
connection, or a connection the server already dropped, which rolls back an
open transaction) are retried: a pooled connection cut between a commit and
its answer would repeat that commit — lpdeploy's own writes are
compare-and-swap or first-write-wins, so for them that is harmless.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from buildbot.db.pool import DBThreadPool
from twisted.python import log

WAIT = 300.0  # seconds a database call waits for the database before it fails
_ORIGINAL_THD = DBThreadPool._DBThreadPool__thd  # type: ignore[attr-defined]

# PostgreSQL's and libpq's words for "not reachable now" (psycopg 3 passes them through)
_UNREACHABLE = ("connection refused", "connection failed", "server closed the connection",
                "terminating connection", "the database system is shutting down",
                "the database system is starting up", "the database system is in recovery mode",
                "the connection is closed", "connection is lost", "could not connect")


def unreachable(message: str, invalidated: bool) -> bool:
    """Whether a database error says the server cannot be reached now (and nothing was done)."""
    text = message.lower()
    return invalidated or any(words in text for words in _UNREACHABLE)


def _waiting_thd(self: Any, with_engine: bool, callable: Any, *args: Any, **kwargs: Any) -> Any:
    """Buildbot's ``DBThreadPool.__thd``, tried again while the database is unreachable (in the DB thread)."""
    waited, delay = 0.0, 0.5
    while True:
        try:
            return _ORIGINAL_THD(self, with_engine, callable, *args, **kwargs)
        except sa.exc.DBAPIError as e:
            if not unreachable(str(e.orig), bool(e.connection_invalidated)) or waited + delay > WAIT:
                raise
            log.msg(f"lpdeploy: the database is unreachable ({str(e.orig).strip().splitlines()[0][:200]}); "
                    f"trying again in {delay:g} s")
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)


def install() -> None:
    """Patch ``DBThreadPool`` (idempotent); called by the configurator for every site."""
    DBThreadPool._DBThreadPool__thd = _waiting_thd  # type: ignore[attr-defined]


def installed() -> bool:
    return DBThreadPool._DBThreadPool__thd is _waiting_thd  # type: ignore[attr-defined]


def uninstall() -> None:
    """Buildbot's own code again (for tests that show the defect)."""
    DBThreadPool._DBThreadPool__thd = _ORIGINAL_THD  # type: ignore[attr-defined]
