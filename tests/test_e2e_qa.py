"""QA state per revision end to end: a qa-bad commit holds promotion, a revert on stable releases it.

Real master, real worker, real git, the real ``lpdeploy`` CLI typed as a
user would. The site sets ``[promotion] require_qa = true``, a ``qa`` role
(quinn), a staging server that follows stable by itself (``auto_deploy``) and
a production server nobody deploys here (so a released fix stays embargoed);
carol is a developer with no role. The marking path
(``/plugins/lpdeploy/qa-mark``) is then attacked directly: anonymous, a
developer, a cross-site form, a foreign origin, and a QA engineer fishing
for an embargoed security fix. Last, that fix's merge-back reaches stable:
it is shown as a security fix and never waits for QA.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e


def site(out: Path) -> str:
    write = ["sh", "-c", f'echo "$1" > {out}/"$0"', "{server}", "{revision}"]
    return f"""qa = ["quinn"]
[promotion]
require_qa = true
[qa]
bug_url = "https://bugs.launchpad.net/bugs/{{bug}}"
[[servers]]
name = "qastaging"
deploy_command = {json.dumps(write)}
auto_deploy = "stable"
[[servers]]
name = "app1"
deploy_command = {json.dumps(write)}
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("qa")
    (base / "servers").mkdir()
    yield from Flow(base, extra_site=site(base / "servers")).running()


def land(flow: Flow, path: str, text: str, message: str) -> str:
    """A commit (touching only ``path``) pushed to devel and gated onto stable; its sha."""
    flow.settle()
    flow.given_devel_holds_stable()
    sha = flow.commit_file(path, text, message, "devel")
    wait_until(lambda: flow.tip("stable") == sha, 120, f"stable to reach {message!r}")
    flow.settle()
    return sha


