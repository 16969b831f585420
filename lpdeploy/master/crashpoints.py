"""Kill points: a test hook that kills the master (SIGKILL) at a named step boundary.

The flow must survive a crash at any point (the git tips are the truth, every
state that matters is in the database, Buildbot re-runs the build requests a
dead master left behind). ``tests/test_e2e_killpoints.py`` proves it by
starting a master with ``LPDEPLOY_CRASH_AT=<point>`` in its environment,
driving the flow to that point, and restarting the master without it.

Inert in production: ``crash_point`` does nothing unless the master's own
environment names that exact point. It then kills its own process with
SIGKILL — a real ``kill -9``: no ``finally``, no reactor shutdown, no
database commit after it.
"""

from __future__ import annotations

import os
import signal

from twisted.python import log

ENV = "LPDEPLOY_CRASH_AT"

# every point the steps call, in flow order; the test kills the master at each
KILL_POINTS = (
    "gate.after_suite",  # the suite passed and the ledger has it; stable not moved yet
    "gate.after_push",  # stable moved upstream; the move not yet recorded (event, outcome)
    "promote.after_push",  # production-* moved upstream; the promotion not yet audited
    "security.after_push",  # production-* moved to the tested fix; its release not yet recorded
    "merge_back.after_push",  # the merge of a released fix pushed to devel; the attempt not yet recorded
    "deploy.after_command",  # a server's deploy command succeeded; the deployment not yet recorded
    "deploy.between_servers",  # one server deployed and recorded; the next one not started
    "deploy.before_retire",  # a deployment recorded; the cowboys its fix covers not yet retired
)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``LPDEPLOY_CRASH_AT`` names ``name``; otherwise do nothing."""
    if os.environ.get(ENV) != name:
        return
    log.msg(f"lpdeploy: kill point {name} reached: SIGKILL")
    os.kill(os.getpid(), signal.SIGKILL)
