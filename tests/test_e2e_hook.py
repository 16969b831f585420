"""Push webhooks end to end: a real master polling only once an hour, a real worker, real git.

With ``poll_interval = 3600`` the master learns of a push only from the hook
(or from the gate's own reconciliation every five minutes, which these scenes
stay well inside). A signed hook makes the gate test the devel tip at once
and move stable; a forged, an unsigned, an oversized and a replayed hook are
answered 401, 401, 413 and 200 "ignored", and no gate build starts and stable
stays where it was. The hook needs no login.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from lpdeploy.core import webhook
from tests.flow_harness import Flow, wait_until

pytestmark = pytest.mark.e2e
GATE = "lpdeploy-gate"
SUCCESS = 0
SECRET = "e2e-webhook-secret-0123456789"
QUIET = 4.0  # seconds to watch for a build that must not start; a hint starts one within about one


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("hook")
    secret = base / "hook-secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    f = Flow(base, extra_site=f'[webhook]\nsecret_file = "{secret}"\n', poll_interval=3600)
    yield from f.running()


def github_push(sha: str, before: str = "0" * 40) -> bytes:
    return json.dumps({"ref": "refs/heads/devel", "before": before, "after": sha,
                       "commits": [{"id": sha}], "head_commit": {"id": sha}}).encode()


def github_headers(body: bytes, secret: str = SECRET, delivery: str | None = None) -> dict[str, str]:
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "Content-Type": "application/json", **webhook.sign(webhook.Provider.GITHUB, secret, body)}


def post(flow: Flow, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict]:
    """Send to the hook as a forge does: no login, no cookie."""
    req = urllib.request.Request(flow.url + "plugins/lpdeploy/hook", data=body if method == "POST" else None,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def post_chunked(flow: Flow, body: bytes, headers: dict[str, str]) -> int:
    """Send ``body`` in chunks with no Content-Length: the master cannot know its size before reading."""
    conn = http.client.HTTPConnection("127.0.0.1", flow.www_port, timeout=60)
    try:
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
        conn.request("POST", "/plugins/lpdeploy/hook", body=chunks, headers=headers, encode_chunked=True)
        return conn.getresponse().status
    finally:
        conn.close()


def gate_builds(flow: Flow) -> int:
    return len(flow.builds(GATE))


def nothing_moves(flow: Flow, builds: int, stable: str | None) -> None:
    """For ``QUIET`` seconds: no gate build requested or started, stable where it was."""
    deadline = time.monotonic() + QUIET
    while time.monotonic() < deadline:
        assert gate_builds(flow) == builds, "a gate build started"
        assert flow.api("buildrequests?complete=false")["buildrequests"] == [], "a build was requested"
        assert flow.tip("stable") == stable, "stable moved"
        time.sleep(0.3)


def test_forged_unsigned_and_oversized_hooks_change_nothing_and_a_signed_one_moves_stable(flow: Flow) -> None:
    flow.settle()
    flow.given_devel_holds_stable()
    stable, builds = flow.tip("stable"), gate_builds(flow)
    sha = flow.commit("ok", "Add a feature")
    body = github_push(sha, before=stable or "0" * 40)
    forged = github_headers(body, secret="an-attackers-guess-at-the-secret")
    unsigned = {k: v for k, v in github_headers(body).items() if k != "x-hub-signature-256"}
    big = body[:-1] + b', "pad": "' + b"x" * webhook.MAX_BODY + b'"}'
    assert post(flow, body, forged) == (401, {"hook": "ignored"})
    assert post(flow, body, unsigned) == (401, {"hook": "ignored"})
    assert post(flow, big, github_headers(big)) == (413, {"hook": "ignored"})  # signed, but too long
    assert post_chunked(flow, big, github_headers(big)) == 413
    assert post(flow, b"", {}, method="GET") == (405, {"hook": "ignored"})
    nothing_moves(flow, builds, stable)

    assert post(flow, body, github_headers(body)) == (202, {"hook": "accepted"})
    wait_until(lambda: flow.tip("stable") == sha, 60, "stable to reach the hooked push")
    flow.settle()
    assert flow.build_for(GATE, sha)["results"] == SUCCESS
    assert gate_builds(flow) == builds + 1


def test_a_replayed_hook_changes_nothing(flow: Flow) -> None:
    flow.settle()
    flow.given_devel_holds_stable()
    first = flow.commit("ok", "A change announced once")
    body = github_push(first)
    headers = github_headers(body)
    assert post(flow, body, headers)[0] == 202
    wait_until(lambda: flow.tip("stable") == first, 60, "stable to reach the first push")
    flow.settle()
    stable, builds = flow.tip("stable"), gate_builds(flow)

    flow.commit("ok", "A change nobody announced")  # only a replay would make the master look now
    assert post(flow, body, headers) == (200, {"hook": "ignored"})
    assert post(flow, body, {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}) == (200, {"hook": "ignored"})
    nothing_moves(flow, builds, stable)


def test_a_plain_sender_is_heard_too(flow: Flow) -> None:
    flow.settle()
    flow.given_devel_holds_stable()
    sha = flow.commit("ok", "Announced by a post-receive hook")
    body = json.dumps({"ref": "refs/heads/devel", "after": sha}).encode()
    headers = {"X-Lpdeploy-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
               **webhook.sign(webhook.Provider.PLAIN, SECRET, body)}
    assert post(flow, body, headers) == (202, {"hook": "accepted"})
    wait_until(lambda: flow.tip("stable") == sha, 60, "stable to reach the announced push")
