"""The webhook's pure rules (``lpdeploy.core.webhook``): signatures per format, the parse of each format,
and the order of ``read_hook``'s answers.

Bodies are abridged but real-shaped push events of GitHub, GitLab and Gitea,
and the plain ``{"ref", "after"}`` body; each is signed as its sender signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.webhook import (
    MAX_BODY,
    TIMESTAMP_TOLERANCE,
    Answer,
    Hook,
    Outcome,
    Provider,
    accepted,
    parse_push,
    provider_of,
    read_hook,
    replayed,
    sign,
    signature_holds,
    standard_webhooks_key,
)

SECRET = "s3cret-webhook-key-for-tests"
GITLAB_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
BEFORE = "a10867b14bb761a232cd80139fbd4c0d33264240"
NOW = 1_790_000_000
FLOW = ("devel", "stable", "production-devel", "production-stable")

GITHUB_BODY = json.dumps({
    "ref": "refs/heads/devel", "before": BEFORE, "after": SHA, "created": False, "deleted": False,
    "forced": False, "compare": "https://github.com/o/r/compare/a10867b14bb7...9fceb02d0ae5",
    "commits": [{"id": SHA, "message": "Add a feature", "author": {"name": "Dev", "email": "d@example.org"}}],
    "head_commit": {"id": SHA}, "repository": {"full_name": "o/r"}, "pusher": {"name": "dev"},
}).encode()
GITLAB_BODY = json.dumps({
    "object_kind": "push", "event_name": "push", "before": BEFORE, "after": SHA, "ref": "refs/heads/devel",
    "ref_protected": True, "checkout_sha": SHA, "user_username": "dev", "project_id": 15,
    "project": {"path_with_namespace": "o/r"}, "commits": [{"id": SHA, "message": "Add a feature"}],
    "total_commits_count": 1,
}).encode()
GITEA_BODY = json.dumps({
    "ref": "refs/heads/devel", "before": BEFORE, "after": SHA, "compare_url": "", "commits": [{"id": SHA}],
    "head_commit": {"id": SHA}, "repository": {"full_name": "o/r"}, "pusher": {"login": "dev"},
}).encode()
PLAIN_BODY = json.dumps({"ref": "refs/heads/devel", "after": SHA}).encode()

EVENT = {Provider.GITHUB: {"x-github-event": "push"},
         Provider.GITLAB: {"x-gitlab-event": "Push Hook"},
         # Gitea sends GitHub's and Gogs' event headers too
         Provider.GITEA: {"x-gitea-event": "push", "x-github-event": "push", "x-gogs-event": "push"},
         Provider.PLAIN: {}}
DELIVERY = {Provider.GITHUB: "x-github-delivery", Provider.GITLAB: "x-gitlab-event-uuid",
            Provider.GITEA: "x-gitea-delivery", Provider.PLAIN: "x-lpdeploy-delivery"}
BODY = {Provider.GITHUB: GITHUB_BODY, Provider.GITLAB: GITLAB_BODY, Provider.GITEA: GITEA_BODY,
        Provider.PLAIN: PLAIN_BODY}
ALL = list(Provider)


def secret_for(p: Provider) -> str:
    return GITLAB_SECRET if p is Provider.GITLAB else SECRET


def request(p: Provider, body: bytes | None = None, secret: str | None = None, delivery: str = "d-1",
            timestamp: int = NOW) -> dict[str, str]:
    """The headers ``p`` sends with ``body``, signed with ``secret`` (default: the right one)."""
    body = BODY[p] if body is None else body
    signed = sign(p, secret or secret_for(p), body, delivery=delivery, timestamp=timestamp)
    return {**EVENT[p], DELIVERY[p]: delivery, "content-type": "application/json", **signed}


def judge(p: Provider, headers: dict[str, str], body: bytes | None = None, method: str = "POST",
          secret: str | None = "right", now: float = NOW) -> Answer | Hook:
    configured = secret_for(p) if secret == "right" else secret
    return read_hook(method, headers, BODY[p] if body is None else body, secret=configured, now=now, watched=FLOW)


# --- signatures, per format -------------------------------------------------

def test_each_sender_is_recognised_by_its_event_header():
    assert [provider_of(EVENT[p]) for p in ALL] == ALL


@pytest.mark.parametrize("p", ALL)
def test_a_signature_made_with_the_secret_holds(p):
    assert signature_holds(p, secret_for(p), request(p), BODY[p], NOW)


def test_the_signatures_are_the_ones_the_senders_document():
    # computed here independently of sign(): what GitHub, Gitea and GitLab put in their headers
    digest = hmac.new(SECRET.encode(), GITHUB_BODY, hashlib.sha256).hexdigest()
    assert signature_holds(Provider.GITHUB, SECRET, {"x-hub-signature-256": "sha256=" + digest}, GITHUB_BODY, NOW)
    digest = hmac.new(SECRET.encode(), GITEA_BODY, hashlib.sha256).hexdigest()
    assert signature_holds(Provider.GITEA, SECRET, {"x-gitea-signature": digest}, GITEA_BODY, NOW)
    mac = hmac.new(b"k" * 32, b"msg_1." + str(NOW).encode() + b"." + GITLAB_BODY, hashlib.sha256).digest()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW),
               "webhook-signature": "v1," + base64.b64encode(mac).decode()}
    assert signature_holds(Provider.GITLAB, GITLAB_SECRET, headers, GITLAB_BODY, NOW)


@pytest.mark.parametrize("p", ALL)
def test_a_signature_made_with_another_secret_does_not_hold(p):
    other = "whsec_" + base64.b64encode(b"x" * 32).decode() if p is Provider.GITLAB else "another-secret-entirely"
    assert not signature_holds(p, secret_for(p), request(p, secret=other), BODY[p], NOW)


@pytest.mark.parametrize("p", ALL)
def test_a_changed_body_breaks_the_signature(p):
    tampered = BODY[p].replace(b"refs/heads/devel", b"refs/heads/stable")
    assert not signature_holds(p, secret_for(p), request(p), tampered, NOW)


@pytest.mark.parametrize("p", ALL)
def test_an_unsigned_request_does_not_hold(p):
    headers = {**EVENT[p], DELIVERY[p]: "d-1"}
    assert not signature_holds(p, secret_for(p), headers, BODY[p], NOW)


@pytest.mark.parametrize("p", [Provider.GITHUB, Provider.PLAIN])
def test_the_sha256_prefix_is_required(p):
    headers = request(p)
    name = "x-hub-signature-256" if p is Provider.GITHUB else "x-lpdeploy-signature"
    headers[name] = headers[name].removeprefix("sha256=")
    assert not signature_holds(p, SECRET, headers, BODY[p], NOW)
    headers[name] = "sha1=" + headers[name]
    assert not signature_holds(p, SECRET, headers, BODY[p], NOW)
    headers[name] = "sha512=" + headers[name].removeprefix("sha1=")  # the right digest under another name
    assert not signature_holds(p, SECRET, headers, BODY[p], NOW)


def test_githubs_old_sha1_signature_alone_is_not_enough():
    digest = hmac.new(SECRET.encode(), GITHUB_BODY, hashlib.sha1).hexdigest()
    headers = {"x-github-event": "push", "x-hub-signature": "sha1=" + digest}
    assert not signature_holds(Provider.GITHUB, SECRET, headers, GITHUB_BODY, NOW)


def test_gitlabs_plain_secret_token_is_not_a_signature():
    headers = {"x-gitlab-event": "Push Hook", "x-gitlab-token": GITLAB_SECRET}
    assert not signature_holds(Provider.GITLAB, GITLAB_SECRET, headers, GITLAB_BODY, NOW)


def test_gitlabs_signature_covers_its_delivery_id_and_timestamp():
    headers = request(Provider.GITLAB, delivery="msg_1")
    assert not signature_holds(Provider.GITLAB, GITLAB_SECRET, {**headers, "webhook-id": "msg_2"}, GITLAB_BODY, NOW)
    later = {**headers, "webhook-timestamp": str(NOW + 1)}
    assert not signature_holds(Provider.GITLAB, GITLAB_SECRET, later, GITLAB_BODY, NOW)


@pytest.mark.parametrize("offset, holds", [(TIMESTAMP_TOLERANCE, True), (-TIMESTAMP_TOLERANCE, True),
                                           (TIMESTAMP_TOLERANCE + 1, False), (-TIMESTAMP_TOLERANCE - 1, False)])
def test_a_gitlab_timestamp_far_from_the_clock_is_refused(offset, holds):
    headers = request(Provider.GITLAB, timestamp=NOW + offset)
    assert signature_holds(Provider.GITLAB, GITLAB_SECRET, headers, GITLAB_BODY, NOW) is holds


def test_one_of_several_gitlab_signatures_is_enough():
    headers = request(Provider.GITLAB)
    headers["webhook-signature"] = "v1,bm90IGl0 " + headers["webhook-signature"]
    assert signature_holds(Provider.GITLAB, GITLAB_SECRET, headers, GITLAB_BODY, NOW)
    headers["webhook-signature"] = headers["webhook-signature"].replace(" v1,", " v2,")
    assert not signature_holds(Provider.GITLAB, GITLAB_SECRET, headers, GITLAB_BODY, NOW)


def test_a_gitlab_signing_token_is_the_base64_key_it_names():
    assert standard_webhooks_key(GITLAB_SECRET) == b"k" * 32
    assert standard_webhooks_key("plain-text-secret") == b"plain-text-secret"


def test_signatures_are_compared_in_constant_time():
    import inspect

    from lpdeploy.core import webhook
    source = inspect.getsource(webhook)
    assert source.count("hmac.compare_digest(") == 2
    assert "== expected" not in source and "== _hex_hmac" not in source


# --- the parse of each format -------------------------------------------------

@pytest.mark.parametrize("p", ALL)
def test_each_format_names_the_branch_and_the_new_sha(p):
    push = parse_push(p, request(p), BODY[p])
    assert push is not None and (push.branch, push.after) == ("devel", SHA)


@pytest.mark.parametrize("p", [Provider.GITHUB, Provider.GITEA])
def test_a_ping_is_not_a_push(p):
    headers = {**request(p), "x-github-event": "ping", "x-gitea-event": "ping"} if p is Provider.GITEA else \
        {**request(p), "x-github-event": "ping"}
    assert parse_push(p, headers, b'{"zen": "Keep it logically awesome.", "hook_id": 1}') is None


def test_a_gitlab_tag_push_or_merge_request_is_not_a_push():
    assert parse_push(Provider.GITLAB, {"x-gitlab-event": "Tag Push Hook"}, GITLAB_BODY) is None
    body = GITLAB_BODY.replace(b'"object_kind": "push"', b'"object_kind": "merge_request"')
    assert parse_push(Provider.GITLAB, {"x-gitlab-event": "Push Hook"}, body) is None


@pytest.mark.parametrize("p", ALL)
def test_a_push_of_a_tag_names_no_branch(p):
    push = parse_push(p, request(p), BODY[p].replace(b"refs/heads/devel", b"refs/tags/v1.0"))
    assert push is not None and push.branch is None


@pytest.mark.parametrize("ref", ["refs/heads/--upload-pack=x", "refs/heads/a..b", "refs/heads/", "refs/heads/x y",
                                 "refs/heads/" + "x" * 201])
def test_a_branch_name_breaking_the_rules_is_refused(ref):
    with pytest.raises(InvalidInput):
        parse_push(Provider.PLAIN, {}, json.dumps({"ref": ref, "after": SHA}).encode())


@pytest.mark.parametrize("after", ["HEAD", SHA[:12], SHA.upper(), "--all", None, 7, "0" * 39])
def test_an_after_that_is_no_full_sha_is_refused(after):
    with pytest.raises(InvalidInput):
        parse_push(Provider.PLAIN, {}, json.dumps({"ref": "refs/heads/devel", "after": after}).encode())


@pytest.mark.parametrize("body", [b"payload=%7B%7D", b"[1, 2]", b'"devel"', b"\xff\xfe", b'{"after": "' +
                                  SHA.encode() + b'"}'])
def test_a_body_that_is_not_a_push_object_is_refused(body):
    with pytest.raises(InvalidInput):
        parse_push(Provider.PLAIN, {}, body)


def test_a_deleted_branch_is_still_a_hint():
    push = parse_push(Provider.PLAIN, {}, json.dumps({"ref": "refs/heads/devel", "after": "0" * 40}).encode())
    assert push is not None and push.branch == "devel"


# --- read_hook: the answers, in order ------------------------------------------

@pytest.mark.parametrize("p", ALL)
def test_a_signed_push_to_a_flow_branch_is_a_hook(p):
    hook = judge(p, request(p))
    assert isinstance(hook, Hook)
    assert (hook.provider, hook.branch, hook.after) == (p, "devel", SHA)
    assert accepted(hook).status == 202 and accepted(hook).body == b'{"hook": "accepted"}'
    assert replayed(hook).status == 200 and replayed(hook).body == b'{"hook": "ignored"}'


def test_without_a_secret_the_hook_is_off_whatever_is_sent():
    for method in ("POST", "GET"):
        answer = judge(Provider.GITHUB, request(Provider.GITHUB), method=method, secret=None)
        assert isinstance(answer, Answer) and answer.status == 404 and answer.outcome is Outcome.OFF


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_only_post_is_allowed(method):
    answer = judge(Provider.GITHUB, request(Provider.GITHUB), method=method)
    assert isinstance(answer, Answer) and answer.status == 405


@pytest.mark.parametrize("p", ALL)
def test_a_body_over_the_limit_is_413_even_when_signed(p):
    big = json.dumps({"ref": "refs/heads/devel", "after": SHA, "pad": "x" * MAX_BODY}).encode()[:MAX_BODY + 1]
    answer = judge(p, request(p, body=big), body=big)
    assert isinstance(answer, Answer) and answer.status == 413


def test_a_body_of_exactly_the_limit_is_read():
    body = PLAIN_BODY[:-1] + b' ' * (MAX_BODY - len(PLAIN_BODY)) + b'}'
    assert len(body) == MAX_BODY
    assert isinstance(judge(Provider.PLAIN, request(Provider.PLAIN, body=body), body=body), Hook)


@pytest.mark.parametrize("p", ALL)
def test_unsigned_and_forged_requests_are_401(p):
    unsigned = {**EVENT[p], DELIVERY[p]: "d-1"}
    forged = request(p, secret="whsec_" + base64.b64encode(b"f" * 32).decode() if p is Provider.GITLAB
                     else "forged-secret-of-an-attacker")
    for headers in (unsigned, forged):
        answer = judge(p, headers)
        assert isinstance(answer, Answer) and answer.status == 401 and answer.body == b'{"hook": "ignored"}'


def test_a_forged_body_is_refused_before_it_is_parsed():
    # a malformed body with a bad signature is a 401, not a 400: nothing unsigned is parsed
    answer = judge(Provider.PLAIN, request(Provider.PLAIN, body=b"{}"), body=b"not json")
    assert isinstance(answer, Answer) and answer.status == 401


@pytest.mark.parametrize("p", ALL)
def test_a_signed_request_without_a_delivery_id_is_400(p):
    headers = request(p)
    del headers[DELIVERY[p]]
    answer = judge(p, headers)
    assert isinstance(answer, Answer) and answer.status == 400


@pytest.mark.parametrize("delivery", ["", "-x", "a b", "x" * 129, "é"])
def test_a_delivery_id_breaking_the_rules_is_400(delivery):
    answer = judge(Provider.PLAIN, request(Provider.PLAIN, delivery=delivery))
    assert isinstance(answer, Answer) and answer.status == 400


def test_a_signed_but_invalid_push_is_400():
    body = json.dumps({"ref": "refs/heads/-x", "after": SHA}).encode()
    answer = judge(Provider.PLAIN, request(Provider.PLAIN, body=body), body=body)
    assert isinstance(answer, Answer) and answer.status == 400 and answer.outcome is Outcome.IGNORED


@pytest.mark.parametrize("ref", ["refs/heads/feature/x", "refs/heads/security/cve-1", "refs/tags/v1"])
def test_a_push_outside_the_flow_is_ignored(ref):
    body = json.dumps({"ref": ref, "after": SHA}).encode()
    answer = judge(Provider.PLAIN, request(Provider.PLAIN, body=body), body=body)
    assert isinstance(answer, Answer) and answer.status == 200 and answer.outcome is Outcome.IGNORED
    assert "security" not in answer.reason  # the master log does not name a security branch either


def test_a_ping_is_answered_200_ignored():
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    headers = {**request(Provider.GITHUB, body=body), "x-github-event": "ping"}
    answer = judge(Provider.GITHUB, headers, body=body)
    assert isinstance(answer, Answer) and answer.status == 200


@pytest.mark.parametrize("branch", FLOW)
def test_every_flow_branch_is_watched(branch):
    body = json.dumps({"ref": f"refs/heads/{branch}", "after": SHA}).encode()
    assert isinstance(judge(Provider.PLAIN, request(Provider.PLAIN, body=body), body=body), Hook)


def test_replay_keys_know_the_delivery_and_the_body():
    first = judge(Provider.GITHUB, request(Provider.GITHUB, delivery="d-1"))
    again = judge(Provider.GITHUB, request(Provider.GITHUB, delivery="d-1"))
    new_id = judge(Provider.GITHUB, request(Provider.GITHUB, delivery="d-2"))
    other_body = GITHUB_BODY.replace(BEFORE.encode(), SHA.encode())
    new_body = judge(Provider.GITHUB, request(Provider.GITHUB, body=other_body, delivery="d-1"), body=other_body)
    assert isinstance(first, Hook) and isinstance(again, Hook) and isinstance(new_id, Hook)
    assert isinstance(new_body, Hook)
    assert first.replay_keys == again.replay_keys
    assert first.replay_keys[1] == new_id.replay_keys[1] and first.replay_keys[0] != new_id.replay_keys[0]
    assert first.replay_keys[0] == new_body.replay_keys[0] and first.replay_keys[1] != new_body.replay_keys[1]
    # one sender's delivery id is not another's
    plain = judge(Provider.PLAIN, request(Provider.PLAIN, delivery="d-1"))
    assert isinstance(plain, Hook) and plain.replay_keys[0] != first.replay_keys[0]
