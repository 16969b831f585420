"""Partitioning quality: makespan over the lower bound, lpdeploy vs round-robin.

A synthetic 20,000-test suite (``common.heavy_tailed_suite``). For N shards:

* round-robin, no history: the naive split;
* lpdeploy, first run: no history yet, so tests are spread evenly by count;
* lpdeploy, second run: partitioned by the durations the first run measured
  (each off by up to ±10%, as real re-measurements are), judged against the
  true durations.

The lower bound is ``max(longest test, total / N)``: no split can beat it.
Target: ≤ 1.05× the bound from the second run on.
"""

from __future__ import annotations

import time

from bench.common import heavy_tailed_suite, noisy, save, table
from lpdeploy.core.partition import lower_bound, makespan, partition, round_robin

TESTS = 20_000
SHARDS = (2, 4, 8, 16)


def main() -> list[dict[str, float]]:
    true = heavy_tailed_suite(TESTS)
    ids = sorted(true)
    measured = noisy(true)
    rows = []
    out = []
    for n in SHARDS:
        bound = lower_bound(true, n)
        rr = makespan(round_robin(ids, n), true) / bound
        first = makespan(partition(ids, {}, n), true) / bound
        t0 = time.perf_counter()
        second_split = partition(ids, measured, n)
        took = time.perf_counter() - t0
        second = makespan(second_split, true) / bound
        rows.append([n, bound, rr, first, second, "yes" if second <= 1.05 else "NO", took * 1000])
        out.append({"shards": n, "bound_s": bound, "round_robin": rr, "first_run": first,
                    "second_run": second, "partition_ms": took * 1000})
    total = sum(true.values())
    print(table(f"Partition quality: {TESTS} tests, {total / 3600:.1f} h serial, longest {max(true.values()):.0f} s "
                "(makespan / lower bound; lower is better)",
                ["shards", "bound (s)", "round-robin", "1st run", "2nd run", "≤1.05", "partition ms"], rows))
    save("partition_quality", out)
    return out


if __name__ == "__main__":
    main()
