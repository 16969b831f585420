"""Who is dead, and who takes over: the failover decision between masters sharing one database.

Each master renews a heartbeat lease (``heartbeat/<master name>``, time to
live ``[cluster] dead_after``) every ``[cluster] heartbeat`` seconds. On the
same tick it looks at every other master Buildbot lists as active: one whose
heartbeat expired is silent, and this master takes over its work (Buildbot's
``masterStopped`` frees its scheduler and poller claims and its build
requests; this master then claims them at once). Stock Buildbot does the same
only after ten minutes without its own heartbeat, and survivors look again
every five: 10-15 minutes, where this gives ``dead_after`` + ``heartbeat``.

A master with no heartbeat row is left to Buildbot's own expiry: it never ran
this failover (an older lpdeploy during an upgrade), or a survivor already
took over from it. A master whose own renewal fails was declared dead while
it was only slow (paused, swapped out, cut off from the database): it must
step down from every claim it still believes it holds (``Fenced``), since
Buildbot's services never look at their claim again once active.

Pure: the adapter (``lpdeploy.master.failover``) reads the rows and the
clock and carries the decisions out.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


def heartbeat_name(master: str) -> str:
    """The lease name of ``master``'s heartbeat."""
    return f"heartbeat/{master}"


@dataclass(frozen=True)
class Peer:
    """Another master as the shared database shows it: Buildbot's ``masters`` row and its heartbeat lease."""

    masterid: int
    name: str
    active: bool  # Buildbot's ``masters.active``
    heartbeat_expires: float | None  # None: no heartbeat lease (never written, or already taken over)


class Action(enum.StrEnum):
    TAKE_OVER = "take-over"  # mark the peer stopped in Buildbot's tables, then claim its work at once
    WAIT = "wait"  # alive, or not ours to judge


@dataclass(frozen=True)
class Takeover:
    """What to do about one peer, and why (logged and audited when it is a take-over)."""

    action: Action
    peer: Peer
    reason: str
    silent_since: float | None = None  # the peer's last renewal (its expiry minus dead_after)


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def judge(me: str, peers: list[Peer], now: float, dead_after: float) -> list[Takeover]:
    """One decision per other master: take over the ones whose heartbeat expired, wait for the rest.

    ``now`` is this master's clock; the expiry was written with the peer's
    (masters' clocks must agree to well within ``dead_after``: NTP does).
    """
    decisions = []
    for peer in sorted(peers, key=lambda p: p.masterid):
        if peer.name == me:
            continue
        if not peer.active:
            decisions.append(Takeover(Action.WAIT, peer, f"master {peer.name} is already marked stopped"))
        elif peer.heartbeat_expires is None:
            decisions.append(Takeover(Action.WAIT, peer, f"master {peer.name} has no heartbeat: "
                                                         "Buildbot's own expiry (10 minutes) applies"))
        elif now < peer.heartbeat_expires:
            decisions.append(Takeover(Action.WAIT, peer, f"master {peer.name} is alive "
                                                         f"(heartbeat until {_when(peer.heartbeat_expires)})"))
        else:
            since = peer.heartbeat_expires - dead_after
            decisions.append(Takeover(
                Action.TAKE_OVER, peer,
                f"master {peer.name} silent since {_when(since)} (more than {dead_after:g} s); "
                f"{me} takes over its schedulers, poller and build requests",
                silent_since=since))
    return decisions


@dataclass(frozen=True)
class Fenced:
    """This master's own heartbeat was lost: another master took over while this one was silent."""

    reason: str


def own_heartbeat(me: str, renewed: bool, had_heartbeat: bool, now: float) -> Fenced | None:
    """After renewing its own heartbeat: None when all is well, ``Fenced`` when this master must step down.

    A renewal fails when the row is gone or held by another: a survivor took
    over. A master that never had a heartbeat (just started) takes one instead.
    """
    if renewed or not had_heartbeat:
        return None
    return Fenced(f"master {me} lost its heartbeat at {_when(now)}: another master took over while it was "
                  "silent; stepping down from its schedulers and poller (they claim again only when free)")


def lost_claims(my_masterid: int, holders: dict[str, int | None]) -> list[str]:
    """The services this master runs as active whose claim row names another master, or none.

    Buildbot's clustered services never look at their claim again once
    active; a master taken over while silent would go on polling and
    scheduling beside the survivor. Every heartbeat it compares: each one
    listed here must step down (and claim again only when free).
    """
    return sorted(name for name, holder in holders.items() if holder != my_masterid)
