"""The lease contract: scenarios every ``Leases`` store must pass (in memory and in the database).

Each scenario takes a fresh, empty store. ``test_lease.py`` runs them on
``InMemoryLeases`` and on ``DbLeases`` over a real Buildbot database, and on
two masters sharing one database file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lpdeploy.stores.lease import LeaseState

NAME = "deploy"
A = "master 1 build 7"
B = "master 2 build 9"
T0 = 1_700_000_000.0
TTL = 60.0


async def a_free_lease_is_taken(leases: Any) -> None:
    assert await leases.state(NAME) is None
    assert await leases.take(NAME, A, T0, TTL) == LeaseState(A, T0 + TTL)
    assert await leases.state(NAME) == LeaseState(A, T0 + TTL)


async def a_held_lease_is_not_taken_by_another(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    got = await leases.take(NAME, B, T0 + TTL - 1, TTL)
    assert got == LeaseState(A, T0 + TTL)  # the answer names who holds it
    assert await leases.state(NAME) == LeaseState(A, T0 + TTL)


async def an_expired_lease_frees_itself(leases: Any) -> None:
    # the holder died: it stopped renewing; once its expiry passes, another takes the lease
    await leases.take(NAME, A, T0, TTL)
    assert await leases.take(NAME, B, T0 + TTL, TTL) == LeaseState(B, T0 + 2 * TTL)


async def the_holder_extends_its_lease_by_taking_or_renewing_it(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    assert await leases.take(NAME, A, T0 + 10, TTL) == LeaseState(A, T0 + 10 + TTL)
    assert await leases.renew(NAME, A, T0 + 20, TTL) is True
    assert await leases.state(NAME) == LeaseState(A, T0 + 20 + TTL)
    # renewed, the lease outlives its first expiry: B cannot take it then
    assert (await leases.take(NAME, B, T0 + TTL + 1, TTL)).holder == A


async def a_lost_lease_is_not_renewed(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    await leases.take(NAME, B, T0 + TTL + 1, TTL)  # A's lease expired and B took it
    assert await leases.renew(NAME, A, T0 + TTL + 2, TTL) is False
    assert await leases.state(NAME) == LeaseState(B, T0 + 2 * TTL + 1)
    assert await leases.renew("never-taken", A, T0, TTL) is False
    assert await leases.state("never-taken") is None


async def only_the_holder_releases(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    assert await leases.release(NAME, B) is False
    assert (await leases.state(NAME)) == LeaseState(A, T0 + TTL)
    assert await leases.release(NAME, A) is True
    assert await leases.state(NAME) is None
    assert await leases.release(NAME, A) is False  # twice: nothing left to release


async def a_released_lease_is_taken_at_once(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    await leases.release(NAME, A)
    assert await leases.take(NAME, B, T0 + 1, TTL) == LeaseState(B, T0 + 1 + TTL)


async def leases_are_kept_apart_by_name(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    assert await leases.take("other", B, T0, TTL) == LeaseState(B, T0 + TTL)
    assert (await leases.state(NAME)).holder == A


async def only_an_expired_lease_of_its_holder_is_broken(leases: Any) -> None:
    # how a survivor declares a silent master dead: its heartbeat lease, once expired, is deleted
    await leases.take(NAME, A, T0, TTL)
    assert await leases.break_expired(NAME, A, T0 + TTL - 1) is False  # still alive
    assert await leases.break_expired(NAME, B, T0 + TTL) is False  # not B's lease
    assert await leases.state(NAME) == LeaseState(A, T0 + TTL)
    assert await leases.break_expired(NAME, A, T0 + TTL) is True
    assert await leases.state(NAME) is None
    assert await leases.break_expired(NAME, A, T0 + TTL) is False  # twice: the second survivor loses
    # the silent master, back, cannot renew: it learns it was taken over
    assert await leases.renew(NAME, A, T0 + TTL + 1, TTL) is False


async def a_renewed_lease_is_not_broken(leases: Any) -> None:
    await leases.take(NAME, A, T0, TTL)
    await leases.renew(NAME, A, T0 + TTL - 1, TTL)  # the holder renewed in time
    assert await leases.break_expired(NAME, A, T0 + TTL) is False
    assert await leases.state(NAME) == LeaseState(A, T0 + 2 * TTL - 1)


Scenario = Callable[[Any], Awaitable[None]]

SCENARIOS: list[Scenario] = [
    a_free_lease_is_taken,
    a_held_lease_is_not_taken_by_another,
    an_expired_lease_frees_itself,
    the_holder_extends_its_lease_by_taking_or_renewing_it,
    a_lost_lease_is_not_renewed,
    only_the_holder_releases,
    a_released_lease_is_taken_at_once,
    leases_are_kept_apart_by_name,
    only_an_expired_lease_of_its_holder_is_broken,
    a_renewed_lease_is_not_broken,
]
