"""The gate month replay (bench/gate_month.py) keeps honest books and applies lpdeploy's own rules.

Correctness only: the replay runs on a virtual clock, nothing here is timed.
"""

from __future__ import annotations

import pytest

from bench import gate_month
from lpdeploy.core.bisect import serial_bound

HOUR = gate_month.HOUR
SUITE = 6 * HOUR + 5 * 60  # the default suite plus the overhead of one build
SLOW_PEOPLE = 100.0  # hours of triage: nobody reverts before the bisection names the culprit


def batch(n: int, broken: int) -> list[tuple[float, str, str]]:
    """``n`` commits pushed at once (Monday 00:00), the ``broken``-th (1-based) breaking the suite."""
    return [(0.0, f"c{i}", "broken" if i == broken else "good") for i in range(1, n + 1)]


def test_serial_bisection_of_four_with_the_third_broken_moves_stable_to_the_second() -> None:
    gate = gate_month.simulate("b", 1, batch(4, 3), triage_hours=SLOW_PEOPLE)
    assert gate.named == {"c3": pytest.approx(3 * SUITE)}  # c4 (the tip), c2, c3: 1 + log2(4) runs
    assert gate.reached["c1"] == gate.reached["c2"] == pytest.approx(3 * SUITE)  # the newest pass, at once
    assert gate.moves[0] == pytest.approx(3 * SUITE)
    assert gate.episodes[0].runs == 3 == serial_bound(4)  # the books count every run of the bisection
    # the author reverts half an hour after being told (18:15 is a working hour); the revert's tip passes
    assert gate.reached["c4"] == pytest.approx(3 * SUITE + 0.5 * HOUR + SUITE)
    assert gate.reverted == {"c3"} and gate.stable == len(gate.devel) - 1


def test_the_tip_only_gate_holds_the_whole_batch_until_the_revert() -> None:
    gate = gate_month.simulate("a", 1, batch(4, 3), triage_hours=SLOW_PEOPLE)
    assert gate.named == {} and gate.probe_runs == 0
    found = gate_month.next_working(SUITE) + SLOW_PEOPLE * HOUR  # the team finds c3 by reading the failure
    assert gate.reached["c1"] == gate.reached["c2"] == gate.reached["c4"] == pytest.approx(found + SUITE)
    plan = batch(4, 3)
    a = gate_month.measure(gate, plan)
    b = gate_month.measure(gate_month.simulate("b", 1, plan, triage_hours=SLOW_PEOPLE), plan)
    assert a["held_h"] == pytest.approx(2 * (found + SUITE - SUITE) / HOUR)  # c1, c2 from the failure on
    assert b["held_h"] == pytest.approx(2 * (3 * SUITE - SUITE) / HOUR)
    assert b["blocked_h"] < a["blocked_h"]


def test_speculative_probes_name_the_culprit_in_fewer_suite_durations() -> None:
    plan = batch(8, 7)
    serial = gate_month.simulate("b", 4, plan, triage_hours=SLOW_PEOPLE)
    spec = gate_month.simulate("c", 4, plan, triage_hours=SLOW_PEOPLE)
    assert serial.named == {"c7": pytest.approx(4 * SUITE)}  # tip, then 3 probes one after the other
    assert spec.named == {"c7": pytest.approx(3 * SUITE)}  # tip, 4 probes at once (4 idle workers), then c7
    assert spec.probe_runs == 5 and serial.probe_runs == 3
    assert spec.reached["c6"] == pytest.approx(3 * SUITE)
    assert serial.reached["c6"] == pytest.approx(4 * SUITE)


