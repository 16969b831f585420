"""A master killed (SIGKILL) at every step boundary of the flow, restarted, and the flow checked whole.

Real master, real worker, real git, SQLite. Each test starts its own site with
``LPDEPLOY_CRASH_AT=<point>`` in the master's environment only
(``lpdeploy/master/crashpoints.py``), drives the flow until the master kills
itself there, restarts it without the variable, waits until the flow settles
and checks what a crash must never do:

- a gated branch (stable, production-*) points at a tree that passed the suite;
- nothing is promoted twice: the upstream's reflog (``core.logAllRefUpdates``)
  shows each production branch moved to each revision at most once, the
  audit shows one promotion;
- nothing is deployed twice: the servers' deploy command appends
  "<server> <revision>" to a log file, each line at most once;
- no server is deployed over a cowboy; no released security fix is lost;
- nothing is left stuck: no build request or build pending, no security fix
  "queued" or "testing", the deploy lease free.

The killed build's request is queued again by Buildbot when the master
restarts (it finishes a dead master's builds as RETRY and unclaims its
requests); the tips are the truth for what that re-run decides.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lpdeploy.master.crashpoints import ENV, KILL_POINTS
from tests.flow_harness import BIN, Flow, git, wait_until

pytestmark = pytest.mark.e2e
GATED = ("stable", "production-devel", "production-stable")


def servers_toml(log: Path) -> str:
    """app1 and app2: each deploy appends "<server> <revision>" to ``log``; the check asks what the server runs."""
    runs = log.parent / "servers"
    runs.mkdir(exist_ok=True)
    record = ["sh", "-c", f'echo "$0 $1" >> {log}; echo "$1" > {runs}/"$0"', "{server}", "{revision}"]
    check = ["sh", "-c", f'grep -qx "$1" {runs}/"$0"', "{server}", "{revision}"]
    return "".join(f'[[servers]]\nname = "{name}"\ndeploy_command = {json.dumps(record)}\n'
                   f'check_command = {json.dumps(check)}\ncheck_timeout = 30\n' for name in ("app1", "app2"))


class CrashSite(Flow):
    """A ``Flow`` whose master starts with a kill point armed, dies there, and restarts disarmed."""

    pushed = ""  # what a gate kill point's site pushed to devel before the master started

    def __init__(self, base: Path, point: str) -> None:
        self.deploy_log = base / "deploys.log"
        super().__init__(base, extra_site=servers_toml(self.deploy_log))
        self.point = point

    def create(self) -> None:
        super().create()
        # every update of every upstream ref goes into its reflog: how often a branch moved, and to what
        git(f"--git-dir={self.upstream}", "config", "core.logAllRefUpdates", "always")

    def start_master(self, armed: bool) -> None:
        env = {**self.env, ENV: self.point} if armed else {k: v for k, v in self.env.items() if k != ENV}
        proc = subprocess.run([str(BIN / "buildbot"), "start", str(self.master_dir)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr + self.twistd_log()[-3000:]

    def start(self) -> None:
        if self.point.startswith("gate."):  # the master gates the untested devel tip as it starts
            self.pushed = self.commit("ok", "Gate me")
        self.start_master(armed=True)
        for name in self.workers:
            self.start_worker(name)

    def twistd_log(self) -> str:
        path = self.master_dir / "twistd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def master_pid(self) -> int:
        return int((self.master_dir / "twistd.pid").read_text().strip())

    def crashed_and_restarted(self, pid: int, timeout: float = 120) -> None:
        """Wait for the armed master (``pid``) to kill itself at the point; start it again, disarmed."""
        def dead() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False
        wait_until(dead, timeout, f"the master to die at {self.point}")
        assert f"kill point {self.point} reached" in self.twistd_log()
        self.start_master(armed=False)
        for name in self.workers:  # the workers stayed up and reconnect by themselves
            wait_until(lambda n=name: self.api(f"workers/{n}")["workers"][0]["connected_to"], 90,
                       f"{name} to reconnect")
        self.settle()

    # --- what the checks read ---------------------------------------------------------
    def moves(self, branch: str) -> Counter[str]:
        """How often the upstream's ``branch`` was set to each commit (its reflog)."""
        out = git(f"--git-dir={self.upstream}", "reflog", "show", "--format=%H", f"refs/heads/{branch}")
        return Counter(out.split())

    def deploys(self) -> Counter[str]:
        """How often each "<server> <revision>" was deployed (the servers' deploy commands' log)."""
        return Counter(self.deploy_log.read_text().splitlines() if self.deploy_log.exists() else [])

    def audit(self) -> list[dict[str, Any]]:
        result = self.cli("audit", "--json", "--all", user="alice")
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    def security(self) -> dict[str, Any]:
        with self.session("alice").open(self.url + "plugins/lpdeploy/status.json", timeout=30) as r:
            return dict(json.loads(r.read())["security"])

    def lease_rows(self) -> list[str]:
        with sqlite3.connect(self.master_dir / "state.sqlite") as db:
            return [row[0] for row in db.execute("SELECT value_json FROM object_state WHERE name LIKE 'lease/%'")]


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CrashSite]:
    s = CrashSite(tmp_path, request.param)
    yield from s.running()


