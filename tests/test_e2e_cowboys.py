"""A LOSA's week end to end, continued: cowboys, overrides, freeze, and a restart.

The same simulated servers and helpers as ``test_e2e_deploy`` (imported from
it), on a master of this module's own: the two modules run in parallel under
``make test``. Each test starts with nothing pending, no freeze and no active
cowboy (``clean_slate``) and sets up the rest with the ``given_*`` helpers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.flow_harness import Flow, git, wait_until
from tests.test_e2e_deploy import deployed, servers_toml, start_clean

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("cowboys")
    f = Flow(base, extra_site=servers_toml(base))
    yield from f.running()


@pytest.fixture(autouse=True)
def clean_slate(flow: Flow) -> None:
    start_clean(flow)


def test_cowboy_blocks_a_rollout_until_its_fix_is_deployed(flow: Flow) -> None:
    flow.given_promoted("Before the hot patch")
    flow.given_deployed("app1", "app2")
    # the real fix lives on a side branch for now
    fix = flow.commit_file("mail.conf", "relay = smtp.example.invalid\n", "Real fix for the hot patch",
                           branch="fix/hotpatch")
    added = flow.cli("cowboy", "add", "--server", "app1", "--reason", "patched mail config by hand",
                     "--fixed-by", fix, user="bob")
    assert added.returncode == 0, added.stderr
    cowboy_id = added.stdout.split()[0]
    assert cowboy_id.isdigit()
    listed = json.loads(flow.cli("cowboy", "list", "--json").stdout)
    assert [(c["id"], c["server"], c["fixed_by"], c["created_by"], c["active"]) for c in listed] == [
        (int(cowboy_id), "app1", fix, "bob", True)]

    target = flow.given_promoted("Unrelated change")
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
    assert json.loads(flow.cli("cowboy", "list", "--json").stdout) == []
    history = json.loads(flow.cli("cowboy", "list", "--json", "--all").stdout)
    retired = [c for c in history if str(c["id"]) == cowboy_id]
    assert len(retired) == 1 and retired[0]["state"] == "retired" and not retired[0]["active"]


def test_override_needs_a_reason_and_is_audited(flow: Flow) -> None:
    flow.given_promoted("Before the debug logging")
    flow.given_deployed("app2")
    added = flow.cli("cowboy", "add", "--server", "app2", "--reason", "debug logging", user="bob")
    assert added.returncode == 0, added.stderr
    target = flow.given_promoted("Another change")
    refused = flow.cli("deploy", "--server", "app2", "--override-cowboys", user="bob")
    assert refused.returncode == 2 and "--reason" in refused.stderr
    assert deployed(flow, "app2") != target
    result = flow.cli("deploy", "--server", "app2", "--override-cowboys", "--reason", "debugging is over",
                      user="bob")
    assert result.returncode == 0, result.stderr
    assert "OVER cowboy" in result.stdout and "debugging is over" in result.stdout
    assert deployed(flow, "app2") == target
    audit = json.loads(flow.cli("audit", "--json", user="bob").stdout)
    overrides = [e for e in audit if e["action"] == "cowboy-override" and e["details"]["revision"] == target]
    assert len(overrides) == 1
    assert overrides[0]["who"] == "bob" and overrides[0]["details"]["reason"] == "debugging is over"


def test_freeze_stops_promotions_and_deploys_but_not_the_gate(flow: Flow) -> None:
    production = flow.given_promoted("Before the freeze")
    flow.given_deployed("app1")
    assert flow.cli("freeze", "--reason", "release party", user="bob").returncode == 0
    assert "FROZEN" in flow.cli("status").stdout
    sha = flow.given_stable_at("Pushed during the freeze")  # the gate keeps running while frozen
    for args in (["promote"], ["deploy", "--server", "app1"]):
        result = flow.cli(*args, user="bob")
        assert result.returncode == 1
        assert "release party" in result.stderr
    assert flow.tip("production-stable") == production
    assert deployed(flow, "app1") == production
    assert flow.cli("thaw", user="bob").returncode == 0
    assert flow.cli("promote", user="bob").returncode == 0
    assert flow.tip("production-stable") == sha


def test_cowboys_survive_a_master_restart(flow: Flow) -> None:
    flow.given_promoted("Before the kernel tweak")
    flow.given_deployed("app1", "app2")
    running = deployed(flow, "app1")
    added = flow.cli("cowboy", "add", "--server", "app1", "--server", "app2", "--reason", "kernel tweak",
                     user="bob")
    assert added.returncode == 0, added.stderr
    ids = added.stdout.split()
    assert len(ids) == 2
    target = flow.given_promoted("After the kernel tweak")
    flow.stop()
    flow.start()
    listed = json.loads(flow.cli("cowboy", "list", "--json").stdout)
    by_id = {str(c["id"]): c["server"] for c in listed if c["reason"] == "kernel tweak"}
    assert sorted(by_id) == sorted(ids) and sorted(by_id.values()) == ["app1", "app2"]
    app1_cowboy = next(i for i, server in by_id.items() if server == "app1")
    # the restarted master still refuses to deploy over them
    result = flow.cli("deploy", "--server", "app1", user="bob")
    assert result.returncode == 1
    assert (f"refusing to deploy {target[:12]} to app1: it carries cowboy #{app1_cowboy} by bob: kernel tweak"
            in result.stderr)
    assert deployed(flow, "app1") == running
    removed = flow.cli("cowboy", "remove", app1_cowboy, "--reason", "rolled back by hand", user="bob")
    assert removed.returncode == 0, removed.stderr
    remaining = json.loads(flow.cli("cowboy", "list", "--json").stdout)
    assert [str(c["id"]) for c in remaining] == [i for i in ids if i != app1_cowboy]
    result = flow.cli("deploy", "--server", "app1", user="bob")
    assert result.returncode == 0, result.stderr
    assert deployed(flow, "app1") == target
