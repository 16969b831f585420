"""The release story end to end: real master, real worker, real git, the real CLI.

A week in the life of the flow, one scene per test: pushes are gated, a
broken push is stopped, a tested tree is not tested again, stable is promoted
with no re-test, the ledger survives a restart and pushes made while the
master was down are picked up. The scenes share one installation (one master
per module, for speed) but no facts: each starts from nothing pending and
sets up the state it needs with the ``given_*`` helpers of ``Flow``, so any
one of them runs alone (``pytest tests/test_e2e_flow.py::test_x``) and in any
order.
"""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def nothing_pending(flow: Flow) -> None:
    """Every scene starts when the previous one (if any) has fully played out."""
    flow.settle()


def property_of(flow: Flow, build: dict, name: str) -> object:
    return flow.api(f"builds/{build['buildid']}/properties")["properties"][0].get(name, [None])[0]


def test_startup_gates_the_untested_devel_tip_from_the_tips(flow: Flow) -> None:
    # nothing had been pushed when the master started: the gate reconciled from
    # the tips and tested the initial devel tip once; stable already held it
    initial = flow.initial_commit()
    first = flow.builds(GATE)[0]
    assert first["number"] == 1 and first["complete"]
    assert first["results"] == SUCCESS
    assert property_of(flow, first, "lpdeploy_revision") == initial
    assert property_of(flow, first, "lpdeploy_outcome") == "nothing"
    assert flow.suite_runs()[0] == initial
    assert flow.suite_runs().count(initial) == 1


def test_push_to_devel_moves_stable_to_exactly_the_tested_commit(flow: Flow) -> None:
    flow.given_devel_holds_stable()
    runs_before = len(flow.suite_runs())
    sha = flow.commit("ok", "Add a feature")
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to reach the pushed commit")
    flow.settle()
    build = flow.build_for(GATE, sha)
    assert build["results"] == SUCCESS
    assert property_of(flow, build, "lpdeploy_outcome") == "moved"
    assert flow.suite_runs()[runs_before:] == [sha]


def test_failing_push_leaves_stable_where_it_was(flow: Flow) -> None:
    good = flow.given_stable_at("A good change")
    runs_before = len(flow.suite_runs())
    bad = flow.commit("broken", "Break everything")
    flow.settle()
    build = flow.build_for(GATE, bad)
    assert build["results"] == FAILURE
    assert flow.steps(build)["suite"]["results"] == FAILURE
    assert flow.suite_runs()[runs_before:] == [bad]
    assert flow.tip("stable") == good
    status = flow.cli("status")
    assert status.returncode == 0
    assert "FAILED" in status.stdout


def test_revert_to_a_tested_tree_skips_the_suite_and_names_the_earlier_build(flow: Flow) -> None:
    good = flow.given_stable_at("A change that passes")
    tested_in = flow.build_for(GATE, good)["number"]
    flow.commit("broken", "Break everything")
    flow.settle()
    runs_before = len(flow.suite_runs())
    revert = flow.revert_head()  # the same tree as good: already tested
    wait_until(lambda: flow.tip("stable") == revert, 90, "stable to reach the revert")
    flow.settle()
    assert flow.suite_runs()[runs_before:] == [], "the suite ran again on an already tested tree"
    build = flow.build_for(GATE, revert)
    assert build["results"] == SUCCESS
    assert flow.steps(build)["suite"]["results"] == SKIPPED
    assert f"already passed the suite in build #{tested_in}" in flow.step_log(build, "decide", "decision")


def test_promote_moves_production_without_running_the_suite(flow: Flow) -> None:
    sha = flow.given_stable_at("Ready for production")
    runs_before = len(flow.suite_runs())
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert "moving production-devel, production-stable" in result.stdout
    assert flow.tip("production-devel") == sha
    assert flow.tip("production-stable") == sha
    assert flow.suite_runs()[runs_before:] == []
    assert flow.steps(flow.build_for(PROMOTE, sha))["suite"]["results"] == SKIPPED


def test_promote_again_is_a_success_with_nothing_to_do(flow: Flow) -> None:
    sha = flow.given_promoted("Promoted once")
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert flow.tip("production-stable") == sha


def test_promote_needs_the_losa_role(flow: Flow) -> None:
    flow.given_stable_at("Waiting for a losa")
    before = flow.tip("production-stable")
    for user in ("alice", None):
        result = flow.cli("promote", user=user)
        assert result.returncode == 1
        assert "not allowed" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert flow.tip("production-stable") == before


def test_promote_refuses_a_revision_not_on_stable(flow: Flow) -> None:
    production = flow.given_promoted("On production")
    side = flow.commit("ok", "Work on a side branch", branch="feature/side")
    result = flow.cli("promote", "--revision", side, user="bob")
    assert result.returncode == 1
    assert f"revision {side[:12]} is not on stable" in result.stderr
    assert flow.tip("production-stable") == production


def test_bad_revision_input_is_refused_before_anything_is_sent(flow: Flow) -> None:
    builds = len(flow.builds(PROMOTE))
    pwned = flow.base / "pwned"
    for bad in ("abc123", f"--upload-pack=touch {pwned}", "HEAD"):
        result = flow.cli("promote", "--revision", bad, user="bob")
        assert result.returncode == 2, bad
        assert "invalid --revision" in result.stderr
    assert len(flow.builds(PROMOTE)) == builds
    assert not pwned.exists()


def test_untested_commit_pushed_to_stable_is_tested_before_promotion(flow: Flow) -> None:
    flow.given_promoted("Everything promoted")
    direct = flow.commit("ok", "Hotfix pushed straight to stable", branch="stable")
    runs_before = len(flow.suite_runs())
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert flow.suite_runs()[runs_before:] == [direct]
    assert flow.tip("production-stable") == direct


def test_restart_keeps_the_ledger_and_picks_up_pushes_made_while_down(flow: Flow) -> None:
    production = flow.given_promoted("Promoted before the restart")
    flow.stop()
    sha = flow.commit("ok", "Pushed while the master was down")
    flow.start()
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to reach the commit pushed while down")
    flow.settle()
    assert flow.build_for(GATE, sha)["results"] == SUCCESS
    branches = {b["name"]: b for b in flow.status()["branches"]}
    # the ledger entry of production's tree was written before the restart
    assert branches["production-stable"]["tip"] == production
    assert branches["production-stable"]["tested"] is True
    assert branches["stable"]["tip"] == sha and branches["stable"]["tested"] is True
    assert flow.suite_runs().count(production) == 1  # not tested again after the restart


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