@pytest.mark.parametrize("mode", ["a", "b"])
def test_a_spurious_failure_waits_for_the_next_push_and_only_bisection_blames(mode: str) -> None:
    plan = [(0.0, "f", "flaky"), (10 * HOUR, "g", "good")]
    gate = gate_month.simulate(mode, 1, plan)
    assert gate.reached["f"] == gate.reached["g"] == pytest.approx(10 * HOUR + SUITE)  # g's tip run passes
    assert gate.reverted == set()  # nothing broke: nothing is reverted
    m = gate_month.measure(gate, plan)
    assert m["false_blames"] == ([] if mode == "a" else ["f"])  # no re-run: the bisection names f
    assert m["flaky_outcome"]["f"]["blocked_h"] == pytest.approx((10 * HOUR + SUITE - SUITE) / HOUR)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("mode", ["a", "b", "c", "a+", "b+", "c+"])
def test_a_tiny_month_lands_or_reverts_every_push(mode: str, workers: int, seed: int) -> None:
    plan = gate_month.plan_month(pushes=20, break_pct=20, flaky=1, seed=seed)
    gate = gate_month.simulate(mode, workers, plan)
    broken = {c for _, c, kind in plan if kind == "broken"}
    good = {c for _, c, kind in plan if kind != "broken"}
    assert len(broken) == 3 and len(good) == 17
    assert gate.reverted == broken  # every break is reverted ...
    assert good <= set(gate.reached)  # ... and every other push reaches stable
    assert gate.stable == len(gate.devel) - 1 and not gate.devel[gate.stable].changes & broken
    assert not gate.running and not gate.probes and not gate.tip_queued
    m = gate_month.measure(gate, plan)
    assert m["landed"] == 17 and m["suite_runs"] >= 1 and m["runs_per_landed"] == m["suite_runs"] / 17
    assert set(gate.blocked_from) <= good
    assert m["blocked_h"] >= m["held_h"] >= 0
    if mode.rstrip("+") == "a":
        assert gate.probe_runs == 0 and gate.named == {} and gate.episodes == []
    if mode.rstrip("+") == "b":
        assert all(e.runs <= serial_bound(e.hi - e.lo) for e in gate.episodes)


def test_the_month_is_the_same_for_every_mode() -> None:
    plan = gate_month.plan_month(pushes=200, break_pct=10, flaky=2, seed=1)
    assert [k for _, _, k in plan].count("broken") == 18 and [k for _, _, k in plan].count("flaky") == 2
    assert plan == gate_month.plan_month(pushes=200, break_pct=10, flaky=2, seed=1)


def test_a_new_tip_goes_before_the_next_probe() -> None:
    plan = [*batch(4, 3), (HOUR, "c5", "good")]  # c5 arrives while c4's run is going
    gate = gate_month.simulate("b", 1, plan, triage_hours=SLOW_PEOPLE)
    c5 = gate.devel[gate.index("c5")]
    assert gate.ledger[c5.tree].finished_at == pytest.approx(2 * SUITE)  # right after c4 failed, before c2
    assert gate.named == {"c3": pytest.approx(4 * SUITE)}  # c4, c5, then the probes c2 and c3


def test_speculative_probes_leave_a_worker_for_the_tip_just_queued() -> None:
    gate = gate_month.Gate("c", 4, SUITE, 0.0, SLOW_PEOPLE * HOUR, 0.5 * HOUR)
    gate.devel.append(gate_month.Commit("root", frozenset(), None))
    gate.on_push_changes(0.0, [f"c{i}" for i in range(1, 9)])
    tip = gate.devel[-1]
    gate.running.clear()  # as if the tip's run had ended failing (the ledger says so)
    gate.events.clear()
    gate.record(tip, False, SUITE)
    gate.on_push_changes(SUITE, ["c9"])  # the new tip is queued in this very reconciliation
    assert sorted((r.probe, r.index) for r in gate.running) == [(False, 9), (True, 2), (True, 4), (True, 6)]
    assert gate.probes == []  # 3 idle workers for probes: 4 parts, 3 cut points


