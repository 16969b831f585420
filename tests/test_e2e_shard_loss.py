"""A shard whose worker is lost is run again elsewhere, and the gate still judges every test.

The worker is stopped as soon as a shard build appears on it, which is often
while Buildbot is still preparing or pinging the worker: the window in which
Buildbot 4.3 wedged the build for good (see ``lpdeploy/master/lost_worker.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import Flow, wait_until
from tests.test_e2e_shards import FORMATS, GATE, SHARD

pytestmark = pytest.mark.e2e
RETRY = 5


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    f = Flow(tmp_path_factory.mktemp("shard-loss"), suite_toml=f"[suite]\nshards = 2\n{FORMATS['subunit']}",
             workers=2, files={"suite.py": (Path(__file__).parent / "sharded_suite.py").read_text()})
    yield from f.running()


def test_a_lost_worker_s_shard_is_rerun_on_another_worker(flow: Flow) -> None:
    flow.wait_builds(GATE, 1, timeout=120)
    worker2 = flow.api("workers/worker-2")["workers"][0]["workerid"]
    sha = flow.commit("ok\nslow: 0.5", "Slow tests")

    def shard_running_on_worker2() -> bool:
        return any(not b["complete"] and b["workerid"] == worker2 for b in flow.builds(SHARD))

    wait_until(shard_running_on_worker2, 60, "a shard to start on worker-2")
    flow.stop_worker("worker-2")
    wait_until(lambda: flow.tip("stable") == sha, 180, "the gate to pass without worker-2")
    # the lost build may be a shard or, when the gate build itself ran on worker-2, the gate build
    lost = [b for b in flow.builds(SHARD) + flow.builds(GATE) if b["results"] == RETRY]
    assert lost, "no build was lost and retried"
    # the suite's verdict is the master's: when the gate build's own worker was lost, its shards still
    # finished and were judged, and the retried gate build relies on that verdict (the ledger)
    judged = []
    for build in reversed(flow.builds(GATE)):
        sets = flow.api(f"builds/{build['buildid']}/test_result_sets")["test_result_sets"]
        if build["complete"] and sets:
            judged.append(flow.api(f"test_result_sets/{sets[0]['test_result_setid']}/results")["test_results"])
            break
    assert judged, "no gate build judged the tests"
    assert len(judged[0]) == 12 and all(r["value"] == "1" for r in judged[0])
    # nothing is left hanging: every build of the run ended (the lost one with RETRY)
    flow.settle(timeout=120)
    flow.start_worker("worker-2")
