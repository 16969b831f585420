"""Freeze windows: planned times when promotions and deploys stop (``[[freeze.windows]]``).

A window is either recurring (a 5-field ``cron`` expression read in the
window's ``timezone``, each firing opening the window for ``duration``
seconds: "Friday afternoons") or one-shot (``start`` to ``end``, aware
datetimes: "the release party"). A window covers ``[start, end)``.

``window_state(windows, now)`` is pure: it takes the configured windows and
the clock's reading, and says which windows are open now, when promotions
may resume (windows that overlap or follow each other without a gap count as
one freeze), and which window opens next. The refusal itself is
``policy.frozen_refusal``, which combines windows with the manual freeze.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import croniter

UTC = dt.UTC
CHAIN_LIMIT = 1000  # windows followed back to back before "until" is given up as a lower bound


@dataclass(frozen=True)
class FreezeWindow:
    """One ``[[freeze.windows]]`` entry, validated by ``settings``: cron + duration, or start + end."""

    reason: str
    cron: str | None = None
    duration: int = 0  # seconds a recurring window stays open after each cron firing
    timezone: str = "UTC"  # the zone the cron expression is read in
    start: dt.datetime | None = None  # one-shot: aware datetimes
    end: dt.datetime | None = None

    @property
    def recurring(self) -> bool:
        return self.cron is not None

    @property
    def zone(self) -> dt.tzinfo:
        """Where the window's times are shown: the cron's zone, or the offset its start was written with."""
        if self.start is not None and self.start.tzinfo is not None:
            return self.start.tzinfo
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        if self.recurring:
            return f"cron {self.cron!r} ({self.timezone}) for {span(self.duration)}"
        assert self.start is not None and self.end is not None
        return f"from {self.start.isoformat(timespec='minutes')} to {self.end.isoformat(timespec='minutes')}"

    def covering(self, now: float) -> Opening | None:
        """The opening of this window that contains ``now``, if any."""
        if not self.recurring:
            assert self.start is not None and self.end is not None
            start, end = self.start.timestamp(), self.end.timestamp()
            return Opening(self, start, end) if start <= now < end else None
        # the first firing after now - duration opens the only opening that can still contain now
        # (a later firing's opening ends later, so the latest firing not after now is the one to check)
        first = self._next_firing(now - self.duration)
        return Opening(self, first, first + self.duration) if first <= now else None

    def next_opening(self, now: float) -> Opening | None:
        """The first opening of this window that starts after ``now``; None for a one-shot in the past."""
        if not self.recurring:
            assert self.start is not None and self.end is not None
            start = self.start.timestamp()
            return Opening(self, start, self.end.timestamp()) if start > now else None
        first = self._next_firing(now)
        return Opening(self, first, first + self.duration)

    def _next_firing(self, after: float) -> float:
        """The first cron firing strictly after ``after`` (seconds since the epoch)."""
        start = dt.datetime.fromtimestamp(after, ZoneInfo(self.timezone))
        return float(croniter.croniter(self.cron, start).get_next(float))


@dataclass(frozen=True)
class Opening:
    """One time a window is open: ``[start, end)`` in seconds since the epoch."""

    window: FreezeWindow
    start: float
    end: float

    def at(self, ts: float) -> str:
        """``ts`` as ISO 8601 in the window's own zone, to the minute."""
        return dt.datetime.fromtimestamp(ts, self.window.zone).isoformat(timespec="minutes")

    def as_json(self) -> dict[str, object]:
        return {"reason": self.window.reason, "schedule": self.window.describe(),
                "start": self.start, "end": self.end, "start_at": self.at(self.start), "end_at": self.at(self.end)}


@dataclass(frozen=True)
class WindowState:
    """The freeze windows as seen at ``now``."""

    now: float
    active: tuple[Opening, ...] = ()  # the openings that contain now
    until: Opening | None = None  # the opening whose end resumes promotions (through back-to-back windows)
    bounded: bool = True  # False when the chain of windows was not followed to its end (CHAIN_LIMIT)
    next: Opening | None = None  # the first opening that starts after now

    @property
    def frozen(self) -> bool:
        return bool(self.active)

    def describe(self) -> str:
        """Why it is frozen and when it ends, for a refusal; empty when no window is open."""
        if self.until is None:
            return ""
        reasons = "; ".join(dict.fromkeys(o.window.reason for o in self.active))
        ends = self.until.at(self.until.end)
        when = f"until {ends} (in {span(self.until.end - self.now)})" if self.bounded else f"until at least {ends}"
        return f"freeze window {when}: {reasons}"

    def as_json(self) -> dict[str, object]:
        return {"active": [o.as_json() for o in self.active],
                "until": self.until.end if self.until else None,
                "until_at": self.until.at(self.until.end) if self.until else None,
                "until_bounded": self.bounded,
                "next": self.next.as_json() if self.next else None}


def window_state(windows: Sequence[FreezeWindow], now: float) -> WindowState:
    """Which windows are open at ``now``, when the freeze they make ends, and which window opens next."""
    active = tuple(o for o in (w.covering(now) for w in windows) if o is not None)
    upcoming = [o for o in (w.next_opening(now) for w in windows) if o is not None]
    nxt = min(upcoming, key=lambda o: o.start) if upcoming else None
    if not active:
        return WindowState(now, next=nxt)
    until = max(active, key=lambda o: o.end)
    for _ in range(CHAIN_LIMIT):  # a window that opens as another closes (or before) continues the freeze
        later = [o for o in (w.covering(until.end) for w in windows) if o is not None]
        if not later:
            return WindowState(now, active, until, True, nxt)
        until = max(later, key=lambda o: o.end)
    return WindowState(now, active, until, False, nxt)


def span(seconds: float) -> str:
    """A duration for people: "2d 3h", "4h 30m", "12m", "40s"."""
    s = max(0, int(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    shown = " ".join(p for p in parts if p)
    return shown or f"{secs}s"
