"""The pushed-event doors: ``/ws`` and ``/sse`` (design invariant 6, issue 10 item 1).

Buildbot's real websocket protocol and server-sent-events resource, as
Buildbot builds them once ``lpdeploy.configurator`` is loaded, subscribed
to every path shape, on a fake master with Buildbot's real database, data
API and in-process message queue (``embargo_rows``). Every event a real
build produces is sent for an embargoed security build, its shard and a
public gate build, interleaved; outsiders (anonymous, a developer without a
role, a losa) must receive exactly the public ones, in the order they were
produced, and the security user all of them.
"""

from __future__ import annotations

import calendar
import datetime
import json
from types import SimpleNamespace
from typing import Any

import jwt
from autobahn.websocket.types import ConnectionRequest
from buildbot.test.util.www import FakeRequest, FakeSession
from buildbot.util import tuplematch
from buildbot.util.twisted import async_to_deferred
from buildbot.www import auth, sse, ws
from embargo_rows import GATES, OUTSIDERS, SEC, SECRET, SHARD, USERS, WORKER, DoorsCase, Ids
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.web import eventguard
from lpdeploy.web.readguard import BUILD, BUILDER, BUILDREQUEST, BUILDSET, LOG, STEP, TEST_RESULT_SET, event_refs

GATE = GATES[0]
# every shape of routing key: all-wildcard paths of each length, and two narrower ones
SUBSCRIPTIONS = ["*/*/*", "*/*/*/*", "*/*/*/*/*", "*/*/*/*/*/*/*", "builds/*/*", "builders/*/builds/*/*"]


async def events_of(case: DoorsCase, i: Ids) -> list[tuple[tuple[str, ...], Any]]:
    """The events Buildbot produces for one build, with the messages the data API would send."""
    get = case.master.data.get
    build = dict(await get(("builds", i.build)))
    step = dict(await get(("steps", i.step)))
    log = dict(await get(("logs", i.log)))
    req = dict(await get(("buildrequests", i.request)))
    bset = dict(await get(("buildsets", i.buildset)))
    trs = dict(await get(("test_result_sets", i.trs)))
    b, n, s = str(i.build), str(i.number), str(i.step)
    secret = SECRET if i in (SEC, SHARD) else "public"
    return [
        (("buildsets", str(i.buildset), "new"), bset),
        (("buildsets", str(i.buildset), "builders", str(i.builder), "buildrequests", str(i.request), "new"), req),
        (("buildrequests", str(i.request), "new"), req),
        (("builders", str(i.builder), "buildrequests", str(i.request), "new"), req),
        (("builds", b, "new"), build),
        (("builders", str(i.builder), "builds", n, "new"), build),
        (("workers", str(WORKER), "builds", b, "new"), build),
        (("builds", b, "properties", "update"), {"lpdeploy_shard_ids": [[f"test_{secret}"], "shard"]}),
        (("builds", b, "steps", s, "new"), step),
        (("steps", s, "new"), step),
        (("logs", str(i.log), "new"), log),
        (("steps", s, "logs", "stdio", "new"), log),
        (("test_result_sets", str(i.trs), "new"), trs),
        (("control", "builds", b, "stop"), {"reason": f"stopped {secret}"}),
        (("builds", b, "update"), {**build, "state_string": f"suite {secret}"}),
    ]


async def interleaved(case: DoorsCase) -> list[tuple[tuple[str, ...], Any, bool]]:
    """(key, message, public) for the three builds' events, one of each in turn, and a builder's own event."""
    per_build = [await events_of(case, i) for i in (SEC, GATE, SHARD)]
    mixed = [(k, m, i == 1) for row in zip(*per_build, strict=True) for i, (k, m) in enumerate(row)]
    builder = await case.master.data.get(("builders", SEC.builder))
    return [*mixed, (("builders", str(SEC.builder), "update"), builder, True)]  # the builder itself is public


def deliveries(events: list[tuple[tuple[str, ...], Any, bool]], paths: list[str], everything: bool) -> list[str]:
    """The keys one client must receive, in order: one per event and subscription it matches."""
    filters = [tuple(None if p == "*" else p for p in path.split("/")) for path in paths]
    return ["/".join(k) for k, _, public in events for f in filters
            if tuplematch.matchTuple(k, f) and (public or everything)]