# --- driving the flow to each point: returns what the checks need ------------------------


def pushed_before_the_start(s: CrashSite) -> dict[str, Any]:
    return {"stable": s.pushed}


def promote(s: CrashSite) -> dict[str, Any]:
    s.settle()
    sha = s.commit("ok", "Promote me")
    wait_until(lambda: s.tip("stable") == sha, 120, "the gate to move stable")
    s.settle()
    queued = s.cli("promote", "--no-wait", user="bob")
    assert queued.returncode == 0, queued.stderr
    return {"production-stable": sha, "promoted": sha}


def push_security_fix(s: CrashSite, name: str = "kill") -> str:
    branch = f"security/{name}"
    git("fetch", "--quiet", str(s.upstream), "refs/heads/production-stable", cwd=s.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=s.work)
    (s.work / "fix.txt").write_text(f"closed the {name} hole\n")
    git("add", "fix.txt", cwd=s.work)
    git("commit", "--quiet", "-m", f"Close the {name} hole", cwd=s.work)
    git("push", "--quiet", str(s.upstream), f"HEAD:refs/heads/{branch}", cwd=s.work)
    return git("rev-parse", "HEAD", cwd=s.work)


def release_fix(s: CrashSite) -> dict[str, Any]:
    s.settle()
    return {"production-stable": push_security_fix(s), "released": True}


def merge_back(s: CrashSite) -> dict[str, Any]:
    s.settle()
    fix = push_security_fix(s)
    wait_until(lambda: s.tip("production-stable") == fix, 120, "the fix to reach production")
    s.settle()
    deployed = s.cli("deploy", "--no-wait", user="bob")  # every server runs it: the merge-back is due
    assert deployed.returncode == 0, deployed.stderr
    return {"production-stable": fix, "released": True, "merged_back": fix, "deployed": {"app1": fix, "app2": fix}}


def deploy(s: CrashSite) -> dict[str, Any]:
    s.settle()
    target = s.tip("production-stable")
    queued = s.cli("deploy", "--no-wait", user="bob")
    assert queued.returncode == 0, queued.stderr
    return {"deployed": {"app1": target, "app2": target}}


def deploy_retiring_a_cowboy(s: CrashSite) -> dict[str, Any]:
    s.settle()
    sha = s.commit("ok", "The real fix of the hot patch")
    added = s.cli("cowboy", "add", "--server", "app1", "--reason", "hot patch", "--fixed-by", sha, user="bob")
    assert added.returncode == 0, added.stderr
    unfixed = s.cli("cowboy", "add", "--server", "app2", "--reason", "kernel tweak", user="bob")
    assert unfixed.returncode == 0, unfixed.stderr
    wait_until(lambda: s.tip("stable") == sha, 120, "the gate to move stable")
    s.settle()
    promoted = s.cli("promote", user="bob")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    queued = s.cli("deploy", "--no-wait", user="bob")  # app1: deployed, its cowboy retires; app2: refused
    assert queued.returncode == 0, queued.stderr
    return {"production-stable": sha, "promoted": sha, "deployed": {"app1": sha},
            "retired": added.stdout.split(), "kept": unfixed.stdout.split()}


DRIVE: dict[str, Callable[[CrashSite], dict[str, Any]]] = {
    "gate.after_suite": pushed_before_the_start,
    "gate.after_push": pushed_before_the_start,
    "promote.after_push": promote,
    "security.after_push": release_fix,
    "merge_back.after_push": merge_back,
    "deploy.after_command": deploy,
    "deploy.between_servers": deploy,
    "deploy.before_retire": deploy_retiring_a_cowboy,
}


