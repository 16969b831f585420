"""Push webhooks: who sent one, whether its signature holds, and what it hints at.

``/plugins/lpdeploy/hook`` (``lpdeploy.web.hook``) hands every request to
``read_hook`` and acts on the answer. A hook is a **hint**: a signed push to a
flow branch makes the poller read the tips at once; the tips stay the truth
(design invariant 3), so the body's ``after`` sha is validated but never moves
anything. The HMAC is the only credential (the path needs no login):

* GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``,
  delivery id ``X-GitHub-Delivery``;
* Gitea / Forgejo: ``X-Gitea-Signature: <hex HMAC-SHA256 of the body>``,
  delivery id ``X-Gitea-Delivery``;
* GitLab: its *signing token* (Standard Webhooks): ``webhook-signature:
  v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">``,
  refused when the signed timestamp is more than ``TIMESTAMP_TOLERANCE``
  seconds off; delivery id ``X-Gitlab-Event-UUID``. GitLab's older *secret
  token* (``X-Gitlab-Token``) is the secret itself, sent in clear on every
  request, and is not accepted;
* plain (any other sender, e.g. a post-receive hook): ``X-Lpdeploy-Signature:
  sha256=<hex HMAC-SHA256 of the body>``, delivery id ``X-Lpdeploy-Delivery``,
  body ``{"ref": "refs/heads/<branch>", "after": "<sha>"}``.

Signatures are compared with ``hmac.compare_digest`` (constant time). A
delivery is recognised again by its delivery id *and* by the digest of its
body (``Hook.replay_keys``): the delivery headers of GitHub, Gitea and the
plain format are not covered by the signature, so a replay with a fresh
delivery id and the same signed body is a replay too.

Pure: no Buildbot, no Twisted; the clock (``now``) is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.refs import validate_branch, validate_revision

PATH = "hook"  # under /plugins/lpdeploy/
MAX_BODY = 1024 * 1024  # bytes of a request body; more is answered 413 unread
TIMESTAMP_TOLERANCE = 300  # seconds a signed GitLab timestamp may be off the master's clock
HINT_KEY = ("lpdeploy", "hooks", "poll")  # the mq routing key that makes the poller read the tips now
SECRET_PREFIX = "whsec_"  # GitLab's signing tokens: whsec_<base64 of the key>
_DELIVERY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"
    PLAIN = "plain"


# per provider: the header holding the delivery id
DELIVERY_HEADER = {
    Provider.GITHUB: "x-github-delivery",
    Provider.GITLAB: "x-gitlab-event-uuid",
    Provider.GITEA: "x-gitea-delivery",
    Provider.PLAIN: "x-lpdeploy-delivery",
}
# per provider: the event header and the value that means "a push to a branch"
PUSH_EVENT = {
    Provider.GITHUB: ("x-github-event", "push"),
    Provider.GITLAB: ("x-gitlab-event", "Push Hook"),
    Provider.GITEA: ("x-gitea-event", "push"),
}


class Outcome(StrEnum):
    """The one word an answer says about a request: nothing else leaves the master."""

    ACCEPTED = "accepted"
    IGNORED = "ignored"
    OFF = "off"


@dataclass(frozen=True)
class Answer:
    """What the hook answers: an HTTP status and one word; ``reason`` is for the master's log only."""

    status: int
    outcome: Outcome
    reason: str

    @property
    def body(self) -> bytes:
        return json.dumps({"hook": self.outcome.value}).encode()


@dataclass(frozen=True)
class Hook:
    """A signed push to a flow branch: a hint to read the tips, unless it was seen before."""

    provider: Provider
    branch: str
    after: str  # validated, logged, never trusted to move anything
    replay_keys: tuple[str, ...]


def off() -> Answer:
    return Answer(404, Outcome.OFF, "no [webhook] in the site file")


def accepted(hook: Hook) -> Answer:
    return Answer(202, Outcome.ACCEPTED, f"{hook.provider} push to {hook.branch}: reading the tips now")


def replayed(hook: Hook) -> Answer:
    return Answer(200, Outcome.IGNORED, f"{hook.provider} delivery seen before (replay)")


def provider_of(headers: Mapping[str, str]) -> Provider:
    """Which sender's format a request uses, by its event header (Gitea also sends GitHub's)."""
    if "x-gitea-event" in headers:
        return Provider.GITEA
    if "x-github-event" in headers:
        return Provider.GITHUB
    if "x-gitlab-event" in headers:
        return Provider.GITLAB
    return Provider.PLAIN


