"""``/plugins/lpdeploy/hook``: push webhooks from GitHub, GitLab, Gitea or a plain sender.

Buildbot serves a www plugin's resource without a login; this one's only
credential is the HMAC of the body (``lpdeploy.core.webhook`` judges every
request). A signed, new push to a flow branch is a **hint**: the resource
publishes ``HINT_KEY`` on Buildbot's message queue, and the ``FlowPoller``
(on whichever master runs it, with several masters on one queue) reads the
tips at once. Nothing else changes: the body's ``after`` is never used, and
the answer says one word (``accepted``, ``ignored``, ``off``) with its
status; why is written to the master's log only.

Replays: the keys of every accepted delivery go to Buildbot's database
(``lpdeploy.stores.deliveries``), so a delivery seen before — by this
master or another, before a restart or after — is ignored.

Bodies: ``install()`` (called when ``lpdeploy.configurator`` is imported,
before the www service builds its site) makes ``HookRequest`` the class of
Buildbot's web requests. For the hook's path it keeps at most
``MAX_BODY + 1`` bytes of a body (Twisted would otherwise spool any size to
a temporary file before a resource sees it); the rest is read off the
connection and dropped, and the resource answers 413.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from buildbot.www.service import BuildbotSite
from twisted.internet import defer
from twisted.python import log
from twisted.web import resource, server

from lpdeploy.core import webhook
from lpdeploy.core.settings import Settings
from lpdeploy.stores.deliveries import DbDeliveries

HOOK_PATH = b"/plugins/lpdeploy/" + webhook.PATH.encode()


class HookRequest(server.Request):
    """Buildbot's web request, which stores at most ``MAX_BODY + 1`` bytes of a body sent to the hook.

    Twisted calls ``gotLength`` once the headers are in (the channel has
    parsed the request line by then) and ``handleContentChunk`` for every
    piece of the body, before any resource is chosen.
    """

    _room: int | None = None  # bytes the hook's body may still take; None: not the hook

    def gotLength(self, length: int | None) -> None:
        path = getattr(self.channel, "_path", b"") or b""
        if path.split(b"?", 1)[0] == HOOK_PATH:
            self._room = webhook.MAX_BODY + 1
            self.content = io.BytesIO()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._room is None:
            super().handleContentChunk(data)
            return
        kept = data[:self._room]
        self._room -= len(kept)
        assert self.content is not None  # gotLength made it
        self.content.write(kept)


def install() -> None:
    """Make ``HookRequest`` the request class of Buildbot's web site (idempotent)."""
    if not issubclass(BuildbotSite.requestFactory, HookRequest):
        BuildbotSite.requestFactory = HookRequest


def _headers(request: Any) -> dict[str, str]:
    """The request's headers by lower-case name (the first of repeated ones), as text."""
    return {name.decode("latin-1").lower(): values[0].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders() if values}


def _body(request: Any) -> bytes:
    """At most ``MAX_BODY + 1`` bytes of the body: enough to know it is too long."""
    announced = request.getHeader(b"content-length")
    if announced is not None and announced.isdigit() and int(announced) > webhook.MAX_BODY:
        return b"\0" * (webhook.MAX_BODY + 1)  # too long, as announced: not read at all
    request.content.seek(0)
    return request.content.read(webhook.MAX_BODY + 1)


class HookResource(resource.Resource):
    """The receiver: every method comes here, so that a GET is a 405 rather than Twisted's page."""

    isLeaf = True

    def __init__(self, master_of: Callable[[], Any], settings_of: Callable[[], Settings]) -> None:
        super().__init__()
        self.master_of = master_of
        self.settings_of = settings_of

    def render(self, request: Any) -> Any:
        master = self.master_of()
        settings = self.settings_of()
        now = master.reactor.seconds()
        method = request.method.decode("latin-1")
        body = _body(request) if method == "POST" else b""
        judged = webhook.read_hook(method, _headers(request), body,
                                   secret=settings.webhook.secret if settings.webhook else None,
                                   now=now, watched=settings.branches.flow)
        if isinstance(judged, webhook.Answer):
            return self._answer(request, judged)
        d = defer.ensureDeferred(self._hint(master, judged, now))
        d.addCallback(lambda answer: self._finish(request, answer))
        d.addErrback(self._failed, request)
        return server.NOT_DONE_YET

    async def _hint(self, master: Any, hook: webhook.Hook, now: float) -> webhook.Answer:
        if not await DbDeliveries(master).first_seen(hook.replay_keys, now):
            return webhook.replayed(hook)
        master.mq.produce(webhook.HINT_KEY, {"reason": "webhook"})
        return webhook.accepted(hook)

    def _answer(self, request: Any, answer: webhook.Answer) -> bytes:
        log.msg(f"lpdeploy hook: {answer.status} {answer.outcome}: {answer.reason}")
        request.setResponseCode(answer.status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        if answer.status == 405:
            request.setHeader(b"allow", b"POST")
        return answer.body

    def _finish(self, request: Any, answer: webhook.Answer) -> None:
        body = self._answer(request, answer)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(body)
            request.finish()

    def _failed(self, failure: Any, request: Any) -> None:
        log.err(failure, "lpdeploy hook: could not record the delivery")
        self._finish(request, webhook.Answer(503, webhook.Outcome.IGNORED, "could not record the delivery"))
