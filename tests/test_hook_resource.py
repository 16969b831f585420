"""The webhook's adapters: the resource at ``/plugins/lpdeploy/hook``, the request that keeps at most
1 MiB of a hook's body, and the poller reading the tips when a hint arrives.

The resource runs on a fake master with Buildbot's real database (the
deliveries seen are real ``object_state`` rows) and Buildbot's fake message
queue, which records what is produced; requests are Twisted's
``DummyRequest``. The poller runs in Buildbot's change-source harness on a
real upstream, as ``test_changes.py`` does.
"""

from __future__ import annotations

import io
import json

from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.changesource import ChangeSourceMixin
from buildbot.util.twisted import async_to_deferred
from support import RealUpstreamMixin, make_db_master
from twisted.internet import defer
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web import resource, server
from twisted.web.test._util import _render
from twisted.web.test.requesthelper import DummyChannel, DummyRequest

from lpdeploy.core import webhook
from lpdeploy.core.settings import Repository, Settings, Webhook, parse_settings
from lpdeploy.master.changes import FlowPoller
from lpdeploy.stores.deliveries import DbDeliveries
from lpdeploy.web.hook import HOOK_PATH, HookRequest, HookResource

SECRET = "a-shared-secret-for-the-hook"
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
BODY = json.dumps({"ref": "refs/heads/devel", "before": "0" * 40, "after": SHA}).encode()


def github(body: bytes = BODY, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
           secret: str = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
            **webhook.sign(webhook.Provider.GITHUB, secret, body)}


class Unreadable(io.BytesIO):
    def read(self, *args: object) -> bytes:
        raise AssertionError("the body was read")


