"""Which roles may do what (who may log in is ``login.py``).

Authorisation denies by default: every control action lpdeploy adds is
allowed to its role only, and a final rule denies every other control action
to everyone. Reads stay open to anonymous users.
"""

from __future__ import annotations

import logging
from typing import Any

from buildbot.data import resultspec
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

from lpdeploy.settings import Settings

log = logging.getLogger(__name__)
NOBODY = "lpdeploy-deny-all"  # a role no user ever has


def make_authz(settings: Settings, builders: dict[str, str], embargoed: tuple[str, ...] = ()) -> Authz:
    """Rules for the builders lpdeploy makes: ``builders`` maps builder name → required role;
    reads of ``embargoed`` builders' builds need the security role."""
    rules: list[Any] = [EmbargoMatcher(list(embargoed), role="security")] if embargoed else []
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
    return Authz(allowRules=rules, roleMatchers=matchers)


class EmbargoMatcher(EndpointMatcherBase):
    """Matches every read that reaches a build of an embargoed builder, so only its role may read it.

    Buildbot's own ``ViewBuildsEndpointMatcher`` is a stub; this one resolves
    the endpoint's ids (log → step → build → builder, build request, buildset,
    test result set) to the builder and matches the security and merge-back
    builders' builds, steps, logs, properties and requests. The global
    ``/logchunks`` collection is matched too. Listing collections such as
    ``/builds`` still shows that such builds exist (their summaries carry no
    commit text by construction), but not what is in them.
    """

    def __init__(self, builders: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.builders = builders
        self._ids: set[int] | None = None

    def match(self, ep: Any, action: str = "get", options: dict[str, Any] | None = None) -> defer.Deferred:
        if bytes2unicode(action).lower() != "get":
            return defer.succeed(None)
        return defer.ensureDeferred(self._match(ep))

    async def _match(self, ep: Any) -> Match | None:
        try:
            epobject, epdict = self.master.data.getEndpoint(ep)
        except InvalidPathError:
            return None
        kind = type(epobject).__name__
        if kind in ("BuilderEndpoint", "ForceSchedulerEndpoint", "ForceSchedulersEndpoint"):
            return None
        if kind in ("LogChunkEndpoint", "RawLogChunkEndpoint", "RawInlineLogChunkEndpoint") and not epdict:
            return Match(self.master)  # /logchunks: every log's text at once
        builders = await self._builders_of(epdict)
        return Match(self.master) if builders & await self._embargoed() else None

    async def _builders_of_build(self, buildid: int) -> set[int]:
        build = await self.master.data.get(("builds", buildid))
        return {build["builderid"]} if build else set()

    async def _embargoed(self) -> set[int]:
        if self._ids is None:
            ids = set()
            for name in self.builders:
                found = await self.master.data.get(("builders", name))
                if found:
                    ids.add(found["builderid"])
            self._ids = ids
        return self._ids

    async def _builders_of(self, epdict: dict[str, Any]) -> set[int]:
        get = self.master.data.get
        if "builderid" in epdict:
            return {epdict["builderid"]}
        if "buildername" in epdict:
            found = await get(("builders", epdict["buildername"]))
            return {found["builderid"]} if found else set()
        buildid = epdict.get("buildid")
        if "logid" in epdict:
            log_ = await get(("logs", epdict["logid"]))
            epdict = {"stepid": log_["stepid"]} if log_ else {}
        if "stepid" in epdict:
            step = await get(("steps", epdict["stepid"]))
            buildid = step["buildid"] if step else None
        if buildid is not None:
            return await self._builders_of_build(buildid)
        if "buildrequestid" in epdict:
            req = await get(("buildrequests", epdict["buildrequestid"]))
            return {req["builderid"]} if req else set()
        if "test_result_setid" in epdict:
            trs = await get(("test_result_sets", epdict["test_result_setid"]))
            return {trs["builderid"]} if trs else set()
        bsid = epdict.get("bsid", epdict.get("buildsetid"))
        if bsid is not None:
            reqs = await get(("buildrequests",), filters=[resultspec.Filter("buildsetid", "eq", [int(bsid)])])
            return {r["builderid"] for r in reqs}
        return set()
