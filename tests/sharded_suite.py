"""A small suite for the sharded end-to-end tests; it lives in the test upstream as suite.py.

    python suite.py list [--subunit]          print the test ids (lines, or a subunit v2 stream)
    python suite.py run ID_FILE subunit|junit run the listed ids; results as subunit v2 on stdout,
                                              or as JUnit XML in results.xml

Test test_NN sleeps a little (or "slow: SECONDS" from app.txt); a test named in app.txt as
"fail: test_NN" fails. "flaky: test_NN MARKER N" makes test_NN fail its first N runs (default 1)
and pass afterwards, counting its runs in the file MARKER (outside the checkout, shared by the
workers): a flaky test. "list_slow: SECONDS" makes the list command take that long.
"""

import datetime
import sys
import time
from pathlib import Path

TESTS = {f"test_{i:02d}": 0.05 * (1 + i % 4) for i in range(12)}


def settings(key: str) -> list:
    return [line.split(":", 1)[1].strip() for line in Path("app.txt").read_text().splitlines()
            if line.startswith(key + ":")]


def failing() -> set:
    return set(settings("fail"))


def flaky_fails(test: str) -> bool:
    """Whether a "flaky:" test fails this run: it fails its first N runs, counted in its marker file."""
    for line in settings("flaky"):
        name, marker, *times = line.split()
        if name == test:
            path = Path(marker)
            runs = int(path.read_text()) if path.exists() else 0
            path.write_text(str(runs + 1))
            return runs < int(times[0] if times else 1)
    return False


def main() -> int:
    mode = sys.argv[1]
    if mode == "list":
        time.sleep(float((settings("list_slow") or ["0"])[0]))
        if "--subunit" in sys.argv:
            from subunit import StreamResultToBytes
            out = StreamResultToBytes(sys.stdout.buffer)
            for test in TESTS:
                out.status(test_id=test, test_status="exists")
        else:
            print("\n".join(TESTS))
        return 0
    ids = [line.strip() for line in Path(sys.argv[2]).read_text().splitlines() if line.strip()]
    fmt, bad = sys.argv[3], failing()
    rows = []
    for test in ids:
        start = time.time()
        slow = settings("slow")
        time.sleep(float(slow[0]) if slow else TESTS.get(test, 0.01))
        rows.append((test, test not in bad and not flaky_fails(test), start, time.time()))
    if fmt == "subunit":
        from subunit import StreamResultToBytes
        out = StreamResultToBytes(sys.stdout.buffer)
        for test, ok, start, end in rows:
            tz = datetime.UTC
            out.status(test_id=test, test_status="inprogress", timestamp=datetime.datetime.fromtimestamp(start, tz))
            out.status(test_id=test, test_status="success" if ok else "fail",
                       timestamp=datetime.datetime.fromtimestamp(end, tz))
    else:
        cases = "".join(f'<testcase classname="suite" name="{t}" time="{e - s:.3f}">'
                        + ("" if ok else "<failure>boom</failure>") + "</testcase>" for t, ok, s, e in rows)
        Path("results.xml").write_text(f"<testsuite>{cases}</testsuite>")
    return 0 if all(ok for _, ok, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
