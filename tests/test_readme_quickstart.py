"""The README's quick start, run exactly as written on a fresh clone.

The commands are the ``$ ``-lines of the ``.. code-block:: console`` blocks
under the "Quick start" heading of README.rst (read from the clone, i.e. the
committed HEAD; see ``tests/fresh_clone.py``). Each block is a terminal: in
every block but the last the commands keep running (``make run``) and must
print the "web UI at" line; the last block's commands run in order in one
bash, as typed into a second terminal, and each must succeed. Then SIGTERM
goes to the first terminal's process group, and nothing may be left running.
A README edit that breaks a command (a renamed make target, a wrong path)
fails here.
"""

from __future__ import annotations

import shlex
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.fresh_clone import WEB_UI, MakeRun, assert_all_gone, port_free, shared_clone, user_env

DEMO_PORTS = (8010, 9989)


def _is_underline(line: str, title: str) -> bool:
    return bool(title.strip()) and len(set(line)) == 1 and line[0] in "=-~^\"'`#*+" and len(line) >= len(title)


def quick_start(readme: str) -> list[list[str]]:
    """The commands of the "Quick start" section: one list per console block (a terminal)."""
    lines = readme.splitlines()
    start = next(i for i in range(len(lines) - 1)
                 if lines[i] == "Quick start" and _is_underline(lines[i + 1], lines[i]))
    end = next((i for i in range(start + 2, len(lines) - 1) if _is_underline(lines[i + 1], lines[i])), len(lines))
    terminals: list[list[str]] = []
    in_block = False
    for line in lines[start + 2:end]:
        if line.strip() == ".. code-block:: console":
            terminals.append([])
            in_block = True
        elif in_block and line and not line[0].isspace():
            in_block = False
        elif in_block and line.strip().startswith("$ "):
            terminals[-1].append(line.strip()[2:])
    return terminals


def test_the_quick_start_is_found_block_by_block() -> None:
    readme = """Getting started
===============

Quick start
-----------

.. code-block:: console

    $ make run
    lpdeploy run: web UI at ...

Then:

.. code-block:: console

    $ .venv/bin/lpdeploy status
    $ export A=1

Your own site
-------------

.. code-block:: console

    $ not this one
"""
    assert quick_start(readme) == [["make run"], [".venv/bin/lpdeploy status", "export A=1"]]


def test_the_readme_has_a_runnable_quick_start() -> None:
    terminals = quick_start((Path(__file__).resolve().parent.parent / "README.rst").read_text())
    assert len(terminals) >= 2 and all(terminals), terminals
    commands = [c for t in terminals for c in t]
    assert not any("make test" in c for c in commands), "the quick start must not run the test suite itself"


@pytest.fixture(scope="module")
def clone(request: pytest.FixtureRequest) -> Path:
    return shared_clone(request)


@pytest.mark.e2e
@pytest.mark.serial  # shares the fresh clone and uses the demo ports
@pytest.mark.timeout(900)
def test_the_quick_start_runs_as_written_on_a_fresh_clone(clone: Path) -> None:
    terminals = quick_start((clone / "README.rst").read_text())
    assert len(terminals) >= 2 and all(terminals), f"no quick start of two terminals in README.rst: {terminals}"
    taken = [p for p in DEMO_PORTS if not port_free(p)]
    assert not taken, f"the demo's fixed ports {taken} are taken on this machine: stop whatever listens there"
    subprocess.run(["rm", "-rf", str(clone / ".run")], check=True)  # the demo as on a fresh clone (.venv stays)
    with ExitStack() as stack:
        running = []
        for command in (c for t in terminals[:-1] for c in t):
            run = stack.enter_context(MakeRun(["bash", "-c", command], clone, user_env()))
            run.wait_for(WEB_UI)
            running.append(run)
        script = "set -eu\n" + "".join(f"echo {shlex.quote('$ ' + c)}\n{c}\n" for c in terminals[-1])
        second = subprocess.run(["bash", "-c", script], cwd=clone, env=user_env(), capture_output=True, text=True,
                                timeout=600, stdin=subprocess.DEVNULL)
        if second.returncode != 0:  # pytest.fail: the whole transcript, never truncated
            pytest.fail(f"the second terminal failed ({second.returncode}):\n{second.stdout}{second.stderr}")
        for run in reversed(running):
            run.stop()
        assert_all_gone(clone, *DEMO_PORTS)  # at once: make returns only when everything is gone
        for run in running:
            assert "lpdeploy run: stopped" in run.all_output(), run.output[-3000:]