class HookResourceTests(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self, wantMq=True)
        self.master.mq.verifyMessages = False
        self.settings = Settings(repository=Repository(url="file:///srv/upstream.git"),
                                 webhook=Webhook(secret_file="/etc/lpdeploy/hook-secret", secret=SECRET))
        self.resource = HookResource(lambda: self.master, lambda: self.settings)

    @defer.inlineCallbacks
    def send(self, headers: dict[str, str], body: bytes = BODY, method: bytes = b"POST", content=None):
        request = DummyRequest([])
        request.method = method
        for name, value in headers.items():
            request.requestHeaders.setRawHeaders(name.encode(), [value.encode()])
        request.content = content if content is not None else io.BytesIO(body)
        yield _render(self.resource, request)
        return request.responseCode or 200, json.loads(b"".join(request.written)), request

    @property
    def hints(self) -> list:
        return [p for p in self.master.mq.productions if p[0] == webhook.HINT_KEY]

    @async_to_deferred
    async def remembered(self) -> int:
        return await DbDeliveries(self.master).count()

    @defer.inlineCallbacks
    def test_a_signed_push_is_accepted_and_hints_the_poller_once(self):
        status, body, _ = yield self.send(github())
        self.assertEqual((status, body), (202, {"hook": "accepted"}))
        self.assertEqual(len(self.hints), 1)
        self.assertNotIn(SHA, json.dumps(self.hints))  # the hint carries nothing of the body

    @defer.inlineCallbacks
    def test_the_same_delivery_again_is_ignored_and_hints_nothing(self):
        yield self.send(github())
        status, body, _ = yield self.send(github())
        self.assertEqual((status, body), (200, {"hook": "ignored"}))
        self.assertEqual(len(self.hints), 1)

    @defer.inlineCallbacks
    def test_the_same_body_under_a_new_delivery_id_is_a_replay_too(self):
        yield self.send(github())
        status, _, _ = yield self.send(github(delivery="another-delivery-id"))
        self.assertEqual(status, 200)
        self.assertEqual(len(self.hints), 1)

    @defer.inlineCallbacks
    def test_a_forged_or_unsigned_push_is_401_and_leaves_no_trace(self):
        forged = github(secret="not-the-shared-secret")
        unsigned = {k: v for k, v in github().items() if k != "x-hub-signature-256"}
        for headers in (forged, unsigned):
            status, body, _ = yield self.send(headers)
            self.assertEqual((status, body), (401, {"hook": "ignored"}))
        self.assertEqual(self.hints, [])
        self.assertEqual((yield self.remembered()), 0)
        # and the genuine delivery is still new afterwards
        status, _, _ = yield self.send(github())
        self.assertEqual(status, 202)

    @defer.inlineCallbacks
    def test_a_body_announced_over_the_limit_is_413_unread(self):
        headers = {**github(), "Content-Length": str(webhook.MAX_BODY + 1)}
        status, body, _ = yield self.send(headers, content=Unreadable())
        self.assertEqual((status, body), (413, {"hook": "ignored"}))
        self.assertEqual(self.hints, [])

    @defer.inlineCallbacks
    def test_a_body_over_the_limit_without_a_length_is_413(self):
        big = BODY[:-1] + b', "pad": "' + b"x" * webhook.MAX_BODY + b'"}'
        status, _, _ = yield self.send(github(body=big), body=big)
        self.assertEqual(status, 413)
        self.assertEqual(self.hints, [])

    @defer.inlineCallbacks
    def test_a_get_is_405_and_says_what_is_allowed(self):
        status, body, request = yield self.send({}, method=b"GET")
        self.assertEqual((status, body), (405, {"hook": "ignored"}))
        self.assertEqual(request.responseHeaders.getRawHeaders(b"allow"), [b"POST"])

    @defer.inlineCallbacks
    def test_without_a_webhook_table_the_hook_is_off(self):
        self.settings = Settings(repository=Repository(url="file:///srv/upstream.git"))
        status, body, _ = yield self.send(github())
        self.assertEqual((status, body), (404, {"hook": "off"}))
        self.assertEqual(self.hints, [])

    @defer.inlineCallbacks
    def test_a_push_outside_the_flow_is_ignored_without_a_hint(self):
        body = json.dumps({"ref": "refs/heads/security/cve-2026-1", "after": SHA}).encode()
        status, answer, _ = yield self.send(github(body=body), body=body)
        self.assertEqual((status, answer), (200, {"hook": "ignored"}))
        self.assertEqual(self.hints, [])

    @defer.inlineCallbacks
    def test_when_the_database_fails_the_answer_is_503_and_no_hint(self):
        def broken(*args, **kwargs):
            return defer.fail(RuntimeError("database gone"))
        self.patch(self.master.db.state, "atomicCreateState", broken)
        status, body, _ = yield self.send(github())
        self.assertEqual((status, body), (503, {"hook": "ignored"}))
        self.assertEqual(self.hints, [])
        self.flushLoggedErrors(RuntimeError)


