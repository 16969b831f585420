"""The Pipeline dashboard: a Flask app mounted by buildbot-wsgi-dashboards as ``pipeline``.

``/plugins/wsgi_dashboards/pipeline/index.html`` is what Buildbot's React UI
embeds under the **Pipeline** menu entry; it holds an iframe of ``page``, the
dashboard proper, whose script refreshes ``fragment`` every few seconds (the
React UI inserts ``index.html`` as HTML, where scripts would not run).

WSGI dashboards bypass Buildbot's authz, so this app reads the viewer's
session cookie itself and asks Buildbot's authz for the viewer's roles: the
embargo and the buttons depend on them. Buttons only call Buildbot's REST
API, where authz decides again.

What the page shows comes from the master's ``DashboardSnapshot``: computed
once for all viewers and kept until the flow changes (``snapshot.py``), so a
render with a warm snapshot runs no git; the picture served is the one for
the viewer's role.
"""

from __future__ import annotations

import datetime
from typing import Any

from flask import Flask, Response, render_template, request
from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread

from lpdeploy.core.model import Role
from lpdeploy.facts.services import services
from lpdeploy.web.snapshot import DashboardSnapshot
from lpdeploy.web.status import flaky_report

REFRESH_SECONDS = 5
SESSION_COOKIE = "TWISTED_SESSION"


def viewer(master: Any) -> tuple[str | None, set[str]]:
    """The logged-in user behind this request and their roles (anonymous: None, no roles)."""
    from buildbot.www.auth import parse_user_info_from_token

    token = request.cookies.get(SESSION_COOKIE) or request.cookies.get("TWISTED_SECURE_SESSION")
    www = master.www
    if not token or getattr(www, "site", None) is None or www.authz is None:
        return None, set()
    try:
        info = parse_user_info_from_token(token, www.site.session_secret)
    except Exception:  # noqa: BLE001 - an expired or forged cookie is simply anonymous
        return None, set()
    return info.get("username"), set(www.authz.getRolesFromUser(info))


def make_app() -> Flask:
    app = Flask("lpdeploy.web.dashboard")
    app.jinja_env.filters["short"] = lambda sha: (sha or "")[:12]
    app.jinja_env.filters["age"] = _age
    app.jinja_env.filters["count"] = lambda n: f"{n:,}"  # exact counts, readable: 3,325
    app.jinja_env.filters["when"] = lambda ts: datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") \
        if ts else "—"
    app.jinja_env.filters["hours"] = lambda s: f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min" \
        if s >= 60 else f"{s:.0f} s"

    def data() -> dict[str, Any]:
        master = app.buildbot_api.master  # type: ignore[attr-defined]
        user, roles = viewer(master)
        settings = master.service_manager.namedServices["lpdeploy"].settings

        async def both() -> tuple[dict[str, Any], dict[str, Any]]:
            # one snapshot for every viewer; the picture served is the one for this viewer's role
            reach = services(master)
            may_see_security, now = Role.SECURITY in roles, master.reactor.seconds()
            view = await DashboardSnapshot.of(master).view(
                reach.upstream(settings.repository.url, settings.repository.timeout), reach.ledger, reach.registry,
                settings, may_see_security=may_see_security, now=now)
            # read per render, not kept in the snapshot: "unreachable since" must show at once
            health = await reach.upstream_health.get(settings.repository.url)
            # flaky counts: one read of the flaky log, the embargo applied for this viewer
            return {**view, "upstream": health.as_json()}, await flaky_report(reach.flaky_log, settings,
                                                                               may_see_security, now)

        def gather() -> defer.Deferred[tuple[dict[str, Any], dict[str, Any]]]:
            # runs in the reactor thread: the clock is Buildbot's, not the wall clock
            return defer.ensureDeferred(both())

        found: tuple[dict[str, Any], dict[str, Any]] = blockingCallFromThread(reactor, gather)  # type: ignore[arg-type]
        view, flaky = found
        root = request.script_root.rsplit("/plugins/", 1)[0]
        return {"v": view, "flaky": flaky, "user": user, "roles": roles, "settings": settings,
                "api": root + "/api/v2/", "lpdeploy": root + "/plugins/lpdeploy/", "refresh": REFRESH_SECONDS}

    @app.route("/index.html")
    def embedded() -> str:
        """What the React UI inserts: a frame holding the live page."""
        return render_template("embed.html", src=request.script_root + "/page")

    @app.route("/page")
    def page() -> Response:
        return Response(render_template("pipeline.html", **data()), headers={"Cache-Control": "no-store"})

    @app.route("/fragment")
    def fragment() -> Response:
        return Response(render_template("pipeline_content.html", **data()), headers={"Cache-Control": "no-store"})

    return app


def _age(ts: float | None, now: float) -> str:
    """How long before ``now`` (the view's clock) ``ts`` was."""
    if not ts:
        return "—"
    s = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit} ago"
    return "just now"
