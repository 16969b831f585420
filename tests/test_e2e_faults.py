"""Faults end to end (issue 12): a real master, a real worker, a real bare upstream that misbehaves.

- Lost push reply: the upstream's ``post-receive`` hook holds the connection
  past ``[repository] timeout`` after stable moved, so the master never hears
  back from its push; the gate build must still say "moved", once.
- Upstream down: the bare repository is moved away (every read fails, exit
  128); a push lands there meanwhile. Nothing advances, ``lpdeploy status``
  (text and JSON) and the dashboard say "upstream unreachable since <time>";
  once it is back, the line goes and the gate tests and moves that push.
- The same push reported several times: the poller (every second) and the
  signed push hook (again, as a forge retrying, and after it was gated) all
  report it; one change record, one gate build.

Every scene starts with nothing pending and puts the upstream back as it was.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from lpdeploy.core import webhook
from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e
GATE = "lpdeploy-gate"
SUCCESS = 0
TIMEOUT = 2  # [repository] timeout of this master, seconds
SECRET = "e2e-faults-webhook-secret-0123456789"

LOSE_REPLIES = """#!/bin/sh
# after the refs moved: when asked to, hold the pusher's connection past its timeout (its reply is lost)
if test -e lose-replies && grep -q ' refs/heads/stable$'; then
  date +%s >> replies-lost.log
  sleep 8
fi
"""


class FaultyFlow(Flow):
    """A ``Flow`` whose master gives up on a git call to the upstream after ``TIMEOUT`` seconds."""

    def create(self) -> None:
        super().create()
        text = self.site.read_text()
        self.site.write_text(text.replace(f"poll_interval = {self.poll_interval}\n",
                                          f"poll_interval = {self.poll_interval}\ntimeout = {TIMEOUT}\n", 1))
        hook = self.upstream / "hooks" / "post-receive"
        hook.write_text(LOSE_REPLIES)
        hook.chmod(0o755)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("faults")
    secret = base / "hook-secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    yield from FaultyFlow(base, extra_site=f'[webhook]\nsecret_file = "{secret}"\n').running()


@pytest.fixture(autouse=True)
def nothing_pending(flow: Flow) -> Iterator[None]:
    flow.settle()
    yield
    (flow.upstream / "lose-replies").unlink(missing_ok=True)


def property_of(flow: Flow, build: dict, name: str) -> object:
    return flow.api(f"builds/{build['buildid']}/properties")["properties"][0].get(name, [None])[0]


def lost_replies(flow: Flow) -> int:
    log = flow.upstream / "replies-lost.log"
    return len(log.read_text().split()) if log.exists() else 0


def test_a_gate_push_whose_reply_is_lost_moves_stable_and_is_recorded_once(flow: Flow) -> None:
    flow.given_devel_holds_stable()
    before = lost_replies(flow)
    (flow.upstream / "lose-replies").touch()
    sha = flow.commit("ok", "Search results in pages")
    wait_until(lambda: flow.tip("stable") == sha, 120, "stable to reach the tested commit")
    flow.settle()
    assert lost_replies(flow) == before + 1, "the upstream did not hold the master's push: no fault was injected"
    build = flow.build_for(GATE, sha)  # exactly one gate build decided on it
    assert build["results"] == SUCCESS
    assert property_of(flow, build, "lpdeploy_outcome") == "moved"
    log = flow.step_log(build, "move", "decision")
    assert "the push's reply was lost; the upstream shows it landed" in log
    assert flow.suite_runs().count(sha) == 1


def dashboard(flow: Flow) -> str:
    with flow.session(None).open(f"{flow.url}plugins/wsgi_dashboards/pipeline/fragment", timeout=60) as r:
        return str(r.read().decode())


def test_an_unreachable_upstream_stops_the_flow_says_so_everywhere_and_the_flow_resumes(flow: Flow) -> None:
    flow.given_devel_holds_stable()
    stable = flow.tip("stable")
    gate_builds = len(flow.builds(GATE))
    away = flow.upstream.with_name("upstream.git.away")
    os.rename(flow.upstream, away)
    try:
        down = wait_until(lambda: flow.status()["upstream"]["line"], 30, "status to say the upstream is unreachable")
        assert down.startswith("upstream unreachable since ")
        assert flow.status()["upstream"]["reachable"] is False
        text = flow.cli("status")
        assert text.returncode == 0, text.stderr
        assert "upstream unreachable since " in text.stdout
        assert "stable" in text.stdout  # the last known tips are still shown
        assert "upstream unreachable since " in dashboard(flow)
        # a push lands at the upstream while the master cannot reach it
        git("fetch", "--quiet", str(away), "refs/heads/devel", cwd=flow.work)
        git("checkout", "--quiet", "-B", "devel", "FETCH_HEAD", cwd=flow.work)
        (flow.work / "app.txt").write_text("status: ok\nversion: 1000\n")
        git("commit", "--quiet", "-am", "Pushed while the master could not see", cwd=flow.work)
        git("push", "--quiet", str(away), "HEAD:refs/heads/devel", cwd=flow.work)
        sha = git("rev-parse", "HEAD", cwd=flow.work)
        time.sleep(6)  # several poll intervals and backoffs: nothing may advance meanwhile
        assert git(f"--git-dir={away}", "rev-parse", "refs/heads/stable") == stable
        assert len(flow.builds(GATE)) == gate_builds  # no build decided on tips it could not read
        since = flow.status()["upstream"]["unreachable_since"]
        assert flow.status()["upstream"]["failures"] >= 2  # it kept trying, less and less often
    finally:
        os.rename(away, flow.upstream)
    wait_until(lambda: flow.status()["upstream"]["line"] is None, 60, "the recovery to clear the status line")
    assert "upstream unreachable" not in flow.cli("status").stdout
    assert "upstream unreachable" not in dashboard(flow)
    wait_until(lambda: flow.tip("stable") == sha, 120, "the gate to move stable to the push made while down")
    flow.settle()
    assert flow.build_for(GATE, sha)["results"] == SUCCESS  # exactly one gate build for it
    assert since is not None


def hook(flow: Flow, sha: str, before: str) -> int:
    """The signed GitHub push hook for ``sha`` on devel, each time as a new delivery."""
    body = json.dumps({"ref": "refs/heads/devel", "before": before, "after": sha, "commits": [{"id": sha}],
                       "head_commit": {"id": sha}}).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
               **webhook.sign(webhook.Provider.GITHUB, SECRET, body)}
    req = urllib.request.Request(flow.url + "plugins/lpdeploy/hook", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(r.status)


def test_a_push_reported_by_the_poller_and_twice_by_the_hook_is_gated_once(flow: Flow) -> None:
    flow.given_devel_holds_stable()
    before = flow.tip("devel") or "0" * 40
    sha = flow.commit("ok", "Reported three times")
    assert hook(flow, sha, before) == 202
    # the forge delivers it again (a new delivery id): taken as a replay of the same push (200) or as a
    # hint (202), never an error; either way the poller reports the push as well
    assert hook(flow, sha, before) in (200, 202)
    wait_until(lambda: flow.tip("stable") == sha, 120, "stable to reach the reported push")
    assert hook(flow, sha, before) in (200, 202)  # and once more, after it was gated
    time.sleep(3)  # poll intervals: any second report would have queued by now
    flow.settle()
    changes = flow.api("changes?branch=devel&order=-changeid&limit=100")["changes"]
    assert [c["revision"] for c in changes].count(sha) == 1
    assert flow.build_for(GATE, sha)["results"] == SUCCESS  # exactly one gate build decided on it
    assert flow.suite_runs().count(sha) == 1
