"""Logins: bcrypt htpasswd checks off the reactor, the dummy hash's cost, and the login resource's answers.

The resource tests use Buildbot's ``WwwTestMixin`` (a fake master and
``FakeRequest``) under ``TestReactorMixin``, whose thread pools run work
synchronously; the one test about the real thread pool runs on the real
reactor. The end-to-end behaviour (latency under a flood, timing, the real
session cookie) is ``test_e2e_logins.py``.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import bcrypt
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.www import FakeRequest, WwwTestMixin
from buildbot.util.twisted import async_to_deferred
from twisted.internet import address, reactor
from twisted.trial import unittest

from lpdeploy.core.login_limits import LoginLimits
from lpdeploy.web import login
from lpdeploy.web.login import BcryptHtpasswdAuth, basic_credentials, client_address, read_htpasswd, usual_cost

URL = "http://lpdeploy.example/"


def entry(user: str, password: str, cost: int = 4, prefix: str = "$2y$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    return f"{user}:{prefix}{hashed[4:]}\n"


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def write_htpasswd(case: unittest.TestCase, text: str) -> str:
    fd, path = tempfile.mkstemp(prefix="lpdeploy-htpasswd-")
    os.close(fd)
    Path(path).write_text(text)
    case.addCleanup(os.unlink, path)
    return path


class Htpasswd(unittest.TestCase):
    def test_bcrypt_entries_are_read_and_everything_else_ignored(self):
        good = entry("bob", "pw")
        path = write_htpasswd(self, good + "carol:{SHA}plain\nbroken-line\n\ndave:$2y$05$short\n" + entry("eve", "x"))
        self.assertEqual(sorted(read_htpasswd(Path(path))), ["bob", "eve"])

    def test_an_unreadable_file_means_no_users(self):
        self.assertEqual(read_htpasswd(Path("/nonexistent/htpasswd")), {})

    def test_the_usual_cost_is_the_most_common_one_and_the_higher_on_a_tie(self):
        def h(cost):
            return f"$2y${cost:02d}$".encode() + b"x" * 53

        self.assertEqual(usual_cost([h(5), h(5), h(10)]), 5)
        self.assertEqual(usual_cost([h(5), h(10)]), 10)
        self.assertEqual(usual_cost([]), login.DEFAULT_COST)

    def test_basic_credentials_are_parsed_and_bad_headers_give_none(self):
        self.assertEqual(basic_credentials(basic("bob", "p:w")), ("bob", b"p:w"))
        for bad in (None, b"", b"Bearer abc", b"Basic !!!", b"Basic " + base64.b64encode(b"no-colon"),
                    b"Basic " + base64.b64encode(b":pw"), b"Basic " + base64.b64encode(b"\xff:pw")):
            self.assertIsNone(basic_credentials(bad), bad)


class ClientAddress(unittest.TestCase):
    def request(self, peer: str, forwarded: str | None) -> FakeRequest:
        request = FakeClientRequest(b"/auth/login")
        request.client = peer
        if forwarded is not None:
            request.input_headers[b"x-forwarded-for"] = forwarded.encode()
        return request

    def test_a_proxy_on_this_host_names_the_client_in_the_last_forwarded_entry(self):
        self.assertEqual(client_address(self.request("127.0.0.1", "10.9.9.9, 203.0.113.9")), "203.0.113.9")
        self.assertEqual(client_address(self.request("127.0.0.1", "2001:db8::5")), "2001:db8::5")

    def test_a_remote_peer_is_never_believed(self):
        self.assertEqual(client_address(self.request("192.0.2.10", "203.0.113.9")), "192.0.2.10")

    def test_without_a_usable_header_the_peer_counts(self):
        self.assertEqual(client_address(self.request("127.0.0.1", None)), "127.0.0.1")
        self.assertEqual(client_address(self.request("127.0.0.1", "unknown")), "127.0.0.1")
        self.assertEqual(client_address(self.request("127.0.0.1", "")), "127.0.0.1")


class Credentials(unittest.TestCase):
    def auth(self, text: str) -> BcryptHtpasswdAuth:
        return BcryptHtpasswdAuth(write_htpasswd(self, text))

    def test_the_right_password_passes_and_a_wrong_one_or_an_unknown_user_fails(self):
        auth = self.auth(entry("bob", "s3cret") + entry("alice", "other"))
        self.assertTrue(auth.check_credentials(b"bob", b"s3cret"))
        self.assertFalse(auth.check_credentials(b"bob", b"wrong"))
        self.assertFalse(auth.check_credentials(b"alice", b"s3cret"))
        self.assertFalse(auth.check_credentials(b"mallory", b"s3cret"))
        self.assertFalse(auth.check_credentials(b"mallory", b"lpdeploy-no-such-user"))  # the dummy's own password

    def test_a_password_longer_than_72_bytes_is_checked_as_htpasswd_does(self):
        long_pw = "p" * 72
        auth = self.auth(entry("bob", long_pw))
        self.assertTrue(auth.check_credentials(b"bob", (long_pw + "ignored by bcrypt").encode()))

    def test_the_file_is_read_again_on_every_check(self):
        path = write_htpasswd(self, entry("bob", "old"))
        auth = BcryptHtpasswdAuth(path)
        self.assertTrue(auth.check_credentials(b"bob", b"old"))
        Path(path).write_text(entry("bob", "new"))
        self.assertFalse(auth.check_credentials(b"bob", b"old"))
        self.assertTrue(auth.check_credentials(b"bob", b"new"))

    def test_an_unknown_user_is_checked_against_a_hash_of_the_files_usual_cost(self):
        """The dummy hash must cost what a real entry costs, or timing tells who exists."""
        auth = self.auth(entry("a", "x", cost=5) + entry("b", "x", cost=5) + entry("c", "x", cost=6))
        checked: list[bytes] = []
        real_checkpw = bcrypt.checkpw

        def spy(password: bytes, hashed: bytes) -> bool:
            checked.append(hashed)
            return real_checkpw(password, hashed)

        self.patch(login.bcrypt, "checkpw", spy)
        auth.check_credentials(b"nobody", b"guess")
        auth.check_credentials(b"c", b"guess")
        self.assertEqual([h[:7] for h in checked], [b"$2b$05$", b"$2y$06$"])


class FakeClientRequest(FakeRequest):
    """Buildbot's FakeRequest, plus the client address a real request has."""

    client = "192.0.2.10"

    def getClientAddress(self):
        return address.IPv4Address("TCP", self.client, 40000)


