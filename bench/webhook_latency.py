"""Gate overhead with and without the push webhook: a real master, a real worker, real git.

Overhead = (push to stable moved) − (the suite's own time). The push is timed
from the moment ``git push`` returned to the moment ``git ls-remote`` shows
stable at the pushed commit (checked every 50 ms, as is the moment the gate's
build request appears in the REST API); the suite (a 2-second
sleep and a check) writes its own start and end times, so Buildbot's
one-second timestamps play no part. Two installations:

* webhook: ``poll_interval = 3600``; right after the push the bench sends a
  signed hook, as a forge or a post-receive hook does (the forge's own
  delivery delay is not in the figure);
* polling: no ``[webhook]``, ``poll_interval`` seconds between polls.

Run with ``.venv/bin/python -m bench.webhook_latency [--runs N] [--poll-interval S]``
(it starts real masters: on a shared machine, through ``/work/wt/e2e-run``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench.common import median, save, table
from lpdeploy.core import webhook
from tests.flow_harness import Flow, wait_until

GATE = "lpdeploy-gate"
SECRET = "bench-webhook-secret-0123456789"
SUITE_SECONDS = 2.0
TIMED_SUITE = f"""#!/bin/sh
# the suite's own time, written by itself: start and end, in seconds since the epoch
start=$(date +%s.%N)
sleep {SUITE_SECONDS}
grep -q "^status: ok" app.txt; rc=$?
echo "$(git rev-parse HEAD) $start $(date +%s.%N)" >> "$1"
exit $rc
"""


def hook(flow: Flow, sha: str) -> None:
    body = json.dumps({"ref": "refs/heads/devel", "after": sha}).encode()
    headers = {"X-Lpdeploy-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
               **webhook.sign(webhook.Provider.PLAIN, SECRET, body)}
    req = urllib.request.Request(flow.url + "plugins/lpdeploy/hook", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 202, r.status


def stable_at(flow: Flow, sha: str) -> bool:
    out = subprocess.run(["git", "ls-remote", str(flow.upstream), "refs/heads/stable"], capture_output=True,
                         text=True).stdout
    return out.split()[:1] == [sha]


def one_push(flow: Flow, log: Path, n: int, with_hook: bool) -> dict[str, float]:
    """Push one good commit; how long it took to reach stable, the suite's part, and what came before and after."""
    flow.settle(quiet=1.0)
    flow.given_devel_holds_stable()
    requests = len(flow.api("buildrequests")["buildrequests"])
    sha = flow.commit("ok", f"Change {n}")  # returns once git push has
    pushed = time.time()
    if with_hook:
        hook(flow, sha)
    deadline = time.monotonic() + 600
    requested = None
    while not stable_at(flow, sha):
        assert time.monotonic() < deadline, "stable did not move within 600 s"
        if requested is None and len(flow.api("buildrequests")["buildrequests"]) > requests:
            requested = time.time()
        time.sleep(0.05)
    moved = time.time()
    runs = [line.split() for line in log.read_text().splitlines()]
    start, end = next((float(s), float(e)) for rev, s, e in reversed(runs) if rev == sha)
    return {"push_to_stable_s": moved - pushed, "suite_s": end - start, "overhead_s": moved - pushed - (end - start),
            "push_to_suite_s": start - pushed, "suite_to_stable_s": moved - end,
            "push_to_request_s": (requested or start) - pushed}


def measure(base: Path, runs: int, poll_interval: int, with_hook: bool) -> list[dict[str, float]]:
    log = base / "suite-times.log"
    extra = ""
    if with_hook:
        secret = base / "hook-secret"
        base.mkdir(parents=True, exist_ok=True)
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)
        extra = f'[webhook]\nsecret_file = "{secret}"\n'
    flow = Flow(base, extra_site=extra, poll_interval=poll_interval, files={"timed-suite.sh": TIMED_SUITE},
                suite_toml=f'[suite]\ncommand = ["sh", "timed-suite.sh", "{log}"]\n')
    flow.create()
    flow.start()
    try:
        wait_until(lambda: flow.builds(GATE), 60, "the first gate build")
        return [one_push(flow, log, n, with_hook) for n in range(runs)]
    finally:
        flow.stop()


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll-interval", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        hooked = measure(Path(tmp) / "hook", args.runs, 3600, with_hook=True)
        polled = measure(Path(tmp) / "poll", args.runs, args.poll_interval, with_hook=False)
    rows = []
    for name, found in (("webhook (poll every 3600 s)", hooked), (f"polling every {args.poll_interval} s", polled)):
        overhead = [r["overhead_s"] for r in found]
        rows.append([name, len(found), median([r["suite_s"] for r in found]), min(overhead), median(overhead),
                     max(overhead), median([r["push_to_request_s"] for r in found]),
                     median([r["push_to_suite_s"] for r in found]),
                     median([r["suite_to_stable_s"] for r in found])])
    print(table(f"Gate overhead: push to stable moved, minus the suite's own time ({SUITE_SECONDS:.0f} s sleep)",
                ["gate told by", "runs", "suite s", "overhead min s", "median s", "max s",
                 "push to gate build requested (median) s", "push to suite start (median) s",
                 "suite end to stable (median) s"], rows))
    data: dict[str, object] = {"poll_interval_s": args.poll_interval, "webhook": hooked, "polling": polled}
    save("webhook_latency", data)
    return data


if __name__ == "__main__":
    main()
