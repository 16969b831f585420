"""A LOSA's week end to end: deploys, cowboys, freeze, rollback, restart.

Real master, real worker, real git; the servers are simulated by deploy
commands that write the deployed revision into a file per server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e


def servers_toml(base: Path) -> str:
    out = base / "servers"
    out.mkdir()
    write = ["sh", "-c", f'echo "$1" > {out}/"$0"', "{server}", "{revision}"]
    return f"""
[[servers]]
name = "app1"
deploy_command = {json.dumps(write)}
[[servers]]
name = "app2"
deploy_command = {json.dumps(write)}
[[servers]]
name = "staging"
deploy_command = {json.dumps(write)}
auto_deploy = "stable"
[[servers]]
name = "broken"
deploy_command = ["sh", "-c", "echo cannot reach $0; exit 3", "{{server}}"]
[[servers]]
name = "stuck"
deploy_command = ["sleep", "60"]
timeout = 2
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("deploy")
    f = Flow(base, extra_site=servers_toml(base))
    yield from f.running()


def deployed(flow: Flow, server: str) -> str | None:
    path = flow.base / "servers" / server
    return path.read_text().strip() if path.exists() else None


def status(flow: Flow) -> dict:
    result = flow.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ship(flow: Flow, message: str) -> str:
    """Push to devel, wait for the gate to move stable, promote; return the new production-stable tip."""
    sha = flow.commit("ok", message)
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to take the push")
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert flow.tip("production-stable") == sha
    return sha


def test_deploy_production_stable_to_chosen_servers(flow: Flow) -> None:
    target = flow.tip("production-stable")
    result = flow.cli("deploy", "--server", "app1", "--server", "app2", user="bob")
    assert result.returncode == 0, result.stderr
    assert deployed(flow, "app1") == target and deployed(flow, "app2") == target
    assert "app1: deployed" in result.stdout and "app2: deployed" in result.stdout
    assert "deployment report for app1" in result.stdout
    assert "Initial release" in result.stdout  # the report lists commits (subject, author)


def test_redeploying_the_same_revision_is_a_no_op(flow: Flow) -> None:
    before = (flow.base / "servers" / "app1").stat().st_mtime_ns
    result = flow.cli("deploy", "--server", "app1", user="bob")
    assert result.returncode == 0, result.stderr
    assert "already runs" in result.stdout
    assert (flow.base / "servers" / "app1").stat().st_mtime_ns == before


def test_auto_deploy_server_follows_stable(flow: Flow) -> None:
    sha = flow.commit("ok", "Staging follows stable")
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to move")
    wait_until(lambda: deployed(flow, "staging") == sha, 90, "staging to be redeployed")


