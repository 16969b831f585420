"""The benchmarks' own helpers compute what they claim (correctness only: nothing here is timed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import month
from bench.gate_e2e import phases
from bench.history import build_upstream, set_ref

HOUR = month.HOUR


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_fast_import_history_is_linear_with_a_tree_per_commit(tmp_path: Path) -> None:
    repo = tmp_path / "upstream.git"
    history = build_upstream(repo, 250)
    assert len(history) == 250
    assert len({tree for _, tree in history}) == 250  # every push brings a tree of its own
    assert git(repo, "rev-parse", "refs/heads/devel") == history[-1][0]
    assert git(repo, "rev-list", "--count", "refs/heads/devel") == "250"
    assert git(repo, "rev-list", "--count", "--min-parents=2", "refs/heads/devel") == "0"  # no merges
    assert git(repo, "rev-parse", f"{history[100][0]}^") == history[99][0]
    assert git(repo, "rev-parse", f"{history[100][0]}^{{tree}}") == history[100][1]


def test_set_ref_moves_a_branch_as_git_sees_it(tmp_path: Path) -> None:
    repo = tmp_path / "upstream.git"
    history = build_upstream(repo, 5)
    set_ref(repo, "stable", history[2][0])
    assert git(repo, "rev-parse", "refs/heads/stable") == history[2][0]
    set_ref(repo, "stable", history[4][0])
    assert git(repo, "rev-parse", "refs/heads/stable") == history[4][0]


def test_gate_overhead_is_push_to_stable_minus_the_longest_shard() -> None:
    stamps = [("list", 1, 102.0), ("run-start", 2, 103.0), ("run-start", 3, 103.5),
              ("run-end", 3, 106.5), ("run-end", 2, 107.0)]  # shard 3 started later but ran 3 s, shard 2 4 s
    got = phases(pushed=100.0, moved=108.0, stamps=stamps)
    assert got["push → stable moved"] == pytest.approx(8.0)
    assert got["shard runs (longest: the suite)"] == pytest.approx(4.0)
    assert got["fixed overhead"] == pytest.approx(4.0)
    assert got["push → test list runs"] == pytest.approx(2.0)
    assert got["last shard ends → stable moved"] == pytest.approx(1.0)


def replay(ledger: bool, retest: bool) -> month.Replay:
    flow = month.Replay("test", ledger=ledger, retest=retest, suite_s=6 * HOUR, overhead_s=0.0)
    root = month.Commit("root", frozenset(), None)
    flow.devel.append(root)
    flow.records[root.tree] = month.TestRecord(root.tree, root.sha, month.SUITE, month.Result.PASSED, "", None, 0.0)
    return flow


def push(flow: month.Replay, t: float, sha: str, changes: set[str]) -> None:
    flow.at(t, "push", month.Commit(sha, frozenset(changes), t))


@pytest.mark.parametrize("ledger", [True, False])
def test_a_revert_to_a_tested_tree_is_skipped_only_with_the_ledger(ledger: bool) -> None:
    flow = replay(ledger=ledger, retest=not ledger)
    flow.broken.add("b")
    push(flow, 0, "a", {"a"})  # tested and passes: stable at a
    push(flow, 7 * HOUR, "b", {"a", "b"})  # breaks the suite
    push(flow, 14 * HOUR, "revert-b", {"a"})  # a's tree again
    flow.run(40 * HOUR)
    assert flow.devel[flow.stable].sha == "revert-b"  # moved without a run where the ledger knew its tree
    assert (flow.gate_skips, flow.gate.suite_runs) == ((1, 2) if ledger else (0, 3))


def test_pushes_faster_than_the_suite_are_batched_one_build_waiting() -> None:
    flow = replay(ledger=True, retest=False)
    for i in range(5):  # five pushes within the first build's six hours
        push(flow, i * HOUR, f"c{i}", {f"c{j}" for j in range(i + 1)})
    flow.run(30 * HOUR)
    assert flow.gate.suite_runs == 2  # c0, then c4 (c1..c3 batched into it)
    assert flow.devel[flow.stable].sha == "c4"


@pytest.mark.parametrize("retest", [True, False])
def test_promotion_retests_only_in_the_old_flow(retest: bool) -> None:
    flow = replay(ledger=not retest, retest=retest)
    push(flow, 0, "a", {"a"})
    flow.at(10 * HOUR, "promote")
    flow.run(30 * HOUR)
    assert flow.promoter.suite_runs == (1 if retest else 0)
    assert flow.devel[flow.production].sha == "a"
    assert flow.reached["a"] == (16 * HOUR if retest else 10 * HOUR)  # the re-test is on the lead time


def test_no_machine_spends_more_hours_than_the_month_has() -> None:
    data = month.month(pushes=400, suite_hours=12, overhead_minutes=30, seed=3)
    for flow in data["flows"].values():
        assert 0 < flow["busiest_machine_pct"] <= 100
        assert flow["suite_hours"] <= 3 * month.MONTH_DAYS * 24  # three machines at most
    old, new = data["flows"]["old flow (replayed)"], data["flows"]["lpdeploy (replayed)"]
    assert new["promotion_retests"] == 0 < old["promotion_retests"]


def test_suite_hours_after_the_month_ends_are_not_counted() -> None:
    flow = replay(ledger=True, retest=False)
    flow.end = 10 * HOUR
    push(flow, 8 * HOUR, "a", {"a"})  # a six-hour run that starts two hours before the end
    flow.run(flow.end)
    assert flow.gate.suite_runs == 1
    assert flow.gate.suite_hours == pytest.approx(2.0)
