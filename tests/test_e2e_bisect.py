"""A failing batch is bisected end to end: real master, real worker, real git, the real CLI.

Four commits pushed at once, the third breaking the suite: the gate's run on
the tip fails, the gate bisects the batch (one probe at a time on one
worker), moves stable to the second commit, names the third as the culprit
in ``lpdeploy status --json``, and runs the suite at most 1 + ⌈log₂ 4⌉ times.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.flow_harness import GIT_ID, Flow, git, wait_until

pytestmark = pytest.mark.e2e
GATE = "lpdeploy-gate"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    f = Flow(tmp_path_factory.mktemp("bisect"))
    yield from f.running()


def push_batch(flow: Flow, statuses: list[str]) -> list[str]:
    """Commit one change per status on devel (app.txt says it) and push them all at once; their shas."""
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/devel", cwd=flow.work)
    git("checkout", "--quiet", "-B", "devel", "FETCH_HEAD", cwd=flow.work)
    shas = []
    for i, status in enumerate(statuses, 1):
        version = int((flow.work / "app.txt").read_text().splitlines()[1].split(":")[1]) + 1
        (flow.work / "app.txt").write_text(f"status: {status}\nversion: {version}\n")
        git(*GIT_ID, "commit", "--quiet", "-am", f"Batch change {i} ({status})", cwd=flow.work)
        shas.append(git("rev-parse", "HEAD", cwd=flow.work))
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/devel", cwd=flow.work)
    return shas


def test_a_batch_of_four_with_the_third_broken_ends_with_stable_at_the_second(flow: Flow) -> None:
    flow.given_stable_at("Green before the batch")
    stable_before = flow.tip("stable")
    runs_before = len(flow.suite_runs())
    statuses = ["ok", "ok", "broken", "broken"]
    c1, c2, c3, c4 = push_batch(flow, statuses)
    wait_until(lambda: flow.tip("stable") == c2, 180, "stable to reach the second commit")
    flow.settle()
    assert flow.tip("stable") == c2
    assert flow.tip("devel") == c4

    runs = flow.suite_runs()[runs_before:]
    assert len(runs) <= 1 + math.ceil(math.log2(4)), runs
    assert len(runs) == len(set(runs)), f"a tree was tested twice: {runs}"
    assert runs[0] == c4  # the gate tests the tip first, then bisects
    assert stable_before not in runs

    culprit = next(b for b in flow.status()["branches"] if b["role"] == "devel")["culprit"]
    assert culprit["revision"] == c3
    assert culprit["subject"] == "Batch change 3 (broken)"
    assert culprit["author"] == "Test Developer <test@example.invalid>"
    assert culprit["build_url"].startswith(flow.url)
    assert all(b.get("culprit") is None for b in flow.status()["branches"] if b["role"] != "devel")

    human = flow.cli("status")
    assert human.returncode == 0, human.stderr
    assert f"broken by {c3[:12]}" in human.stdout

    # the Pipeline dashboard marks devel red and names the culprit
    with flow.session(None).open(f"{flow.url}plugins/wsgi_dashboards/pipeline/fragment", timeout=60) as r:
        page = r.read().decode()
    assert '<div class="stage red" id="stage-devel">' in page
    assert 'id="culprit"' in page and c3[:12] in page.split('id="culprit"')[1].split("</div>")[0]

    # the gate build that concluded shows the range, each probe with its result and link, and the culprit
    found = [b for b in flow.api(f"builders/{GATE}/builds?order=number&property=lpdeploy_culprit")["builds"]
             if b["properties"].get("lpdeploy_culprit", [None])[0] == c3]
    assert found, "no gate build named the culprit"
    log = flow.step_log(found[-1], "bisect", "decision")
    assert "batch: 4 first-parent commit(s)" in log
    assert f"culprit: {c3} 'Batch change 3 (broken)' by Test Developer <test@example.invalid>" in log
    for sha in (c2, c3, c4):
        assert f"{sha[:12]} passed in build #" in log or f"{sha[:12]} failed in build #" in log
    assert f"{c2[:12]} passed in build #" in log and f"{c3[:12]} failed in build #" in log

    # the culprit is kept in Buildbot's database: a restarted master still names it
    flow.stop()
    flow.start()
    flow.settle()
    after = next(b for b in flow.status()["branches"] if b["role"] == "devel")["culprit"]
    assert after == culprit
    assert flow.suite_runs()[runs_before:] == runs  # and nothing was tested again


def test_a_fix_pushed_during_the_bisection_moves_stable_past_it(flow: Flow) -> None:
    flow.given_stable_at("Green before the batch")
    stable_before = flow.tip("stable")
    runs_before = len(flow.suite_runs())
    b1, b2, b3, b4, b5 = push_batch(flow, ["ok", "broken", "broken", "broken", "broken"])
    # the gate's run on the tip failed and the first probe is queued or running: push the fix now
    wait_until(lambda: any(b["properties"].get("lpdeploy_probe", [None])[0]
                           for b in flow.api(f"builders/{GATE}/builds?property=lpdeploy_probe")["builds"]
                           if b["buildrequestid"] and not b["complete"])
               or len(flow.suite_runs()) > runs_before + 1, 120, "the bisection to start")
    fixed = flow.commit("ok", "Fix the build")
    wait_until(lambda: flow.tip("stable") == fixed, 180, "stable to reach the fix")
    flow.settle()
    assert flow.tip("stable") == fixed
    runs = flow.suite_runs()[runs_before:]
    assert runs[0] == b5 and fixed in runs
    assert len(runs) == len(set(runs)), f"a tree was tested twice: {runs}"
    assert stable_before not in runs
    devel = next(b for b in flow.status()["branches"] if b["role"] == "devel")
    assert devel["culprit"] is None  # devel is green again

