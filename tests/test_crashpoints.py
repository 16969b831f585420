"""Kill points: inert unless the process's environment names one, then a real SIGKILL at that point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lpdeploy.master.crashpoints import ENV, KILL_POINTS, crash_point

CALL = "from lpdeploy.master.crashpoints import crash_point; crash_point({point!r}); print('survived')"


def run_point(point: str, armed: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if armed is not None:
        env[ENV] = armed
    return subprocess.run([sys.executable, "-c", CALL.format(point=point)], env=env, capture_output=True,
                          text=True, timeout=60)


def test_without_the_variable_a_kill_point_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    for point in KILL_POINTS:
        assert crash_point(point) is None


def test_the_named_point_kills_the_process_with_sigkill() -> None:
    done = run_point("deploy.after_command", armed="deploy.after_command")
    assert done.returncode == -signal.SIGKILL
    assert "survived" not in done.stdout


def test_another_point_leaves_the_process_alone() -> None:
    done = run_point("deploy.after_command", armed="gate.after_push")
    assert done.returncode == 0 and done.stdout.strip() == "survived"