def test_cowboy_blocks_a_rollout_until_its_fix_is_deployed(flow: Flow, tmp_path: Path) -> None:
    # the real fix lives on a side branch for now
    fix = flow.commit("ok", "Real fix for the hot patch", branch="fix/hotpatch")
    added = flow.cli("cowboy", "add", "--server", "app1", "--reason", "patched mail config by hand",
                     "--fixed-by", fix, user="bob")
    assert added.returncode == 0, added.stderr
    cowboy_id = added.stdout.split()[0]
    assert cowboy_id.isdigit()
    listed = json.loads(flow.cli("cowboy", "list", "--json").stdout)
    assert [(c["id"], c["server"], c["fixed_by"], c["created_by"], c["active"]) for c in listed] == [
        (int(cowboy_id), "app1", fix, "bob", True)]

    target = ship(flow, "Unrelated change")
    result = flow.cli("deploy", "--server", "app1", "--server", "app2", user="bob")
    assert result.returncode == 1
    assert "app1: refused" in result.stdout and "patched mail config by hand" in result.stdout
    assert deployed(flow, "app1") != target, "a rollout overwrote a cowboy"
    assert deployed(flow, "app2") == target

    # merge the fix into devel: the next production-stable contains it
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/devel", cwd=flow.work)
    git("checkout", "--quiet", "-B", "devel", "FETCH_HEAD", cwd=flow.work)
    git("merge", "--quiet", "--no-edit", fix, cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/devel", cwd=flow.work)
    merged = git("rev-parse", "HEAD", cwd=flow.work)
    wait_until(lambda: flow.tip("stable") == merged, 90, "stable to take the merge")
    assert flow.cli("promote", user="bob").returncode == 0
    result = flow.cli("deploy", "--server", "app1", user="bob")
    assert result.returncode == 0, result.stderr
    assert deployed(flow, "app1") == merged
    assert flow.cli("cowboy", "list", "--json").stdout.strip() == "[]"
    history = json.loads(flow.cli("cowboy", "list", "--json", "--all").stdout)
    assert history[0]["state"] == "retired" and not history[0]["active"]


def test_override_needs_a_reason_and_is_audited(flow: Flow) -> None:
    added = flow.cli("cowboy", "add", "--server", "app2", "--reason", "debug logging", user="bob")
    assert added.returncode == 0, added.stderr
    ship(flow, "Another change")
    refused = flow.cli("deploy", "--server", "app2", "--override-cowboys", user="bob")
    assert refused.returncode == 2 and "--reason" in refused.stderr
    result = flow.cli("deploy", "--server", "app2", "--override-cowboys", "--reason", "debugging is over",
                      user="bob")
    assert result.returncode == 0, result.stderr
    assert "OVER cowboy" in result.stdout and "debugging is over" in result.stdout
    assert deployed(flow, "app2") == flow.tip("production-stable")


def test_freeze_stops_promotions_and_deploys_but_not_the_gate(flow: Flow) -> None:
    assert flow.cli("freeze", "--reason", "release party", user="bob").returncode == 0
    assert "FROZEN" in flow.cli("status").stdout
    sha = flow.commit("ok", "Pushed during the freeze")
    wait_until(lambda: flow.tip("stable") == sha, 90, "the gate to keep running while frozen")
    for args in (["promote"], ["deploy", "--server", "app1"]):
        result = flow.cli(*args, user="bob")
        assert result.returncode == 1
        assert "release party" in result.stderr
    assert flow.tip("production-stable") != sha
    assert flow.cli("thaw", user="bob").returncode == 0
    assert flow.cli("promote", user="bob").returncode == 0


def test_rollback_to_an_earlier_production_revision(flow: Flow) -> None:
    assert flow.cli("deploy", "--server", "app1", user="bob").returncode == 0
    earlier = git("rev-parse", f"{flow.tip('production-stable')}~1", cwd=flow.work)
    result = flow.cli("deploy", "--server", "app1", "--revision", earlier, user="bob")
    assert result.returncode == 0, result.stderr
    assert "ROLLBACK" in result.stdout
    assert deployed(flow, "app1") == earlier
    s = {x["name"]: x for x in status(flow)["servers"]}
    assert s["app1"]["deployed"] == earlier and s["app1"]["behind"] == 1


def test_bad_deploys_are_refused_or_reported_and_nothing_is_half_recorded(flow: Flow) -> None:
    side = flow.commit("ok", "Not on production", branch="feature/x")
    result = flow.cli("deploy", "--server", "app1", "--revision", side, user="bob")
    assert result.returncode == 1 and "is not on production-stable" in result.stderr
    result = flow.cli("deploy", "--server", "nosuch", user="bob")
    assert result.returncode == 1 and "unknown server" in result.stderr
    for server, words in (("broken", "exit code 3"), ("stuck", "failed")):
        result = flow.cli("deploy", "--server", server, user="bob")
        assert result.returncode == 1, server
        assert words in result.stdout + result.stderr
        assert {x["name"]: x for x in status(flow)["servers"]}[server]["deployed"] is None


def test_only_losa_may_act(flow: Flow) -> None:
    for args in (["deploy"], ["cowboy", "add", "--server", "app1", "--reason", "x"], ["freeze", "--reason", "x"]):
        result = flow.cli(*args, user="alice")
        assert result.returncode == 1 and "not allowed" in result.stderr, args


def test_cowboys_survive_a_master_restart(flow: Flow) -> None:
    added = flow.cli("cowboy", "add", "--server", "app1", "--server", "app2", "--reason", "kernel tweak",
                     user="bob")
    assert added.returncode == 0, added.stderr
    ids = added.stdout.split()
    assert len(ids) == 2
    flow.stop()
    flow.start()
    listed = json.loads(flow.cli("cowboy", "list", "--json").stdout)
    assert sorted(str(c["id"]) for c in listed if c["reason"] == "kernel tweak") == sorted(ids)
    result = flow.cli("deploy", "--server", "app1", user="bob")
    assert result.returncode in (0, 1)
    removed = flow.cli("cowboy", "remove", ids[0], "--reason", "rolled back by hand", user="bob")
    assert removed.returncode == 0, removed.stderr
    remaining = json.loads(flow.cli("cowboy", "list", "--json").stdout)
    assert ids[0] not in [str(c["id"]) for c in remaining]
