"""Every read door, as every viewer, around a sharded security build (design invariant 6; issue 10 item 1).

A real master, two real workers and a sharded suite (``[suite] shards = 2``)
whose test list grows with the fix: the fix adds ``cases/test_<SECRET>.txt``
(so a test id and a test file name carry the secret), the file holds the
secret (the suite prints it into the shard's log), and the commit message
carries it too. Websocket and server-sent-event clients are connected as
anonymous, as a developer without a role (``carol``), as a losa (``bob``) and
as the security user (``alice``) during the whole build; then every REST
path, query filter, nested collection, HEAD, lpdeploy's pages and the
Pipeline dashboard are crawled as each. The secret, and every event about
the embargoed builders' items, reach only ``alice``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e
PY = sys.executable
SUITE = '''"""list: the base tests and one per cases/test_*.txt; run ID_FILE: print each case file, JUnit results."""
import pathlib
import sys

BASE = [f"test_base_{i}" for i in range(4)]
if sys.argv[1] == "list":
    print("\\n".join(BASE + sorted(p.stem for p in pathlib.Path("cases").glob("test_*.txt"))))
    sys.exit(0)
cases = []
for test in [line.strip() for line in open(sys.argv[2]) if line.strip()]:
    case = pathlib.Path("cases", test + ".txt")
    if case.exists():
        print(case.read_text())
    cases.append(f'<testcase classname="suite" name="{test}" time="0.05"/>')
pathlib.Path("results.xml").write_text("<testsuite>" + "".join(cases) + "</testsuite>")
'''
EMBARGOED_BUILDERS = ("lpdeploy-security", "lpdeploy-security-shard", "lpdeploy-merge-back")
OUTSIDERS = (None, "carol", "bob")


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("doors")
    out = base / "servers"
    out.mkdir()
    # a server that is never deployed to: the fixes stay embargoed (no merge-back) for the whole module
    deploy = ["sh", "-c", f'echo "$1" > {out}/"$0"', "{server}", "{revision}"]
    suite = (f'[suite]\nshards = 2\nlist_command = ["{PY}", "suite.py", "list"]\n'
             f'run_command = ["{PY}", "suite.py", "run", "{{id_file}}"]\nresults = "junit"\n'
             'results_file = "results.xml"\n')
    f = Flow(base, suite_toml=suite, workers=2, files={"suite.py": SUITE},
             extra_site=f'[[servers]]\nname = "app1"\ndeploy_command = {json.dumps(deploy)}\n')
    yield from f.running()


def release_fix(flow: Flow, branch: str, secret: str, author: str) -> str:
    """Push a security fix based on production-stable and wait until production runs it and all is quiet."""
    flow.settle()
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/production-stable", cwd=flow.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=flow.work)
    (flow.work / "cases").mkdir(exist_ok=True)
    (flow.work / "cases" / f"test_{secret}.txt").write_text(f"the fix: {secret}\n")
    git("add", "cases", cwd=flow.work)
    git("commit", "--quiet", f"--author={author}", "-m", f"Fix the login bypass {secret}", cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), f"HEAD:refs/heads/{branch}", cwd=flow.work)
    fix = git("rev-parse", "HEAD", cwd=flow.work)
    wait_until(lambda: flow.tip("production-stable") == fix, 300, f"production-stable to take {branch}")
    flow.settle()
    return fix


def as_alice(flow: Flow, path: str) -> list[dict[str, Any]]:
    with flow.session("alice").open(f"{flow.url}api/v2/{path}", timeout=60) as r:
        answer = json.loads(r.read())
    return next(v for k, v in answer.items() if k != "meta")


def embargoed_ids(flow: Flow) -> dict[str, set[int]]:
    """The ids of every item of the embargoed builders, by the id field that names it."""
    ids: dict[str, set[int]] = {k: set() for k in ("builderid", "buildid", "buildrequestid", "bsid", "stepid",
                                                   "logid", "test_result_setid")}
    for builder in as_alice(flow, "builders"):
        if builder["name"] not in EMBARGOED_BUILDERS:
            continue
        ids["builderid"].add(builder["builderid"])
        for build in as_alice(flow, f"builders/{builder['builderid']}/builds"):
            ids["buildid"].add(build["buildid"])
            for step in as_alice(flow, f"builds/{build['buildid']}/steps"):
                ids["stepid"].add(step["stepid"])
                ids["logid"] |= {lg["logid"] for lg in as_alice(flow, f"steps/{step['stepid']}/logs")}
        for req in as_alice(flow, f"builders/{builder['builderid']}/buildrequests"):
            ids["buildrequestid"].add(req["buildrequestid"])
            ids["bsid"].add(req["buildsetid"])
        ids["test_result_setid"] |= {t["test_result_setid"] for t in
                                     as_alice(flow, f"builders/{builder['builderid']}/test_result_sets")}
    return ids


KEY_IDS = {"builders": "builderid", "builds": "buildid", "buildrequests": "buildrequestid", "buildsets": "bsid",
           "steps": "stepid", "logs": "logid", "test_result_sets": "test_result_setid"}


def named_items(key: str, message: Any) -> list[tuple[str, int]]:
    """The (id field, id) pairs an event names: in its routing key and in its message."""
    parts = key.split("/")
    parts = parts[1:] if parts[0] == "control" else parts
    if parts[0] == "builders" and len(parts) == 3:
        return []  # builders/N/started...: the builder itself, which is public
    named = []
    for i, part in enumerate(parts[:-1]):
        number = i >= 2 and parts[i - 2] == "builders" and part == "builds"  # builders/N/builds/<number>
        if part in KEY_IDS and parts[i + 1].isdigit() and not number:
            named.append((KEY_IDS[part], int(parts[i + 1])))
    if isinstance(message, dict):
        named += [(f, message[f]) for f in KEY_IDS.values() if isinstance(message.get(f), int)]
        if isinstance(message.get("parent_buildid"), int):
            named.append(("buildid", message["parent_buildid"]))
    return named


def about_embargoed_items(events: list[tuple[str, str, Any]], ids: dict[str, set[int]]) -> list[Any]:
    """The events that name an embargoed item."""
    return [(door, key) for door, key, message in events
            if any(v in ids[f] for f, v in named_items(key, message))]


def test_no_door_shows_a_sharded_security_fix_to_a_viewer_without_the_security_role(flow: Flow) -> None:
    secret = "SECRETxCVE2099x7777xplugh"
    flow.settle()
    recorders = {user: flow.recording(user) for user in (*OUTSIDERS, "alice")}
    for rec in recorders.values():
        rec.__enter__()
    try:
        release_fix(flow, "security/doors", secret, "Mallory Fixer <mallory@example.invalid>")
        public = flow.commit("ok", "A public change everyone may watch")
        wait_until(lambda: flow.tip("stable") == public, 300, "stable to take the public change")
        flow.settle()
    finally:
        for rec in recorders.values():
            rec.__exit__(None, None, None)
    ids = embargoed_ids(flow)
    shard_builds = [b for b in as_alice(flow, "builders/lpdeploy-security-shard/builds") if b["complete"]]
    assert len(shard_builds) == 2, "the security build did not run two shards"
    public_builds = {b["buildid"] for b in as_alice(flow, "builds") if b["buildid"] not in ids["buildid"]}

    for user, rec in recorders.items():
        keys = {(door, key) for door, key, _ in rec.events}
        saw_public = {door for door, key in keys for b in public_builds if key == f"builds/{b}/new"}
        assert saw_public == {"ws", "sse"}, f"{user or 'anonymous'} recorded no public build: the recorder is deaf"
        if user == "alice":
            saw_embargoed = {door for door, key in keys for b in ids["buildid"] if key == f"builds/{b}/new"}
            assert saw_embargoed == {"ws", "sse"}, "alice was not shown the security build's events"
            continue
        assert secret not in rec.text, f"the secret reached {user or 'anonymous'} through pushed events"
        leaks = about_embargoed_items(rec.events, ids)
        assert not leaks, f"{user or 'anonymous'} was pushed events about embargoed items: {leaks[:5]}"

    for user in OUTSIDERS:
        crawl = flow.crawl(user)
        assert secret not in crawl, f"the secret leaked to {user or 'anonymous'} through a read"
        assert len(crawl.statuses) > 500  # the crawl did try the doors
        assert crawl.statuses["HEAD api/v2/builds"] == 200
        for buildid in ids["buildid"]:
            assert crawl.statuses[f"HEAD api/v2/builds/{buildid}"] == 403
            assert crawl.statuses[f"GET api/v2/builds/{buildid}?property=*"] == 403
        assert crawl.statuses["GET plugins/wsgi_dashboards/pipeline/page"] == 200
    crawl = flow.crawl("alice")
    assert secret in crawl, "the crawl cannot find the secret even as the security user"
    assert all(crawl.statuses[f"HEAD api/v2/builds/{b}"] == 200 for b in ids["buildid"])


def page(flow: Flow, user: str | None, path: str) -> str:
    with flow.session(user).open(f"{flow.url}plugins/wsgi_dashboards/pipeline/{path}", timeout=60) as r:
        return r.read().decode()


def test_the_dashboard_shows_an_embargoed_fix_only_to_the_security_role(flow: Flow) -> None:
    secret, author = "SECRETxDASHBOARDx4711", "Trudy Patcher"
    fix = release_fix(flow, "security/dashboard", secret, f"{author} <trudy@example.invalid>")
    for path in ("page", "fragment"):
        for user in OUTSIDERS:
            html = page(flow, user, path)
            assert f"{fix[:12]} embargoed" in html, f"{path} as {user or 'anonymous'} does not show the tip"
            assert secret not in html and author not in html, f"{path} shows the fix to {user or 'anonymous'}"
        html = page(flow, "alice", path)
        assert secret in html and author in html, f"{path} hides the fix from the security user"
