"""The web server survives clients that hang up mid-answer (issue 9 §3).

Buildbot 4.3 writes REST answers from a worker thread; when a client hangs
up while that thread writes, the reactor's state is corrupted
(twisted/twisted#11625, buildbot/buildbot#5107) and the web server stops
accepting connections for good. lpdeploy's ``GuardedRestResource`` encodes
in the thread and writes on the reactor.

A real master runs a sharded gate on two real workers with a 2000-test
suite (large answers: its test results, and builds with their properties,
many thousand JSON fragments each), while commits keep builds running.
Meanwhile many clients request those answers and hang up early (reading
nothing or part of the answer, then a reset). Afterwards every request is
answered: REST and the web UI's root.
"""

from __future__ import annotations

import random
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.flow_harness import Flow, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # it loads the master: alone, so nothing else suffers
PY = sys.executable
SUITE = '''"""list: 2000 test ids; run ID_FILE: a few seconds, then JUnit results (all pass)."""
import pathlib
import sys
import time

if sys.argv[1] == "list":
    print("\\n".join(f"test_{i:04d}_with_a_long_descriptive_name" for i in range(2000)))
    sys.exit(0)
time.sleep(3)
ids = [line.strip() for line in open(sys.argv[2]) if line.strip()]
cases = "".join(f'<testcase classname="suite" name="{t}" time="0.001"/>' for t in ids)
pathlib.Path("results.xml").write_text(f"<testsuite>{cases}</testsuite>")
'''
CLIENTS = 16
HAMMER_SECONDS = 30


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    suite = (f'[suite]\nshards = 2\nlist_command = ["{PY}", "suite.py", "list"]\n'
             f'run_command = ["{PY}", "suite.py", "run", "{{id_file}}"]\nresults = "junit"\n'
             'results_file = "results.xml"\n')
    f = Flow(tmp_path_factory.mktemp("hangup"), suite_toml=suite, workers=2, files={"suite.py": SUITE})
    yield from f.running()


def hang_up(port: int, path: str, rng: random.Random) -> None:
    """Ask for ``/api/v2/<path>``, read a random part of the answer (maybe none), then reset the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends a reset
        s.sendall(f"GET /api/v2/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode())
        wanted, got = rng.choice([0, 0, 200, 5000, 50000]), 0
        while got < wanted:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        time.sleep(rng.choice([0, 0, 0.005, 0.02, 0.1]))


def unanswered(flow: Flow, paths: list[str], tries: int = 3) -> list[str]:
    """The paths (each asked ``tries`` times) that got no complete 200 answer within 15 s."""
    failed = []
    for path in paths:
        for _ in range(tries):
            try:
                with urllib.request.urlopen(flow.url + path, timeout=15) as r:
                    r.read()
                    if r.status != 200:
                        failed.append(f"{path}: {r.status}")
            except OSError as e:
                failed.append(f"{path}: {e!r}")
    return failed


def test_clients_hanging_up_mid_answer_leave_the_web_server_answering(flow: Flow) -> None:
    first = flow.wait_builds("lpdeploy-gate", 1, timeout=300)
    assert first["results"] == 0
    sets = flow.api(f"builds/{first['buildid']}/test_result_sets")["test_result_sets"]
    results = f"test_result_sets/{sets[0]['test_result_setid']}/results"
    large = [results, "builds?property=*", "buildrequests?property=*", "builds?property=*&order=-buildid"]
    assert len(flow.api(results)["test_results"]) == 2000
    assert unanswered(flow, ["api/v2/" + p for p in large], tries=1) == []

    stop = threading.Event()
    hung_up: list[str] = []  # one entry per client that asked and hung up (list.append is atomic)

    def keep_building() -> None:  # builds start and finish while the clients hang up
        n = 0
        while not stop.is_set():
            n += 1
            flow.commit("ok", f"Change {n} while clients hang up")
            stop.wait(4)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                path = rng.choice(large)
                hang_up(flow.www_port, path, rng)
                hung_up.append(path)
            except OSError:
                pass  # the server may already be in trouble; judged afterwards

    threads = [threading.Thread(target=keep_building)] + [threading.Thread(target=client, args=(i,))
                                                         for i in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(HAMMER_SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=60)

    assert len(hung_up) >= 10 * CLIENTS, f"only {len(hung_up)} clients hung up: the test did not hammer"
    print(f"{len(hung_up)} clients hung up early in {HAMMER_SECONDS} s")
    assert unanswered(flow, ["", "api/v2/masters", "api/v2/builds?limit=5", "api/v2/" + results]) == []
    wait_until(lambda: not unanswered(flow, ["api/v2/builds?complete=false"], tries=1)
               and not flow.api("builds?complete=false")["builds"], 300, "the running builds to finish")
    log = (flow.master_dir / "twistd.log").read_text()
    assert "_poller.modify" not in log and "object has no attribute 'write'" not in log
