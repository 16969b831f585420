"""Changes nobody recorded, end to end: the inspection timer finds them and they block rollouts.

Real master, real worker, real git, the real CLI. The inspect builder runs
every INTERVAL seconds (``[deploy] inspect_interval``). A server is a file
holding the revision deployed to it; its inspect command prints the tree of
that revision, or the content of SERVER.tree when a test "edits the server
by hand" (a deploy removes that file, as a real deploy overwrites the edit).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import Flow, wait_until
from tests.test_e2e_verified_rollout import history, simulated_server

pytestmark = pytest.mark.e2e
INTERVAL = 8  # seconds between inspections; the flow's settle() needs 3 quiet seconds between them


def servers_toml(out: Path) -> str:
    write, inspect = simulated_server(out)
    return f"[deploy]\ninspect_interval = {INTERVAL}\n" + "".join(f"""
[[servers]]
name = "{name}"
deploy_command = {json.dumps(write)}
inspect_command = {json.dumps(inspect)}
""" for name in ("app1", "app2"))


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("drift")
    (base / "servers").mkdir()
    f = Flow(base, extra_site=servers_toml(base / "servers"))
    yield from f.running()



def tree_of(flow: Flow, sha: str) -> str:
    return subprocess.run(["git", "rev-parse", f"{sha}^{{tree}}"], cwd=flow.upstream, check=True,
                          capture_output=True, text=True).stdout.strip()


def unrecorded(flow: Flow, server: str) -> dict | None:
    return {s["name"]: s for s in flow.status()["servers"]}[server]["unrecorded_change"]


def test_the_timer_finds_an_unrecorded_change_which_refuses_the_rollout_until_a_cowboy_is_recorded(
        flow: Flow) -> None:
    flow.given_no_cowboys()
    before = flow.given_promoted("Running on app1")
    flow.given_deployed("app1")
    hand_tree = tree_of(flow, flow.initial_commit())  # any tree but the deployed one: app1 edited by hand
    (flow.base / "servers" / "app1.tree").write_text(hand_tree + "\n")

    found = wait_until(lambda: unrecorded(flow, "app1"), 4 * INTERVAL + 60, "an inspection to find the change")
    assert (found["found"], found["expected"], found["revision"]) == (hand_tree, tree_of(flow, before), before)
    shown = flow.cli("status")
    assert "UNRECORDED CHANGE since" in shown.stdout and hand_tree[:12] in shown.stdout, shown.stdout
    audit = json.loads(flow.cli("audit", "--json", user="bob").stdout)
    assert any(e["action"] == "unrecorded-change" and e["details"]["outcome"] == "found"
               and e["details"]["found"] == hand_tree for e in audit)

    target = flow.given_promoted("Over the hand edit")
    refused = flow.cli("deploy", "--server", "app1", user="bob")
    assert refused.returncode == 1
    # refused by the plan, before any worker asked app1 again: both hashes in the reason
    assert (f"it carries an unrecorded change (it runs tree {hand_tree[:12]}, lpdeploy deployed tree "
            f"{tree_of(flow, before)[:12]}") in refused.stderr, refused.stderr
    assert history(flow, "app1")[-1] == before

    added = flow.cli("cowboy", "add", "--server", "app1", "--reason", "edited the config by hand",
                     "--fixed-by", target, user="bob")
    assert added.returncode == 0, added.stderr
    assert unrecorded(flow, "app1") is None  # recorded now: it is that cowboy
    deploy = flow.cli("deploy", "--server", "app1", user="bob")
    assert deploy.returncode == 0, deploy.stderr
    assert history(flow, "app1")[-1] == target
    inspections = len(flow.builds("lpdeploy-inspect"))
    flow.wait_builds("lpdeploy-inspect", inspections + 1, timeout=4 * INTERVAL + 60)  # the next inspection
    assert unrecorded(flow, "app1") is None  # app1 runs what lpdeploy deployed (the cowboy retired with it)


MARKER = "# SECRET-HOTFIX-7f3a: login bypass closed here"  # a line of the diff no viewer may read


def readable(flow: Flow, user: str | None, path: str) -> str:
    """``/api/v2/<path>`` as ``user`` reads it ("" when refused: a 403 or 404 shows nothing)."""
    flow.viewer = user
    try:
        return json.dumps(flow.api(path))
    except urllib.error.HTTPError as e:
        assert e.code in (403, 404), (path, e.code)
        return ""
    finally:
        flow.viewer = None


def assert_no_viewer_reads_the_diff(flow: Flow, buildid: int) -> None:
    """The attack: every way to read a build's and buildset's properties, as anonymous, a developer, a losa."""
    buildsetid = flow.api(f"buildrequests/{flow.api(f'builds/{buildid}')['builds'][0]['buildrequestid']}")[
        "buildrequests"][0]["buildsetid"]
    paths = [f"builds/{buildid}/properties", "builds?property=*", f"builds/{buildid}?property=*",
             f"buildsets/{buildsetid}/properties", f"buildsets/{buildsetid}"]
    for user in (None, "carol", "bob"):
        for path in paths:
            assert "SECRET-HOTFIX" not in readable(flow, user, path), (user, path)
    token = json.loads(readable(flow, "bob", f"builds/{buildid}/properties"))["properties"][0]
    assert token["lpdeploy_patch_upload"][0], token  # the read worked: the build carries the token, not the diff
    assert "patch" not in token


def test_a_cowboy_whose_patch_lands_under_another_commit_id_retires_with_the_deploy_that_brings_it(
        flow: Flow) -> None:
    flow.given_no_cowboys()
    flow.given_promoted("Before the relay fix")
    flow.given_deployed("app2")
    # the losa's hand edit on app2, as the diff of the change against what app2 runs
    work = flow.work
    git_ = ["git", "-c", "user.name=Losa", "-c", "user.email=losa@example.invalid"]
    subprocess.run([*git_, "fetch", "--quiet", str(flow.upstream), "refs/heads/production-stable"], cwd=work,
                   check=True)
    subprocess.run([*git_, "checkout", "--quiet", "--detach", "FETCH_HEAD"], cwd=work, check=True)
    (work / "mail.cf").write_text(f"relay = new.example.org\n{MARKER}\n")
    subprocess.run([*git_, "add", "mail.cf"], cwd=work, check=True)
    diff = subprocess.run([*git_, "diff", "--cached"], cwd=work, check=True, capture_output=True, text=True).stdout
    subprocess.run([*git_, "reset", "--quiet", "--hard"], cwd=work, check=True)
    patch = flow.base / "relay.diff"
    assert MARKER in diff
    patch.write_text(diff)
    with flow.recording(None) as anonymous, flow.recording("carol") as developer:  # the event streams too
        added = flow.cli("cowboy", "add", "--server", "app2", "--reason", "mail relay changed by hand",
                         "--patch", str(patch), user="bob")
    assert added.returncode == 0, added.stderr
    for rec in (anonymous, developer):
        assert "lpdeploy-admin" in rec.text or "lpdeploy_patch_upload" in rec.text, rec.text[:500]  # it saw the build
        assert "SECRET-HOTFIX" not in rec.text
    cowboy_id = int(added.stdout.split()[-1])
    assert_no_viewer_reads_the_diff(flow, flow.builds("lpdeploy-admin")[-1]["buildid"])

    flow.given_devel_holds_stable()
    fix = flow.commit_file("mail.cf", f"relay = new.example.org\n{MARKER}\n", "Move the mail relay",
                           "devel")  # the same change
    target = flow.given_promoted("After the relay fix")
    assert flow.is_ancestor(fix, target)
    deploy = flow.cli("deploy", "--server", "app2", user="bob")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert history(flow, "app2")[-1] == target
    cowboys = json.loads(flow.cli("cowboy", "list", "--all", "--json").stdout)
    ended = next(c for c in cowboys if c["id"] == cowboy_id)
    assert ended["state"] == "retired", ended
    assert f"commit {fix[:12]} makes the same change as its patch (same git patch-id)" in ended["end_reason"]
