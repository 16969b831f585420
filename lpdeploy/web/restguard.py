"""Buildbot's REST API (``/api/v2``) with a safe write path and embargoed items left out of lists.

Buildbot 4.3 builds one ``V2RootResource`` per web site, from the class
registered with ``RestRootResource.addApiVersion(2, ...)`` — a registry it
provides. ``install()`` (called when ``lpdeploy.configurator`` is imported,
so before the www service builds its site) registers ``GuardedRestResource``
there; it changes two things in ``renderRest``, which Buildbot's
``V2RootResource.render`` calls for every ``GET`` and ``HEAD``:

* **Writing on the reactor thread only.** Buildbot encodes the answer in a
  worker thread that also calls ``request.write``
  (``deferToThread(V2RootResource._write_json_data, ...)``). Twisted's
  transports are not thread-safe: when a client hangs up while that thread
  writes, the reactor's state is corrupted (twisted/twisted#11625,
  buildbot/buildbot#5107) and the web server stops accepting connections
  for good. Here the thread only encodes (``encode``); the reactor writes,
  and writes nothing once the request is finished or its connection lost.
* **Embargoed items left out of collections.** A path that names an
  embargoed item is denied by ``lpdeploy.web.authz.EmbargoMatcher``; a
  collection (``/builds?property=*``, ``/builds?builderid=N``,
  ``/workers/3/builds``, ``/buildsets``...) names none, so for viewers
  without the embargo's role ``CollectionGuard`` excludes the embargoed
  builders' builds, build requests and test result sets, and the buildsets
  with requests for them, in the database query itself (an extra filter on
  ``builderid`` / ``bsid``), so ``limit``, ``offset`` and ``meta.total``
  count only what the viewer may see; then it checks every item of the
  answer again (steps, logs, test results and build data included), drops
  any that slipped through (an item written between the two reads), and
  only then applies ``field=``.

Raw log downloads (``/raw``, ``/raw_inline``) and JSON-RPC control calls
keep Buildbot's code: they already write from the reactor.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from buildbot.data import resultspec
from buildbot.data.base import EndpointKind, ListResult
from buildbot.util import bytes2unicode, toJson, unicode2bytes
from buildbot.www.rest import RestRootResource, V2RootResource, _is_request_finished
from twisted.internet import defer, threads

from lpdeploy.web.authz import flow_authz
from lpdeploy.web.readguard import ITEM_FIELD, EmbargoedItems, field, refs_of

RAW_KINDS = (EndpointKind.RAW, EndpointKind.RAW_INLINE)
# collections whose query can exclude embargoed builders' items by a column
BY_BUILDER = frozenset({"builds", "buildrequests", "test_result_sets"})


def encode(data: Any, compact: bool) -> bytes:
    """The JSON text of an answer, as Buildbot writes it; pure, so it may run in a thread."""
    encoder = json.JSONEncoder(default=toJson, sort_keys=True, indent=None if compact else 2,
                               separators=(",", ":") if compact else None)
    return unicode2bytes(encoder.encode(data))


class CollectionGuard:
    """Keeps one collection answer free of embargoed items, for one viewer without the role.

    ``before(rspec)`` runs before Buildbot's endpoint reads the database;
    ``after(data)`` runs on the list the endpoint returned, after Buildbot's
    own filters, ordering and pagination (``ResultSpec.apply``).
    """

    def __init__(self, items: EmbargoedItems, plural: str) -> None:
        self.items = items
        self.plural = plural
        self.key = ITEM_FIELD[plural]
        self.fields: list[str] | None = None

    async def before(self, rspec: resultspec.ResultSpec) -> None:
        if rspec.fields and self.key not in rspec.fields:
            self.fields = list(rspec.fields)  # field= is applied in after(), once the item was checked
            rspec.fields = [*rspec.fields, self.key]
        if self.plural in BY_BUILDER:
            excluded: frozenset[int] = await self.items.builder_ids()
            column = "builderid"
        elif self.plural == "buildsets":
            excluded = await self.items.embargoed_buildsets()
            column = "bsid"
        else:
            return  # steps, logs...: only reachable under a build the path names
        if excluded:
            rspec.filters.append(resultspec.Filter(column, "ne", sorted(excluded)))

    async def after(self, data: ListResult) -> ListResult:
        if self.plural == "buildsets":
            hidden = await self.items.embargoed_buildsets()  # read after the buildsets: covers every one
            kept = [d for d in data if field(d, "bsid") not in hidden]
        else:
            kept = [d for d in data if not await self.items.any_embargoed(refs_of(d, [self.key]))]
        if self.fields is not None:
            kept = [{k: v for k, v in d.items() if k in self.fields} for d in kept]
        result = ListResult(kept)
        result.offset, result.limit = data.offset, data.limit
        result.total = None if data.total is None else data.total - (len(data) - len(kept))
        return result


class GuardedRestResource(V2RootResource):
    """``/api/v2``: Buildbot's resource, writing from the reactor and filtering collections."""

    def renderRest(self, request: Any) -> defer.Deferred[None]:
        """Called by ``V2RootResource.asyncRender`` for every GET and HEAD request."""
        return defer.ensureDeferred(self._render_rest(request))

    def _write_error(self, request: Any, msg: str | bytes, errcode: int = 404, jsonrpccode: int | None = None) -> None:
        self._write_rest_error(request, msg=msg, errcode=errcode)

    def _guard(self, request: Any, ep: Any) -> CollectionGuard | None:
        """A guard when the answer is a list of embargoable items and the viewer lacks the role."""
        if ep.kind != EndpointKind.COLLECTION or ep.rtype is None or ep.rtype.plural not in ITEM_FIELD:
            return None
        authz = flow_authz(self.master)
        if authz is None or authz.embargo is None or authz.may_see_embargoed(self.master.www.getUserInfos(request)):
            return None
        return CollectionGuard(authz.embargo.items, ep.rtype.plural)

    async def _render_rest(self, request: Any) -> None:
        with self.handleErrors(lambda *a, **kw: self._write_error(request, *a, **kw)):
            ep, kwargs = await self.getEndpoint(request, bytes2unicode(request.method), {})
            rspec = self.decodeResultSpec(request, ep)
            if ep.kind in RAW_KINDS:
                await self._render_raw(request, ep, rspec, kwargs)
                return
            guard = self._guard(request, ep)
            if guard:
                await guard.before(rspec)
            data = await ep.get(rspec, kwargs)
            if data is None:
                self._write_not_found_rest_error(request, ep, rspec=rspec, kwargs=kwargs)
                return
            if _is_request_finished(request):
                return
            data = rspec.apply(data)
            if guard:
                data = await guard.after(data)
            meta = {}
            if ep.kind == EndpointKind.COLLECTION:
                if data.total is not None:
                    meta["total"] = data.total
                data = list(data)
            else:
                data = [data]
            compact = b"application/json" in (request.getHeader(b"accept") or b"")
            request.setHeader(b"content-type", b"application/json; charset=utf-8" if compact
                              else b"text/plain; charset=utf-8")
            self._set_cache_headers(request)
            body = await threads.deferToThread(encode, {ep.rtype.plural: data, "meta": meta}, compact)
            self._write(request, body)

    def _set_cache_headers(self, request: Any) -> None:
        if not self.cache_seconds:
            return
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.cache_seconds)
        request.setHeader(b"Expires", unicode2bytes(expires.strftime("%a, %d %b %Y %H:%M:%S GMT")))
        request.setHeader(b"Pragma", b"no-cache")

    @staticmethod
    def _write(request: Any, body: bytes) -> None:
        """Write the encoded answer; runs on the reactor thread, after the encoding thread is done."""
        if _is_request_finished(request):
            return  # the client hung up: nothing to write to
        request.setHeader(b"content-length", unicode2bytes(str(len(body))))
        if request.method != b"HEAD":
            request.write(body)


def install() -> None:
    """Make ``GuardedRestResource`` the class Buildbot builds for ``/api/v2`` (idempotent)."""
    if RestRootResource.version_classes.get(2) is not GuardedRestResource:
        RestRootResource.addApiVersion(2, GuardedRestResource)
