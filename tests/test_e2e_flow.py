"""The release story end to end: real master, real worker, real git, the real CLI.

The tests run in order against one installation, like a week in the life of
the flow: pushes are gated, a broken push is stopped, a tested tree is not
tested again, stable is promoted with no re-test, the ledger survives a
restart and pushes made while the master was down are picked up.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import BIN, ROOT, Flow, wait_until

pytestmark = pytest.mark.e2e
GATE = "lpdeploy-gate"
PROMOTE = "lpdeploy-promote"
SKIPPED = 3
SUCCESS = 0
FAILURE = 2


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    f = Flow(tmp_path_factory.mktemp("flow"))
    yield from f.running()


@pytest.fixture(scope="module")
def state() -> dict[str, str]:
    """Facts one story step leaves for the next."""
    return {}


def test_startup_gates_the_untested_devel_tip_from_the_tips(flow: Flow, state: dict[str, str]) -> None:
    # nothing was pushed since start: the gate reconciles from the tips and
    # tests the initial devel tip once; stable already holds it
    build = flow.wait_builds(GATE, 1)
    assert build["results"] == SUCCESS
    assert flow.suite_runs() == [flow.tip("devel")]
    state["initial"] = flow.tip("devel") or ""


def test_push_to_devel_moves_stable_to_exactly_the_tested_commit(flow: Flow, state: dict[str, str]) -> None:
    sha = flow.commit("ok", "Add a feature")
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to reach the pushed commit")
    build = flow.wait_builds(GATE, 2)
    assert build["results"] == SUCCESS
    assert flow.suite_runs()[-1] == sha
    state["good"] = sha


def test_failing_push_leaves_stable_where_it_was(flow: Flow, state: dict[str, str]) -> None:
    bad = flow.commit("broken", "Break everything")
    build = flow.wait_builds(GATE, 3)
    assert build["results"] == FAILURE
    assert flow.suite_runs()[-1] == bad
    assert flow.tip("stable") == state["good"]
    assert flow.steps(build)["suite"]["results"] == FAILURE
    status = flow.cli("status")
    assert status.returncode == 0
    assert "FAILED" in status.stdout
    state["bad"] = bad


def test_revert_to_a_tested_tree_skips_the_suite_and_names_the_earlier_build(
    flow: Flow, state: dict[str, str]
) -> None:
    runs_before = len(flow.suite_runs())
    revert = flow.revert_head()  # same tree as state["good"], already tested in build #2
    wait_until(lambda: flow.tip("stable") == revert, 90, "stable to reach the revert")
    build = flow.wait_builds(GATE, 4)
    assert build["results"] == SUCCESS
    assert len(flow.suite_runs()) == runs_before, "the suite ran again on an already tested tree"
    steps = flow.steps(build)
    assert steps["suite"]["results"] == SKIPPED
    decision = flow.step_log(build, "decide", "decision")
    assert "already passed the suite in build #2" in decision
    state["revert"] = revert


def test_promote_moves_production_without_running_the_suite(flow: Flow, state: dict[str, str]) -> None:
    runs_before = len(flow.suite_runs())
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert "moving production-devel, production-stable" in result.stdout
    assert flow.tip("production-devel") == state["revert"]
    assert flow.tip("production-stable") == state["revert"]
    assert len(flow.suite_runs()) == runs_before
    build = flow.wait_builds(PROMOTE, 1)
    assert flow.steps(build)["suite"]["results"] == SKIPPED


def test_promote_again_is_a_success_with_nothing_to_do(flow: Flow) -> None:
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout


def test_promote_needs_the_losa_role(flow: Flow, state: dict[str, str]) -> None:
    for user in ("alice", None):
        result = flow.cli("promote", user=user)
        assert result.returncode == 1
        assert "not allowed" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_promote_refuses_a_revision_not_on_stable(flow: Flow, state: dict[str, str]) -> None:
    side = flow.commit("ok", "Work on a side branch", branch="feature/side")
    result = flow.cli("promote", "--revision", side, user="bob")
    assert result.returncode == 1
    assert f"revision {side[:12]} is not on stable" in result.stderr
    assert flow.tip("production-stable") == state["revert"]


def test_bad_revision_input_is_refused_before_anything_is_sent(flow: Flow) -> None:
    builds = len(flow.builds(PROMOTE))
    for bad in ("abc123", "--upload-pack=touch /tmp/lpdeploy-pwned", "HEAD"):
        result = flow.cli("promote", "--revision", bad, user="bob")
        assert result.returncode == 2, bad
        assert "invalid --revision" in result.stderr
    assert len(flow.builds(PROMOTE)) == builds
    assert not Path("/tmp/lpdeploy-pwned").exists()


def test_untested_commit_pushed_to_stable_is_tested_before_promotion(flow: Flow, state: dict[str, str]) -> None:
    direct = flow.commit("ok", "Hotfix pushed straight to stable", branch="stable")
    runs_before = len(flow.suite_runs())
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert flow.suite_runs()[runs_before:] == [direct]
    assert flow.tip("production-stable") == direct
    state["direct"] = direct


def test_restart_keeps_the_ledger_and_picks_up_pushes_made_while_down(
    flow: Flow, state: dict[str, str]
) -> None:
    gate_builds = len(flow.builds(GATE))
    flow.stop()
    # while the master is down: bring devel up to the hotfix pushed to stable, then one more commit
    subprocess.run(["git", "--git-dir", str(flow.upstream), "update-ref", "refs/heads/devel", state["direct"]],
                   check=True)
    sha = flow.commit("ok", "Pushed while the master was down")
    flow.start()
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to reach the commit pushed while down")
    status = flow.cli("status", "--json")
    assert status.returncode == 0
    branches = {b["name"]: b for b in json.loads(status.stdout)["branches"]}
    assert branches["production-stable"]["tested"] is True
    assert branches["production-stable"]["tip"] == state["direct"]
    assert branches["stable"]["tip"] == sha and branches["stable"]["tested"]
    assert len(flow.builds(GATE)) > gate_builds


def test_invalid_site_file_fails_checkconfig_naming_the_key(tmp_path: Path) -> None:
    site = tmp_path / "bad.toml"
    site.write_text('[repository]\nurl = "file:///srv/x.git"\n[suite]\ncommand = "make check"\n')
    proc = subprocess.run([str(BIN / "buildbot"), "checkconfig", str(ROOT / "master.cfg")],
                          env={"LPDEPLOY_CONFIG": str(site), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "suite.command" in out
    assert "Traceback" not in out
