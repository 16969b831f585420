"""A fresh clone of this repository and ``make run`` in it, exactly as a new user runs it.

Not a test module: ``tests/test_e2e_make_run.py`` and ``tests/test_readme_quickstart.py``
use it. What is cloned is this checkout's **committed HEAD** (``git clone`` of
the working tree's repository): uncommitted changes are not in the clone.

- ``shared_clone(request)``: one clone per test session, made by whichever
  module asks first, so ``make run`` builds the clone's ``.venv`` (pip) once.
  Its ``.venv`` is removed when the session ends.
- ``MakeRun``: ``make run`` (or any long-running command) as a subprocess in
  its own process group, its output collected line by line; ``stop()`` sends
  SIGTERM to the whole group (as a terminal's Ctrl-C does) or to make alone.
- ``processes_under(root)`` and ``port_free(port)``: what must be true after a stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB_UI = "lpdeploy run: web UI at"
STARTED_WITHIN = 600  # seconds: the first `make run` of a fresh clone builds .venv with pip
STOPPED_WITHIN = 90  # seconds for `make run` to exit after SIGTERM (localrun waits up to 30 s per part)
_clones: dict[str, Path] = {}


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user at a shell: nothing of an outer make, pytest or lpdeploy session."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LPDEPLOY_", "MAKE", "PYTEST_")) and k not in ("MFLAGS", "VIRTUAL_ENV")}
    return {**env, **extra}


def shared_clone(request: pytest.FixtureRequest) -> Path:
    """A ``git clone`` of this repository's committed HEAD, one per session; its .venv goes at the end."""
    if "path" not in _clones:
        base = request.getfixturevalue("tmp_path_factory").mktemp("fresh-clone")
        path = base / "lpdeploy"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True, capture_output=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        cloned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout
        assert cloned == head, f"the clone is at {cloned.strip()}, this checkout at {head.strip()}"
        _clones["path"] = path
        request.config.add_cleanup(lambda: shutil.rmtree(path / ".venv", ignore_errors=True))
    return _clones["path"]


class MakeRun:
    """A long-running command (``make run``) in its own process group; always stopped on exit."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = STARTED_WITHIN) -> float:
        """Wait until a line contains ``text``; fail at once if the command exits first. Returns seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"{' '.join(self.argv)} exited ({self.proc.returncode}) before printing "
                                     f"{text!r}:\n{self.output[-4000:]}")
            time.sleep(0.3)
        raise AssertionError(f"{' '.join(self.argv)} printed no {text!r} within {timeout}s:\n{self.output[-4000:]}")

    def stop(self, group: bool = True) -> int | None:
        """SIGTERM to the process group (Ctrl-C's way), or to make alone (``kill PID``'s way).

        Returns make's exit status as soon as make has exited (its output may still be
        arriving: see ``all_output``), so that what is left at that moment can be checked;
        fails (after SIGKILL to the group) if make does not exit in time.
        """
        try:
            if group:
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                self.proc.terminate()
        except ProcessLookupError:
            pass
        try:
            status = self.proc.wait(timeout=STOPPED_WITHIN)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(f"{' '.join(self.argv)} did not exit within {STOPPED_WITHIN}s of SIGTERM:\n"
                                 f"{self.output[-4000:]}") from None
        return status

    def all_output(self) -> str:
        """The output once every writer has closed it (a process left behind keeps it open: 5 s at most)."""
        self._reader.join(5)
        return self.output

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def __enter__(self) -> MakeRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:  # a failed test: leave nothing running
            try:
                self.stop()
            except AssertionError:
                pass


def processes_under(root: Path) -> list[str]:
    """Live processes whose command line or working directory is under ``root`` (read from /proc)."""
    prefix = str(root) + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone meanwhile, or a zombie
            continue
        if prefix in cmdline or cwd == str(root) or cwd.startswith(prefix):
            found.append(f"pid {entry.name} (cwd {cwd}): {cmdline}")
    return found


def port_free(port: int, interface: str = "127.0.0.1") -> bool:
    """True when a server could listen on ``port`` now (as Twisted does, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((interface, port))
        except OSError:
            return False
    return True


def assert_all_gone(clone: Path, *ports: int) -> None:
    """After a stop: no process of the run is left and every port it used is free again."""
    left = processes_under(clone)
    assert not left, "processes left behind:\n" + "\n".join(left)
    taken = [p for p in ports if not port_free(p)]
    assert not taken, f"ports still taken after the stop: {taken}"
