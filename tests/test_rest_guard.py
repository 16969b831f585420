"""The REST doors (design invariant 6, issue 9 §3, issue 10 items 1, 4, 9).

Each test renders lpdeploy's ``/api/v2`` resource (``GuardedRestResource``)
or asks lpdeploy's authz, on a fake master with Buildbot's real database and
data API (``embargo_rows``), as the viewers of the attack: anonymous, a
developer without a role (``carol``), a losa (``bob``) and the security
user (``alice``).

* paths: every path Buildbot's data API knows that names an embargoed item
  is denied to outsiders, the same path of a public build is not;
* collections: no list shows an embargoed item to an outsider, whatever the
  query filters, nesting, ``limit``/``offset``, ``order`` or ``field``; the
  totals count what the viewer may see;
* HEAD is a read: allowed where GET is, denied where GET is;
* the write path: the worker thread only encodes; nothing is written after
  the client hung up.
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

from buildbot.test import fakedb
from buildbot.test.util.www import FakeRequest, FakeSession
from buildbot.util.twisted import async_to_deferred
from buildbot.www.authz import Forbidden
from buildbot.www.rest import RestRootResource
from embargo_rows import (
    EMBARGOED,
    GATES,
    OUTSIDERS,
    SEC,
    SECRET,
    SHARD,
    USERS,
    WORKER,
    DoorsCase,
    Ids,
    ids_of,
    rows_for,
)
from twisted.internet import defer, threads

from lpdeploy.web import restguard

EMBARGOED_BUILDS = {i.build for i in EMBARGOED}
# the endpoints that name an embargoed builder and still show only the builder itself
PUBLIC_ENDPOINTS = {"BuilderEndpoint", "ForceSchedulerEndpoint", "ForceSchedulersEndpoint"}
PUBLIC_BUILDS = {g.build for g in GATES}
# queries that select builds, requests, buildsets and test results: filters, nesting, pagination, fields
COLLECTIONS = [
    "builds", "builds?property=*", f"builds?builderid={SEC.builder}&property=*",
    f"builds?builderid={SHARD.builder}&property=*", f"builds?buildid={SEC.build}&property=*",
    f"builds?buildrequestid={SHARD.request}", f"builds?workerid={WORKER}&property=*", "builds?complete=false",
    "builds?order=-buildid&limit=2", "builds?limit=1&offset=0", "builds?field=buildid&field=number",
    f"builds?buildid__lt=100&builderid__ne={GATES[0].builder}", f"workers/{WORKER}/builds?property=*",
    f"builders/{GATES[0].builder}/builds?property=*", f"buildrequests/{GATES[0].request}/builds",
    f"builds/{GATES[0].build}/triggered_builds",
    "buildrequests?property=*", f"buildrequests?buildsetid={SEC.buildset}", f"buildrequests?builderid={SEC.builder}",
    "buildrequests?field=buildrequestid&field=buildsetid", "buildrequests?limit=2&order=-buildrequestid",
    "buildsets", "buildsets?field=bsid&field=reason", "buildsets?limit=2&order=-bsid", "buildsets?complete=false",
    "test_result_sets", f"test_result_sets?builderid={SEC.builder}", "test_result_sets?field=test_result_setid",
    f"builders/{GATES[0].builder}/test_result_sets", f"builds/{GATES[0].build}/test_result_sets",
    f"builds/{GATES[0].build}/steps", f"steps/{GATES[0].step}/logs", f"test_result_sets/{GATES[0].trs}/results",
    f"builds/{GATES[0].build}/data",
]


class RestCase(DoorsCase):
    async def get(self, path: str, user: str, method: bytes = b"GET") -> tuple[int, Any, FakeRequest]:
        """Render ``/api/v2/<path>`` as ``user``: the status, the decoded JSON (None if empty), the request."""
        request = FakeRequest(b"/" + path.encode())
        request.method = method
        request.session = FakeSession()
        request.session.user_info = USERS[user]
        request.input_headers[b"accept"] = b"application/json"
        resource = restguard.GuardedRestResource(self.master)
        resource.reconfigResource(SimpleNamespace(buildbotURL="http://localhost:8010/", www={}))
        resource.render(request)
        body = await request.deferred
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None  # a raw download
        return request.responseCode, decoded, request


def items(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return next(v for k, v in answer.items() if k != "meta")


class Paths(RestCase):
    """Every path of Buildbot's data API that names an embargoed item is denied; the public twin is not."""

    def fill(self, pattern: tuple[str, ...], i: Ids) -> tuple[str, ...] | None:
        values = {"builderid": i.builder, "buildername": i.name, "build_number": i.number, "buildid": i.build,
                  "stepid": i.step, "step_name": "suite", "step_number": 0, "logid": i.log, "log_slug": "stdio",
                  "buildrequestid": i.request, "bsid": i.buildset, "buildsetid": i.buildset,
                  "test_result_setid": i.trs, "name": "summary", "workerid": WORKER, "masterid": 1}
        path = []
        for part in pattern:
            if ":" not in part:
                path.append(part)
                continue
            arg = part.split(":", 1)[1]
            if arg not in values:
                return None  # names no build (changes, codebases, schedulers...)
            path.append(str(values[arg]))
        return tuple(path)

    async def allowed(self, path: tuple[str, ...], user: str, action: str = "GET") -> bool:
        try:
            await self.authz.assertUserAllowed(path, action, {}, USERS[user])
        except Forbidden:
            return False
        return True

    @async_to_deferred
    async def test_every_path_to_an_embargoed_item_is_denied_to_outsiders_and_its_public_twin_is_not(self):
        checked = 0
        item_args = {"builderid", "buildername", "buildid", "stepid", "logid", "buildrequestid", "bsid",
                     "buildsetid", "test_result_setid"}
        for pattern, endpoint in self.master.data.realConnector.matcher.iterPatterns():
            args = {p.split(":", 1)[1] for p in pattern if ":" in p}
            if not args & item_args or type(endpoint).__name__ in PUBLIC_ENDPOINTS:
                continue
            for embargoed in EMBARGOED:
                path = self.fill(pattern, embargoed)
                if path is None:
                    continue
                for user in OUTSIDERS:
                    self.assertFalse(await self.allowed(path, user), f"{user} may read {'/'.join(path)}")
                self.assertTrue(await self.allowed(path, "alice"), f"alice may not read {'/'.join(path)}")
                public = self.fill(pattern, GATES[0])
                assert public is not None
                self.assertTrue(await self.allowed(public, "anonymous"), f"{'/'.join(public)} is denied")
                checked += 1
        self.assertGreater(checked, 100)  # the data API's paths were really walked

    @async_to_deferred
    async def test_the_global_log_text_is_denied_and_the_builders_stay_public(self):
        for user in OUTSIDERS:
            self.assertFalse(await self.allowed(("logchunks",), user))
            for path in [("builders", str(SEC.builder)), ("builders", SEC.name), ("masters", "1", "builders")]:
                self.assertTrue(await self.allowed(path, user), f"{user} may not read {path}")

    @async_to_deferred
    async def test_head_is_checked_as_get(self):
        for user in OUTSIDERS:
            self.assertTrue(await self.allowed(("builds",), user, "HEAD"))
            self.assertTrue(await self.allowed(("builds", str(GATES[0].build)), user, "HEAD"))
            self.assertFalse(await self.allowed(("builds", str(SEC.build)), user, "HEAD"))
        self.assertTrue(await self.allowed(("builds", str(SEC.build)), "alice", "HEAD"))
        # a HEAD is no control action: stopping a build stays denied to those without the builder's role
        self.assertFalse(await self.allowed(("builds", str(GATES[0].build)), "carol", "stop"))


