"""Flaky or broken, end to end: real master, two real workers, real git, a sharded suite.

``[suite] rerun_failures = 1`` and ``quarantine = ["test_11"]``. The suite
(``sharded_suite.py``) makes a test flaky with a marker file outside the
checkout (it fails its first N runs, then passes). The stories, in order on
one site: a test failing once neither fails the gate nor is a failure; a
batch whose tip fails on a test that fails twice is bisected, the re-check
finds it flaky and no commit is blamed; a truly broken test still fails the
gate and its commit is named; a security build's flaky test is counted only
for the security role (REST by path, as anonymous and as a developer).
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
FLAKY = "plugins/lpdeploy/flaky.json"
FRAGMENT = "plugins/wsgi_dashboards/pipeline/fragment"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("flaky")
    suite = ("[suite]\nshards = 2\nrerun_failures = 1\nquarantine = [\"test_11\"]\n"
             f'list_command = ["{PY}", "suite.py", "list", "--subunit"]\n'
             f'run_command = ["{PY}", "suite.py", "run", "{{id_file}}", "subunit"]\n')
    f = Flow(base, suite_toml=suite, workers=2,
             files={"suite.py": (Path(__file__).parent / "sharded_suite.py").read_text()})
    f.markers = base / "markers"  # type: ignore[attr-defined]
    f.markers.mkdir()  # type: ignore[attr-defined]
    yield from f.running()


def app_lines(flow: Flow, *lines: str) -> str:
    """app.txt of the next commit: status ok, the next version, then ``lines`` (fail:, flaky:)."""
    version = int((flow.work / "app.txt").read_text().splitlines()[1].split(":")[1]) + 1
    return "".join(f"{x}\n" for x in ("status: ok", f"version: {version}", *lines))


def push(flow: Flow, *changes: tuple[str, ...], branch: str = "devel", base: str = "refs/heads/devel",
         message: str = "Change") -> list[str]:
    """One commit per ``changes`` entry (the extra app.txt lines) on ``base``, pushed at once to ``branch``."""
    git("fetch", "--quiet", str(flow.upstream), base, cwd=flow.work)
    git("checkout", "--quiet", "-B", "work", "FETCH_HEAD", cwd=flow.work)
    shas = []
    for i, lines in enumerate(changes, 1):
        (flow.work / "app.txt").write_text(app_lines(flow, *lines))
        git("commit", "--quiet", "-am", f"{message} {i}", cwd=flow.work)
        shas.append(git("rev-parse", "HEAD", cwd=flow.work))
    git("push", "--quiet", str(flow.upstream), f"HEAD:refs/heads/{branch}", cwd=flow.work)
    return shas


def flaky_line(flow: Flow, test: str, times: int = 1) -> str:
    marker = flow.markers / f"{test}-{len(list(flow.markers.iterdir()))}"  # type: ignore[attr-defined]
    return f"flaky: {test} {marker} {times}"


def read(flow: Flow, path: str, user: str | None = None) -> str:
    with flow.session(user).open(flow.url + path, timeout=30) as r:
        return r.read().decode()


def flaky_counts(flow: Flow, user: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["test"], t["kind"]): t for t in json.loads(read(flow, FLAKY, user))["tests"]}


def first_build(flow: Flow, revision: str) -> dict[str, Any]:
    """The first gate build that decided on ``revision``, once complete (a later one may find it tested)."""
    def done() -> Any:
        found = flow.builds_for(GATE, revision)
        return found[0] if found and found[0]["complete"] else None
    return wait_until(done, 120, f"the gate build of {revision[:12]} to complete")


def culprit(flow: Flow) -> Any:
    return next(b for b in flow.status()["branches"] if b["role"] == "devel")["culprit"]


def test_a_test_failing_once_does_not_fail_the_gate_and_is_recorded_flaky(flow: Flow) -> None:
    flow.wait_builds(GATE, 1, timeout=120)
    flow.settle()
    (sha,) = push(flow, (flaky_line(flow, "test_05"), "fail: test_11"))
    wait_until(lambda: flow.tip("stable") == sha, 180, "stable to move past a flaky and a quarantined failure")
    build = first_build(flow, sha)
    assert build["results"] == 0
    log = flow.step_log(build, "suite", "decision")
    assert "flaky: test_05 failed, then passed when run alone" in log
    assert "quarantined: test_11 failed" in log
    assert "re-running 1 failed test(s)" in log  # test_05 only: a quarantined test is not re-run
    counted = flaky_counts(flow)
    assert counted[("test_05", "flaky")]["count"] == 1
    assert counted[("test_05", "flaky")]["last_revision"] == sha
    assert counted[("test_05", "flaky")]["last_build_url"].startswith(flow.url)
    assert counted[("test_11", "quarantined")]["count"] == 1
    cli = flow.cli("flaky", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["quarantine"] == ["test_11"]
    human = flow.cli("flaky")
    assert "1x flaky" in human.stdout and "test_05" in human.stdout
    page = read(flow, FRAGMENT)
    assert 'id="flaky"' in page and "test_05" in page.split('id="flaky"')[1].split("</table>")[0]


def test_a_flaky_failure_in_a_batch_gets_no_commit_blamed(flow: Flow) -> None:
    flow.settle()
    # test_03 fails twice on c2 (the tip's run and its re-run): the tip fails and the batch is bisected;
    # c1 passes, and the re-check of c2's failing test passes: flaky, nobody is blamed
    c1, c2 = push(flow, (), (flaky_line(flow, "test_03", times=2),), message="Batch change")
    wait_until(lambda: flow.tip("stable") == c2, 300, "stable to reach the tip after the re-check")
    flow.settle()
    assert culprit(flow) is None
    tip_build = first_build(flow, c2)
    assert tip_build["results"] != 0  # the tip's own run failed: the test failed again when run alone
    assert "broken: test_03 failed, and failed again" in flow.step_log(tip_build, "suite", "decision")
    logs = "".join(flow.step_log(b, "bisect", "decision") for b in flow.builds(GATE)
                   if b["complete"] and b["number"] > tip_build["number"])
    assert f"{c2[:12]} is not named" in logs, logs
    assert flaky_counts(flow)[("test_03", "flaky")]["last_revision"] == c2


def test_a_broken_test_still_fails_the_gate_and_its_commit_is_named(flow: Flow) -> None:
    flow.settle()
    before = flow.tip("stable")
    (sha,) = push(flow, ("fail: test_07",), message="Break test_07")
    wait_until(lambda: (culprit(flow) or {}).get("revision") == sha, 180, "the broken commit to be named")
    flow.settle()
    assert flow.tip("stable") == before
    build = first_build(flow, sha)
    assert build["results"] == 2
    assert "broken: test_07 failed, and failed again when run alone" in flow.step_log(build, "suite", "decision")
    assert "test_07 failed again" in flow.step_log(build, "bisect", "decision")
    assert ("test_07", "flaky") not in flaky_counts(flow)


def test_a_security_builds_flaky_test_is_counted_for_the_security_role_only(flow: Flow) -> None:
    flow.settle()
    (sha,) = push(flow, (flaky_line(flow, "test_09"),), branch="security/flaky-fix",
                  base="refs/heads/production-stable", message="Close a hole")
    wait_until(lambda: flow.tip("production-stable") == sha, 180, "the security fix to reach production")
    flow.settle()
    assert ("test_09", "flaky") in flaky_counts(flow, "alice")  # the security role sees it: it is there
    for user in (None, "carol", "bob"):  # anonymous, a developer, a losa
        who = user or "anonymous"
        text = read(flow, FLAKY, user) + flow.cli("flaky", "--json", user=user).stdout
        assert "test_09" not in text and sha[:12] not in text, who
        assert "test_09" not in read(flow, FRAGMENT, user), who  # the dashboard shows the tip, embargoed
