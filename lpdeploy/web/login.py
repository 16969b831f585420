"""Who may log in: bcrypt htpasswd entries, checked off the reactor, with limits on failures.

Login is Buildbot's: GET ``/auth/login`` with HTTP basic credentials; a success
sets Buildbot's session cookie and redirects to the web UI. Two things differ
from Buildbot's ``CustomAuth``, which checks the password synchronously on
the reactor thread (``requestAvatarId`` calls ``check_credentials``): one
bcrypt check takes 60 ms at cost 10 and 250 ms at cost 12, and while it runs
the master answers nothing else — ten parallel bad logins raised the latency
of an unrelated REST read from 11 ms to 2.4 s.

* Password checks run in a thread pool of their own (``POOL_SIZE`` threads,
  started with the reactor and stopped at its shutdown), not in the reactor's
  default pool that the REST API and git use: a flood of logins waits for
  these threads and nothing else does.
* Failed logins are counted per user name and per client address
  (``login_limits``); over the limit a login is answered 429 with a
  ``Retry-After`` and a one-line reason, without checking any password.

A wrong password costs the same whether the user exists or not: an unknown
user is checked against a dummy hash made at the cost most entries of the
file use (``htpasswd -B`` defaults to cost 5, Python's bcrypt to 12).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import logging
import re
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

import bcrypt
from buildbot.www.auth import CustomAuth, PreAuthenticatedLoginResource
from buildbot.www.resource import Resource
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, threads
from twisted.python import threadpool
from twisted.web.error import Error

from lpdeploy.core.login_limits import LoginLimiter, LoginLimits

log = logging.getLogger(__name__)
POOL_SIZE = 2  # bcrypt checks at once; the rest wait in the pool's queue (bounded by LoginLimits.at_once)
DEFAULT_COST = 12  # dummy-hash cost when the file has no entries
MAX_PASSWORD = 72  # bytes bcrypt reads; htpasswd -B ignores the rest too
REALM = b"buildbot"
_ENTRY = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_pools: weakref.WeakKeyDictionary[Any, threadpool.ThreadPool] = weakref.WeakKeyDictionary()


def login_pool(reactor: Any) -> threadpool.ThreadPool:
    """The login thread pool of ``reactor``: one per process, started and stopped with the reactor."""
    pool = _pools.get(reactor)
    if pool is None:
        # looked up at call time: Buildbot's test reactor swaps ThreadPool for a synchronous twin
        pool = threadpool.ThreadPool(minthreads=0, maxthreads=POOL_SIZE, name="lpdeploy-login")
        _pools[reactor] = pool
        reactor.callWhenRunning(pool.start)
        reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return pool


def read_htpasswd(path: Path) -> dict[str, bytes]:
    """User name → bcrypt hash, from an htpasswd file; other lines (other hash kinds) are ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        log.warning("cannot read htpasswd file %s: %s", path, e)
        return {}
    found = {}
    for line in text.splitlines():
        user, sep, hashed = line.strip().partition(":")
        if sep and _ENTRY.fullmatch(hashed):
            found[user] = hashed.encode()
    return found


def usual_cost(hashes: list[bytes]) -> int:
    """The cost most entries use (the highest of equally common ones); ``DEFAULT_COST`` for none."""
    counts = Counter(int(h[4:6]) for h in hashes)
    if not counts:
        return DEFAULT_COST
    top = max(counts.values())
    return max(cost for cost, n in counts.items() if n == top)


@functools.cache
def dummy_hash(cost: int) -> bytes:
    """A real hash at ``cost`` to check unknown users against (made once per cost)."""
    return bcrypt.hashpw(b"lpdeploy-no-such-user", bcrypt.gensalt(rounds=cost))


