"""Security fixes end to end: embargoed, fully tested, fast to production, merged back.

Real master, real worker, real git. Every test starts its own site (a fresh
upstream, master and worker) and sets up its starting state with the
``given_*`` helpers below, so each one runs alone
(``pytest tests/test_e2e_security.py::test_x``) and none depends on another.

A unique secret lives in each fix's commit message, in the file it changes
(which the suite prints), in its author and in its branch name (a branch name
can itself be a secret). Each test asserts the secret is absent where users
without the security role look (anonymous, ``bob`` the losa) and present
where ``alice`` (role security) looks, so that a test that could no longer
see the secret at all would fail rather than pass.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e
SECURITY, MERGE_BACK = "lpdeploy-security", "lpdeploy-merge-back"
FRAGMENT = "plugins/wsgi_dashboards/pipeline/fragment"


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[Flow]:
    """A fresh site for every test: one upstream, master and worker, and one server, app1."""
    out = tmp_path / "servers"
    out.mkdir()
    write = ["sh", "-c", f'echo "$1" > {out}/"$0"', "{server}", "{revision}"]
    f = Flow(tmp_path, extra_site=f'[[servers]]\nname = "app1"\ndeploy_command = {json.dumps(write)}\n')
    yield from f.running()


# --- the story's vocabulary -------------------------------------------------------------


class Fix:
    """A security fix as its developer made it: branch, commit, and the secret it carries."""

    def __init__(self, name: str) -> None:
        self.secret = f"SECRET-{name}-xyzzy"
        self.branch = f"security/{self.secret}"
        self.subject = f"Close the {name} hole {self.secret}"
        self.author = f"Sec Person <{self.secret.lower()}@example.invalid>"
        self.sha = ""


def push_fix(flow: Flow, fix: Fix, base: str, line: str | None = None, force: bool = False,
             path: str = "app.txt") -> str:
    """Commit ``fix`` on ``base`` (a branch name or a commit the work clone has) and push its branch.

    The fix appends ``line`` (default: the secret) to ``path``; app.txt is what the suite prints.
    """
    if base.startswith("refs/"):
        git("fetch", "--quiet", str(flow.upstream), base, cwd=flow.work)
        base = "FETCH_HEAD"
    git("checkout", "--quiet", "-B", "fix", base, cwd=flow.work)
    changed = flow.work / path
    changed.write_text((changed.read_text() if changed.exists() else "") + (line or f"fix: {fix.secret}") + "\n")
    git("add", path, cwd=flow.work)
    git("commit", "--quiet", "-m", fix.subject, f"--author={fix.author}", cwd=flow.work)
    git("push", "--quiet", *(["--force"] if force else []), str(flow.upstream),
        f"HEAD:refs/heads/{fix.branch}", cwd=flow.work)
    fix.sha = git("rev-parse", "HEAD", cwd=flow.work)
    return fix.sha


def contains(flow: Flow, tip: str | None, rev: str) -> bool:
    return tip is not None and subprocess.run(
        ["git", "--git-dir", str(flow.upstream), "merge-base", "--is-ancestor", rev, tip]).returncode == 0


def builds_of(flow: Flow, builder: str, user: str = "alice") -> list[dict[str, Any]]:
    with flow.session(user).open(f"{flow.url}api/v2/builders/{builder}/builds?order=number", timeout=30) as r:
        return json.loads(r.read())["builds"]


def read(flow: Flow, path: str, user: str | None = None) -> str:
    with flow.session(user).open(flow.url + path, timeout=30) as r:
        return r.read().decode()


def status_json(flow: Flow, user: str | None = None) -> dict[str, Any]:
    return json.loads(read(flow, "plugins/lpdeploy/status.json", user))


def given_the_gate_settled(flow: Flow) -> None:
    flow.wait_builds("lpdeploy-gate", 1)
    flow.settle()


def given_released_fix(flow: Flow, name: str) -> Fix:
    """A fix pushed on production-stable, tested by its security build and promoted to production."""
    given_the_gate_settled(flow)
    fix = Fix(name)
    push_fix(flow, fix, "refs/heads/production-stable")
    wait_until(lambda: flow.tip("production-stable") == fix.sha, 120, f"{name} to reach production")
    flow.settle()
    return fix


def given_deployed(flow: Flow) -> None:
    result = flow.cli("deploy", user="bob")
    assert result.returncode == 0, result.stderr
    flow.settle()


def merged_back(flow: Flow, sha: str) -> None:
    wait_until(lambda: contains(flow, flow.tip("devel"), sha), 120, "the merge-back to reach devel")
    wait_until(lambda: contains(flow, flow.tip("stable"), sha), 120, "the merge-back to pass the gate")
    flow.settle()


def assert_hidden_from_outsiders(flow: Flow, fix: Fix) -> None:
    """Neither anonymous nor bob finds anything of ``fix`` in status.json, the dashboard or ``lpdeploy status``."""
    for user in (None, "bob"):
        who = user or "anonymous"
        for what, text in (("status.json", read(flow, "plugins/lpdeploy/status.json", user)),
                           ("the dashboard", read(flow, FRAGMENT, user)),
                           ("lpdeploy status", flow.cli("status", user=user).stdout)):
            for secret in (fix.secret, fix.subject, fix.author):
                assert secret not in text, f"{what} shows {secret!r} to {who}"
            assert f"{fix.sha[:12]} embargoed" in text, f"{what} does not show the tip as embargoed to {who}"
        (ps,) = [b for b in status_json(flow, user)["branches"] if b["name"] == "production-stable"]
        assert ps["tested_by"]["build_url"] == "" and ps["committed_at"] is None  # the security build is not named
    # where the security role looks, it is there: this test can see it
    assert fix.subject in read(flow, "plugins/lpdeploy/status.json", "alice")
    assert fix.subject in read(flow, FRAGMENT, "alice")


# --- the stories ------------------------------------------------------------------------


def test_a_push_to_a_security_branch_is_tested_and_reaches_production_carrying_nothing_secret(flow: Flow) -> None:
    fix = given_released_fix(flow, "push")
    assert flow.tip("production-devel") == fix.sha
    assert fix.sha in flow.suite_runs(), "the security fix reached production untested"
    (build,) = builds_of(flow, SECURITY)
    assert build["results"] == 0
    # even read as alice, the build and its buildset name no branch, no owner, no commit text
    request = json.loads(read(flow, f"api/v2/buildrequests/{build['buildrequestid']}", "alice"))["buildrequests"][0]
    shown = read(flow, f"api/v2/builds/{build['buildid']}/properties", "alice")
    shown += read(flow, f"api/v2/buildsets/{request['buildsetid']}", "alice")
    shown += read(flow, f"api/v2/buildsets/{request['buildsetid']}/properties", "alice")
    shown += json.dumps(build) + json.dumps(request)
    for secret in (fix.secret, fix.subject, "security/", "alice", "owner"):
        assert secret not in shown, secret
    assert '"lpdeploy_job"' in shown


def test_production_keeps_a_released_fix_promotion_and_rollback_are_refused(flow: Flow) -> None:
    fix = given_released_fix(flow, "keep")
    result = flow.cli("promote", user="bob")
    assert result.returncode == 1
    assert f"would lose the embargoed security fix {fix.sha[:12]}" in result.stderr
    assert fix.secret not in result.stderr  # the branch name is not shown to a losa
    assert flow.tip("production-stable") == fix.sha
    before_fix = git("rev-parse", f"{fix.sha}~1", cwd=flow.work)
    result = flow.cli("deploy", "--revision", before_fix, user="bob")
    assert result.returncode == 1
    assert "would lose the embargoed security fix" in result.stderr and fix.secret not in result.stderr


def test_nothing_of_a_released_fix_is_readable_without_the_security_role(flow: Flow) -> None:
    fix = given_released_fix(flow, "crawl")
    security_build = builds_of(flow, SECURITY)[-1]["buildid"]
    for user in (None, "bob"):
        text = flow.crawl(user, extra_builds=[security_build])
        assert fix.secret not in text, f"the secret leaked to {user or 'anonymous'}"
        assert len(text) > 1000  # the crawl did read things
    assert fix.secret in flow.crawl("alice"), "the crawl cannot see the secret even as a security user"
    assert_hidden_from_outsiders(flow, fix)


def test_security_forms_need_the_security_role_and_refuse_bad_branches_naming_the_rule(flow: Flow) -> None:
    given_the_gate_settled(flow)
    result = flow.cli("security-build", "security/anything", user="bob")
    assert result.returncode == 1 and "not allowed" in result.stderr
    marker = flow.base / "pwned"
    result = flow.cli("security-build", f"--upload-pack=touch {marker}", user="alice")
    assert result.returncode == 2 and result.stderr.strip()  # the CLI refuses before sending
    result = flow.cli("security-build", "devel", user="alice")
    assert result.returncode == 1 and "does not match 'security/*'" in result.stderr
    result = flow.cli("security-build", "security/no-such", user="alice")
    assert result.returncode == 1 and "does not exist" in result.stderr
    # the server's own check, for a client that sends anything
    opener = flow.session("alice")
    for scheduler in ("security-build", "merge-back"):
        for bad, rule in ((f"--upload-pack=touch {marker}", "must not start with '-'"),
                          ("security/" + "x" * 300, "longer than 200 characters"),
                          ("devel\nsecurity/x", "only letters, digits")):
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
                               "params": {"security_branch": bad}}).encode()
            req = urllib.request.Request(f"{flow.url}api/v2/forceschedulers/{scheduler}", data=body,
                                         headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as e:
                opener.open(req, timeout=30)
            assert e.value.code == 400
            assert rule in e.value.read().decode(), (scheduler, bad)
    flow.settle()
    assert not marker.exists()
    assert len(builds_of(flow, SECURITY)) == 1  # only the build of the missing branch, refused
    assert builds_of(flow, MERGE_BACK) == []


def test_deploying_the_fix_everywhere_merges_it_back_and_lifts_the_embargo(flow: Flow) -> None:
    fix = given_released_fix(flow, "deploy")
    given_deployed(flow)
    merged_back(flow, fix.sha)
    security = status_json(flow, "alice")["security"]
    (entry,) = security["fixes"]
    assert (entry["branch"], entry["state"]) == (fix.branch, "merged-back")
    assert [r["state"] for r in entry["releases"]] == ["merged-back"]
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr
    assert flow.tip("production-stable") == flow.tip("stable")
    everything = {e["action"] for e in json.loads(flow.cli("audit", "--json", user="alice").stdout)}
    assert {"security-build", "security-promote", "merge-back", "promote", "deploy"} <= everything
    audit = json.loads(flow.cli("audit", "--json", user="bob").stdout)  # a losa: the release flow only
    assert {"promote", "deploy"} <= {e["action"] for e in audit}
    assert not {"security-build", "security-promote", "merge-back"} & {e["action"] for e in audit}
    assert fix.secret not in json.dumps(audit)


def test_a_fix_not_based_on_production_is_merged_onto_it_and_merged_back_on_demand(flow: Flow) -> None:
    given_the_gate_settled(flow)
    fix = Fix("onto")
    initial = git("rev-list", "--max-parents=0", "HEAD", cwd=flow.work).split()[0]
    before = flow.commit("ok", "Stable work")  # devel moves on; the gate takes it to stable
    wait_until(lambda: flow.tip("stable") == before, 90, "stable to move")
    assert flow.cli("promote", user="bob").returncode == 0
    push_fix(flow, fix, initial, path="other.txt")
    wait_until(lambda: flow.tip("production-stable") not in (before, None), 120, "the merged fix on production")
    candidate = flow.tip("production-stable")
    assert candidate != fix.sha  # the tested merge, not the bare fix
    parents = git("--git-dir", str(flow.upstream), "rev-list", "--parents", "-n1", candidate).split()[1:]
    assert set(parents) == {before, fix.sha}
    flow.settle()
    result = flow.cli("merge-back", fix.branch, user="alice")
    assert result.returncode == 0, result.stderr
    assert f"merged 1 released fix(es) ({fix.sha[:12]}) back into devel" in result.stdout
    assert contains(flow, flow.tip("devel"), candidate)


def test_a_failed_rework_of_a_released_fix_keeps_it_embargoed_and_its_merge_back_still_happens(flow: Flow) -> None:
    # issue 10, item 2: v1 released (production-stable at v1), then a reworked v2 force-pushed to the same
    # branch; v2 does not merge onto production-stable and its build fails
    v1 = given_released_fix(flow, "rework")
    v2 = Fix("rework")
    v2.subject = f"Rework the check {v2.secret}"
    push_fix(flow, v2, f"{v1.sha}~1", line="fix: done differently", force=True)
    wait_until(lambda: len([b for b in builds_of(flow, SECURITY) if b["complete"]]) == 2, 120, "v2's build")
    flow.settle()
    assert builds_of(flow, SECURITY)[-1]["results"] == 2  # failed: v2 does not merge onto production-stable
    assert flow.tip("production-stable") == v1.sha
    assert_hidden_from_outsiders(flow, v1)
    for user in (None, "bob"):
        assert v1.secret not in flow.crawl(user), f"the secret leaked to {user or 'anonymous'} after the rework"
    result = flow.cli("promote", user="bob")
    assert result.returncode == 1 and f"security fix {v1.sha[:12]}" in result.stderr
    # the automatic merge-back of what was released still happens once the servers run v1
    given_deployed(flow)
    merged_back(flow, v1.sha)
    assert not contains(flow, flow.tip("devel"), v2.sha)  # the failed rework stays out
    result = flow.cli("promote", user="bob")
    assert result.returncode == 0, result.stderr  # promotions resume
    assert contains(flow, flow.tip("production-stable"), v1.sha)
    (entry,) = status_json(flow, "alice")["security"]["fixes"]
    assert entry["state"] == "failed" and entry["fix_commit"] == v2.sha
    assert [(r["fix_commit"], r["state"]) for r in entry["releases"]] == [(v1.sha, "merged-back")]


def test_a_later_fix_brings_an_earlier_pending_one_and_both_are_merged_back_together(flow: Flow) -> None:
    # issue 10, item 3: A released but not yet deployed; B built on production (which holds A) released;
    # B's merge-back would publish A, so they are merged back together, once every server runs both
    a = given_released_fix(flow, "first")
    b = Fix("second")
    push_fix(flow, b, "refs/heads/production-stable", line="second fix")
    wait_until(lambda: flow.tip("production-stable") == b.sha, 120, "B to reach production")
    flow.settle()
    assert builds_of(flow, MERGE_BACK) == []  # app1 runs neither: nothing is due
    assert not contains(flow, flow.tip("devel"), a.sha)
    given_deployed(flow)
    merged_back(flow, b.sha)
    assert contains(flow, flow.tip("devel"), a.sha)
    (build,) = builds_of(flow, MERGE_BACK)
    assert build["results"] == 0
    flow.viewer = "alice"
    log = flow.step_log(build, "merge-back", "decision")
    assert "brings 2 released fix(es)" in log and a.branch in log and b.branch in log
    releases = {r["fix_commit"]: r["state"] for f in status_json(flow, "alice")["security"]["fixes"]
                for r in f["releases"]}
    assert releases == {a.sha: "merged-back", b.sha: "merged-back"}
    audit = json.loads(flow.cli("audit", "--json", user="alice").stdout)
    (merge,) = [e for e in audit if e["action"] == "merge-back"]
    assert merge["details"]["fix_commits"] == [a.sha, b.sha]
