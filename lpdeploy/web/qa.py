"""The QA resources under ``/plugins/lpdeploy/``: the report (``qa.json``) and marking (``qa-mark``).

``qa.json`` (GET, open to everyone, like ``status.json``) is what ``lpdeploy
qa list`` prints: the commits on stable that production-stable lacks, oldest
first, with their QA state, bugs and staging servers, and ``deployable``.

``qa-mark`` (POST) is a control action, held to the rules Buildbot's own
control API keeps: the body must be ``application/json`` (a cross-site HTML
form cannot send that), a browser's ``Origin`` must be this master's, and it
is denied by default — only a logged-in user with the ``qa`` or ``losa`` role
may mark. Every revision must be a full commit id on stable; nothing is
marked unless all of them are. A commit outside stable (an embargoed fix
among them) gets the same answer whether it exists or not.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from buildbot.www.resource import Error
from twisted.internet import defer

from lpdeploy.core import validators
from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.model import Role
from lpdeploy.core.qa import MARKS, QaMark, QaState, mark_refusal
from lpdeploy.core.refs import short, validate_revision
from lpdeploy.core.settings import Settings
from lpdeploy.facts.qa import qa_report, record_mark, staging_servers
from lpdeploy.facts.services import services
from lpdeploy.web.json_api import JsonResource, roles
from lpdeploy.web.snapshot import DashboardSnapshot

MAX_MARKED = 100  # revisions in one request
MAX_BODY = 64 * 1024
TIPS_MAX_AGE = 5.0  # seconds: readers share recent fetches


def _settings(master: Any) -> Settings:
    return master.service_manager.namedServices["lpdeploy"].settings  # type: ignore[no-any-return]


class QaListResource(JsonResource):
    """``qa.json``: the QA report, as ``lpdeploy qa list --json`` prints it."""

    failed = "could not compute the QA report; see the master log"

    async def answer(self, request: Any) -> Any:
        master = self.app.master
        settings = _settings(master)
        reach = services(master)
        upstream = reach.upstream(settings.repository.url)
        tips = await upstream.recent_tips(TIPS_MAX_AGE)
        report = await qa_report(upstream, reach.registry, reach.qa, settings, tips,
                                 may_see_security=Role.SECURITY in roles(request, master))
        return {**report.as_json(settings.qa.bug_url), "staging_servers": staging_servers(settings),
                "require_qa": settings.promotion.require_qa}


class QaMarkResource(JsonResource):
    """``qa-mark``: POST ``{"state": "ok"|"bad"|"untestable", "revisions": [sha, ...], "reason": "..."}``."""

    failed = "could not record the marks; see the master log"

    def render_GET(self, request: Any) -> int:
        return self._render_with(request, self._get)

    def render_POST(self, request: Any) -> int:
        return self._render_with(request, self._render)

    def _render_with(self, request: Any, render: Any) -> int:
        def write_error(message: bytes, errcode: int = 400) -> None:
            request.setResponseCode(errcode)
            request.setHeader(b"content-type", b"application/json")
            text = self.failed if errcode == 500 else message.decode(errors="replace")
            request.write(json.dumps({"error": text}).encode())
            request.finish()

        return self.asyncRenderHelper(request, lambda r: defer.ensureDeferred(render(r)), write_error)

    async def _get(self, request: Any) -> bytes:
        request.setHeader(b"allow", b"POST")
        raise Error(405, b"marking is a POST of application/json (lpdeploy qa ok|bad|untestable REV...)")

    async def answer(self, request: Any) -> Any:
        master = self.app.master
        settings = _settings(master)
        _same_origin(request, settings)
        user = (master.www.getUserInfos(request) or {}).get("username")
        refusal = mark_refusal(user, roles(request, master))
        if refusal is not None or not user:
            raise Error(403, (refusal or "not allowed").encode())
        state, revisions, reason = _read_body(request)
        reach = services(master)
        upstream = reach.upstream(settings.repository.url)
        stable = (await upstream.fetch()).get(settings.branches.stable)
        for rev in revisions:
            if stable is None or not await upstream.contains(stable, rev):
                raise Error(400, f"{short(rev)} is not a commit on {settings.branches.stable}".encode())
        now = master.reactor.seconds()
        for rev in revisions:
            await record_mark(reach.qa, reach.registry, QaMark(rev, state, user, now, reason))
        DashboardSnapshot.of(master).invalidate()  # the deployment report shows the marks
        return {"marked": revisions, "state": state, "by": user, "at": now, "reason": reason}


def _same_origin(request: Any, settings: Settings) -> None:
    """Buildbot's rules for a control action: a JSON body, and no other site's ``Origin``."""
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        raise Error(400, b"invalid content-type (use application/json)")
    origin = request.getHeader(b"origin")
    if origin:
        ours = urlsplit(settings.www.url)
        if origin.decode("latin-1").rstrip("/").lower() != f"{ours.scheme}://{ours.netloc}".lower():
            raise Error(403, b"invalid origin")


def _read_body(request: Any) -> tuple[QaState, list[str], str]:
    request.content.seek(0)
    raw = request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Error(413, b"request body too large")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise Error(400, b"the body is not JSON") from None
    if not isinstance(body, dict):
        raise Error(400, b"the body must be a JSON object")
    state = body.get("state")
    if state not in MARKS:
        raise Error(400, f"state: must be one of {', '.join(MARKS)}".encode())
    revisions = body.get("revisions")
    if not isinstance(revisions, list) or not 1 <= len(revisions) <= MAX_MARKED:
        raise Error(400, f"revisions: a list of 1 to {MAX_MARKED} full commit ids".encode())
    try:
        revs = [validate_revision(r, "revision") for r in revisions]
        reason = validators.reason(body.get("reason") or "", "reason", required=False)
    except InvalidInput as e:
        raise Error(400, str(e).encode()) from None
    return QaState(state), list(dict.fromkeys(revs)), reason