def test_serial_bisections_of_the_full_month_stay_within_the_bound() -> None:
    plan = gate_month.plan_month(pushes=200, break_pct=10, flaky=2, seed=1)
    gate = gate_month.simulate("b", 1, plan)
    long = [e for e in gate.episodes if e.hi - e.lo >= 4]
    assert long  # one worker batches: some failing batches hold several commits
    assert all(e.runs <= serial_bound(e.hi - e.lo) for e in gate.episodes)


RERUN = gate_month.RERUN_FRACTION * 6 * HOUR  # one round of re-runs, or one re-check


@pytest.mark.parametrize("mode", ["a+", "b+", "c+"])
def test_with_rerun_a_spurious_failure_passes_on_its_rerun_and_nothing_waits(mode: str) -> None:
    plan = [(0.0, "f", "flaky"), (10 * HOUR, "g", "good")]
    gate = gate_month.simulate(mode, 1, plan)
    assert gate.reached["f"] == pytest.approx(SUITE + RERUN)  # its own run passes, after the re-run
    assert gate.flaky_recorded == [("test_f", pytest.approx(SUITE + RERUN))]  # flaky.judge: recorded as flaky
    assert gate.reruns == 1 and gate.rechecks == 0 and gate.named == {} and gate.reverted == set()
    m = gate_month.measure(gate, plan)
    assert m["false_blames"] == [] and m["blocked_h"] == 0 and gate.blocked_from == {}


def test_with_rerun_the_two_flaky_pushes_of_the_month_cause_no_blame_and_no_blocked_hour() -> None:
    plan = gate_month.plan_month(pushes=200, break_pct=10, flaky=2, seed=1)
    plain = gate_month.measure(gate_month.simulate("c", 8, plan), plan)
    assert len(plain["false_blames"]) == 2  # without re-runs both flaky pushes are blamed on 8 workers
    for workers in (1, 4, 8):
        for mode in ("a+", "b+", "c+"):
            gate = gate_month.simulate(mode, workers, plan)
            m = gate_month.measure(gate, plan)
            assert m["false_blames"] == [], (mode, workers)
            assert set(m["flaky_outcome"]) == gate.flaky and len(gate.flaky) == 2
            assert all(o == {"blocked_h": 0.0, "blamed": False} for o in m["flaky_outcome"].values()), (mode, workers)
            assert len(gate.flaky_recorded) == 2 and m["stranded"] == []


def test_with_rerun_a_real_break_is_re_checked_once_before_it_is_named() -> None:
    gate = gate_month.simulate("b+", 1, batch(4, 3), triage_hours=SLOW_PEOPLE)
    # c4 (the tip) fails and fails its re-run, c2 passes, c3 fails and fails its re-run, then the re-check
    assert gate.named == {"c3": pytest.approx(3 * SUITE + 3 * RERUN)}
    assert gate.reruns == 2 and gate.rechecks == 1 and gate.flaky_recorded == []
    assert gate.reached["c2"] == pytest.approx(3 * SUITE + 3 * RERUN)
    assert gate.kept == {gate.devel[gate.index("c4")].tree: ("test_c3",)}  # the tip's kept tests, never re-checked


def test_the_re_check_before_blame_clears_a_spurious_failure_without_re_runs() -> None:
    # a sharded suite with rerun_failures = 0: the tip fails spuriously, the bisection re-checks f before naming it
    plan = [(0.0, "g1", "good"), (0.0, "f", "flaky")]
    gate = gate_month.simulate("b", 1, plan, recheck=True)
    assert gate.reruns == 0 and gate.rechecks == 1 and gate.named == {}
    assert gate.flaky_recorded == [("test_f", pytest.approx(2 * SUITE + RERUN))]
    assert gate.reached["f"] == pytest.approx(2 * SUITE + RERUN)  # the tree counts as passed: stable moves to f
    unchecked = gate_month.simulate("b", 1, plan)  # a plain suite: nothing to re-check, f is blamed
    assert unchecked.named == {"f": pytest.approx(2 * SUITE)}