class CountingAuth(BcryptHtpasswdAuth):
    """The real check, counted: proves which logins never reached bcrypt."""

    calls = 0

    def check_credentials(self, username, password):
        self.calls += 1
        return super().check_credentials(username, password)


class LoginResourceCase(TestReactorMixin, WwwTestMixin, unittest.TestCase):
    LIMITS = LoginLimits(per_user=3, per_address=5, window=300.0)

    @async_to_deferred
    async def setUp(self):
        self.setup_test_reactor()
        self.auth = CountingAuth(write_htpasswd(self, entry("bob", "s3cret") + entry("carol", "c4rol")),
                                 limits=self.LIMITS)
        await self.make_master(url=URL, auth=self.auth)
        self.master.www.auth = self.auth  # what Buildbot's www service is: the configured auth
        self.auth.reconfigAuth(self.master, self.master.config)
        self.auth.calls = 0  # reconfigAuth prepared the dummy hash in the pool

    async def login(self, user: str | None, password: str = "", client: str = "192.0.2.10",
                    forwarded_for: str | None = None) -> FakeClientRequest:
        request = FakeClientRequest(b"/auth/login")
        request.session = self.master.session
        request.client = client
        if forwarded_for is not None:
            request.input_headers[b"x-forwarded-for"] = forwarded_for.encode()
        if user is not None:
            request.input_headers[b"authorization"] = basic(user, password)
        self.request = request
        await self.render_resource(self.auth.getLoginResource(), request=request)
        return request


