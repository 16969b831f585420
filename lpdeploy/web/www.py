"""lpdeploy's web plugin, mounted by Buildbot at ``/plugins/lpdeploy/``.

``status.json`` serves ``status.flow_status`` for the CLI and for people;
``flaky.json`` the flaky tests and the quarantine (``status.flaky_report``);
``qa.json`` and ``qa-mark`` the QA report and marking (``lpdeploy.web.qa``);
``hook`` receives push webhooks (``lpdeploy.web.hook``);
``scripts.js`` and ``styles.css`` exist because Buildbot's React UI loads them
for every configured plugin.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from buildbot.util.service import BuildbotService
from buildbot.www.resource import Error
from twisted.internet import defer
from twisted.web import resource

from lpdeploy import __version__
from lpdeploy.core.model import AuditAction, Role
from lpdeploy.core.settings import Settings
from lpdeploy.facts.services import services
from lpdeploy.web.hook import HookResource
from lpdeploy.web.json_api import JsonResource, roles
from lpdeploy.web.qa import QaListResource, QaMarkResource
from lpdeploy.web.status import flaky_report, flow_status

SERVICE_NAME = "lpdeploy"


class SiteService(BuildbotService):
    """Holds the validated site settings so that the web plugin can find them on any master."""

    name = SERVICE_NAME

    def checkConfig(self, settings: Settings) -> None:  # type: ignore[override]
        pass

    def reconfigService(self, settings: Settings) -> defer.Deferred[None]:  # type: ignore[override]
        self.settings = settings
        return defer.succeed(None)


class _Static(resource.Resource):
    isLeaf = True

    def __init__(self, body: bytes, content_type: bytes) -> None:
        super().__init__()
        self.body = body
        self.content_type = content_type

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", self.content_type)
        return self.body


class StatusResource(JsonResource):
    """``status.json``: the flow's state, as ``lpdeploy status --json`` prints it."""

    failed = "could not compute the status; see the master log"

    async def answer(self, request: Any) -> Any:
        master = self.app.master
        settings = master.service_manager.namedServices[SERVICE_NAME].settings
        reach = services(master)
        upstream = reach.upstream(settings.repository.url, settings.repository.timeout)
        return await flow_status(upstream, reach.ledger, reach.registry, settings,
                                 may_see_security=Role.SECURITY in roles(request, master),
                                 now=master.reactor.seconds(),
                                 health=await reach.upstream_health.get(settings.repository.url))


# security work in the audit trail: who works on a fix, and when, is for the security role only
SECURITY_ACTIONS = frozenset({AuditAction.SECURITY_BUILD, AuditAction.SECURITY_PROMOTE, AuditAction.MERGE_BACK})


def visible_audit(entries: list[Any], viewer_roles: set[str]) -> list[Any]:
    """The audit entries a viewer may read: a ``losa`` sees the release flow, not security work."""
    if Role.SECURITY in viewer_roles:
        return entries
    return [e for e in entries if e.action not in SECURITY_ACTIONS]


class AuditResource(JsonResource):
    """``audit.json``: the audit trail, for users with the security or losa role."""

    failed = "could not read the audit trail; see the master log"

    async def answer(self, request: Any) -> Any:
        viewer = roles(request, self.app.master)
        if not viewer & {Role.SECURITY, Role.LOSA}:
            raise Error(403, b"the audit trail needs the security or losa role")
        entries = await services(self.app.master).registry.audit_log(limit=500)
        return [asdict(e) for e in visible_audit(entries, viewer)]


class CowboysResource(JsonResource):
    """``cowboys.json``: active cowboys; ``?all=1`` adds retired and removed ones."""

    failed = "could not read the cowboys; see the master log"

    async def answer(self, request: Any) -> Any:
        everything = request.args.get(b"all", [b"0"])[0] in (b"1", b"true", b"yes")
        registry = services(self.app.master).registry
        cowboys = await registry.cowboys(include_ended=everything)
        return [{**c.as_json(), "patch": p.summary() if (p := await registry.cowboy_patch(c.id)) else None}
                for c in cowboys]


class FlakyResource(JsonResource):
    """``flaky.json``: flaky counts per test over 30 days and the quarantine, as ``lpdeploy flaky --json`` prints.

    Read-only, open to every viewer; a security build's records only with the security role.
    """

    failed = "could not read the flaky tests; see the master log"

    async def answer(self, request: Any) -> Any:
        master = self.app.master
        return await flaky_report(services(master).flaky_log, self.app.settings(),
                                  may_see_security=Role.SECURITY in roles(request, master),
                                  now=master.reactor.seconds())


class LpDeployApp:
    """The object Buildbot's ``buildbot.www`` entry point returns."""

    description = "lpdeploy release flow"
    version = __version__
    ui = False

    def __init__(self) -> None:

        self.master: Any = None
        self.resource = resource.Resource()
        children: dict[bytes, resource.Resource] = {
            b"qa.json": QaListResource(self),
            b"qa-mark": QaMarkResource(self),
            b"status.json": StatusResource(self),
            b"cowboys.json": CowboysResource(self),
            b"audit.json": AuditResource(self),
            b"flaky.json": FlakyResource(self),
            b"hook": HookResource(lambda: self.master, self.settings),
            b"scripts.js": _Static(b"/* lpdeploy */\n", b"application/javascript"),
            b"styles.css": _Static(b"/* lpdeploy */\n", b"text/css"),
        }
        for path, child in children.items():
            self.resource.putChild(path, cast(resource.IResource, child))

    def setMaster(self, master: Any) -> None:
        """Called by Buildbot's www service when the plugin is configured."""
        self.master = master

    def settings(self) -> Settings:
        """The site settings of the running configuration (``SiteService``)."""
        return cast(Settings, self.master.service_manager.namedServices[SERVICE_NAME].settings)

    def setConfiguration(self, config: Any) -> None:
        self.config = config


ep = LpDeployApp()
