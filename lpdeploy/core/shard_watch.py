"""How long a sharded run waits for a shard, and when it gives up: pure functions.

``RunShards`` looks at each shard it waits for every few seconds (through
Buildbot's data API, so it works whichever master runs the shard) and asks
``watch`` what to do. A shard is in one of these phases:

- queued: its build request waits for a worker, and a worker that may run it is
  connected (it is busy with other builds, which are bounded themselves);
- no worker: queued, and no worker that may run it is connected;
- starting: a build exists but has not begun its first step (Buildbot is
  preparing or pinging the worker, or waiting for a lock);
- running: the build runs its steps;
- done: the build request is complete.

Bounds, from the suite's settings:

- ``start``: a build that does not begin its steps, or a request with no worker
  to run it, within ``min(timeout, 300)`` seconds is stuck (pinging a live
  worker takes milliseconds; Buildbot's own comment expects a dead one to fail
  "in a couple of minutes");
- ``run``: a shard may wait for a worker, or run, for ``max_time + timeout +
  600`` seconds: its run step is killed by Buildbot after ``max_time`` (or
  ``timeout`` seconds without output), and 600 s covers checkout and upload;
- a shard whose worker was lost is queued again by Buildbot (RETRY); after
  ``MAX_RETRIES`` such builds the shard is given up, so a flapping worker cannot
  keep a run waiting either.

A shard given up is cancelled and run once more under a new attempt number;
results filed for a cancelled attempt are never read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

START_BOUND = 300.0  # seconds, at most
RUN_MARGIN = 600.0  # seconds beyond max_time + timeout: checkout, id file, upload, collect
MAX_RETRIES = 3  # builds of one request that Buildbot retried after losing their worker
POLL = 5.0  # seconds between two looks at the shards


class Phase(enum.StrEnum):
    QUEUED = "waiting for a worker"
    NO_WORKER = "waiting with no worker connected"
    STARTING = "not started"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Bounds:
    start: float  # seconds a shard may stay starting, or queued with no worker connected
    run: float  # seconds a shard may stay queued or running


def bounds(timeout: float, max_time: float) -> Bounds:
    """The bounds for a suite with this ``timeout`` (no output) and ``max_time`` (whole run), in seconds."""
    return Bounds(start=min(float(timeout), START_BOUND), run=float(max_time) + float(timeout) + RUN_MARGIN)


@dataclass(frozen=True)
class Look:
    """What one look at a shard found."""

    phase: Phase
    since: float  # when the shard entered this phase (seconds, the master's clock)
    retried: int = 0  # builds of its request that ended in RETRY (the worker was lost)
    state: str = ""  # the Buildbot state string of its current build, if any


def watch(look: Look, now: float, limits: Bounds) -> str | None:
    """None to keep waiting, or why the shard is given up (one line, no test names)."""
    if look.phase is Phase.DONE:
        return None
    if look.retried >= MAX_RETRIES:
        return f"lost its worker {look.retried} times"
    waited = now - look.since
    if look.phase in (Phase.STARTING, Phase.NO_WORKER) and waited > limits.start:
        shown = f" (still {look.state!r})" if look.state else ""
        return f"{look.phase} after {waited:.0f}s{shown}; the bound is {limits.start:.0f}s"
    if look.phase in (Phase.QUEUED, Phase.RUNNING) and waited > limits.run:
        return f"{look.phase} for {waited:.0f}s; the bound is {limits.run:.0f}s (max_time + timeout + margin)"
    return None
