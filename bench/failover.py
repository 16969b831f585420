"""Failover: seconds from ``kill -9`` of the master holding the gate to the next stable move by the other.

Two real masters on a private PostgreSQL and Crossbar router
(``tests/cluster_harness.Pair``), the default ``[cluster]`` (heartbeat
10 s, dead after 30 s), poll interval 1 s, a trivial suite. ``--runs``
times: find the master holding the gate scheduler and the poller, SIGKILL
it, push a commit to devel at once, and time until the upstream's stable
names that commit (watched every 50 ms); then start the killed master again
(it joins as a standby) for the next run, whose victim is the new holder.

The bound is the sum of: the dead master's heartbeat expiring (up to
``dead_after`` after its last renewal, so 20-30 s after the kill), the
survivor's next heartbeat (up to ``heartbeat`` later), the claim, the
poller's first poll and the gate build. Stock Buildbot: 10-15 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench.common import save, table
from tests.cluster_harness import Pair, kill9, restart_master, wait_holder
from tests.flow_harness import wait_until


def one_run(flows: list, k: int) -> tuple[float, str]:
    dead = wait_holder(flows, timeout=180)
    survivor = next(f for f in flows if f is not dead)
    killed_at = kill9(dead)
    sha = survivor.commit("ok", f"Failover bench run {k}")
    while survivor.tip("stable") != sha:
        if time.monotonic() - killed_at > 600:
            raise SystemExit(f"run {k}: stable did not move within 600 s of the kill")
        time.sleep(0.05)
    took = time.monotonic() - killed_at
    restart_master(dead)  # back as a standby: the next run kills the new holder
    wait_until(lambda: all(m["active"] for m in survivor.api("masters")["masters"]), 120,
               "the restarted master to be active")
    survivor.settle()
    return took, "first" if dead is flows[0] else "second"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="kills to time (default: %(default)s)")
    args = parser.parse_args(argv)
    pair = Pair()
    try:
        one, two = pair.start()
        one.settle()
        flows = [one, two]
        rows, times = [], []
        for k in range(1, args.runs + 1):
            took, which = one_run(flows, k)
            times.append(took)
            rows.append([k, f"master {which}", took])
            print(f"run {k}: killed the {which} master; stable moved {took:.1f} s later", flush=True)
    finally:
        pair.close()
    print(table("failover: kill -9 of the gate master → next stable move by the other (heartbeat 10 s, "
                "dead after 30 s)", ["run", "killed", "seconds"], rows))
    print(f"median {statistics.median(times):.1f} s, max {max(times):.1f} s over {len(times)} runs")
    save("failover", {"runs": times, "median_s": statistics.median(times), "max_s": max(times),
                      "heartbeat_s": 10, "dead_after_s": 30})
    return 0


if __name__ == "__main__":
    sys.exit(main())