class Collections(RestCase):
    """No list shows an outsider an embargoed item; the security role sees everything."""

    @async_to_deferred
    async def test_no_collection_shows_an_embargoed_item_to_an_outsider(self):
        for path in COLLECTIONS:
            for user in OUTSIDERS:
                code, answer, request = await self.get(path, user)
                self.assertEqual(code, 200, f"{user} {path}: {request.written!r}")
                self.assertNotIn(SECRET, request.written.decode(), f"{path} leaks to {user}")
                for item in items(answer):
                    self.assertNotIn(item.get("builderid"), {i.builder for i in EMBARGOED}, (path, user, item))
                    self.assertNotIn(item.get("buildid"), EMBARGOED_BUILDS, (path, user, item))
                    self.assertNotIn(item.get("bsid"), {i.buildset for i in EMBARGOED}, (path, user, item))

    @async_to_deferred
    async def test_the_security_role_reads_the_embargoed_items(self):
        for path in ["builds?property=*", f"builds?buildid={SEC.build}&property=*", "buildrequests?property=*",
                     "buildsets", f"workers/{WORKER}/builds?property=*",
                     f"test_result_sets/{SEC.trs}/results", f"builds/{SHARD.build}/data/summary/value"]:
            code, _, request = await self.get(path, "alice")
            self.assertEqual(code, 200, path)
            self.assertIn(SECRET, request.written.decode(), f"alice cannot read {path}")

    @async_to_deferred
    async def test_public_items_stay_listed(self):
        for user in OUTSIDERS:
            _, answer, _ = await self.get("builds?property=*", user)
            self.assertEqual({b["buildid"] for b in answer["builds"]}, PUBLIC_BUILDS)
            _, answer, _ = await self.get("buildsets", user)
            self.assertEqual({b["bsid"] for b in answer["buildsets"]}, {g.buildset for g in GATES})

    @async_to_deferred
    async def test_limit_offset_and_total_count_only_what_the_viewer_may_see(self):
        # the embargoed build 51 has the lowest id: a page cut before the filter would hold one build
        _, answer, _ = await self.get("builds?order=buildid&limit=2", "carol")
        self.assertEqual([b["buildid"] for b in answer["builds"]], sorted(PUBLIC_BUILDS)[:2])
        _, answer, _ = await self.get("builds?order=buildid&limit=2&offset=2", "carol")
        self.assertEqual([b["buildid"] for b in answer["builds"]], sorted(PUBLIC_BUILDS)[2:])
        _, answer, _ = await self.get("buildsets?order=bsid&limit=2", "anonymous")
        self.assertEqual([b["bsid"] for b in answer["buildsets"]], [g.buildset for g in GATES][:2])
        # Buildbot counts the items it returns (the page, when paginated): never the hidden ones
        for path, public in (("builds", len(PUBLIC_BUILDS)), ("buildsets", len(GATES)),
                             ("buildrequests", len(GATES)), ("test_result_sets", len(GATES))):
            _, answer, _ = await self.get(path, "bob")
            self.assertEqual(answer["meta"]["total"], public, path)
            _, answer, _ = await self.get(path, "alice")
            self.assertEqual(answer["meta"]["total"], public + len(EMBARGOED), path)

    @async_to_deferred
    async def test_field_selection_cannot_hide_whose_an_item_is(self):
        _, answer, _ = await self.get("builds?field=number", "anonymous")
        self.assertEqual(answer["builds"], [{"number": g.number} for g in GATES])
        _, answer, _ = await self.get("buildsets?field=reason", "bob")
        self.assertEqual(len(answer["buildsets"]), len(GATES))

    @async_to_deferred
    async def test_an_item_the_narrowed_query_missed_is_still_dropped(self):
        # the query is narrowed with the embargoed builds and buildsets as they were when it was built; an item
        # written in between must not slip through: here the narrowing is lost altogether
        narrow = restguard.CollectionGuard.before

        async def narrowed_too_little(guard: restguard.CollectionGuard, rspec: Any) -> None:
            await narrow(guard, rspec)
            rspec.filters = [f for f in rspec.filters if f.op != "ne"]

        self.patch(restguard.CollectionGuard, "before", narrowed_too_little)
        _, answer, request = await self.get("builds?property=*&field=buildid&field=properties", "anonymous")
        self.assertEqual({b["buildid"] for b in answer["builds"]}, PUBLIC_BUILDS)
        self.assertEqual({frozenset(b) for b in answer["builds"]}, {frozenset({"buildid", "properties"})})
        self.assertEqual(answer["meta"]["total"], len(PUBLIC_BUILDS))
        self.assertNotIn(SECRET, request.written.decode())
        _, answer, request = await self.get("buildsets?field=reason", "anonymous")
        self.assertEqual(len(answer["buildsets"]), len(GATES))
        self.assertNotIn(SECRET, request.written.decode())

    @async_to_deferred
    async def test_an_embargoed_builder_configured_later_is_embargoed_once_it_exists(self):
        # lpdeploy-merge-back has no row yet: its first build must not be listed once it has one,
        # and a public builder created meanwhile (say by another master) is listed as usual
        _, answer, _ = await self.get("builds", "carol")
        late = ids_of(6, 24, "lpdeploy-merge-back")
        public = ids_of(7, 25, "lpdeploy-gate-of-another-master")
        await self.master.db.insert_test_data([fakedb.Builder(id=late.builder, name=late.name),
                                               fakedb.Builder(id=public.builder, name=public.name),
                                               *rows_for(late, SECRET), *rows_for(public, "public")])
        for path in ("builds", f"workers/{WORKER}/builds", "test_result_sets"):
            _, answer, request = await self.get(path, "carol")
            self.assertEqual({b["buildid"] for b in items(answer)}, PUBLIC_BUILDS | {public.build}, path)
            self.assertNotIn(SECRET, request.written.decode())


