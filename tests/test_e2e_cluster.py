"""Two masters, one flow: PostgreSQL, a Crossbar router, two real masters with a worker each.

The masters read the same site (each its own ports), share one PostgreSQL
database and one WAMP router, as ``make cluster`` and a real multi-master site
run them. A push reaches stable whichever master gates it; a losa's promote
forced through the second master's CLI works; both masters' ``lpdeploy
status --json`` agree; and ``make cluster`` itself starts both masters and
leaves no process behind when stopped.

Skipped, loudly, where PostgreSQL's binaries or crossbar (``pip install -e
'.[cluster]'``, which ``make test`` does) are missing — unless
``LPDEPLOY_REQUIRE_CLUSTER=1`` (``.ci/run`` sets it): then it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpdeploy.tools.cluster import descendants, reap
from lpdeploy.tools.localrun import stop
from lpdeploy.tools.services import Crossbar, PrivatePostgres, missing_parts
from tests.cluster_harness import SecondMaster
from tests.flow_harness import BIN, ROOT, Flow, free_port_pair, git, wait_until

MISSING = "; ".join(missing_parts())
REQUIRED = os.environ.get("LPDEPLOY_REQUIRE_CLUSTER") == "1"  # .ci/run: CI must never skip these tests
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=f"TWO-MASTER TESTS SKIPPED: missing {MISSING}"),
]
GATE = "lpdeploy-gate"
PROMOTE = "lpdeploy-promote"


@pytest.fixture(scope="module", autouse=True)
def parts_present() -> None:
    if MISSING:
        pytest.fail(f"LPDEPLOY_REQUIRE_CLUSTER=1 but missing {MISSING}", pytrace=False)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A directory the postgres user can enter (as root the database server runs as that user)."""
    path = Path(tempfile.mkdtemp(prefix="lpdeploy-cluster-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(base: Path) -> Iterator[str]:
    """PostgreSQL and Crossbar; the site file lines that point a master at them."""
    pg, router = PrivatePostgres(base / "pg"), Crossbar(base / "crossbar")
    procs = []
    try:
        pg.create()
        pg.start()
        procs.append(("PostgreSQL", pg.proc))
        pg.ensure_database("lp_e2e")
        router.start()
        procs.append(("Crossbar", router.proc))
        yield f'[database]\nurl = "{pg.url("lp_e2e")}"\n[mq]\nrouter_url = "{router.router_url}"\n'
    finally:
        stop(list(reversed(procs)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def masters(base: Path, shared: str) -> Iterator[tuple[Flow, Flow]]:
    one = Flow(base, extra_site=shared)
    two = SecondMaster(one)
    started: list[Flow] = []
    try:
        one.create()
        # the shared database gets Buildbot's schema once, from the first master's configuration
        subprocess.run([str(BIN / "buildbot"), "upgrade-master", str(one.master_dir)], check=True, env=one.env,
                       capture_output=True, timeout=300)
        one.start()
        started.append(one)
        two.create()
        two.start()
        started.append(two)
        yield one, two
    finally:
        for m in reversed(started):
            m.stop()


def masterids(flow: Flow, builder: str) -> list[int]:
    return [b["masterid"] for b in flow.builds(builder)]


def test_both_masters_run_on_one_database_and_router(masters: tuple[Flow, Flow]) -> None:
    one, two = masters
    for flow in masters:
        listed = flow.api("masters")["masters"]
        assert len(listed) == 2 and all(m["active"] for m in listed), listed
    # each worker is attached to its own master, and both masters see both
    for flow in masters:
        attached = {w["name"]: [c["masterid"] for c in w["connected_to"]] for w in flow.api("workers")["workers"]}
        assert attached["worker-1"] and attached["worker-2"] and attached["worker-1"] != attached["worker-2"]
    assert one.api("builders")["builders"] and two.api("builders") == one.api("builders")


def test_a_push_to_devel_reaches_stable_and_both_masters_show_the_same_builds(masters: tuple[Flow, Flow]) -> None:
    one, two = masters
    one.settle()
    sha = one.commit("ok", "Add the search page")
    wait_until(lambda: one.tip("stable") == sha, 120, "stable to reach the pushed commit")
    one.settle()
    two.settle()
    build = one.build_for(GATE, sha)
    assert build["results"] == 0
    assert two.build_for(GATE, sha)["buildid"] == build["buildid"]  # one gate build, seen by both masters
    assert one.suite_runs().count(sha) == 1


def test_a_promote_forced_through_the_second_master_moves_production(masters: tuple[Flow, Flow]) -> None:
    one, two = masters
    sha = one.given_stable_at("Speed up the front page")
    result = two.cli("promote", user="bob")  # the CLI talks to the second master's REST API
    assert result.returncode == 0, result.stdout + result.stderr
    assert one.tip("production-stable") == one.tip("production-devel") == sha
    two.settle()
    promoted = [b for b in two.builds_for(PROMOTE, sha) if b["complete"]]
    assert len(promoted) == 1 and promoted[0]["results"] == 0
    assert one.suite_runs().count(sha) == 1  # promoted without a re-test, on whichever master ran it
    anonymous = two.cli("promote")  # deny by default on the second master too
    assert anonymous.returncode != 0


def test_both_masters_status_agree(masters: tuple[Flow, Flow]) -> None:
    one, two = masters
    one.settle()
    two.settle()
    first, second = one.status(), two.status()
    assert first == second, json.dumps({"one": first, "two": second}, indent=1)[:3000]


def test_make_cluster_starts_two_masters_and_leaves_nothing_behind(base: Path) -> None:
    site = base / "make-cluster" / "site.toml"
    site.parent.mkdir()
    upstream = site.parent / "upstream.git"
    git("init", "--quiet", "--bare", "--initial-branch=devel", str(upstream))
    www = free_port_pair()
    workers = free_port_pair(taken=(www, www + 1))
    site.write_text(f'[repository]\nurl = "{upstream.as_uri()}"\n[www]\nport = {www}\nurl = "http://127.0.0.1:{www}/"\n'
                    f'[workers]\nport = {workers}\n')
    run_dir = base / "make-cluster" / "run"
    proc = subprocess.Popen([str(BIN / "python"), "-m", "lpdeploy.tools.cluster", "--run-dir", str(run_dir)],
                            env={**os.environ, "LPDEPLOY_CONFIG": str(site)}, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        out = "".join(lines)
        assert f"master 1: web UI at http://127.0.0.1:{www}/" in out, out
        assert f"master 2: web UI at http://127.0.0.1:{www + 1}/" in out, out
        children = descendants(proc.pid)
        commands = {pid: _command(pid) for pid in children}
        assert len(children) >= 6, commands  # PostgreSQL, Crossbar, two masters, two workers
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            reap(descendants(proc.pid) + [proc.pid], grace=0)  # leave nothing behind even when failing
            raise
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stopped" in rest
    left = {pid: commands.get(pid) for pid in children if _alive(pid)}
    assert not left, f"processes left after make cluster stopped: {left}"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
