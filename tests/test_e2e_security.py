"""A security fix end to end: embargoed, fully tested, fast to production, merged back.

Real master, real worker, real git. A secret string lives in the fix's
commit message and in the file it changes (which the suite prints), and the
crawl looks for it everywhere a user without the security role can read.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e
SECRET = "SECRET-CVE-2099-4242-xyzzy"
BRANCH = "security/cve-4242"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("security")
    out = base / "servers"
    out.mkdir()
    write = ["sh", "-c", f'echo "$1" > {out}/"$0"', "{server}", "{revision}"]
    f = Flow(base, extra_site=f'[[servers]]\nname = "app1"\ndeploy_command = {json.dumps(write)}\n')
    yield from f.running()


@pytest.fixture(scope="module")
def state() -> dict[str, str]:
    return {}


def push_fix(flow: Flow, branch: str, base: str, text: str, message: str) -> str:
    git("fetch", "--quiet", str(flow.upstream), base, cwd=flow.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=flow.work)
    app = flow.work / "app.txt"
    app.write_text(app.read_text() + text + "\n")
    git("commit", "--quiet", "-am", message, cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), f"HEAD:refs/heads/{branch}", cwd=flow.work)
    return git("rev-parse", "HEAD", cwd=flow.work)


def builds_of(flow: Flow, builder: str, user: str = "alice") -> list[dict]:
    with flow.session(user).open(f"{flow.url}api/v2/builders/{builder}/builds?order=number", timeout=30) as r:
        return json.loads(r.read())["builds"]


def test_a_push_to_a_security_branch_is_tested_and_reaches_production(flow: Flow, state: dict[str, str]) -> None:
    flow.wait_builds("lpdeploy-gate", 1)
    fix = push_fix(flow, BRANCH, "refs/heads/production-stable", f"fix: {SECRET}",
                   f"Fix the login bypass {SECRET}")
    wait_until(lambda: flow.tip("production-stable") == fix, 120, "production-stable to take the fix")
    assert flow.tip("production-devel") == fix
    assert fix in flow.suite_runs(), "the security fix reached production untested"
    builds = wait_until(lambda: [b for b in builds_of(flow, "lpdeploy-security") if b["complete"]], 60,
                        "the security build to finish")
    assert builds[-1]["results"] == 0
    state["fix"] = fix
    state["security_build"] = str(builds[-1]["buildid"])


def test_promotion_of_a_stable_without_the_fix_is_refused_naming_it(flow: Flow, state: dict[str, str]) -> None:
    result = flow.cli("promote", user="bob")
    assert result.returncode == 1
    assert BRANCH in result.stderr and state["fix"][:12] in result.stderr
    assert flow.tip("production-stable") == state["fix"]


def test_nothing_of_the_fix_is_readable_without_the_security_role(flow: Flow, state: dict[str, str]) -> None:
    security_build = int(state["security_build"])
    for user in (None, "bob"):
        text = flow.crawl(user, extra_builds=[security_build])
        assert SECRET not in text, f"the secret leaked to {user or 'anonymous'}"
        assert len(text) > 1000  # the crawl did read things
    assert SECRET in flow.crawl("alice"), "the crawl cannot see the secret even as a security user"
    status = flow.cli("status")
    assert SECRET not in status.stdout
    assert f"{state['fix'][:12]} embargoed" in status.stdout


def test_security_builds_need_the_security_role_and_valid_branches(flow: Flow) -> None:
    result = flow.cli("security-build", BRANCH, user="bob")
    assert result.returncode == 1 and "not allowed" in result.stderr
    for bad, code in (("--upload-pack=touch /tmp/lpdeploy-x", 2), ("devel", 1), ("security/no-such", 1)):
        result = flow.cli("security-build", bad, user="alice")
        assert result.returncode == code, (bad, result.stderr)
        assert result.stderr.strip(), bad
    assert not Path("/tmp/lpdeploy-x").exists()


def test_a_rollback_may_not_take_the_released_fix_off_the_servers(flow: Flow, state: dict[str, str]) -> None:
    before_fix = git("rev-parse", f"{state['fix']}~1", cwd=flow.work)
    result = flow.cli("deploy", "--revision", before_fix, user="bob")
    assert result.returncode == 1
    assert "would lose the security fix" in result.stderr and BRANCH in result.stderr


def test_deploying_the_fix_everywhere_merges_it_back_and_lifts_the_embargo(flow: Flow, state: dict[str, str]) -> None:
    result = flow.cli("deploy", user="bob")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and "embargoed" in result.stdout
    fix = state["fix"]

    def stable_has_fix() -> bool:
        tip = flow.tip("stable")
        return tip is not None and subprocess.run(
            ["git", "--git-dir", str(flow.upstream), "merge-base", "--is-ancestor", fix, tip]).returncode == 0

    wait_until(stable_has_fix, 120, "the merge-back to reach stable through the gate")
    status = json.loads(flow.cli("status", "--json", user="alice").stdout)
    assert [f["state"] for f in status["security"]["fixes"]] == ["merged-back"]
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert flow.tip("production-stable") == flow.tip("stable")
    audit = json.loads(flow.cli("audit", "--json", user="bob").stdout)
    actions = {e["action"] for e in audit}
    assert {"security-build", "security-promote", "merge-back", "promote", "deploy"} <= actions


def test_a_fix_not_based_on_production_is_merged_onto_it_and_merged_back_on_demand(
    flow: Flow, state: dict[str, str]
) -> None:
    initial = git("rev-list", "--max-parents=0", "HEAD", cwd=flow.work).split()[0]
    (flow.work / "other.txt").write_text("x")
    git("checkout", "--quiet", "-B", "old", initial, cwd=flow.work)
    (flow.work / "other.txt").write_text("second fix\n")
    git("add", "other.txt", cwd=flow.work)
    git("commit", "--quiet", "-m", "Second embargoed fix", cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/security/two", cwd=flow.work)
    fix2 = git("rev-parse", "HEAD", cwd=flow.work)
    before = flow.tip("production-stable")
    wait_until(lambda: flow.tip("production-stable") != before, 120, "the merged fix to reach production")
    candidate = flow.tip("production-stable")
    assert candidate != fix2  # the tested merge, not the bare fix
    parents = git("--git-dir", str(flow.upstream), "rev-list", "--parents", "-n1", candidate).split()[1:]
    assert set(parents) == {before, fix2}
    result = flow.cli("merge-back", "security/two", user="alice")
    assert result.returncode == 0, result.stderr
    assert "merged security/two back into devel" in result.stdout