class Head(RestCase):
    @async_to_deferred
    async def test_head_answers_like_get_without_a_body(self):
        for user in OUTSIDERS:
            code, body, request = await self.get("builds", user, method=b"HEAD")
            self.assertEqual((code, body), (200, None))
            _, _, full = await self.get("builds", user)
            self.assertEqual(request.headers[b"content-length"], [str(len(full.written)).encode()])
            code, _, _ = await self.get(f"builds/{SEC.build}", user, method=b"HEAD")
            self.assertEqual(code, 403)
        code, _, _ = await self.get(f"builds/{SEC.build}", "alice", method=b"HEAD")
        self.assertEqual(code, 200)


class WritePath(RestCase):
    """Buildbot wrote answers from a worker thread; here the thread only encodes."""

    def thread_that_sees(self, seen: list[Any], hang_up: FakeRequest | None = None) -> None:
        def defer_to_thread(fn: Any, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
            seen.append((fn, args))
            result: list[Any] = []
            worker = threading.Thread(target=lambda: result.append(fn(*args, **kwargs)))
            worker.start()
            worker.join()
            if hang_up is not None:
                hang_up.channel = None  # the client hung up while the answer was encoded
            return defer.succeed(result[0])

        self.patch(threads, "deferToThread", defer_to_thread)

    @async_to_deferred
    async def test_the_thread_gets_data_not_the_request_and_the_reactor_writes(self):
        seen: list[Any] = []
        self.thread_that_sees(seen)
        writers: list[threading.Thread] = []
        self.patch(FakeRequest, "write", lambda r, data: (writers.append(threading.current_thread()),
                                                          setattr(r, "written", r.written + data)))
        code, answer, request = await self.get("builds", "alice")
        self.assertEqual(code, 200)
        self.assertEqual(len(answer["builds"]), len(PUBLIC_BUILDS) + len(EMBARGOED))
        self.assertEqual([fn for fn, _ in seen], [restguard.encode])
        self.assertFalse([a for _, args in seen for a in args if isinstance(a, FakeRequest)])
        self.assertEqual(set(writers), {threading.main_thread()})
        self.assertEqual(request.headers[b"content-length"], [str(len(request.written)).encode()])

    @async_to_deferred
    async def test_nothing_is_written_after_the_client_hung_up(self):
        request = FakeRequest(b"/builds")
        request.session = FakeSession()
        self.thread_that_sees([], hang_up=request)
        resource = restguard.GuardedRestResource(self.master)
        resource.reconfigResource(SimpleNamespace(buildbotURL="http://localhost:8010/", www={}))
        resource.render(request)
        await request.deferred
        self.assertEqual(request.written, b"")
        self.flushLoggedErrors()  # Buildbot's render helper logs the finish of a gone request, if at all

    def test_install_registers_the_guarded_resource_for_api_v2(self):
        import lpdeploy.configurator  # noqa: F401 - installing is a side effect of loading the site's config

        self.assertIs(RestRootResource.version_classes[2], restguard.GuardedRestResource)
