"""Which roles may do what (who may log in is ``login.py``).

Authorisation denies by default: every control action lpdeploy adds is
allowed to its role only, and a final rule denies every other control action
to everyone. Reads stay open to anonymous users, except what belongs to an
embargoed builder: ``EmbargoMatcher`` denies paths that reach it, and
``FlowAuthz`` tells the collection and event filters (``lpdeploy.web.restguard``,
``lpdeploy.web.eventguard``) who may see it. ``HEAD`` is checked as ``GET``.
"""

from __future__ import annotations

from typing import Any

from buildbot.data.exceptions import InvalidPathError
from buildbot.util import bytes2unicode
from buildbot.www.authz import Authz
from buildbot.www.authz.endpointmatchers import (
    AnyControlEndpointMatcher,
    EndpointMatcherBase,
    ForceBuildEndpointMatcher,
    Match,
    RebuildBuildEndpointMatcher,
    StopBuildEndpointMatcher,
)
from buildbot.www.authz.roles import RolesFromUsername
from twisted.internet import defer

from lpdeploy.core.model import Role
from lpdeploy.core.settings import Settings
from lpdeploy.web import readguard

NOBODY = "lpdeploy-deny-all"  # a role no user ever has


def make_authz(settings: Settings, builders: dict[str, str], embargoed: tuple[str, ...] = ()) -> FlowAuthz:
    """Rules for the builders lpdeploy makes: ``builders`` maps builder name → required role;
    reads of ``embargoed`` builders' builds need the security role."""
    embargo = EmbargoMatcher(list(embargoed), role=Role.SECURITY) if embargoed else None
    rules: list[Any] = [embargo] if embargo else []
    for builder, role in builders.items():
        rules += [
            ForceBuildEndpointMatcher(builder=builder, role=role),
            StopBuildEndpointMatcher(builder=builder, role=role),
            RebuildBuildEndpointMatcher(builder=builder, role=role),
        ]
    rules.append(AnyControlEndpointMatcher(role=NOBODY))  # deny every other control action
    matchers = [
        RolesFromUsername(roles=[role], usernames=list(users))
        for role, users in settings.auth.roles.items()
    ]
    return FlowAuthz(allowRules=rules, roleMatchers=matchers, embargo=embargo)


class FlowAuthz(Authz):
    """Buildbot's ``Authz`` with two additions.

    * ``HEAD`` is a read: Buildbot's REST resource passes the HTTP method as
      the action, and every matcher (the deny-all ``AnyControlEndpointMatcher``
      first) treats anything but ``GET`` as a control action. A ``HEAD`` is
      checked exactly as the ``GET`` of the same path, embargo included.
    * ``embargo`` (the ``EmbargoMatcher``, or None) and ``may_see_embargoed``
      are what the REST collection filter and the event filters ask
      (``lpdeploy.web.restguard``, ``lpdeploy.web.eventguard``), so every door uses the
      same builders, the same role and the same caches.
    """

    def __init__(self, *, embargo: EmbargoMatcher | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embargo = embargo

    def assertUserAllowed(self, ep: Any, action: Any, options: dict[str, Any],
                          userDetails: dict[str, Any]) -> defer.Deferred[None]:
        if bytes2unicode(action).upper() == "HEAD":
            action = "GET"
        return super().assertUserAllowed(ep, action, options, userDetails)

    def may_see_embargoed(self, user_info: dict[str, Any]) -> bool:
        """Whether the user (Buildbot's user info: session → ``user_info``) holds the embargo's role."""
        if self.embargo is None:
            return True
        return any(self.match(role, self.embargo.role) for role in self.getRolesFromUser(user_info))


def flow_authz(master: Any) -> FlowAuthz | None:
    """The master's ``FlowAuthz`` (None when its web configuration has another authz, or none)."""
    authz = getattr(getattr(master, "www", None), "authz", None)
    return authz if isinstance(authz, FlowAuthz) else None


# endpoints that name an embargoed builder but show only the builder itself: public
PUBLIC_ENDPOINTS = frozenset({"BuilderEndpoint", "ForceSchedulerEndpoint", "ForceSchedulersEndpoint"})
# the whole log text of every build at once
ALL_LOGS_ENDPOINTS = frozenset({"LogChunkEndpoint", "RawLogChunkEndpoint", "RawInlineLogChunkEndpoint"})
# path arguments (``n:buildid``...) and the kind of item each names
PATH_IDS = {"builderid": readguard.BUILDER, "buildid": readguard.BUILD, "buildrequestid": readguard.BUILDREQUEST,
            "bsid": readguard.BUILDSET, "buildsetid": readguard.BUILDSET, "stepid": readguard.STEP,
            "logid": readguard.LOG, "test_result_setid": readguard.TEST_RESULT_SET}


class EmbargoMatcher(EndpointMatcherBase):
    """Matches every read whose path reaches an embargoed builder's item, so only its role may read it.

    Buildbot's own ``ViewBuildsEndpointMatcher`` is a stub. Buildbot calls
    ``match`` (through ``Authz.assertUserAllowed``) before every REST read
    with the path's segments; this matcher resolves the ids the path names —
    a builder (by id or name), build, step, log, build request, buildset or
    test result set — to their builders (``readguard.EmbargoedItems``) and
    matches when one is embargoed: the builds, steps, logs and their text,
    properties, build data, requests, buildsets, test results, and nested
    collections such as ``/builders/<embargoed>/builds`` or
    ``/buildsets/N/properties``. The global ``/logchunks`` is matched too.
    Paths that name no embargoed item (``/builds``, ``/workers/3/builds``)
    are collections: ``lpdeploy.web.restguard`` drops the embargoed items from
    them. The builder itself (its name and description) stays public.
    """

    def __init__(self, builders: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.builders = builders
        self.items = readguard.EmbargoedItems(builders)

    def setAuthz(self, authz: Any) -> None:
        """Called by ``Authz.setMaster`` when the www service takes the configuration."""
        super().setAuthz(authz)
        self.items.set_master(self.master)

    def match(self, ep: Any, action: str = "get", options: dict[str, Any] | None = None) -> defer.Deferred:
        if bytes2unicode(action).lower() not in ("get", "head"):
            return defer.succeed(None)
        return defer.ensureDeferred(self._match(ep))

    async def _match(self, ep: Any) -> Match | None:
        try:
            epobject, epdict = self.master.data.getEndpoint(ep)
        except InvalidPathError:
            return None
        kind = type(epobject).__name__
        if kind in PUBLIC_ENDPOINTS:
            return None
        if kind in ALL_LOGS_ENDPOINTS and not epdict:
            return Match(self.master)  # /logchunks: every log's text at once
        refs = await self._refs(epdict)
        return Match(self.master) if await self.items.any_embargoed(refs, unknown_is_embargoed=False) else None

    async def _refs(self, epdict: dict[str, Any]) -> list[readguard.Ref]:
        refs = [(PATH_IDS[k], int(v)) for k, v in epdict.items() if k in PATH_IDS and str(v).isdigit()]
        if "buildername" in epdict:
            found = await self.master.data.get(("builders", epdict["buildername"]))
            refs += [(readguard.BUILDER, found["builderid"])] if found else []
        return refs
