"""How many failed logins a user name and a client address may have: the rule, without the web.

A password guesser gets at most ``per_user`` wrong guesses at one user name
and ``per_address`` wrong guesses from one client address in any
``window`` seconds; beyond that the login is refused with HTTP 429 and a
``Retry-After`` (the seconds until the oldest counted failure is older than the
window) **before** any password is checked, so a flood of bad logins costs the
master almost nothing. Checks still running count against the budget, so ten
parallel guesses cannot all slip in before the first one fails. A success
erases nothing: it would let a guesser who owns one account reset its budget.

The counters live in the memory of one master process: a restart or a
reconfig starts them afresh, and with several masters each counts its own.
They are a brake, not a record: nothing is lost that must survive a restart
(the audit trail is elsewhere). IPv6 clients are counted per /64 network,
since one host usually owns a whole /64.

Pure: no Twisted, no I/O; the clock is injected.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRACKED = 10_000  # user names (and, separately, addresses) remembered at most
MAX_NAME = 100  # characters of a user name used as a counter's key


@dataclass(frozen=True)
class LoginLimits:
    per_user: int = 5  # failed logins per user name ...
    per_address: int = 20  # ... and per client address ...
    window: float = 300.0  # ... in any this many seconds
    at_once: int = 16  # password checks running or waiting at once, all clients together


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused before its password is checked."""

    status: int  # 429: this user or address is over its limit; 503: the master is busy
    retry_after: int  # whole seconds, at least 1
    reason: str  # one line


class _Counter:
    """Recent failures and running checks per key, forgetting the oldest keys beyond ``MAX_TRACKED``."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.failures: dict[str, deque[float]] = {}
        self.running: dict[str, int] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self.failures.pop(key, None)
        return times

    def wait(self, key: str, now: float) -> int | None:
        """Seconds until ``key`` may try again, or None if it may try now."""
        times = self._recent(key, now)
        over = len(times) + self.running.get(key, 0) - self.limit
        if over < 0:
            return None
        if over >= len(times):
            return 1  # the budget is taken by checks still running: they end soon
        return max(1, math.ceil(times[over] + self.window - now))

    def start(self, key: str) -> None:
        self.running[key] = self.running.get(key, 0) + 1

    def end(self, key: str, failed: bool, now: float) -> None:
        left = self.running.get(key, 0) - 1
        if left > 0:
            self.running[key] = left
        else:
            self.running.pop(key, None)
        if failed:
            times = self.failures.pop(key, None) or deque()
            times.append(now)
            self.failures[key] = times  # re-inserted: the dict's order is the order of last failure
            self._forget(now)

    def _forget(self, now: float) -> None:
        if len(self.failures) <= MAX_TRACKED:
            return
        for key in list(self.failures):
            self._recent(key, now)
        while len(self.failures) > MAX_TRACKED:
            del self.failures[next(iter(self.failures))]


def address_key(host: str) -> str:
    """The key an address is counted under: itself, or its /64 network for IPv6."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:MAX_NAME]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginLimiter:
    """Admit or refuse a login before its password is checked; count the failures after."""

    def __init__(self, limits: LoginLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits = limits or LoginLimits()
        self.clock = clock
        self._users = _Counter(limits.per_user, limits.window)
        self._addresses = _Counter(limits.per_address, limits.window)
        self._running = 0

    def admit(self, user: str, address: str) -> Refusal | None:
        """None: check the password now and call ``done`` afterwards; else the refusal to answer."""
        now = self.clock()
        name, where = user[:MAX_NAME], address_key(address)
        span = _duration(self.limits.window)
        wait = self._users.wait(name, now)
        if wait is not None:
            return Refusal(429, wait, f"too many failed logins for user {name!r} (at most "
                                      f"{self.limits.per_user} in {span}); retry in {wait} s")
        wait = self._addresses.wait(where, now)
        if wait is not None:
            return Refusal(429, wait, f"too many failed logins from {where} (at most "
                                      f"{self.limits.per_address} in {span}); retry in {wait} s")
        if self._running >= self.limits.at_once:
            return Refusal(503, 1, "the master is busy checking other logins; retry in 1 s")
        self._users.start(name)
        self._addresses.start(where)
        self._running += 1
        return None

    def done(self, user: str, address: str, ok: bool) -> None:
        """After the password check of an admitted login: count it as a failure unless ``ok``."""
        now = self.clock()
        self._users.end(user[:MAX_NAME], not ok, now)
        self._addresses.end(address_key(address), not ok, now)
        self._running -= 1


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60)} minutes"
    return f"{seconds:g} seconds"
