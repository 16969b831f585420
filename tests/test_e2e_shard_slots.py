"""Two builds that wait for shards never starve each other's shards of a worker (issue 13, the known risk).

One real worker, a sharded suite (two shards). A worker has two build slots
when the suite is sharded: one for a parent, one for a shard. Buildbot runs
one build per builder on a worker, so two gate builds (a tip and a bisection
probe) never share one; but a gate build and a security (or promote) build
could: both would then wait for shards that can never start, until the watch
bounds (here 690 s) gave them up and recorded both trees as failed. With one
parent per worker, the security build waits for the gate build, and both pass.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flow_harness import Flow, git, wait_until

pytestmark = pytest.mark.e2e
GATE, SECURITY = "lpdeploy-gate", "lpdeploy-security"
PY = sys.executable


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    suite = ("[suite]\nshards = 2\ntimeout = 30\nmax_time = 60\n"
             f'list_command = ["{PY}", "suite.py", "list", "--subunit"]\n'
             f'run_command = ["{PY}", "suite.py", "run", "{{id_file}}", "subunit"]\n')
    f = Flow(tmp_path_factory.mktemp("shard-slots"), suite_toml=suite, workers=1,
             files={"suite.py": (Path(__file__).parent / "sharded_suite.py").read_text()})
    yield from f.running()


def security_builds(flow: Flow) -> list[dict[str, Any]]:
    with flow.session("alice").open(f"{flow.url}api/v2/builders/{SECURITY}/builds?order=number", timeout=30) as r:
        return list(json.loads(r.read())["builds"])


def test_a_security_build_beside_a_gate_build_on_one_worker_starves_no_shard(flow: Flow) -> None:
    flow.wait_builds(GATE, 1, timeout=120)
    flow.settle()
    c1 = flow.commit("ok\nlist_slow: 6", "Slow to list")  # its build lists for 6 s before it triggers shards
    wait_until(lambda: any(not b["complete"] for b in flow.builds_for(GATE, c1)), 60, "the gate to decide on c1")
    # a security fix pushed meanwhile: its build wants the worker while the gate build waits for its shards
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/production-stable", cwd=flow.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=flow.work)
    (flow.work / "fix.txt").write_text("fixed\n")
    git("add", "fix.txt", cwd=flow.work)
    git("commit", "--quiet", "-m", "Close a hole", cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/security/slots", cwd=flow.work)
    fix = git("rev-parse", "HEAD", cwd=flow.work)
    wait_until(lambda: flow.tip("stable") == c1 and flow.tip("production-stable") == fix, 150,
               "the gate build and the security build to pass")
    gate = flow.builds_for(GATE, c1)[0]
    (security,) = wait_until(lambda: [b for b in security_builds(flow) if b["complete"]], 60, "the security build")
    assert gate["results"] == 0 and security["results"] == 0
    # one parent per worker: the two did not run at once
    assert security["started_at"] >= gate["complete_at"] or gate["started_at"] >= security["complete_at"]
    assert "cancelled" not in flow.step_log(gate, "suite", "decision")  # no shard was given up