def _hex_hmac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: ``whsec_<base64>`` decoded; any other text as is."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign(provider: Provider, secret: str, body: bytes, *, delivery: str = "", timestamp: int = 0) -> dict[str, str]:
    """The signature headers a sender of ``provider``'s format computes (for tests and for README's example)."""
    if provider is Provider.GITLAB:
        mac = hmac.new(standard_webhooks_key(secret), f"{delivery}.{timestamp}.".encode() + body, hashlib.sha256)
        return {"webhook-id": delivery, "webhook-timestamp": str(timestamp),
                "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()}
    digest = _hex_hmac(secret.encode(), body)
    if provider is Provider.GITEA:
        return {"x-gitea-signature": digest}
    if provider is Provider.GITHUB:
        return {"x-hub-signature-256": "sha256=" + digest}
    return {"x-lpdeploy-signature": "sha256=" + digest}


def signature_holds(provider: Provider, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Whether ``body`` carries a valid HMAC-SHA256 of ``secret`` in ``provider``'s header.

    A missing or malformed header is a signature that does not hold. GitLab's
    signature also signs its delivery id and a timestamp, which must be within
    ``TIMESTAMP_TOLERANCE`` seconds of ``now``.
    """
    if provider is Provider.GITLAB:
        return _standard_webhook_holds(secret, headers, body, now)
    header = {Provider.GITHUB: "x-hub-signature-256", Provider.GITEA: "x-gitea-signature",
              Provider.PLAIN: "x-lpdeploy-signature"}[provider]
    given = headers.get(header, "")
    if provider is not Provider.GITEA:
        if not given.startswith("sha256="):
            return False
        given = given[len("sha256="):]
    return hmac.compare_digest(given.encode(), _hex_hmac(secret.encode(), body).encode())


def _standard_webhook_holds(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    delivery = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not delivery or not stamp.isdigit() or abs(now - int(stamp)) > TIMESTAMP_TOLERANCE:
        return False
    mac = hmac.new(standard_webhooks_key(secret), f"{delivery}.{stamp}.".encode() + body, hashlib.sha256)
    expected = base64.b64encode(mac.digest())
    # the header may list several signatures ("v1,<a> v1,<b>", during a key rotation): one must hold
    found = False
    for item in headers.get("webhook-signature", "").split():
        version, _, value = item.partition(",")
        found |= version == "v1" and hmac.compare_digest(value.encode(), expected)
    return found


@dataclass(frozen=True)
class Push:
    """What a push event's body says: the branch (None for a tag or another ref) and the new sha."""

    branch: str | None
    after: str


def parse_push(provider: Provider, headers: Mapping[str, str], body: bytes) -> Push | None:
    """The push a signed body describes; None when the event is not a push (a ping, a tag push...).

    Raises InvalidInput when the body is not a JSON object or its ``ref`` or
    ``after`` break the rules of ``lpdeploy.core.refs``. The four formats
    agree on the two fields lpdeploy reads: ``ref`` (``refs/heads/<branch>``)
    and ``after`` (the full sha the ref now points to; all zeros when deleted).
    """
    if provider in PUSH_EVENT:
        header, push = PUSH_EVENT[provider]
        if headers.get(header) != push:
            return None
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("webhook body", body[:80].decode("utf-8", "replace"), "not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("webhook body", type(data).__name__, "must be a JSON object")
    if provider is Provider.GITLAB and data.get("object_kind", "push") != "push":
        return None
    ref, after = data.get("ref"), validate_revision(data.get("after"), "webhook after")
    if not isinstance(ref, str):
        raise InvalidInput("webhook ref", repr(ref)[:80], "must be a string")
    if not ref.startswith("refs/heads/"):
        return Push(None, after)
    return Push(validate_branch(ref[len("refs/heads/"):], "webhook branch"), after)


def delivery_id(provider: Provider, headers: Mapping[str, str]) -> str:
    """The request's delivery id (letters, digits, ``.``, ``_``, ``:``, ``-``; at most 128), or InvalidInput."""
    value = headers.get(DELIVERY_HEADER[provider], "")
    if not _DELIVERY.fullmatch(value):
        raise InvalidInput(f"{DELIVERY_HEADER[provider]} header", value,
                           "a delivery id of letters, digits and . _ : - is required")
    return value


def replay_keys(provider: Provider, delivery: str, body: bytes) -> tuple[str, str]:
    """What recognises a delivery again: its id, and its body (whose headers are not all signed)."""
    return (hashlib.sha256(f"{provider}:{delivery}".encode()).hexdigest()[:40],
            "body-" + hashlib.sha256(body).hexdigest()[:40])


def read_hook(method: str, headers: Mapping[str, str], body: bytes, *, secret: str | None, now: float,
              watched: tuple[str, ...]) -> Answer | Hook:
    """Judge one request to the hook; a ``Hook`` still needs the replay check (``accepted``/``replayed``).

    ``headers`` are keyed by lower-case name. ``body`` is what was read of the
    body: at most ``MAX_BODY + 1`` bytes, so a longer one is known to be too
    long without reading it all. The checks run in this order, each one a
    refusal that changes nothing: the hook is off (404), not a POST (405), the
    body is too long (413), the signature does not hold (401), the signed body
    is not a valid push (400), it concerns no branch of ``watched`` (200,
    ignored).
    """
    if secret is None:
        return off()
    if method != "POST":
        return Answer(405, Outcome.IGNORED, f"{method} is not allowed: POST a push event")
    if len(body) > MAX_BODY:
        return Answer(413, Outcome.IGNORED, f"body longer than {MAX_BODY} bytes")
    provider = provider_of(headers)
    if not signature_holds(provider, secret, headers, body, now):
        return Answer(401, Outcome.IGNORED, f"{provider} request unsigned or wrongly signed")
    try:
        push = parse_push(provider, headers, body)
        delivery = delivery_id(provider, headers)
    except InvalidInput as e:
        return Answer(400, Outcome.IGNORED, f"signed {provider} request refused: {e}")
    if push is None:
        return Answer(200, Outcome.IGNORED, f"{provider} event is not a push to a branch")
    if push.branch not in watched:
        return Answer(200, Outcome.IGNORED, f"{provider} push to a branch outside the flow")
    return Hook(provider, push.branch, push.after, replay_keys(provider, delivery, body))
