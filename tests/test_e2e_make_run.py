"""``make run`` as a new user runs it: a fresh clone, their own site file, Ctrl-C at the end.

The clone is a ``git clone`` of this repository's **committed HEAD** (see
``tests/fresh_clone.py``); its first ``make run`` builds the clone's own
``.venv`` with pip, so the module shares one clone. Each test writes its own
site file with its own bare upstream, a tiny suite and free ports (the demo
test uses the demo's fixed ports 8010 and 9989 and fails if they are taken),
starts ``make run`` in its own process group, drives the flow from outside
(a push to devel; ``lpdeploy status`` through the console script installed in
the clone's ``.venv``), then sends SIGTERM to the group (or to make alone, as
``kill PID`` does) and checks that make exits, that no process of the run is
left (a suite still running included) and that both ports are free.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.flow_harness import free_port, git, wait_until
from tests.fresh_clone import WEB_UI, MakeRun, assert_all_gone, port_free, shared_clone, user_env

pytestmark = [pytest.mark.e2e, pytest.mark.serial, pytest.mark.timeout(900)]  # serial: shares one clone
SUITE = """#!/bin/sh
# the whole suite: record the commit it ran on; "slow" runs until stopped; pass unless app.txt says broken
git rev-parse HEAD >> "$1"
if grep -q "^status: slow" app.txt; then sleep 600; fi
grep -q "^status: ok" app.txt
"""
DEMO_PORTS = (8010, 9989)


@pytest.fixture(scope="module")
def clone(request: pytest.FixtureRequest) -> Path:
    return shared_clone(request)


class Site:
    """A user's own site: a bare upstream with the four flow branches, a work tree, a site file."""

    def __init__(self, base: Path) -> None:
        self.upstream, self.work, self.runs = base / "upstream.git", base / "work", base / "suite-runs.log"
        self.www_port, self.worker_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.www_port}/"
        self.file = base / "site.toml"
        git("init", "--quiet", "--bare", "--initial-branch=devel", str(self.upstream))
        git("init", "--quiet", "--initial-branch=devel", str(self.work))
        (self.work / "run-tests.sh").write_text(SUITE)
        (self.work / "app.txt").write_text("status: ok\nversion: 0\n")
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", "Initial release", cwd=self.work)
        for branch in ("devel", "stable", "production-devel", "production-stable"):
            git("push", "--quiet", str(self.upstream), f"HEAD:refs/heads/{branch}", cwd=self.work)
        self.file.write_text(f"""title = "my site"
[repository]
url = "{self.upstream}"
poll_interval = 1
[suite]
command = ["sh", "run-tests.sh", "{self.runs}"]
[www]
port = {self.www_port}
url = "{self.url}"
[workers]
port = {self.worker_port}
password = "my-own-worker-secret"
""")

    def push(self, message: str, status: str = "ok") -> str:
        commits = len(git("log", "--oneline", cwd=self.work).splitlines())
        (self.work / "app.txt").write_text(f"status: {status}\nversion: {commits}\n")
        git("commit", "--quiet", "-am", message, cwd=self.work)
        git("push", "--quiet", str(self.upstream), "HEAD:refs/heads/devel", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tip(self, branch: str) -> str:
        return git("ls-remote", str(self.upstream), f"refs/heads/{branch}").split()[0]

    def suite_runs(self) -> list[str]:
        return self.runs.read_text().split() if self.runs.exists() else []

    def make_run(self, clone: Path) -> MakeRun:
        return MakeRun(["make", "run"], clone, user_env(LPDEPLOY_CONFIG=str(self.file)))


def status(clone: Path, url: str) -> dict[str, dict[str, object]]:
    """``lpdeploy status --json`` through the console script the clone's ``make run`` installed."""
    proc = subprocess.run([str(clone / ".venv" / "bin" / "lpdeploy"), "status", "--json"], cwd=clone,
                          env=user_env(LPDEPLOY_URL=url), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {b["name"]: b for b in json.loads(proc.stdout)["branches"]}


def stop_and_check(run: MakeRun, clone: Path, *ports: int, group: bool = True) -> None:
    run.stop(group)
    assert_all_gone(clone, *ports)  # at once: make returns only when everything is gone
    assert "lpdeploy run: stopped" in run.all_output(), run.output[-3000:]


def test_own_site_on_a_fresh_clone_gates_a_push_and_stops_cleanly(clone: Path, tmp_path: Path) -> None:
    site = Site(tmp_path)
    with site.make_run(clone) as run:
        run.wait_for(WEB_UI)
        assert f"{WEB_UI} {site.url}" in run.output
        sha = site.push("Add the search page")
        wait_until(lambda: site.tip("stable") == sha, 120, "stable to reach the pushed commit")
        branches = status(clone, site.url)
        assert branches["stable"]["tip"] == sha and branches["stable"]["tested"], branches["stable"]
        slow = site.push("A change whose suite is still running at Ctrl-C", status="slow")
        wait_until(lambda: slow in site.suite_runs(), 120, "the suite to start on the slow change")
        stop_and_check(run, clone, site.www_port, site.worker_port)  # the running suite goes too


def test_a_second_make_run_keeps_the_database(clone: Path, tmp_path: Path) -> None:
    site = Site(tmp_path)
    with site.make_run(clone) as run:
        run.wait_for(WEB_UI)
        initial = site.tip("devel")
        wait_until(lambda: initial in site.suite_runs(), 120, "the gate to test the initial devel tip")
        tested_by = wait_until(lambda: status(clone, site.url)["stable"]["tested_by"], 60, "the tip to be recorded")
        stop_and_check(run, clone, site.www_port, site.worker_port, group=False)  # `kill PID` stops it all too
    with site.make_run(clone) as run:
        run.wait_for(WEB_UI, 180)
        assert status(clone, site.url)["stable"]["tested_by"] == tested_by  # the ledger survived the restart
        sha = site.push("Work after the restart")
        wait_until(lambda: site.tip("stable") == sha, 120, "stable to reach the pushed commit")
        assert site.suite_runs() == [initial, sha], "the initial tip was tested again: the database was lost"
        stop_and_check(run, clone, site.www_port, site.worker_port)


def test_the_demo_on_a_fresh_clone(clone: Path) -> None:
    taken = [p for p in DEMO_PORTS if not port_free(p)]
    assert not taken, f"the demo's fixed ports {taken} are taken on this machine: stop whatever listens there"
    run_dir = clone / ".run"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)  # the demo as on a fresh clone (.venv stays)
    with MakeRun(["make", "run"], clone, user_env()) as run:
        run.wait_for(WEB_UI)
        assert f"{WEB_UI} http://localhost:8010/" in run.output
        upstream = run_dir / "demo-upstream.git"
        devel = git("rev-parse", "refs/heads/devel", cwd=upstream)
        wait_until(lambda: git("rev-parse", "refs/heads/stable", cwd=upstream) == devel, 120,
                   "the demo's stable to reach its devel tip")
        assert status(clone, "http://localhost:8010/")["stable"]["tested"]
        assert (run_dir / "demo-passwords.txt").read_text().split()[::2] == ["alice", "bob"]
        stop_and_check(run, clone, *DEMO_PORTS)
