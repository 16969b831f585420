"""Verified rollouts end to end: a failing check rolls the server back and stops the rollout.

Before each deploy the server's inspect command reports the tree it runs
(the tree of what was deployed, or a SERVER.tree file standing for a change
made by hand). Each rollout of more than one server soaks its canary (the first server) for
SOAK seconds and checks it again before the others; Ctrl-C in ``lpdeploy
deploy`` during the soak stops the build and leaves the others untouched.

Real master, real worker, real git, the real CLI. The servers are simulated
by a deploy command that writes the deployed revision into a file per server
(and appends it to a history file); their check fails when the deployed
checkout's ``health.txt`` says ``bad``, as a health page answering 500 would.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import BIN, PASSWORDS, Flow, wait_until

pytestmark = pytest.mark.e2e
SOAK = 15
CANCELLED = 6
CHECK = 'if [ "$(cat health.txt 2>/dev/null)" = bad ]; then echo "GET https://$0/+health: 500"; exit 1; fi'


def simulated_server(out: Path) -> tuple[list[str], list[str]]:
    """The deploy and inspect commands of a server simulated by files in ``out`` (also ``test_e2e_drift``'s).

    A deploy writes SERVER (its revision) and appends to SERVER.history; it
    overwrites hand-made changes (SERVER.tree: the tree a changed server would
    report), which the inspect command reports instead of the deployed tree.
    """
    write = ["sh", "-c", f'echo "$1" > {out}/"$0"; echo "$1" >> {out}/"$0".history; rm -f {out}/"$0".tree',
             "{server}", "{revision}"]
    inspect = ["sh", "-c", f'if [ -f {out}/"$0".tree ]; then cat {out}/"$0".tree; '
                           f'else git rev-parse "$(cat {out}/"$0")^{{tree}}"; fi', "{server}"]
    return write, inspect


def servers_toml(out: Path) -> str:
    write, inspect = simulated_server(out)
    return f"[deploy]\nsoak = {SOAK}\n" + "".join(f"""
[[servers]]
name = "{name}"
deploy_command = {json.dumps(write)}
check_command = {json.dumps(["sh", "-c", CHECK, "{server}"])}
check_retries = 1
check_pause = 1
inspect_command = {json.dumps(inspect)}
""" for name in ("app1", "app2"))


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("verified")
    (base / "servers").mkdir()
    f = Flow(base, extra_site=servers_toml(base / "servers"))
    yield from f.running()


def history(flow: Flow, server: str) -> list[str]:
    path = flow.base / "servers" / f"{server}.history"
    return path.read_text().split() if path.exists() else []


def given_healthy(flow: Flow) -> None:
    """devel's health page works (an earlier test may have broken it); the next promotion carries that."""
    flow.settle()
    flow.given_devel_holds_stable()
    shown = subprocess.run(["git", f"--git-dir={flow.upstream}", "show", "refs/heads/devel:health.txt"],
                           capture_output=True, text=True)
    if shown.stdout != "ok\n":
        flow.commit_file("health.txt", "ok\n", "The health page works", "devel")


def test_a_failing_check_rolls_the_server_back_stops_the_rollout_and_fails_the_deploy(flow: Flow) -> None:
    given_healthy(flow)
    good = flow.given_promoted("A release that works")
    flow.given_deployed("app1", "app2")
    assert history(flow, "app1")[-1] == history(flow, "app2")[-1] == good  # the check passed: recorded
    flow.given_devel_holds_stable()
    bad = flow.commit_file("health.txt", "bad\n", "Break the health page", "devel")
    wait_until(lambda: flow.tip("stable") == bad, 120, "stable to reach the broken commit")
    flow.settle()
    assert flow.cli("promote", user="bob").returncode == 0
    flow.settle()

    result = flow.cli("deploy", "--server", "app1", "--server", "app2", user="bob")
    assert result.returncode == 1
    assert "failed on app1" in result.stderr and "GET https://app1/+health: 500" in result.stderr
    assert f"rolled back to {good[:12]}" in result.stderr
    assert "app2: stopped" in result.stderr
    assert history(flow, "app1")[-2:] == [bad, good]  # deployed, checked, rolled back by the same command
    assert history(flow, "app2")[-1] == good  # never touched
    servers = {s["name"]: s for s in flow.status()["servers"]}
    assert servers["app1"]["deployed"] == servers["app2"]["deployed"] == good
    audit = json.loads(flow.cli("audit", "--json", user="bob").stdout)
    entry = next(e for e in audit if e["action"] == "deploy-check-failed")
    assert (entry["who"], entry["details"]["server"], entry["details"]["revision"],
            entry["details"]["outcome"]) == ("bob", "app1", bad, "rolled-back")


def test_ctrl_c_during_the_canarys_soak_stops_the_rollout_before_the_others(flow: Flow) -> None:
    given_healthy(flow)
    before = flow.given_promoted("Before the canary")
    flow.given_deployed("app1", "app2")
    target = flow.given_promoted("Watched on the canary first")
    env = {**flow.env, "LPDEPLOY_USER": "bob", "LPDEPLOY_PASSWORD": PASSWORDS["bob"]}
    cli = subprocess.Popen([str(BIN / "lpdeploy"), "deploy", "--server", "app1", "--server", "app2"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        # the canary deployed, checked and recorded: the soak (SOAK seconds) has begun. Waiting for the deploy
        # command alone is not enough on a loaded machine: a Ctrl-C during the check leaves app1 unrecorded
        wait_until(lambda: history(flow, "app1")[-1:] == [target]
                   and {s["name"]: s["deployed"] for s in flow.status()["servers"]}["app1"] == target,
                   120, "the canary to be deployed and recorded")
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, err
    assert "interrupted: stopped build #" in err and "left untouched" in err
    flow.settle()
    build = flow.builds("lpdeploy-deploy")[-1]
    assert build["results"] == CANCELLED
    assert history(flow, "app2")[-1] == before  # never reached
    servers = {s["name"]: s for s in flow.status()["servers"]}
    assert servers["app1"]["deployed"] == target and servers["app2"]["deployed"] == before


def test_an_unrecorded_change_refuses_the_rollout_until_a_cowboy_is_recorded(flow: Flow) -> None:
    given_healthy(flow)
    flow.given_no_cowboys()
    before = flow.given_promoted("Running on app1")
    flow.given_deployed("app1")
    changed = flow.initial_commit()  # any tree but the deployed one: app1 was edited by hand
    hand_tree = subprocess.run(["git", "rev-parse", f"{changed}^{{tree}}"], cwd=flow.upstream, check=True,
                               capture_output=True, text=True).stdout.strip()
    (flow.base / "servers" / "app1.tree").write_text(hand_tree + "\n")
    target = flow.given_promoted("Over the hand edit")
    refused = flow.cli("deploy", "--server", "app1", user="bob")
    assert refused.returncode == 1
    assert f"unrecorded change on app1: it runs tree {hand_tree[:12]}" in refused.stderr
    assert history(flow, "app1")[-1] == before
    added = flow.cli("cowboy", "add", "--server", "app1", "--reason", "edited the config by hand",
                     "--fixed-by", target, user="bob")
    assert added.returncode == 0, added.stderr
    deploy = flow.cli("deploy", "--server", "app1", user="bob")
    assert deploy.returncode == 0, deploy.stderr
    assert history(flow, "app1")[-1] == target
