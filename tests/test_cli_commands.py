"""CLI commands against a client object: what they send, what they print, how they exit (issue 11).

``cli.main`` takes the function that connects to the master; here it hands
in ``Master``, a client with ``Client``'s methods that answers from a script
and records what it was asked, so each command runs in-process without a
master or a subprocess. The wire format itself (HTTP, login, JSON-RPC) is
``tests/test_cli_input.py``'s and the end-to-end tests' business.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lpdeploy.tools import cli

SHA = "0123456789abcdef0123456789abcdef01234567"
OLD = "fedcba9876543210fedcba9876543210fedcba98"


class Master:
    """A stand-in for ``client.Client``: the same methods, answers from ``build`` and ``pages``."""

    def __init__(self, build: dict[str, Any] | None = None, pages: dict[str, Any] | None = None,
                 logs: dict[str, str] | None = None) -> None:
        self.build = build or {}
        self.pages = pages or {}
        self.logs = logs or {}
        self.forced: list[tuple[str, dict[str, Any]]] = []
        self.logged_in = False

    def login(self) -> None:
        self.logged_in = True

    def get(self, path: str) -> Any:
        return self.pages[path]

    def control(self, path: str, method: str, params: dict[str, Any]) -> Any:
        assert method == "force"
        self.forced.append((path.removeprefix("forceschedulers/"), params))
        return 7, {"1": 11}

    def wait_for_request(self, brid: int, progress: Callable[[str], None], timeout: float,
                         poll: float = 1.0) -> dict[str, Any]:
        assert brid == 11
        return self.build

    def step_logs(self, buildid: int, step: str) -> dict[str, str]:
        return self.logs


def run(master: Master, *args: str) -> int:
    return cli.main(["-q", *args], connect=lambda _args: master)  # type: ignore[arg-type, return-value]


def build(outcome: str, reason: str, results: int = 0, **props: Any) -> dict[str, Any]:
    return {"buildid": 3, "number": 9, "results": results,
            "properties": {"lpdeploy_outcome": outcome, "lpdeploy_reason": reason, **props}}


def test_promote_forces_the_promote_form_and_prints_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    master = Master(build("moved", "production-devel and production-stable → 0123456789ab"))
    assert run(master, "promote", "--revision", SHA, "--reason", "release 42") == 0
    assert master.forced == [("promote", {"target_revision": SHA, "reason": "release 42"})]
    assert capsys.readouterr().out == "production-devel and production-stable → 0123456789ab (build #9)\n"


@pytest.mark.parametrize("outcome", ["moved", "nothing", "deployed", "done"])
def test_every_successful_outcome_exits_0(outcome: str) -> None:
    assert run(Master(build(outcome, "fine")), "thaw") == 0


@pytest.mark.parametrize(("outcome", "results"), [("refused", 2), ("failed", 2), ("moved", 2), ("surprise", 0)])
def test_a_refused_failed_or_unknown_outcome_exits_1_naming_it(outcome: str, results: int,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Master(build(outcome, "frozen by bob: incident", results=results)), "promote") == 1
    assert capsys.readouterr().err == f"lpdeploy: {outcome}: frozen by bob: incident (build #9)\n"


def test_deploy_prints_each_server_and_its_report(capsys: pytest.CaptureFixture[str]) -> None:
    servers = {"app1": {"status": "deployed", "reason": "deploy 0123456789ab"},
               "app2": {"status": "refused", "reason": "cowboy #3 (hot patch) is active"}}
    master = Master(build("refused", "app2: cowboy #3", results=2, lpdeploy_servers=servers),
                    logs={"report app1": "deployment report for app1: fedcba987654 → 0123456789ab\n", "stdio": "x"})
    assert run(master, "deploy", "--server", "app1", "--server", "app2") == 1
    assert master.forced == [("deploy", {"servers": "app1 app2", "target_revision": "", "override_cowboys": False,
                                         "override_reason": "", "reason": "lpdeploy deploy"})]
    out = capsys.readouterr().out
    assert out == ("app1: deployed: deploy 0123456789ab\napp2: refused: cowboy #3 (hot patch) is active\n"
                   "deployment report for app1: fedcba987654 → 0123456789ab\n")


def test_cowboy_add_prints_the_new_ids_one_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    master = Master(build("done", "recorded cowboy #4, #5", lpdeploy_cowboy_ids=[4, 5]))
    assert run(master, "cowboy", "add", "--server", "app1", "--server", "app2", "--reason", "hot patch",
               "--fixed-by", SHA) == 0
    assert master.forced == [("cowboy-add", {"servers": "app1 app2", "cowboy_reason": "hot patch",
                                             "fixed_by": SHA, "reason": "lpdeploy cowboy add"})]
    assert capsys.readouterr().out == "4\n5\n"


def test_a_refused_input_never_connects(capsys: pytest.CaptureFixture[str]) -> None:
    def connect(_args: Any) -> Any:
        raise AssertionError("connected although the input was refused")

    assert cli.main(["freeze", "--reason", "two\nlines"], connect=connect) == 2
    assert "invalid --reason" in capsys.readouterr().err


def test_status_lists_branches_fixes_and_servers(capsys: pytest.CaptureFixture[str]) -> None:
    status = {
        "repository": "file:///srv/upstream.git", "suite": "suite-1", "freeze": None,
        "branches": [
            {"name": "devel", "tip": SHA, "tested": False, "result": "failed", "subject": "Break it"},
            {"name": "stable", "tip": OLD, "tested": True, "tested_by": {"build_number": 4}, "subject": "Fine"},
            {"name": "production-stable", "tip": None},
        ],
        "security": {"fixes": [{"branch": "security/cve-1", "state": "promoted", "fix_commit": SHA, "note": "",
                                "releases": [{"fix_commit": SHA, "candidate": OLD, "state": "pending"}]}],
                     "on_production_not_on_stable": ["security/cve-1"]},
        "servers": [{"name": "app1", "deployed": OLD, "behind": 2, "cowboys": []}],
    }
    master = Master(pages={"plugins/lpdeploy/status.json": status})
    assert run(master, "status") == 0
    assert master.logged_in
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "repository file:///srv/upstream.git  suite suite-1"
    assert lines[1].split() == ["devel", SHA[:12], "FAILED", "the", "suite", "Break", "it"]
    assert lines[2].split() == ["stable", OLD[:12], "tested", "(build", "#4)", "Fine"]
    assert lines[3].split() == ["production-stable", "(missing)"]
    assert lines[4].split() == ["security", "security/cve-1", "promoted", SHA[:12], "on", "production,", "not",
                                "yet", "on", "stable"]
    assert lines[5].strip() == f"released {SHA[:12]} as {OLD[:12]}: pending"
    assert lines[6].split() == ["server", "app1", OLD[:12], "2", "behind", "production-stable"]


def test_status_shows_an_unrecorded_change_under_its_server(capsys: pytest.CaptureFixture[str]) -> None:
    found, expected = "ab" * 20, "cd" * 20
    status = {"repository": "r", "suite": "s", "freeze": None, "branches": [], "servers": [
        {"name": "app1", "deployed": OLD, "behind": 0, "cowboys": [],
         "unrecorded_change": {"server": "app1", "revision": OLD, "expected": expected, "found": found,
                               "at": 1_700_000_000.0, "by": "lpdeploy"}},
        {"name": "app2", "deployed": OLD, "behind": 0, "cowboys": [], "unrecorded_change": None}]}
    assert run(Master(pages={"plugins/lpdeploy/status.json": status}), "status") == 0
    out = capsys.readouterr().out
    assert (f"UNRECORDED CHANGE since {cli._when(1_700_000_000.0)}: runs tree {found[:12]}, lpdeploy deployed tree "
            f"{expected[:12]} ({OLD[:12]}); rollouts refused") in out
    assert out.count("UNRECORDED") == 1


DIFF = "diff --git a/mail.cf b/mail.cf\n--- a/mail.cf\n+++ b/mail.cf\n@@ -1 +1 @@\n-relay = a\n+relay = b\n"


def test_cowboy_add_sends_the_patch_file_whole(tmp_path: Any) -> None:
    path = tmp_path / "relay.diff"
    path.write_bytes(DIFF.encode() + b"+caf\xe9\n")  # a Latin-1 byte stays that byte on the master
    master = Master(build("done", "recorded cowboy #4", lpdeploy_cowboy_ids=[4]))
    assert run(master, "cowboy", "add", "--server", "app1", "--reason", "hot patch", "--patch", str(path)) == 0
    [(form, params)] = master.forced
    assert form == "cowboy-add" and params["patch"].encode("utf-8", "surrogateescape") == path.read_bytes()


@pytest.mark.parametrize(("content", "said"), [
    (DIFF.encode() + b"+" * (1024 * 1024), "larger than the 1 MiB a cowboy's patch may have"),
    (b"edited mail.cf by hand\n", "is not a unified diff"),
])
def test_cowboy_add_refuses_a_patch_too_large_or_not_a_diff_sending_nothing(
        tmp_path: Any, content: bytes, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.diff"
    path.write_bytes(content)
    master = Master()
    assert run(master, "cowboy", "add", "--server", "app1", "--reason", "hot patch", "--patch", str(path)) == 2
    assert master.forced == [] and said in capsys.readouterr().err


def test_cowboy_add_with_a_missing_patch_file_says_so(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    master = Master()
    assert run(master, "cowboy", "add", "--server", "app1", "--reason", "x", "--patch", str(tmp_path / "no")) == 2
    assert "No such file or directory" in capsys.readouterr().err and master.forced == []


def test_cowboy_list_names_the_patch_id_of_a_cowboy_with_a_patch(capsys: pytest.CaptureFixture[str]) -> None:
    row = {"id": 4, "server": "app1", "state": "active", "active": True, "created_by": "bob", "created_at": 1.0,
           "fixed_by": None, "reason": "relay", "patch": {"patch_id": "9" * 40, "base": None, "size": 80}}
    master = Master(pages={"plugins/lpdeploy/cowboys.json": [row, {**row, "id": 5, "patch": None}]})
    assert run(master, "cowboy", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"patch-id {'9' * 12}: relay" in lines[0] and "patch-id" not in lines[1]
