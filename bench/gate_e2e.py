"""The gate end to end, and its fixed overhead: a real master, N local workers, a sharded suite.

One suite of 40 sleeping tests with heavy-tailed durations
(``common.heavy_tailed_suite``, scaled to ``--serial-seconds`` serial) runs
as the gate with ``shards = N`` over N real ``buildbot-worker`` processes.
The first gate build (no history yet) is a warm-up. Then, ``--runs`` times,
one commit is pushed to devel and the bench waits until stable holds it.

For each run:

* push → stable moved: from the moment ``git push`` returned to the moment
  the upstream's stable ref names the commit (watched every 10 ms);
* the suite's own time: the longest shard's run command, from the runner's
  first statement to its last (it stamps both; its interpreter start-up
  counts as overhead);
* fixed overhead = push → stable moved minus the suite's own time: polling,
  scheduling, deciding, checking out, listing, partitioning, triggering the
  shards, their checkouts, uploads and collection, the verdict and the move.

Phases come from the same stamps (the list command's start, each shard's
start and end), so they are exact to the millisecond; Buildbot's own step
timestamps are whole seconds. With ``--serial`` the same suite also runs
unsharded on one worker, for the sharded / serial ratio.

The machine matters: master, workers and runners share its cores, so the
load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import heavy_tailed_suite, save, table
from lpdeploy.core.partition import lower_bound
from tests.flow_harness import Flow

GATE = "lpdeploy-gate"
RUNNER = '''import json, os, sys, time, datetime
from pathlib import Path
TESTS = json.loads(Path("durations.json").read_text())
STAMPS = Path(Path("stamps.txt").read_text().strip())  # outside the checkout: the bench reads it
def stamp(what):
    with STAMPS.open("a") as f:
        f.write(f"{what} {os.getpid()} {time.time():.6f}\\n")
mode = sys.argv[1]
if mode == "list":
    stamp("list")
    print("\\n".join(TESTS))
    sys.exit(0)
ids = list(TESTS) if mode == "all" else [l.strip() for l in Path(sys.argv[2]).read_text().splitlines() if l.strip()]
stamp("run-start")
from subunit import StreamResultToBytes
out = StreamResultToBytes(sys.stdout.buffer) if mode == "run" else None
for t in ids:
    start = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(TESTS[t])
    if out:
        out.status(test_id=t, test_status="inprogress", timestamp=start)
        out.status(test_id=t, test_status="success", timestamp=datetime.datetime.now(datetime.timezone.utc))
stamp("run-end")
'''


def suite(total: float, n: int = 40) -> dict[str, float]:
    raw = heavy_tailed_suite(n, seed=3)
    scale = total / sum(raw.values())
    return {t.rsplit(".", 1)[-1]: round(d * scale, 3) for t, d in raw.items()}


def read_stamps(path: Path) -> list[tuple[str, int, float]]:
    """``(what, pid, time)`` lines the suite's runner wrote: "list", "run-start", "run-end"."""
    if not path.exists():
        return []
    return [(w, int(p), float(t)) for w, p, t in (line.split() for line in path.read_text().splitlines() if line)]


def wait_moved(flow: Flow, branch: str, sha: str, timeout: float = 600) -> float:
    """Watch the upstream's ref every 10 ms; the time ``branch`` first held ``sha``."""
    ref = flow.upstream / "refs" / "heads" / branch
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ref.read_text().strip() == sha:
                return time.time()
        except OSError:
            pass
        if not ref.exists() and flow.tip(branch) == sha:  # packed refs: ask git (slower)
            return time.time()
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {branch} to reach {sha[:12]}")


def phases(pushed: float, moved: float, stamps: list[tuple[str, int, float]]) -> dict[str, float]:
    """Where one gate run's time went (seconds), from the push, the suite's own stamps and the move."""
    listed = min(t for w, _, t in stamps if w == "list")
    start = {p: t for w, p, t in stamps if w == "run-start"}
    end = {p: t for w, p, t in stamps if w == "run-end"}
    starts, ends = sorted(start.values()), sorted(end.values())
    suite = max(end[p] - start[p] for p in start)  # the longest shard: the suite's own time
    out = {
        "push → test list runs": listed - pushed,
        "list → first shard runs": starts[0] - listed,
        "first → last shard starts": starts[-1] - starts[0],
        "shard runs (longest: the suite)": suite,
        "last shard ends → stable moved": moved - ends[-1],
        "push → stable moved": moved - pushed,
    }
    out["fixed overhead"] = out["push → stable moved"] - suite
    return out


def checkouts_per_build(flow: Flow) -> str:
    """How the checkouts ran on this master: one command (``lpdeploy-checkout``) or seven."""
    log = (flow.master_dir / "twistd.log").read_text(errors="replace")
    return "1 command" if "lpdeploy-checkout" in log else "7 commands"


