"""The gate end to end: a real master, N local workers, a suite of sleeping tests.

One suite of 40 tests with heavy-tailed durations (``common.heavy_tailed_suite``,
scaled to about 40 s serial). The same suite runs as the gate twice:

* serial: ``[suite] command`` runs every test in one process;
* sharded: ``shards = N`` over N workers; the first run has no history (even
  spread by count), the second partitions by the durations the first recorded.

Reported: each gate build's wall time (start to end, Buildbot's own
timestamps), sharded over serial, and sharded over the bound
``max(longest test, total / N)`` (the overhead of listing, checking out and
collecting is inside the sharded figure, not the bound).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.common import heavy_tailed_suite, save, table
from lpdeploy.core.partition import lower_bound
from tests.flow_harness import Flow, wait_until

GATE = "lpdeploy-gate"
RUNNER = '''import json, sys, time, datetime
from pathlib import Path
TESTS = json.loads(Path("durations.json").read_text())
mode = sys.argv[1]
if mode == "list":
    print("\\n".join(TESTS))
    sys.exit(0)
ids = list(TESTS) if mode == "all" else [l.strip() for l in Path(sys.argv[2]).read_text().splitlines() if l.strip()]
from subunit import StreamResultToBytes
out = StreamResultToBytes(sys.stdout.buffer) if mode == "run" else None
for t in ids:
    start = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(TESTS[t])
    if out:
        out.status(test_id=t, test_status="inprogress", timestamp=start)
        out.status(test_id=t, test_status="success", timestamp=datetime.datetime.now(datetime.timezone.utc))
'''


def suite(total: float, n: int = 40) -> dict[str, float]:
    raw = heavy_tailed_suite(n, seed=3)
    scale = total / sum(raw.values())
    return {t.rsplit(".", 1)[-1]: round(d * scale, 3) for t, d in raw.items()}


def gate_times(flow: Flow, count: int) -> list[float]:
    flow.wait_builds(GATE, count, timeout=600)
    return [b["complete_at"] - b["started_at"] for b in flow.builds(GATE)[:count]]


def run(base: Path, durations: dict[str, float], suite_toml: str, workers: int) -> list[float]:
    flow = Flow(base, suite_toml=suite_toml, workers=workers,
                files={"suite.py": RUNNER, "durations.json": json.dumps(durations)})
    flow.create()
    flow.start()
    try:
        first = gate_times(flow, 1)
        sha = flow.commit("ok", "A new tree for a second run")
        wait_until(lambda: flow.tip("stable") == sha, 600, "the second gate run")
        return first + gate_times(flow, 2)[1:]
    finally:
        flow.stop()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--serial-seconds", type=float, default=40.0)
    args = parser.parse_args(argv)
    py = sys.executable
    durations = suite(args.serial_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        serial = run(Path(tmp) / "serial", durations, f'[suite]\ncommand = ["{py}", "suite.py", "all"]\n', 1)
        sharded = run(Path(tmp) / "sharded", durations,
                      f'[suite]\nshards = {args.workers}\nlist_command = ["{py}", "suite.py", "list"]\n'
                      f'run_command = ["{py}", "suite.py", "run", "{{id_file}}"]\n', args.workers)
    bound = lower_bound(durations, args.workers)
    rows = [["serial, 1 worker", serial[0], serial[1], 1.0, serial[1] / bound],
            [f"sharded, {args.workers} workers", sharded[0], sharded[1], sharded[1] / serial[1], sharded[1] / bound]]
    print(table(f"Gate end to end: {len(durations)} sleeping tests, {sum(durations.values()):.1f} s serial, "
                f"longest {max(durations.values()):.1f} s, bound with {args.workers} shards {bound:.1f} s",
                ["gate", "1st run s", "2nd run s", "2nd / serial", "2nd / bound"], rows))
    data = {"workers": args.workers, "suite_s": sum(durations.values()), "bound_s": bound,
            "serial_s": serial, "sharded_s": sharded, "sharded_over_serial": sharded[1] / serial[1],
            "sharded_over_bound": sharded[1] / bound}
    save("gate_e2e", data)
    return data


if __name__ == "__main__":
    main()