def revert_on_devel(flow: Flow, sha: str) -> str:
    """``git revert`` of ``sha`` pushed to devel and gated onto stable; the revert's sha."""
    flow.settle()
    flow.given_devel_holds_stable()
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/devel", cwd=flow.work)
    git("checkout", "--quiet", "-B", "devel", "FETCH_HEAD", cwd=flow.work)
    git("revert", "--no-edit", sha, cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/devel", cwd=flow.work)
    revert = git("rev-parse", "HEAD", cwd=flow.work)
    wait_until(lambda: flow.tip("stable") == revert, 120, "stable to reach the revert")
    flow.settle()
    return revert


def dashboard(flow: Flow, user: str | None) -> str:
    with flow.session(user).open(flow.url + "plugins/wsgi_dashboards/pipeline/fragment", timeout=60) as r:
        return str(r.read().decode())


def qa_list(flow: Flow, user: str | None = None) -> dict[str, Any]:
    listed = flow.cli("qa", "list", "--json", user=user)
    assert listed.returncode == 0, listed.stderr
    return dict(json.loads(listed.stdout))


def given_nothing_undeployed(flow: Flow) -> None:
    """production-stable is at the stable tip: whatever waits is marked ok by quinn and promoted by bob."""
    flow.settle()
    waiting = [c["revision"] for c in qa_list(flow)["commits"]]
    if waiting:
        marked = flow.cli("qa", "ok", *waiting, "--reason", "starting state", user="quinn")
        assert marked.returncode == 0, marked.stderr
        promoted = flow.cli("promote", user="bob")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert flow.tip("production-stable") == flow.tip("stable")
    flow.settle()


def test_a_qa_bad_commit_holds_promotion_and_a_revert_on_stable_releases_it(flow: Flow) -> None:
    given_nothing_undeployed(flow)
    start = flow.tip("production-stable")
    login = land(flow, "login.txt", "fixed\n", "Fix the login page\n\nLP: #1234")
    search = land(flow, "search.txt", "broken\n", "Speed up the search page")
    footer = land(flow, "footer.txt", "tidy\n", "Tidy the footer\n\nFixes #77")
    assert (flow.base / "servers" / "qastaging").read_text().strip() == footer  # staging follows stable

    for verb, rev, why in (("ok", login, "login works on qastaging"), ("bad", search, "search answers 500"),
                           ("ok", footer, "footer fine")):
        marked = flow.cli("qa", verb, rev, "--reason", why, user="quinn")
        assert marked.returncode == 0, marked.stderr
        assert f"{rev[:12]} marked {verb} by quinn" in marked.stdout

    report = qa_list(flow)
    rows = {c["revision"]: c for c in report["commits"]}
    assert [c["revision"] for c in report["commits"]] == [login, search, footer]  # oldest first
    assert (rows[login]["qa"], rows[search]["qa"], rows[footer]["qa"]) == ("ok", "bad", "ok")
    assert rows[search]["marked_by"] == "quinn" and rows[search]["reason"] == "search answers 500"
    assert rows[login]["bugs"] == [{"bug": "1234", "url": "https://bugs.launchpad.net/bugs/1234"}]
    assert rows[footer]["bugs"][0]["bug"] == "77"
    assert rows[footer]["staging"] == ["qastaging"] and rows[footer]["on_staging"]
    assert report["deployable"] == login and report["blocker"]["revision"] == search

    page = dashboard(flow, "quinn")  # the deployment report
    assert f'id="qa-{search}"' in page and "search answers 500" in page and "marked by" in page
    assert 'href="https://bugs.launchpad.net/bugs/1234"' in page
    assert page.index(f'id="qa-{login}"') < page.index('id="deployable-line"') < page.index(f'id="qa-{search}"')
    assert page.count('class="qa-mark"') == 3 and 'value="untestable"' in page  # buttons for the qa role
    assert 'class="qa-mark"' not in dashboard(flow, "carol") and f'id="qa-{search}"' in dashboard(flow, "carol")

    beyond = flow.cli("promote", "--revision", footer, user="bob")
    assert beyond.returncode == 1, beyond.stdout + beyond.stderr
    assert search[:12] in beyond.stderr and "beyond the deployable revision" in beyond.stderr
    assert flow.tip("production-stable") == start

    held = flow.cli("promote", user="bob")
    assert held.returncode == 0, held.stdout + held.stderr
    assert flow.tip("production-stable") == login  # held at the last deployable revision
    assert "left behind: 2 commits" in held.stdout and search[:12] in held.stdout

    revert = revert_on_devel(flow, search)
    report = qa_list(flow)
    rows = {c["revision"]: c for c in report["commits"]}
    assert rows[search]["qa"] == "bad" and rows[search]["reverted_by"] == revert
    assert rows[revert]["qa"] == "ok"  # an unmarked revert of a bad commit restores a QA'd state
    assert report["deployable"] == revert and report["blocker"] is None
    text = flow.cli("qa", "list")
    assert text.returncode == 0 and f"reverted by {revert[:12]}" in text.stdout and "deployable" in text.stdout

    released = flow.cli("promote", user="bob")
    assert released.returncode == 0, released.stdout + released.stderr
    assert flow.tip("production-stable") == revert


def test_only_the_qa_and_losa_roles_may_mark_and_a_developer_is_told_so(flow: Flow) -> None:
    flow.settle()
    rev = land(flow, "about.txt", "v2\n", "Reword the about page")
    anonymous = flow.cli("qa", "ok", rev)
    assert anonymous.returncode == 1 and "not allowed" in anonymous.stderr and "log in" in anonymous.stderr
    developer = flow.cli("qa", "bad", rev, "--reason", "I do not like it", user="carol")
    assert developer.returncode == 1 and "'carol' may not mark" in developer.stderr
    assert {c["revision"]: c["qa"] for c in qa_list(flow)["commits"]}[rev] == "needs-testing"
    losa = flow.cli("qa", "untestable", rev, "--reason", "needs production data", user="bob")
    assert losa.returncode == 0, losa.stderr
    assert {c["revision"]: c["qa"] for c in qa_list(flow)["commits"]}[rev] == "untestable"
    malformed = flow.cli("qa", "ok", rev[:12], user="quinn")
    assert malformed.returncode == 2 and "full 40-character" in malformed.stderr
    audit = flow.cli("audit", "--json", user="bob")
    assert any(e["action"] == "qa-mark" and e["details"]["revision"] == rev and e["who"] == "bob"
               for e in json.loads(audit.stdout))


def post_mark(flow: Flow, user: str | None, body: Any, content_type: str = "application/json",
              origin: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": content_type, **({"Origin": origin} if origin else {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(flow.url + "plugins/lpdeploy/qa-mark", data=data, headers=headers)
    try:
        with flow.session(user).open(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def release_fix(flow: Flow, secret: str, branch: str = "security/qa-door") -> str:
    """A security fix on production-stable, released and still embargoed (staging does not run it)."""
    flow.settle()
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/production-stable", cwd=flow.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=flow.work)
    (flow.work / f"fix_{secret}.txt").write_text(f"the fix: {secret}\n")
    git("add", f"fix_{secret}.txt", cwd=flow.work)
    git("commit", "--quiet", "-m", f"Close the login bypass {secret}\n\nLP: #999001", cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), f"HEAD:refs/heads/{branch}", cwd=flow.work)
    fix = git("rev-parse", "HEAD", cwd=flow.work)
    wait_until(lambda: flow.tip("production-stable") == fix, 300, "production-stable to take the fix")
    flow.settle()
    return fix


def test_the_marking_path_refuses_strangers_forms_and_foreign_origins_and_never_shows_an_embargoed_fix(
        flow: Flow) -> None:
    rev = land(flow, "terms.txt", "v2\n", "Update the terms")
    mark = {"state": "ok", "revisions": [rev], "reason": "fine"}
    assert post_mark(flow, None, mark)[0] == 403
    assert post_mark(flow, "carol", mark)[0] == 403
    # a cross-site HTML form can only send form encodings: refused before anything is read
    assert post_mark(flow, "quinn", b"state=bad&revisions=" + rev.encode(),
                     content_type="application/x-www-form-urlencoded")[0] == 400
    assert post_mark(flow, "quinn", mark, origin="https://evil.example")[0] == 403
    assert post_mark(flow, "quinn", {"state": "needs-testing", "revisions": [rev]})[0] == 400
    assert post_mark(flow, "quinn", {"state": "ok", "revisions": ["--all"]})[0] == 400
    status, _ = post_mark(flow, "quinn", mark, origin=flow.url.rstrip("/"))
    assert status == 200

    secret = "qa7f3e"
    fix = release_fix(flow, secret)
    unknown = "0123456789abcdef" * 2 + "01234567"
    fished = post_mark(flow, "quinn", {"state": "bad", "revisions": [fix]})
    guessed = post_mark(flow, "quinn", {"state": "bad", "revisions": [unknown]})
    assert fished[0] == guessed[0] == 400
    assert fished[1].replace(fix[:12], "X") == guessed[1].replace(unknown[:12], "X")  # the same answer
    for user in (None, "carol", "quinn", "bob"):
        with flow.session(user).open(flow.url + "plugins/lpdeploy/qa.json", timeout=60) as r:
            body = r.read().decode()
        assert fix[:12] not in body and secret not in body and "999001" not in body, user
        # the dashboard shows an embargoed tip as its short id and the word, like status: never its text
        with flow.session(user).open(flow.url + "plugins/wsgi_dashboards/pipeline/page", timeout=60) as r:
            body = r.read().decode()
        assert secret not in body and "999001" not in body, user
    with flow.session("alice").open(flow.url + "plugins/lpdeploy/qa.json", timeout=60) as r:
        assert json.loads(r.read())["base"] == fix  # the security role sees it


def test_a_security_fixs_merge_back_never_waits_for_qa(flow: Flow) -> None:
    fix = release_fix(flow, "qa9c2d", branch="security/qa-exempt")
    merged = flow.cli("merge-back", "security/qa-exempt", user="alice")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    wait_until(lambda: flow.is_ancestor(fix, flow.tip("stable") or ""), 180, "the merge-back to reach stable")
    flow.settle()
    report = qa_list(flow)
    exempt = [c for c in report["commits"] if c["security"]]
    assert len(exempt) == 1 and exempt[0]["qa"] == "needs-testing", report  # shown as such, never QA'd
    waiting = [c["revision"] for c in report["commits"] if not c["security"] and c["qa"] not in ("ok", "untestable")]
    if waiting:
        assert flow.cli("qa", "ok", *waiting, user="quinn").returncode == 0
    assert qa_list(flow)["deployable"] == flow.tip("stable")  # the merge-back does not hold the line
    promoted = flow.cli("promote", user="bob")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert flow.tip("production-stable") == flow.tip("stable")
