"""A LOSA's week end to end: deploys, cowboys, freeze, rollback, restart.

Real master, real worker, real git; the servers are simulated by deploy
commands that write the deployed revision into a file per server. One master
serves the module; each test starts with nothing pending, no freeze and no
active cowboy, and sets up the rest of its starting state with the
``given_*`` helpers of ``Flow``: any one runs alone and in any order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import Flow, wait_until

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


def start_clean(flow: Flow) -> None:
    """Nothing pending, no freeze, no active cowboy: what every test here and in ``test_e2e_cowboys`` starts from."""
    flow.settle()
    flow.given_thawed()
    flow.given_no_cowboys()


@pytest.fixture(autouse=True)
def clean_slate(flow: Flow) -> None:
    start_clean(flow)


def deployed(flow: Flow, server: str) -> str | None:
    path = flow.base / "servers" / server
    return path.read_text().strip() if path.exists() else None


def servers(flow: Flow) -> dict[str, dict]:
    return {s["name"]: s for s in flow.status()["servers"]}


def test_deploy_production_stable_to_chosen_servers(flow: Flow) -> None:
    before = flow.given_promoted("Deployed everywhere first")
    flow.given_deployed("app1", "app2")
    target = flow.given_promoted("Search box for the report")
    result = flow.cli("deploy", "--server", "app1", "--server", "app2", user="bob")
    assert result.returncode == 0, result.stderr
    assert deployed(flow, "app1") == target and deployed(flow, "app2") == target
    assert "app1: deployed" in result.stdout and "app2: deployed" in result.stdout
    # the report lists what changed since the server's last deploy (subject, author), nothing older
    assert f"deployment report for app1: {before[:12]} → {target[:12]}" in result.stdout
    assert "1 new commit(s)" in result.stdout
    assert "Search box for the report (Test Developer <test@example.invalid>)" in result.stdout
    assert "Deployed everywhere first" not in result.stdout


def test_redeploying_the_same_revision_is_a_no_op(flow: Flow) -> None:
    flow.given_promoted("Deployed twice")
    flow.given_deployed("app1")
    before = (flow.base / "servers" / "app1").stat().st_mtime_ns
    result = flow.cli("deploy", "--server", "app1", user="bob")
    assert result.returncode == 0, result.stderr
    assert "already runs" in result.stdout
    assert (flow.base / "servers" / "app1").stat().st_mtime_ns == before


def test_auto_deploy_server_follows_stable(flow: Flow) -> None:
    sha = flow.given_stable_at("Staging follows stable")
    wait_until(lambda: deployed(flow, "staging") == sha, 90, "staging to be redeployed")
    assert flow.tip("production-stable") != sha  # staging follows stable, not production


def test_rollback_to_an_earlier_production_revision(flow: Flow) -> None:
    earlier = flow.given_promoted("The revision to roll back to")
    latest = flow.given_promoted("The revision that misbehaves")
    flow.given_deployed("app1")
    assert deployed(flow, "app1") == latest
    result = flow.cli("deploy", "--server", "app1", "--revision", earlier, user="bob")
    assert result.returncode == 0, result.stderr
    assert "ROLLBACK" in result.stdout and "The revision that misbehaves" in result.stdout
    assert deployed(flow, "app1") == earlier
    s = servers(flow)["app1"]
    assert s["deployed"] == earlier and s["behind"] == 1


def test_bad_deploys_are_refused_or_reported_and_nothing_is_half_recorded(flow: Flow) -> None:
    production = flow.given_promoted("Production for the bad deploys")
    flow.given_deployed("app1")
    side = flow.commit("ok", "Not on production", branch="feature/x")
    result = flow.cli("deploy", "--server", "app1", "--revision", side, user="bob")
    assert result.returncode == 1 and "is not on production-stable" in result.stderr
    result = flow.cli("deploy", "--server", "nosuch", user="bob")
    assert result.returncode == 1 and "unknown server" in result.stderr
    assert deployed(flow, "app1") == production
    for server, words in (("broken", "exit code 3"), ("stuck", "failed")):
        result = flow.cli("deploy", "--server", server, user="bob")
        assert result.returncode == 1, server
        assert words in result.stdout + result.stderr
        assert servers(flow)[server]["deployed"] is None


def test_only_losa_may_act(flow: Flow) -> None:
    flow.given_promoted("Only a losa deploys this")
    before = servers(flow)
    for args in (["deploy"], ["cowboy", "add", "--server", "app1", "--reason", "x"], ["freeze", "--reason", "x"]):
        result = flow.cli(*args, user="alice")
        assert result.returncode == 1 and "not allowed" in result.stderr, args
    after = flow.status()
    assert after["freeze"] is None
    assert {n: (s["deployed"], s["cowboys"]) for n, s in before.items()} == {
        s["name"]: (s["deployed"], s["cowboys"]) for s in after["servers"]}