class LoginResource(LoginResourceCase):
    @async_to_deferred
    async def test_a_right_password_starts_buildbots_session_and_redirects_to_the_ui(self):
        request = await self.login("bob", "s3cret")
        self.assertEqual(self.master.session.user_info, {"username": "bob", "email": "bob"})
        self.assertEqual(request.redirected_to, (URL + "#/").encode())

    @async_to_deferred
    async def test_no_credentials_ask_the_browser_for_them(self):
        request = await self.login(None)
        self.assertEqual(request.responseCode, 401)
        self.assertEqual(request.headers[b"www-authenticate"], [b'Basic realm="buildbot"'])
        self.assertEqual(self.auth.calls, 0)

    @async_to_deferred
    async def test_a_wrong_password_is_401_with_the_challenge_and_no_session(self):
        request = await self.login("bob", "guess")
        self.assertEqual(request.responseCode, 401)
        self.assertEqual(request.headers[b"www-authenticate"], [b'Basic realm="buildbot"'])
        self.assertEqual(self.master.session.user_info, {"anonymous": True})
        self.assertEqual(self.auth.calls, 1)

    @async_to_deferred
    async def test_after_the_user_limit_logins_are_429_with_retry_after_and_no_password_is_checked(self):
        for i in range(self.LIMITS.per_user):
            self.assertEqual((await self.login("bob", f"guess{i}", client=f"192.0.2.{i}")).responseCode, 401)
        self.reactor.advance(100)
        request = await self.login("bob", "s3cret", client="198.51.100.1")  # even the right password
        self.assertEqual(request.responseCode, 429)
        self.assertEqual(request.headers[b"retry-after"], [b"200"])
        self.assertEqual(request.written, b"too many failed logins for user 'bob' (at most 3 in 5 minutes); "
                                          b"retry in 200 s")
        self.assertEqual(self.auth.calls, self.LIMITS.per_user)
        self.assertEqual(self.master.session.user_info, {"anonymous": True})
        self.reactor.advance(200)
        self.assertIsNotNone((await self.login("bob", "s3cret", client="198.51.100.1")).redirected_to)

    @async_to_deferred
    async def test_after_the_address_limit_every_user_from_there_is_429(self):
        for i in range(self.LIMITS.per_address):
            self.assertEqual((await self.login(f"nobody{i}", "guess")).responseCode, 401)
        request = await self.login("carol", "c4rol")
        self.assertEqual(request.responseCode, 429)
        self.assertIn(b"too many failed logins from 192.0.2.10", request.written)
        self.assertEqual(self.auth.calls, self.LIMITS.per_address)
        self.assertIsNotNone((await self.login("carol", "c4rol", client="192.0.2.11")).redirected_to)

    @async_to_deferred
    async def test_behind_a_reverse_proxy_on_this_host_each_client_is_counted_apart(self):
        for i in range(self.LIMITS.per_address):
            request = await self.login(f"nobody{i}", "guess", client="127.0.0.1", forwarded_for="203.0.113.9")
            self.assertEqual(request.responseCode, 401)
        request = await self.login("carol", "c4rol", client="127.0.0.1", forwarded_for="203.0.113.9")
        self.assertIn(b"too many failed logins from 203.0.113.9", request.written)
        request = await self.login("carol", "c4rol", client="127.0.0.1", forwarded_for="198.51.100.7")
        self.assertIsNotNone(request.redirected_to)

    @async_to_deferred
    async def test_a_check_that_breaks_counts_as_a_failure(self):
        def broken(username, password):
            raise OSError("disk gone")

        self.auth.check_credentials = broken
        for _ in range(self.LIMITS.per_user):
            self.assertEqual((await self.login("bob", "s3cret")).responseCode, 500)
        self.assertEqual((await self.login("bob", "s3cret")).responseCode, 429)
        self.flushLoggedErrors(OSError)


class LoginPool(unittest.TestCase):
    """On the real reactor: the check runs in the login pool's threads, never on the reactor's."""

    def setUp(self):
        self.master = SimpleNamespace(reactor=reactor)
        self.auth = BcryptHtpasswdAuth(write_htpasswd(self, entry("bob", "s3cret")))
        self.auth.master = self.master
        self.addCleanup(self._stop_pool)

    def _stop_pool(self):
        pool = login._pools.pop(reactor, None)
        if pool is not None:
            pool.stop()

    @async_to_deferred
    async def test_password_checks_run_in_the_login_pool_threads(self):
        seen = []

        def check(username, password):
            seen.append(threading.current_thread())
            return BcryptHtpasswdAuth.check_credentials(self.auth, username, password)

        self.auth.check_credentials = check
        results = [await self.auth.in_pool(self.auth.check_credentials, "bob", pw) for pw in (b"s3cret", b"no")]
        self.assertEqual(results, [True, False])
        self.assertTrue(all(t.name.startswith("PoolThread-lpdeploy-login") for t in seen), [t.name for t in seen])
        self.assertNotIn(threading.main_thread(), seen)
        pool = login._pools[reactor]
        self.assertIsNot(pool, reactor.getThreadPool())
        self.assertEqual(pool.max, login.POOL_SIZE)
