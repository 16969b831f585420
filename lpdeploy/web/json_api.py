"""The base of lpdeploy's JSON pages, and who is asking: shared by ``www`` and ``qa``.

Buildbot renders these resources on the reactor; ``asyncRenderHelper`` (its
own) finishes each request and turns errors into statuses.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from buildbot.www.resource import Resource
from twisted.internet import defer


class App(Protocol):
    """What a page needs of lpdeploy's web app (``www.LpDeployApp``): the master (set by Buildbot) and settings."""

    master: Any

    def settings(self) -> Any:
        """The site's settings as the master last loaded them."""


class JsonResource(Resource):
    """A JSON answer computed on the reactor, written through Buildbot's own ``asyncRenderHelper``.

    Buildbot's helper finishes the request, turns ``Error(status, message)``
    into that status and logs anything else as a 500; here every error body
    is JSON too (``{"error": ...}``), as the CLI and scripts expect.
    """

    isLeaf = True
    failed = "could not compute the answer; see the master log"  # the 500's text

    def __init__(self, app: App) -> None:
        super().__init__(None)  # Buildbot sets app.master later; it is read at render time
        self.app = app

    def render_GET(self, request: Any) -> int:
        def write_error(message: bytes, errcode: int = 400) -> None:
            request.setResponseCode(errcode)
            request.setHeader(b"content-type", b"application/json")
            text = self.failed if errcode == 500 else message.decode(errors="replace")
            request.write(json.dumps({"error": text}).encode())
            request.finish()

        return self.asyncRenderHelper(request, lambda r: defer.ensureDeferred(self._render(r)), write_error)

    async def _render(self, request: Any) -> bytes:
        body = await self.answer(request)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(body, indent=1).encode()

    async def answer(self, request: Any) -> Any:
        raise NotImplementedError


def roles(request: Any, master: Any) -> set[str]:
    """The roles of the user behind ``request``, as Buildbot's authz computes them."""
    authz = getattr(master.www, "authz", None)
    if authz is None:
        return set()
    return set(authz.getRolesFromUser(master.www.getUserInfos(request)))
