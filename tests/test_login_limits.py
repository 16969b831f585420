"""Failed logins per user name and per client address, on an injected clock."""

from __future__ import annotations

import pytest

from lpdeploy.core import login_limits
from lpdeploy.core.login_limits import LoginLimiter, LoginLimits, address_key

LIMITS = LoginLimits(per_user=3, per_address=5, window=60.0, at_once=4)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> LoginLimiter:
    return LoginLimiter(LIMITS, clock)


def fail(limiter: LoginLimiter, user: str, address: str) -> None:
    assert limiter.admit(user, address) is None, "expected to be admitted"
    limiter.done(user, address, ok=False)


def test_a_user_is_refused_after_the_limit_with_the_seconds_until_the_oldest_failure_ages_out(limiter, clock):
    fail(limiter, "bob", "10.0.0.1")
    clock.now += 10
    fail(limiter, "bob", "10.0.0.2")
    fail(limiter, "bob", "10.0.0.3")
    clock.now += 5
    refusal = limiter.admit("bob", "10.0.0.4")
    assert refusal is not None
    assert refusal.status == 429
    assert refusal.retry_after == 45  # the first failure (at +0) leaves the 60 s window at +60; now is +15
    assert refusal.reason == "too many failed logins for user 'bob' (at most 3 in 60 seconds); retry in 45 s"


def test_the_user_may_try_again_once_the_oldest_failure_left_the_window(limiter, clock):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        fail(limiter, "bob", address)
    clock.now += 59.9
    assert limiter.admit("bob", "10.0.0.9") is not None
    clock.now += 0.1
    assert limiter.admit("bob", "10.0.0.9") is None


def test_an_address_is_refused_after_its_limit_whatever_the_user_names(limiter, clock):
    for i in range(LIMITS.per_address):
        fail(limiter, f"guess{i}", "192.0.2.7")
    refusal = limiter.admit("someone-new", "192.0.2.7")
    assert refusal is not None and refusal.status == 429
    assert "too many failed logins from 192.0.2.7 (at most 5 in 60 seconds)" in refusal.reason
    assert limiter.admit("someone-new", "192.0.2.8") is None  # another address is not affected


def test_a_success_counts_nothing_and_erases_nothing(limiter):
    for _ in range(LIMITS.per_user - 1):
        fail(limiter, "bob", "10.0.0.1")
    for _ in range(10):
        assert limiter.admit("bob", "10.0.0.2") is None
        limiter.done("bob", "10.0.0.2", ok=True)
    fail(limiter, "bob", "10.0.0.3")
    assert limiter.admit("bob", "10.0.0.2") is not None


def test_checks_still_running_count_against_the_budget_so_parallel_guesses_cannot_slip_in(limiter):
    for _ in range(LIMITS.per_user):
        assert limiter.admit("bob", "10.0.0.1") is None  # three checks running, none finished yet
    refusal = limiter.admit("bob", "10.0.0.1")
    assert refusal is not None and refusal.retry_after == 1
    limiter.done("bob", "10.0.0.1", ok=True)
    assert limiter.admit("bob", "10.0.0.1") is None


def test_too_many_checks_at_once_make_the_master_busy_for_everyone(limiter):
    for i in range(LIMITS.at_once):
        assert limiter.admit(f"user{i}", f"10.0.1.{i}") is None
    refusal = limiter.admit("someone", "10.0.2.1")
    assert refusal is not None and (refusal.status, refusal.retry_after) == (503, 1)
    limiter.done("user0", "10.0.1.0", ok=True)
    assert limiter.admit("someone", "10.0.2.1") is None


def test_a_refused_login_is_not_counted_as_a_failure(limiter, clock):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        fail(limiter, "bob", address)
    for _ in range(50):
        assert limiter.admit("bob", "10.0.0.4") is not None
    clock.now += 60
    assert limiter.admit("bob", "10.0.0.4") is None  # the refusals did not extend the lock


def test_ipv6_clients_are_counted_per_64_network():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("127.0.0.1") == "127.0.0.1"


def test_a_huge_user_name_is_counted_under_its_first_characters(limiter):
    long_name = "x" * 5000
    for i in range(LIMITS.per_user):
        fail(limiter, long_name, f"10.0.0.{i}")
    refusal = limiter.admit(long_name, "10.0.0.9")
    assert refusal is not None and len(refusal.reason) < 200


def test_memory_stays_bounded_under_a_flood_of_new_names(monkeypatch, clock):
    monkeypatch.setattr(login_limits, "MAX_TRACKED", 50)
    limiter = LoginLimiter(LoginLimits(per_user=3, per_address=10_000, window=60.0), clock)
    for i in range(500):
        fail(limiter, f"name{i}", "10.0.0.1")
    assert len(limiter._users.failures) <= 50
    assert limiter._users.running == {} and limiter._addresses.running == {}