def token(user: str) -> str:
    exp = calendar.timegm((datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).timetuple())
    return jwt.encode({"user_info": USERS[user], "exp": exp}, "lpdeploy-test-session-secret-of-32-bytes-or-more",
                      algorithm=auth.SESSION_SECRET_ALGORITHM)


class EventKeys(unittest.TestCase):
    """Which items an event names: the ids in its key and message (``readguard.event_refs``)."""

    def test_every_key_shape_names_its_items(self):
        cases = {
            ("builds", "51", "new"): {(BUILD, 51)},
            ("builds", "51", "properties", "update"): {(BUILD, 51)},
            ("workers", "13", "builds", "51", "finished"): {(BUILD, 51)},
            ("builders", "21", "builds", "3", "new"): {(BUILDER, 21)},  # 3 is a number, not a build id
            ("builders", "21", "buildrequests", "41", "new"): {(BUILDER, 21), (BUILDREQUEST, 41)},
            ("buildsets", "31", "builders", "21", "buildrequests", "41", "new"):
                {(BUILDSET, 31), (BUILDER, 21), (BUILDREQUEST, 41)},
            ("buildsets", "31", "complete"): {(BUILDSET, 31)},
            ("builds", "51", "steps", "61", "new"): {(BUILD, 51), (STEP, 61)},
            ("steps", "61", "logs", "stdio", "new"): {(STEP, 61)},
            ("logs", "71", "finished"): {(LOG, 71)},
            ("test_result_sets", "81", "completed"): {(TEST_RESULT_SET, 81)},
            ("control", "builds", "51", "stop"): {(BUILD, 51)},
            ("control", "buildrequests", "41", "cancel"): {(BUILDREQUEST, 41)},
            ("builders", "21", "started"): set(),  # the builder itself
            ("changes", "5", "new"): set(),
        }
        for key, expected in cases.items():
            self.assertEqual(set(event_refs(key, {})), expected, key)

    def test_the_message_names_items_too(self):
        step = {"stepid": 61, "buildid": 51, "name": "suite"}
        self.assertEqual(set(event_refs(("steps", "61", "new"), step)), {(STEP, 61), (BUILD, 51)})
        self.assertEqual(set(event_refs(("builders", "21", "update"), {"builderid": 21})), set())
        bset = {"bsid": 33, "parent_buildid": 51}
        self.assertEqual(set(event_refs(("buildsets", "33", "new"), bset)), {(BUILDSET, 33), (BUILD, 51)})


def load_site_configuration() -> None:
    """What a master does with master.cfg: import the configurator, which installs the guards.

    Imported in a test (not at collection), where pytest's warning filters apply: Buildbot's test
    package turns the deprecation warnings its own imports raise into errors.
    """
    import lpdeploy.configurator  # noqa: F401