class Recorder(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[int] = []

    def render_POST(self, request):
        request.content.seek(0)
        self.bodies.append(len(request.content.read()))
        return b"{}"


class HookRequestTests(unittest.TestCase):
    """Twisted hands the body to the request in pieces, before any resource is chosen."""

    def serve(self, path: bytes, body: bytes, chunked: bool = False) -> Recorder:
        """Feed one raw HTTP request through Twisted's own parser to a site whose requests are HookRequests."""
        recorder = Recorder()
        root = resource.Resource()
        plugins, lpdeploy = resource.Resource(), resource.Resource()
        root.putChild(b"plugins", plugins)
        plugins.putChild(b"lpdeploy", lpdeploy)
        lpdeploy.putChild(b"hook", recorder)
        root.putChild(b"other", recorder)
        site = server.Site(root)
        site.requestFactory = HookRequest
        channel = site.buildProtocol(None)
        channel.makeConnection(StringTransport())
        if chunked:
            framing = b"Transfer-Encoding: chunked\r\n\r\n"
            payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                               for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
        else:
            framing, payload = b"Content-Length: %d\r\n\r\n" % len(body), body
        channel.dataReceived(b"POST " + path + b" HTTP/1.1\r\nHost: lpdeploy\r\n" + framing + payload)
        channel.connectionLost(None)
        return recorder

    def test_through_twisteds_parser_the_hook_keeps_at_most_the_limit(self):
        big = b"x" * (2 * webhook.MAX_BODY)
        self.assertEqual(self.serve(HOOK_PATH, big).bodies, [webhook.MAX_BODY + 1])
        self.assertEqual(self.serve(HOOK_PATH, big, chunked=True).bodies, [webhook.MAX_BODY + 1])
        self.assertEqual(self.serve(b"/other", big).bodies, [2 * webhook.MAX_BODY])

    def test_configuring_lpdeploy_installs_the_request_class(self):
        from buildbot.www.service import BuildbotSite

        import lpdeploy.configurator  # noqa: F401  (installs at import)

        self.assertTrue(issubclass(BuildbotSite.requestFactory, HookRequest))

    def request_for(self, path: bytes) -> HookRequest:
        channel = DummyChannel()
        channel._path = path
        return HookRequest(channel)

    def test_the_hook_keeps_at_most_one_byte_over_the_limit(self):
        request = self.request_for(HOOK_PATH)
        request.gotLength(None)
        for _ in range(3):
            request.handleContentChunk(b"x" * webhook.MAX_BODY)
        self.assertEqual(len(request.content.getvalue()), webhook.MAX_BODY + 1)

    def test_a_query_string_does_not_hide_the_hook(self):
        request = self.request_for(HOOK_PATH + b"?x=1")
        request.gotLength(3 * webhook.MAX_BODY)
        request.handleContentChunk(b"x" * (2 * webhook.MAX_BODY))
        self.assertEqual(len(request.content.getvalue()), webhook.MAX_BODY + 1)

    def test_a_body_within_the_limit_is_kept_whole(self):
        request = self.request_for(HOOK_PATH)
        request.gotLength(len(BODY))
        request.handleContentChunk(BODY[:10])
        request.handleContentChunk(BODY[10:])
        self.assertEqual(request.content.getvalue(), BODY)

    def test_other_paths_keep_twisteds_behaviour(self):
        request = self.request_for(b"/api/v2/forceschedulers/promote")
        request.gotLength(None)
        request.handleContentChunk(b"x" * (webhook.MAX_BODY + 10))
        request.content.seek(0)
        self.assertEqual(len(request.content.read()), webhook.MAX_BODY + 10)


class PollerHintTests(RealUpstreamMixin, ChangeSourceMixin, TestReactorMixin, unittest.TestCase):
    """A hint makes the active poller read the tips at once, long before its interval is up."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-hook-hint-")
        self.settings = parse_settings({"repository": {"url": self.repo.url, "poll_interval": 3600}})
        yield self.setUpChangeSource()
        self.master.mq.verifyMessages = False
        self.base = self.repo.commit("Initial release", None)
        for b in ("devel", "stable", "production-devel", "production-stable"):
            self.repo.push(b, self.base)
        self.poller = yield self.attachChangeSource(FlowPoller(name="lpdeploy-poller", settings=self.settings))
        yield self.poller.activate()  # as Buildbot does on the master that claims the poller
        self.reactor.advance(0)  # the poll at launch: records the tips

    @async_to_deferred
    async def test_a_hint_polls_now_and_reports_the_push(self):
        pushed = self.repo.commit("Add search", self.base)
        self.repo.push("devel", pushed)
        self.reactor.advance(60)
        self.assertEqual(self.master.data.updates.changesAdded, [], "polled before its interval without a hint")
        self.master.mq.callConsumer(webhook.HINT_KEY, {"reason": "webhook"})
        self.reactor.advance(0)
        await self.master.mq._deferwaiter.wait()
        self.assertEqual([(c["branch"], c["revision"]) for c in self.master.data.updates.changesAdded],
                         [("devel", pushed)])

    @async_to_deferred
    async def test_an_inactive_poller_hears_no_hints(self):
        await self.poller.deactivate()
        with self.assertRaises(AssertionError):  # Buildbot's fake queue: "no consumer found"
            self.master.mq.callConsumer(webhook.HINT_KEY, {"reason": "webhook"})
