"""Splitting a suite into shards by recorded durations: pure functions.

Longest-processing-time first: known tests, longest first, each onto the
shard with the least work so far. Tests never seen before have no duration to
go by, so they are spread evenly by count (each to the shard with the fewest
unknown tests, the least loaded first). Within 4/3 of the optimum in theory;
in practice, on heavy-tailed suites, close to the lower bound
``max(longest test, total / shards)`` (see ``make bench``).
"""

from __future__ import annotations

import heapq


def partition(ids: list[str], durations: dict[str, float], shards: int) -> list[list[str]]:
    """Assign every id to one of ``shards`` lists (some may be empty when there are few tests)."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    known = sorted((i for i in ids if i in durations), key=lambda i: (-durations[i], i))
    unknown = [i for i in ids if i not in durations]
    out: list[list[str]] = [[] for _ in range(shards)]
    load = [(0.0, k) for k in range(shards)]
    heapq.heapify(load)
    for test in known:
        work, k = heapq.heappop(load)
        out[k].append(test)
        heapq.heappush(load, (work + durations[test], k))
    loads = {k: w for w, k in load}
    counts = [0] * shards
    for test in unknown:
        k = min(range(shards), key=lambda j: (counts[j], loads[j], j))
        out[k].append(test)
        counts[k] += 1
    return out


def round_robin(ids: list[str], shards: int) -> list[list[str]]:
    """The naive split with no history, for comparison."""
    return [ids[k::shards] for k in range(shards)]


def makespan(assignment: list[list[str]], durations: dict[str, float]) -> float:
    return max((sum(durations.get(t, 0.0) for t in shard) for shard in assignment), default=0.0)


def lower_bound(durations: dict[str, float], shards: int) -> float:
    """No split can finish before its longest test, nor before the total shared perfectly."""
    if not durations:
        return 0.0
    return max(max(durations.values()), sum(durations.values()) / shards)


def updated(history: dict[str, float], measured: dict[str, float], weight: float = 0.5) -> dict[str, float]:
    """New durations: a measurement blends with the history (damps one slow run); new tests enter as measured."""
    out = dict(history)
    for test, seconds in measured.items():
        out[test] = seconds if test not in out else weight * seconds + (1 - weight) * out[test]
    return out
