"""Every form field lpdeploy adds refuses bad input with HTTP 400 and its rule, and nothing is scheduled.

A ``losa`` user posts JSON-RPC ``force`` calls to a real master, as the web
UI and the CLI do; each bad value (oversize, two lines, a control character,
option-shaped, not text) must come back as 400 naming the field and the rule
it broke, and the number of buildsets must not move. The CLI refuses the
same values itself (exit 2) before it connects: ``test_cli_input.py``; here
a few of them run against the real master too.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.flow_harness import Flow

pytestmark = pytest.mark.e2e

SHA = "0123456789abcdef0123456789abcdef01234567"
TEXT_RULE = "must be one line of at most 200 printable characters, not starting with '-'"
REVISION_RULE = "must be a full 40-character hex commit id"
SERVER_RULE = "starting with a letter or digit"

# every form lpdeploy adds, with values that pass for every field
FORMS = {
    "promote": {"reason": "weekly promotion", "target_revision": ""},
    "deploy": {"reason": "weekly deploy", "servers": "app1", "target_revision": "", "override_cowboys": False,
               "override_reason": ""},
    "cowboy-add": {"reason": "hot patch", "servers": "app1", "cowboy_reason": "mail relay by hand", "fixed_by": ""},
    "cowboy-remove": {"reason": "undone", "cowboy_id": "1", "remove_reason": "reverted by hand"},
    "freeze": {"reason": "release party", "freeze_reason": "release party"},
    "thaw": {"reason": "party over"},
}
TEXT_FIELDS = [("promote", "reason"), ("deploy", "reason"), ("deploy", "override_reason"),
               ("cowboy-add", "reason"), ("cowboy-add", "cowboy_reason"), ("cowboy-remove", "reason"),
               ("cowboy-remove", "remove_reason"), ("freeze", "reason"), ("freeze", "freeze_reason"),
               ("thaw", "reason")]
REVISION_FIELDS = [("promote", "target_revision"), ("deploy", "target_revision"), ("cowboy-add", "fixed_by")]
SERVER_FIELDS = [("deploy", "servers"), ("cowboy-add", "servers")]
BAD_TEXT = {"oversize": ("x" * 201, "201 characters"), "newline": ("ok\nFAKE: all tests passed", "more than one line"),
            "control": ("ok\x1b[2J", "U+001B"), "option": ("--all", "starts with '-'"),
            "not text": ({"nested": 1}, "must be text")}
BAD_REVISION = {"oversize": (SHA * 100, REVISION_RULE), "newline": (SHA + "\nx", REVISION_RULE),
                "control": (SHA[:39] + "\x00", REVISION_RULE), "option": ("--all", REVISION_RULE),
                "not text": (40, "must be text")}
BAD_SERVERS = {"oversize": ("app1 " * 300, TEXT_RULE.replace("200", "1000")),
               "newline": ("app1\napp2", "more than one line"), "control": ("app1\x07", "U+0007"),
               "option": ("app1 --all", SERVER_RULE), "unknown": ("app1 app9", "unknown server"),
               "not text": (7, "must be text")}
BAD_COWBOY_ID = {"oversize": ("1" * 10_000, "must be a number"), "newline": ("1\n2", "must be a number"),
                 "control": ("1\x00", "must be a number"), "option": ("-1", "must be a number"),
                 "not text": (1.5, "must be a number")}
DIFF = "diff --git a/mail.cf b/mail.cf\n--- a/mail.cf\n+++ b/mail.cf\n@@ -1 +1 @@\n-relay = a\n+relay = b\n"
BAD_PATCH = {"oversize": (DIFF + "+" * (1024 * 1024), "larger than the 1 MiB a cowboy's patch may have"),
             "no diff": ("edited mail.cf by hand", "is not a unified diff"), "control": (DIFF + "\x00", "NUL"),
             "not text": ({"diff": 1}, "must be text")}
CASES = ([(form, field, kind, value, words) for form, field in TEXT_FIELDS
          for kind, (value, words) in BAD_TEXT.items()]
         + [(form, field, kind, value, words) for form, field in REVISION_FIELDS
            for kind, (value, words) in BAD_REVISION.items()]
         + [(form, field, kind, value, words) for form, field in SERVER_FIELDS
            for kind, (value, words) in BAD_SERVERS.items()]
         + [("cowboy-remove", "cowboy_id", kind, value, words) for kind, (value, words) in BAD_COWBOY_ID.items()]
         + [("cowboy-add", "patch", kind, value, words) for kind, (value, words) in BAD_PATCH.items()])


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("forms")
    servers = "".join(f'[[servers]]\nname = "{n}"\ndeploy_command = ["true"]\n' for n in ("app1", "app2"))
    f = Flow(base, extra_site=servers)
    yield from f.running()


@pytest.fixture(scope="module")
def bob(flow: Flow) -> urllib.request.OpenerDirector:
    return flow.session("bob")


def force(opener: urllib.request.OpenerDirector, flow: Flow, form: str, params: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps({"jsonrpc": "2.0", "method": "force", "id": 1, "params": params}).encode()
    req = urllib.request.Request(f"{flow.url}api/v2/forceschedulers/{form}", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def buildsets(opener: urllib.request.OpenerDirector, flow: Flow) -> int:
    with opener.open(flow.url + "api/v2/buildsets", timeout=30) as r:
        return len(json.loads(r.read())["buildsets"])


@pytest.mark.parametrize(("form", "field", "kind", "value", "words"), CASES,
                         ids=[f"{c[0]}.{c[1]}-{c[2]}" for c in CASES])
def test_a_bad_value_is_a_400_naming_the_field_and_rule_and_nothing_is_scheduled(
        flow: Flow, bob: urllib.request.OpenerDirector, form: str, field: str, kind: str, value: Any,
        words: str) -> None:
    before = buildsets(bob, flow)
    status, reply = force(bob, flow, form, {**FORMS[form], field: value})
    assert status == 400, reply
    errors = reply["error"]["message"]
    assert list(errors) == [field], errors
    assert words in errors[field], errors[field]
    assert len(errors[field]) < 400  # the refusal quotes at most the start of the value
    assert buildsets(bob, flow) == before


def test_a_ten_megabyte_reason_is_refused_and_never_reaches_the_buildsets(
        flow: Flow, bob: urllib.request.OpenerDirector) -> None:
    before = buildsets(bob, flow)
    status, reply = force(bob, flow, "promote", {"reason": "A" * 10_000_000})
    assert status == 400 and "10000000 characters" in reply["error"]["message"]["reason"]
    assert buildsets(bob, flow) == before
    with urllib.request.urlopen(flow.url + "api/v2/buildsets", timeout=30) as r:  # as anonymous
        assert len(r.read()) < 100_000


def test_good_values_pass_the_same_forms(flow: Flow, bob: urllib.request.OpenerDirector) -> None:
    """The control: the valid values the bad-value tests start from are accepted, trimmed, and scheduled."""
    before = buildsets(bob, flow)
    status, reply = force(bob, flow, "freeze", {**FORMS["freeze"], "freeze_reason": "  release party  "})
    assert status == 200, reply
    assert force(bob, flow, "thaw", FORMS["thaw"])[0] == 200
    assert buildsets(bob, flow) == before + 2
    flow.settle()
    audit = json.loads(bob.open(flow.url + "plugins/lpdeploy/audit.json", timeout=30).read())
    assert {"freeze": "release party"} in [{e["action"]: e["details"].get("reason")} for e in audit]


def test_the_priority_field_cannot_be_set_from_outside(flow: Flow, bob: urllib.request.OpenerDirector) -> None:
    status, reply = force(bob, flow, "thaw", {**FORMS["thaw"], "priority": "99999999999999999999999"})
    assert status == 200, reply
    _, brids = reply["result"]
    (brid,) = brids.values()
    with bob.open(f"{flow.url}api/v2/buildrequests/{brid}", timeout=30) as r:
        assert json.loads(r.read())["buildrequests"][0]["priority"] == 0
    flow.settle()


@pytest.mark.parametrize("args", [
    ["freeze", "--reason", "first line\nsecond line"],
    ["freeze", "--reason", "x" * 201],
    ["cowboy", "add", "--server", "app1", "--reason", "bell\x07"],
    ["cowboy", "add", "--server=-app1", "--reason", "ok"],
    ["promote", "--reason=--force"],
    ["deploy", "--revision", "HEAD"],
    ["cowboy", "remove", "1; rm -rf /"],
])
def test_the_cli_refuses_the_same_values_with_exit_2_and_sends_nothing(
        flow: Flow, bob: urllib.request.OpenerDirector, args: list[str]) -> None:
    before = buildsets(bob, flow)
    result = flow.cli(*args, user="bob")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("lpdeploy: invalid "), result.stderr
    assert buildsets(bob, flow) == before
