"""The sharded gate end to end: list once, partition, run shards on two real workers.

Both result formats are exercised: subunit v2 on stdout (with a subunit test
list) and JUnit XML in a results file (with a plain test list).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import Flow, wait_until

pytestmark = pytest.mark.e2e
GATE = "lpdeploy-gate"
SHARD = "lpdeploy-shard"
PY = sys.executable  # the workers run the suite with the venv's Python (it has python-subunit)
FORMATS = {
    "subunit": f'list_command = ["{PY}", "suite.py", "list", "--subunit"]\n'
               f'run_command = ["{PY}", "suite.py", "run", "{{id_file}}", "subunit"]\n',
    "junit": f'list_command = ["{PY}", "suite.py", "list"]\n'
             f'run_command = ["{PY}", "suite.py", "run", "{{id_file}}", "junit"]\n'
             'results = "junit"\nresults_file = "results.xml"\n',
}


@pytest.fixture(scope="module", params=sorted(FORMATS))
def flow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    suite = f"[suite]\nshards = 2\n{FORMATS[request.param]}"
    f = Flow(tmp_path_factory.mktemp(f"shards-{request.param}"), suite_toml=suite, workers=2,
             files={"suite.py": (Path(__file__).parent / "sharded_suite.py").read_text()})
    yield from f.running()


def test_sharded_gate_runs_every_test_once_across_two_workers(flow: Flow) -> None:
    build = flow.wait_builds(GATE, 1, timeout=120)
    assert build["results"] == 0, flow.steps(build)
    shards = [b for b in flow.builds(SHARD) if b["complete"]]
    assert len(shards) == 2
    assert {b["workerid"] for b in shards} == {w["workerid"] for w in flow.api("workers")["workers"]}
    sets = flow.api(f"builds/{build['buildid']}/test_result_sets")["test_result_sets"]
    assert len(sets) == 1
    results = flow.api(f"test_result_sets/{sets[0]['test_result_setid']}/results")["test_results"]
    assert sorted(r["test_name"] for r in results) == [f"test_{i:02d}" for i in range(12)]
    assert all(r["value"] == "1" for r in results)
    assert all(r["duration_ns"] and r["duration_ns"] > 0 for r in results)


def test_shard_builds_carry_no_test_id_and_no_revision(flow: Flow) -> None:
    # the ids and the revision are read master-side; properties hold the parent, the shard and the attempt
    flow.settle()  # at least the first gate build has run its shards
    revision = flow.tip("stable")
    assert flow.builds(SHARD)
    for build in flow.builds(SHARD):
        props = flow.api(f"builds/{build['buildid']}/properties")["properties"][0]
        assert {k for k in props if k.startswith("lpdeploy_")} == {
            "lpdeploy_parent_buildid", "lpdeploy_shard", "lpdeploy_attempt"}
        text = json.dumps(props) + json.dumps(build)
        assert "test_0" not in text and "test_1" not in text
        assert revision not in text


def test_second_run_partitions_by_recorded_durations(flow: Flow) -> None:
    sha = flow.commit("ok", "Another change")
    wait_until(lambda: flow.tip("stable") == sha, 120, "stable to move after a sharded run")
    build = flow.wait_builds(GATE, 2, timeout=60)
    decision = flow.step_log(build, "suite", "decision")
    assert "by history (0 never seen)" in decision


def test_a_failing_test_fails_the_gate_and_is_named(flow: Flow) -> None:
    before = flow.tip("stable")
    flow.commit("ok\nfail: test_07", "Break test_07")
    build = flow.wait_builds(GATE, 3, timeout=120)
    assert build["results"] == 2
    assert "test_07" in build["state_string"] or "test_07" in json.dumps(flow.steps(build))
    props = flow.api(f"builds/{build['buildid']}/properties")["properties"][0]
    assert "1 failed: test_07" in props["lpdeploy_reason"][0]
    assert flow.tip("stable") == before