class Websocket(DoorsCase):
    def setUp(self):
        load_site_configuration()
        return super().setUp()

    def connect(self) -> Any:
        """A protocol as Buildbot's websocket factory builds it, recording what it sends."""
        proto = ws.WsProtocolFactory(self.master).buildProtocol(None)
        proto.sent = []
        proto.state = proto.STATE_OPEN
        proto.sendMessage = lambda payload, *a, **kw: proto.sent.append(json.loads(payload))
        return proto

    async def handshake(self, proto: Any, user: str) -> None:
        headers = {} if user == "anonymous" else {"cookie": f"TWISTED_SESSION={token(user)}"}
        await proto.onConnect(ConnectionRequest("tcp:127.0.0.1:1", headers, "localhost", "/ws", {}, 13, None,
                                                [], []))

    async def subscribe(self, proto: Any, paths: list[str]) -> None:
        for n, path in enumerate(paths):
            await proto.cmd_startConsuming(path=path, _id=n)
        self.assertEqual([m.get("msg") for m in proto.sent], ["OK"] * len(paths))
        proto.sent.clear()

    @async_to_deferred
    async def test_buildbot_builds_the_guarded_protocol(self):
        self.assertIsInstance(ws.WsProtocolFactory(self.master).buildProtocol(None), eventguard.GuardedWsProtocol)

    @async_to_deferred
    async def test_each_viewer_receives_what_it_may_see_in_the_order_produced(self):
        events = await interleaved(self)
        clients = {}
        for user in USERS:
            clients[user] = proto = self.connect()
            await self.handshake(proto, user)
            await self.subscribe(proto, SUBSCRIPTIONS)
        for key, message, _ in events:
            self.master.mq.produce(key, message)
        for user, proto in clients.items():
            got = [m["k"] for m in proto.sent]
            self.assertEqual(got, deliveries(events, SUBSCRIPTIONS, everything=user == "alice"), user)
            text = json.dumps(proto.sent)
            if user in OUTSIDERS:
                self.assertNotIn(SECRET, text, user)
            else:
                self.assertIn(SECRET, text)

    @async_to_deferred
    async def test_before_the_handshake_a_connection_is_anonymous(self):
        proto = self.connect()
        await self.subscribe(proto, ["*/*/*"])
        events = await interleaved(self)
        for key, message, _ in events:
            self.master.mq.produce(key, message)
        self.assertEqual([m["k"] for m in proto.sent], deliveries(events, ["*/*/*"], everything=False))

    @async_to_deferred
    async def test_a_slow_check_holds_back_the_events_after_it(self):
        proto = self.connect()
        await self.handshake(proto, "carol")
        await self.subscribe(proto, ["builds/*/*"])
        items = self.authz.embargo.items
        real = items.builders_of
        gate = defer.Deferred()

        async def slow_for_the_first_gate_build(kind: str, id_: int) -> Any:
            if (kind, id_) == (BUILD, GATES[1].build):
                await gate
            return await real(kind, id_)

        self.patch(items, "builders_of", slow_for_the_first_gate_build)
        first, second = GATES[1], GATES[2]
        for i in (first, second):
            self.master.mq.produce(("builds", str(i.build), "new"), {"buildid": i.build})
        self.assertEqual(proto.sent, [])  # the second waits for the first
        gate.callback(None)
        self.assertEqual([m["k"] for m in proto.sent], [f"builds/{first.build}/new", f"builds/{second.build}/new"])

    @async_to_deferred
    async def test_an_event_of_an_unknown_item_is_dropped(self):
        proto = self.connect()
        await self.handshake(proto, "bob")
        await self.subscribe(proto, ["builds/*/*", "builders/*/builds/*/*"])
        self.master.mq.produce(("builds", "999", "new"), {"buildid": 999})
        self.master.mq.produce(("builders", "9999", "builds", "1", "new"), {"builderid": 9999})  # no such builder
        self.master.mq.produce(("builds", str(GATE.build), "new"), {"buildid": GATE.build})
        self.assertEqual([m["k"] for m in proto.sent], [f"builds/{GATE.build}/new"])


class ServerSentEvents(DoorsCase):
    def setUp(self):
        load_site_configuration()
        return super().setUp()

    def listen(self, user: str, path: str) -> FakeRequest:
        request = FakeRequest(path.encode())
        request.session = FakeSession()
        request.session.user_info = USERS[user]
        request.site = SimpleNamespace(master=self.master)
        self.resource.render(request)
        return request

    @async_to_deferred
    async def test_each_viewer_receives_what_it_may_see_in_the_order_produced(self):
        self.resource = sse.EventResource(self.master)
        events = await interleaved(self)
        streams = {user: self.listen(user, "/listen/" + SUBSCRIPTIONS[0]) for user in USERS}
        for user, request in streams.items():
            self.assertIsInstance(next(iter(self.resource.consumers.values())), eventguard.GuardedConsumer)
            cid = request.written.split(b"data: ", 1)[1].split(b"\n", 1)[0].decode()
            for path in SUBSCRIPTIONS[1:]:
                self.listen(user, f"/add/{cid}/{path}")
            request.written = b""
        for key, message, _ in events:
            self.master.mq.produce(key, message)
        for user, request in streams.items():
            sent = [json.loads(line[len(b"data: "):]) for line in request.written.split(b"\n")
                    if line.startswith(b"data: ")]
            got = ["/".join(m["key"]) for m in sent]
            self.assertEqual(got, deliveries(events, SUBSCRIPTIONS, everything=user == "alice"), user)
            if user in OUTSIDERS:
                self.assertNotIn(SECRET, request.written.decode(), user)
            else:
                self.assertIn(SECRET, request.written.decode())

    @async_to_deferred
    async def test_nothing_is_written_to_a_finished_stream(self):
        self.resource = sse.EventResource(self.master)
        request = self.listen("carol", "/listen/builds/*/*")
        request.written = b""
        request.finished = True
        self.master.mq.produce(("builds", str(GATE.build), "new"), {"buildid": GATE.build})
        self.assertEqual(request.written, b"")
