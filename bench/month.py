"""A month of the release flow through a real master: the seed's argument in numbers.

Replays 200 devel pushes (every tenth one breaks the suite, the next one
repairs it), a promotion after every seventh push (about daily), and one
security fix half-way, through a real master and worker with a scaled-down
suite (the test harness's ``run-tests.sh``, a fraction of a second).

lpdeploy's figures are measured: suite runs are counted by the suite itself,
suite time is the sum of the suite steps' wall times, lead time is push →
the moment production-stable first contains the commit.

The old flow ran the suite on devel → stable and again on every
production-devel → production-stable promotion. Its figures are derived from
the same run, not replayed: the gate runs are the same, every promotion
adds one suite run (of the measured mean duration), and every commit's lead
time grows by that re-test. Suite durations here are scaled down; the ratios,
not the seconds, carry over to a multi-hour suite.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import median, percentile, save, table
from tests.flow_harness import Flow, git, wait_until

GATE, PROMOTE, SECURITY = "lpdeploy-gate", "lpdeploy-promote", "lpdeploy-security"


def contains(flow: Flow, ancestor: str, tip: str | None) -> bool:
    if tip is None:
        return False
    return subprocess.run(["git", "--git-dir", str(flow.upstream), "merge-base", "--is-ancestor", ancestor, tip],
                          capture_output=True).returncode == 0


def suite_seconds(flow: Flow, builder: str) -> list[float]:
    out = []
    for build in flow.builds(builder):
        step = flow.steps(build).get("suite")
        if step and step["results"] not in (3, None) and step.get("started_at") and step.get("complete_at"):
            out.append(step["complete_at"] - step["started_at"])
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--promote-every", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        flow = Flow(Path(tmp))
        flow.viewer = "alice"  # a security user: the security builds are part of the count
        flow.create()
        flow.start()
        try:
            return replay(flow, args.pushes, args.promote_every)
        finally:
            flow.stop()


def replay(flow: Flow, pushes: int, every: int) -> dict[str, float]:
    flow.wait_builds(GATE, 1, timeout=120)
    pushed: dict[str, float] = {}
    reached: dict[str, float] = {}
    promotions = 0
    gates = 1
    started = time.monotonic()
    for i in range(1, pushes + 1):
        broken = i % 10 == 0
        sha = flow.commit("broken" if broken else "ok", f"Push {i}")
        pushed[sha] = time.time()
        gates += 1
        flow.wait_builds(GATE, gates, timeout=300)
        if i == pushes // 2:
            security_fix(flow, pushed)
            gates = len(flow.builds(GATE))
        if i % every == 0:
            promotions += 1
            result = flow.cli("promote", user="bob")
            now = time.time()
            tip = flow.tip("production-stable")
            for c in pushed:
                if c not in reached and contains(flow, c, tip):
                    reached[c] = now
            if result.returncode != 0:
                print(f"promotion {promotions} refused: {result.stderr.strip()}")
        if i % 20 == 0:
            print(f"  {i}/{pushes} pushes, {time.monotonic() - started:.0f}s", flush=True)
    gate_suite = suite_seconds(flow, GATE)
    promote_suite = suite_seconds(flow, PROMOTE)
    other_suite = promote_suite + suite_seconds(flow, SECURITY)
    runs = len(flow.suite_runs())
    mean = sum(gate_suite + other_suite) / max(1, len(gate_suite + other_suite))
    spent = sum(gate_suite + other_suite)
    revisions = len({b for b in promoted_revisions(flow)})
    leads = [reached[c] - pushed[c] for c in reached]
    old_runs = len(gate_suite) + promotions
    old_spent = sum(gate_suite) + promotions * mean
    old_leads = [x + mean for x in leads]
    old_retests, retests = promotions, len(other_suite)  # suite runs on the way to production
    rows = [
        ["old flow (modelled)", old_runs, old_spent, old_runs / max(1, revisions), old_retests,
         old_retests / max(1, revisions), old_runs * 6, median(old_leads), percentile(old_leads, 95)],
        ["lpdeploy (measured)", runs, spent, runs / max(1, revisions), retests, retests / max(1, revisions),
         runs * 6, median(leads), percentile(leads, 95)],
    ]
    print(table(f"A month: {pushes} pushes (10% failing), {promotions} promotions, 1 security fix, "
                f"{revisions} production revisions; suite mean {mean:.2f} s",
                ["flow", "suite runs", "suite s", "runs / prod rev", "prod re-tests", "re-tests / prod rev",
                 "suite h at 6 h/run", "lead p50 s", "lead p95 s"], rows))
    data = {"pushes": pushes, "promotions": promotions, "production_revisions": revisions,
            "suite_mean_s": mean,
            "lpdeploy": {"suite_runs": runs, "suite_s": spent, "production_retests": retests,
                         "lead_p50_s": median(leads), "lead_p95_s": percentile(leads, 95)},
            "old_flow": {"suite_runs": old_runs, "suite_s": old_spent, "production_retests": old_retests,
                         "lead_p50_s": median(old_leads), "lead_p95_s": percentile(old_leads, 95)}}
    save("month", data)
    return data


def security_fix(flow: Flow, pushed: dict[str, float]) -> None:
    """One security fix: on production-stable, tested, promoted, merged back into devel."""
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/production-stable", cwd=flow.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=flow.work)
    (flow.work / "security.txt").write_text("fixed\n")
    git("add", "security.txt", cwd=flow.work)
    git("commit", "--quiet", "-m", "Security fix", cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/security/month", cwd=flow.work)
    fix = git("rev-parse", "HEAD", cwd=flow.work)
    pushed[fix] = time.time()
    wait_until(lambda: contains(flow, fix, flow.tip("production-stable")), 300, "the security fix on production")
    wait_until(lambda: contains(flow, fix, flow.tip("devel")), 300, "the merge-back on devel")


def promoted_revisions(flow: Flow) -> list[str]:
    """Revisions that promotions moved production to (security builds are read as a security user)."""
    revs = []
    for build in flow.builds(PROMOTE) + flow.builds(SECURITY):
        props = flow.api(f"builds/{build['buildid']}/properties")["properties"]
        if props and props[0].get("lpdeploy_outcome", [None])[0] == "moved":
            revs.append(props[0]["lpdeploy_revision"][0])
    return revs


if __name__ == "__main__":
    main()