class Sharded:
    """One master with ``workers`` workers and the sharded suite, optionally running an older lpdeploy."""

    def __init__(self, base: Path, durations: dict[str, float], workers: int, source: Path | None) -> None:
        py = sys.executable
        self.stamps = base.parent / f"stamps-{base.name}.txt"
        self.flow = Flow(base, workers=workers, files={
            "suite.py": RUNNER, "durations.json": json.dumps(durations), "stamps.txt": str(self.stamps)},
            suite_toml=f'[suite]\nshards = {workers}\nlist_command = ["{py}", "suite.py", "list"]\n'
                       f'run_command = ["{py}", "suite.py", "run", "{{id_file}}"]\n')
        self.source = source
        if source is not None:  # lpdeploy is imported before master.cfg runs (plugins): from there, too
            self.flow.env["PYTHONPATH"] = str(source)
        self.gated = 0

    def start(self) -> None:
        self.flow.create()
        if self.source is not None:  # its own master.cfg, which puts its own directory first on sys.path
            tac = self.flow.master_dir / "buildbot.tac"
            mine = str(Path(__file__).resolve().parent.parent / "master.cfg")
            text = tac.read_text()
            assert mine in text, "buildbot.tac names the master.cfg it runs"
            tac.write_text(text.replace(mine, str(self.source / "master.cfg")))
        self.flow.start()
        self.flow.wait_builds(GATE, 1, timeout=600)  # the warm-up run: no durations recorded yet
        self.gated = 1
        self.flow.settle()

    def run(self) -> dict[str, float]:
        """Push one commit, wait until stable holds it; the run's phases."""
        self.stamps.unlink(missing_ok=True)
        sha = self.flow.commit("ok", f"Run {self.gated}")
        pushed = time.time()
        moved = wait_moved(self.flow, "stable", sha)
        self.gated += 1
        self.flow.wait_builds(GATE, self.gated, timeout=120)
        found = phases(pushed, moved, read_stamps(self.stamps))
        self.flow.settle()
        return found


def export(rev: str, into: Path) -> Path:
    """lpdeploy and master.cfg as of commit ``rev`` of this repository, exported (no worktree) into ``into``."""
    root = Path(__file__).resolve().parent.parent
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", "--end-of-options", rev, "lpdeploy", "master.cfg"],
                             cwd=root, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def sharded_runs(base: Path, durations: dict[str, float], workers: int, runs: int,
                 before: str | None) -> dict[str, list[dict[str, float]]]:
    """``runs`` gate runs on this lpdeploy (and, interleaved push by push, on ``before``'s)."""
    variants = {"this tree": Sharded(base / "after", durations, workers, None)}
    if before is not None:
        source = export(before, base / "before-src")
        variants = {f"before ({before})": Sharded(base / "before", durations, workers, source), **variants}
    out: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        for v in variants.values():
            v.start()
        for _ in range(runs):
            for name, v in variants.items():  # alternate: both see the same machine load
                out[name].append(v.run())
        for name, v in variants.items():
            print(f"{name}: checkouts ran as {checkouts_per_build(v.flow)}")
        return out
    finally:
        for v in variants.values():
            v.flow.stop()


def serial_run(base: Path, durations: dict[str, float]) -> float:
    py = sys.executable
    flow = Flow(base, files={"suite.py": RUNNER, "durations.json": json.dumps(durations),
                             "stamps.txt": str(base.parent / "stamps-serial.txt")},
                suite_toml=f'[suite]\ncommand = ["{py}", "suite.py", "all"]\n')
    flow.create()
    flow.start()
    try:
        flow.wait_builds(GATE, 1, timeout=600)
        flow.settle()
        sha = flow.commit("ok", "Serial run")
        pushed = time.time()
        return wait_moved(flow, "stable", sha) - pushed
    finally:
        flow.stop()


def report(runs: list[dict[str, float]]) -> dict[str, Any]:
    overhead = [r["fixed overhead"] for r in runs]
    spread = statistics.stdev(overhead) if len(overhead) > 1 else 0.0
    return {"runs": runs, "overhead_median_s": statistics.median(overhead), "overhead_min_s": min(overhead),
            "overhead_max_s": max(overhead), "overhead_stdev_s": spread}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--serial-seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", metavar="REV",
                        help="also run lpdeploy as of commit REV, alternating pushes with this tree's")
    parser.add_argument("--serial", action="store_true", help="also run the suite unsharded on one worker")
    args = parser.parse_args(argv)
    durations = suite(args.serial_seconds)
    bound = lower_bound(durations, args.workers)
    with tempfile.TemporaryDirectory(prefix="lpdeploy-bench-") as tmp:
        variants = sharded_runs(Path(tmp), durations, args.workers, args.runs, args.before)
        serial = serial_run(Path(tmp) / "serial", durations) if args.serial else None
    load = os.getloadavg()
    names = list(next(iter(variants.values()))[0])
    header, rows = ["phase (s)"], []
    for label in variants:
        header += [f"{label}: median", "min", "max"]
    for name in names:
        row: list[Any] = [name]
        for runs in variants.values():
            values = [r[name] for r in runs]
            row += [statistics.median(values), min(values), max(values)]
        rows.append(row)
    print(table(f"Gate end to end: {len(durations)} sleeping tests, {sum(durations.values()):.1f} s serial, "
                f"longest {max(durations.values()):.1f} s, {args.workers} shards on {args.workers} workers "
                f"(bound {bound:.1f} s); {args.runs} pushes each, gated alone", header, rows))
    data: dict[str, Any] = {"workers": args.workers, "suite_s": sum(durations.values()), "bound_s": bound,
                            "load_average": load, "variants": {}}
    for label, runs in variants.items():
        found = data["variants"][label] = report(runs)
        print(f"{label}: fixed overhead median {found['overhead_median_s']:.2f} s, min {found['overhead_min_s']:.2f}"
              f" s, max {found['overhead_max_s']:.2f} s, stdev {found['overhead_stdev_s']:.2f} s over {len(runs)} "
              "runs; goal ≤ 2 s")
    print(f"load average {load[0]:.1f} / {load[2]:.1f} over 1 / 15 min, {os.cpu_count()} cores")
    if serial is not None:
        sharded = statistics.median(r["push → stable moved"] for r in variants["this tree"])
        data["serial_push_to_stable_s"] = serial
        print(f"push to stable: serial on 1 worker {serial:.1f} s, sharded {sharded:.1f} s "
              f"({sharded / serial:.2f} of serial)")
    save("gate_e2e", data)
    return data


if __name__ == "__main__":
    main()