def test_every_kill_point_is_driven_here() -> None:
    assert sorted(DRIVE) == sorted(KILL_POINTS)


@pytest.mark.parametrize("site", KILL_POINTS, indirect=True)
def test_a_master_killed_at_the_point_recovers_on_restart(site: CrashSite) -> None:
    pid = site.master_pid()
    expect = DRIVE[site.point](site)
    site.crashed_and_restarted(pid)
    if "merged_back" in expect:  # the merge goes through the gate after the restart
        wait_until(lambda: site.is_ancestor(expect["merged_back"], site.tip("stable") or ""), 120,
                   "the merged-back fix to reach stable")
        site.settle()

    # the work the killed build was doing is done, by the re-run of its request
    for branch in ("stable", "production-stable"):
        if branch in expect:
            assert site.tip(branch) == expect[branch], f"{branch} did not reach the revision after the restart"
    # the move is recorded once: the killed build recorded nothing, the re-run of its request did
    builder = "lpdeploy-promote" if "promoted" in expect else "lpdeploy-gate"
    if "promoted" in expect or "stable" in expect:
        revision = expect.get("promoted") or expect["stable"]
        builds = site.api(f"builders/{builder}/builds?property=lpdeploy_revision&property=lpdeploy_outcome")["builds"]
        moved = [b["number"] for b in builds if b["properties"].get("lpdeploy_revision", [None])[0] == revision
                 and b["properties"].get("lpdeploy_outcome", [None])[0] == "moved"]
        assert len(moved) == 1, f"builds {moved} of {builder} recorded the move to {revision[:12]}"
    # every gated branch points at a tested tree (or still at the site's first commit, which no one gated)
    branches = {b["name"]: b for b in site.status()["branches"]}
    for branch in GATED:
        tip = branches[branch]["tip"]
        assert branches[branch]["tested"] or tip == site.initial_commit(), f"{branch} at {tip[:12]} is untested"
    # nothing moved, promoted or deployed twice
    for branch in GATED:
        twice = {sha[:12]: n for sha, n in site.moves(branch).items() if n > 1}
        assert not twice, f"{branch} was moved to the same commit more than once: {twice}"
    audit = site.audit()
    if "promoted" in expect:
        promotions = [e for e in audit if e["action"] == "promote" and e["details"]["outcome"] == "moved"]
        assert [e["details"]["revision"] for e in promotions] == [expect["promoted"]]
    twice = {line: n for line, n in site.deploys().items() if n > 1}
    assert not twice, f"deployed more than once: {twice}"
    servers = {s["name"]: s for s in site.status()["servers"]}
    for name, revision in expect.get("deployed", {}).items():
        assert site.deploys()[f"{name} {revision}"] == 1, f"{name} did not get {revision[:12]} exactly once"
        assert servers[name]["deployed"] == revision, f"the deployment of {name} was not recorded"
        assert [e["details"]["server"] for e in audit if e["action"] == "deploy"
                and e["details"]["revision"] == revision].count(name) == 1, f"{name}'s deploy not audited once"
    # no server deployed over a cowboy; a cowboy whose fix is deployed is retired, once
    if "kept" in expect:
        assert not [line for line in site.deploys() if line.startswith("app2 ")], "app2 was deployed over its cowboy"
        assert [str(c["id"]) for c in servers["app2"]["cowboys"]] == expect["kept"]
        assert servers["app1"]["cowboys"] == []
        retired = [str(e["details"]["cowboy"]["id"]) for e in audit if e["action"] == "cowboy-retire"]
        assert retired == expect["retired"]
    # no released security fix lost, none left queued or testing
    security = site.security()
    if "released" in expect:
        (fix,) = security["fixes"]
        assert [r["fix_commit"] for r in fix["releases"]] == [expect["production-stable"]]
        assert site.is_ancestor(expect["production-stable"], site.tip("production-stable") or "")
    assert not [f["branch"] for f in security["fixes"] if f["state"] in ("queued", "testing")]
    if "merged_back" in expect:
        assert [f["state"] for f in security["fixes"]] == ["merged-back"]
    # no deploy lease left held
    assert site.lease_rows() == []