class BcryptHtpasswdAuth(CustomAuth):
    """Check users against an htpasswd file of bcrypt entries (``htpasswd -B``), re-read on every login.

    Buildbot's own ``HTPasswdAuth`` compares plain text, so it cannot be used.
    """

    def __init__(self, path: str, limits: LoginLimits | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.limits = limits or LoginLimits()
        self.limiter: LoginLimiter | None = None

    def reconfigAuth(self, master: Any, new_config: Any) -> None:
        """Called by Buildbot's www service on every (re)configuration, on the reactor."""
        super().reconfigAuth(master, new_config)
        if self.limiter is None:
            self.limiter = LoginLimiter(self.limits, master.reactor.seconds)
        # make the dummy hash now, so that the first unknown user costs no more than a known one
        d = self.in_pool(lambda: dummy_hash(usual_cost(list(read_htpasswd(self.path).values()))))
        d.addErrback(lambda f: log.warning("cannot prepare the dummy hash: %s", f.getErrorMessage()))

    def in_pool(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        """Run ``fn(*args)`` in the login thread pool; its result on the reactor."""
        reactor = self.master.reactor
        return threads.deferToThreadPool(reactor, login_pool(reactor), fn, *args)

    def check_credentials(self, username: bytes | str, password: bytes | str) -> bool:
        """Whether the password is the user's: blocking (tens to hundreds of ms), so run it in the pool."""
        user = username.decode("utf-8", "replace") if isinstance(username, bytes) else username
        pw = password.encode() if isinstance(password, str) else password
        entries = read_htpasswd(self.path)
        hashed = entries.get(user)
        ok = bcrypt.checkpw(pw[:MAX_PASSWORD], hashed or dummy_hash(usual_cost(list(entries.values()))))
        return ok and hashed is not None

    def requestAvatarId(self, cred: Any) -> defer.Deferred[Any]:
        """Buildbot's checker interface, kept for any other caller: off the reactor too, but not limited."""
        d = self.in_pool(self.check_credentials, cred.username, cred.password)
        d.addCallback(lambda ok: cred.username if ok else defer.fail(UnauthorizedLogin()))
        return d

    def getLoginResource(self) -> Resource:
        """Called by Buildbot for every request to ``/auth/login``."""
        return LoginResource(self.master, self)


class LoginResource(Resource):
    """``GET /auth/login`` with basic credentials: limits first, then bcrypt in the pool, then the session.

    The answers a browser and ``lpdeploy`` expect from Buildbot stay as they
    were: 401 with a ``WWW-Authenticate: Basic`` challenge for missing or
    wrong credentials (the browser then asks), and on success Buildbot's own
    ``PreAuthenticatedLoginResource`` sets the session cookie and redirects.
    New: 429 (this user or address failed too often) or 503 (too many checks
    at once), each with ``Retry-After`` and a one-line text body.
    """

    isLeaf = True

    def __init__(self, master: Any, auth: BcryptHtpasswdAuth) -> None:
        super().__init__(master)
        self.auth = auth

    def render_GET(self, request: Any) -> int:
        return self.asyncRenderHelper(request, lambda r: defer.ensureDeferred(self._login(r)))

    async def _login(self, request: Any) -> None:
        credentials = basic_credentials(request.getHeader(b"authorization"))
        if credentials is None:
            raise _challenge(request)
        user, password = credentials
        address = client_address(request)
        limiter = self.auth.limiter
        assert limiter is not None, "reconfigAuth runs before the web server serves"
        refusal = limiter.admit(user, address)
        if refusal is not None:
            request.setHeader(b"retry-after", str(refusal.retry_after).encode())
            raise Error(refusal.status, refusal.reason.encode("utf-8", "replace"))
        ok = False
        try:
            ok = await self.auth.in_pool(self.auth.check_credentials, user, password)
        finally:
            limiter.done(user, address, ok)
        if not ok:
            raise _challenge(request)
        # Buildbot's own success path: session cookie, user info, redirect (raises Redirect)
        await PreAuthenticatedLoginResource(self.master, user.encode()).renderLogin(request)


def client_address(request: Any) -> str:
    """Whom to count a login against: the peer, or the client a reverse proxy on this host names.

    Behind a reverse proxy every connection comes from the proxy; counting
    them all under its address would let 20 bad guesses lock everyone out.
    A proxy on the master's own host (a loopback peer) is trusted to say who
    its client was: the last ``X-Forwarded-For`` entry is the address that
    proxy saw (nginx and Apache append it). A remote peer is never believed.
    """
    peer = getattr(request.getClientAddress(), "host", None) or "local"
    forwarded = (request.getHeader(b"x-forwarded-for") or b"").decode("latin-1").split(",")[-1].strip()
    try:
        if forwarded and ipaddress.ip_address(peer).is_loopback:
            return str(ipaddress.ip_address(forwarded))
    except ValueError:
        pass
    return peer


def basic_credentials(header: bytes | None) -> tuple[str, bytes] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None if there is none or it is bad."""
    scheme, _, token = (header or b"").partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        name = user.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep and name else None


def _challenge(request: Any) -> Error:
    """401 with the challenge that makes a browser ask for a user name and password."""
    request.setHeader(b"www-authenticate", b'Basic realm="' + REALM + b'"')
    return Error(401, b"Unauthorized")
