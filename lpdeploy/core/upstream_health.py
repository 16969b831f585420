"""Whether the upstream answers, and since when it has not (issue 12: upstream down or slow).

A read of the tips (``ls-remote``/``fetch``) that times out or exits 128
leaves nothing to decide on: nothing advances. The poller and the schedulers
then wait longer and longer before the next read (doubling from the poll
interval, bounded), and every status page says "upstream unreachable since
<time>" until a read succeeds again. The state lives in Buildbot's database
(``stores/upstream_health.py``), so a restart or another master shows the same
"since". Pure: the callers pass the clock.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from lpdeploy.core.policy import retry_delay

MAX_BACKOFF = 300.0  # seconds: the longest wait between two reads of an unreachable upstream


@dataclass(frozen=True)
class UpstreamHealth:
    """The outcome of the latest reads of the upstream's tips.

    ``unreachable_since``: when the first of the failed reads in a row
    happened (None: the latest read succeeded); ``failures``: how many in a
    row; ``error``: the last one's message; ``next_read``: no read before this
    (the master's clock).
    """

    unreachable_since: float | None = None
    failures: int = 0
    error: str = ""
    next_read: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.unreachable_since is None

    def as_json(self) -> dict[str, object]:
        return {"reachable": self.reachable, "unreachable_since": self.unreachable_since,
                "failures": self.failures, "error": self.error, "next_read": self.next_read,
                "line": unreachable_line(self)}

    @classmethod
    def from_json(cls, raw: object) -> UpstreamHealth:
        if not isinstance(raw, dict):
            return cls()
        since = raw.get("unreachable_since")
        return cls(unreachable_since=float(since) if since is not None else None,
                   failures=int(raw.get("failures", 0)), error=str(raw.get("error", "")),
                   next_read=float(raw.get("next_read", 0.0)))


def backoff_cap(poll_interval: float) -> float:
    """The longest wait between reads: five poll intervals, at most ``MAX_BACKOFF``, never below one interval."""
    return max(float(poll_interval), min(5.0 * poll_interval, MAX_BACKOFF))


def after_read(before: UpstreamHealth, now: float, error: str | None, poll_interval: float) -> UpstreamHealth:
    """The health after a read at ``now`` that failed with ``error`` (None: it succeeded).

    A failure keeps the first failure's time as "since" and pushes the next
    read out (``retry_delay``: doubling from the poll interval, bounded by
    ``backoff_cap``); a success clears everything.
    """
    if error is None:
        return UpstreamHealth()
    failures = before.failures + 1
    since = before.unreachable_since if before.unreachable_since is not None else now
    delay = retry_delay(failures, float(poll_interval), backoff_cap(poll_interval))
    return UpstreamHealth(unreachable_since=since, failures=failures, error=error.strip()[:300],
                          next_read=now + delay)


def may_read(health: UpstreamHealth, now: float) -> bool:
    """Whether a periodic read is due: always while reachable; after the backoff while not."""
    return health.reachable or now >= health.next_read


def unreachable_line(health: UpstreamHealth) -> str | None:
    """The one line every status shows while the upstream does not answer; None while it does."""
    if health.unreachable_since is None:
        return None
    when = datetime.datetime.fromtimestamp(health.unreachable_since, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"upstream unreachable since {when} ({health.failures} failed read{'s' if health.failures != 1 else ''})"


RECOVERED_KEY = ("lpdeploy", "upstream", "recovered")  # mq routing key: the upstream answers again
