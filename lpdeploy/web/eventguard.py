"""Pushed events (``/ws``, ``/sse``) without embargoed items, for viewers without the role.

Buildbot pushes every message-queue event a client subscribed to
(``{"cmd": "startConsuming", "path": "*/*/*/*"}`` on the websocket,
``/sse/listen/*/*/*/*`` for server-sent events): new builds and their
properties, steps, logs, build requests, buildsets, test result sets. It
checks access once, when a websocket connects (may the user read
``masters``?), and never for ``/sse``. So for a viewer without the
embargo's role, ``EventFilter`` drops every event that concerns an item of
an embargoed builder (``readguard.event_refs`` names the items a routing
key and its message refer to; ``readguard.EmbargoedItems`` resolves them),
and delivers the rest in the order Buildbot produced them.

The hook: for each websocket connection Buildbot's
``WsProtocolFactory.buildProtocol`` builds ``WsProtocol(master)``, and for
each ``/sse/listen`` request ``EventResource.render`` builds
``Consumer(request)``; both names are looked up in their modules
(``buildbot.www.ws``, ``buildbot.www.sse``) at that moment. ``install()``
(called when ``lpdeploy.configurator`` is imported) rebinds the two names
to ``GuardedWsProtocol`` and ``GuardedConsumer``: subclasses that change
only how an event leaves, so Buildbot's commands, subscriptions and wire
format stay its own. The viewer is the one Buildbot's authz sees: the
session cookie's user info (for the websocket, read from the handshake as
``WsProtocol.onConnect`` does), its roles from ``Authz.getRolesFromUser``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from buildbot.util import bytes2unicode
from buildbot.www import auth, sse, ws
from buildbot.www.rest import _is_request_finished
from twisted.internet import defer
from twisted.python import log

from lpdeploy.web.authz import flow_authz
from lpdeploy.web.readguard import EmbargoedItems, event_refs


class EventFilter:
    """The events one connection may receive, in the order they were produced.

    ``items`` is None when the viewer may see everything (or nothing is
    embargoed): events then go out at once. Otherwise each event waits for
    the ones before it (a ``DeferredLock`` is first in, first out), then is
    resolved and either sent or dropped; an event whose items cannot be
    resolved is dropped.
    """

    def __init__(self, items: EmbargoedItems | None) -> None:
        self.items = items
        self._order = defer.DeferredLock()

    @classmethod
    def for_viewer(cls, master: Any, user_info: dict[str, Any]) -> EventFilter:
        authz = flow_authz(master)
        if authz is None or authz.embargo is None or authz.may_see_embargoed(user_info):
            return cls(None)
        return cls(authz.embargo.items)

    def pass_on(self, key: tuple[str, ...] | None, message: Any, send: Callable[[], Any]) -> defer.Deferred[Any]:
        """Call ``send()`` after every earlier message, unless the event (``key``, ``message``) is embargoed.

        ``key`` None: not an event (an acknowledgement, an error): always sent, in order.
        """
        if self.items is None:
            return defer.maybeDeferred(send)
        d = self._order.run(lambda: defer.ensureDeferred(self._pass_on(key, message, send)))
        d.addErrback(log.err, "lpdeploy: dropped an event that could not be checked against the embargo")
        return d

    async def _pass_on(self, key: tuple[str, ...] | None, message: Any, send: Callable[[], Any]) -> Any:
        assert self.items is not None
        if key is not None and await self.items.any_embargoed(event_refs(key, message)):
            return None
        return await defer.maybeDeferred(send)


class GuardedWsProtocol(ws.WsProtocol):
    """Buildbot's websocket protocol; events pass through the connection's ``EventFilter``."""

    def __init__(self, master: Any) -> None:
        super().__init__(master)
        # until the handshake names the viewer, it is anonymous
        self.events = EventFilter.for_viewer(master, auth.build_anonymous_user_info())

    @defer.inlineCallbacks
    def onConnect(self, request: Any) -> Any:
        """Called by autobahn on the handshake: Buildbot's check, then the viewer's filter."""
        yield super().onConnect(request)  # refuses the connection when the user may not read /masters
        self.events = EventFilter.for_viewer(self.master, self._user_info(request))

    def _user_info(self, request: Any) -> dict[str, Any]:
        cookies = ws.parse_cookies(request.headers.get("cookie", ""))
        name = auth.build_cookie_name(self.is_secure(), ws.get_ws_sitepath(request.path)).decode()
        token = cookies.get(name)
        if token is None:
            return auth.build_anonymous_user_info()
        return auth.parse_user_info_from_token(token, self.master.www.site.session_secret)

    def send_json_message(self, **msg: Any) -> defer.Deferred[Any]:
        """Every message Buildbot sends goes through here; events carry ``k`` (key) and ``m``."""
        key = tuple(msg["k"].split("/")) if "k" in msg else None
        return self.events.pass_on(key, msg.get("m"), lambda: self._send_if_open(msg))

    def _send_if_open(self, msg: dict[str, Any]) -> Any:
        if self.state != self.STATE_OPEN:
            return None  # closed while the event waited
        return super().send_json_message(**msg)


class GuardedConsumer(sse.Consumer):
    """Buildbot's server-sent-events consumer (one per ``/sse/listen``); events pass through its filter."""

    def __init__(self, request: Any) -> None:
        super().__init__(request)
        master = request.site.master
        self.events = EventFilter.for_viewer(master, master.www.getUserInfos(request))

    def onMessage(self, event: Any, data: Any) -> None:
        """Called by the message queue for every event matching one of the consumer's paths."""
        key = tuple(bytes2unicode(e) for e in event)
        self.events.pass_on(key, data, lambda: self._write_if_open(event, data))

    def _write_if_open(self, event: Any, data: Any) -> None:
        if not _is_request_finished(self.request):
            super().onMessage(event, data)


def install() -> None:
    """Make Buildbot build the guarded websocket protocol and SSE consumer (idempotent)."""
    ws.WsProtocol = GuardedWsProtocol  # type: ignore[misc]
    sse.Consumer = GuardedConsumer  # type: ignore[misc]
