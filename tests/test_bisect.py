"""The bisection planner: a failing batch → the probes to test, then the newest pass and the culprit."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lpdeploy.core.bisect import ChainCommit, boundary, plan, serial_bound, split_points
from lpdeploy.core.model import Action


def chain_of(n: int, trees: list[int] | None = None) -> list[ChainCommit]:
    """``n`` commits c0..c{n-1} (oldest first); commit i has tree t{trees[i]} (default: its own)."""
    return [ChainCommit(f"{i:040x}", f"t{trees[i] if trees else i}") for i in range(n)]


def run_bisection(chain: list[ChainCommit], fails: list[bool], idle: int = 1,
                  known: dict[str, bool] | None = None) -> tuple[str | None, str | None, list[str], int]:
    """Play a whole bisection: the gate's tip run, then rounds of probes until the boundary is found.

    ``fails[i]``: whether commit i fails the suite. Returns (passing, culprit,
    every tree run, rounds of probes).
    """
    known = dict(known or {})
    runs = []
    if chain[-1].tree not in known:  # the gate's own run on the tip
        runs.append(chain[-1].tree)
        known[chain[-1].tree] = not fails[-1]
    rounds = 0
    by_sha = {c.sha: (i, c) for i, c in enumerate(chain)}
    while True:
        step = plan(chain, known, idle)
        if step.action is not Action.RUN_SUITE:
            return step.passing, step.culprit, runs, rounds
        rounds += 1
        assert rounds <= len(chain), "the bisection does not converge"
        assert 1 <= len(step.probes) <= idle
        for sha in step.probes:
            i, c = by_sha[sha]
            runs.append(c.tree)
            known[c.tree] = not fails[i]


def test_a_batch_of_four_with_the_third_broken_names_the_third_and_passes_the_second() -> None:
    chain = chain_of(4)
    passing, culprit, runs, _ = run_bisection(chain, [False, False, True, True])
    assert culprit == chain[2].sha
    assert passing == chain[1].sha
    assert len(runs) <= 1 + math.ceil(math.log2(4))


def test_a_batch_broken_by_its_first_commit_keeps_stable_where_it_is() -> None:
    chain = chain_of(5)
    passing, culprit, _, _ = run_bisection(chain, [True] * 5)
    assert culprit == chain[0].sha
    assert passing is None  # stable itself is the newest pass


def test_a_single_failing_push_is_its_own_culprit_without_a_probe() -> None:
    chain = chain_of(1)
    step = plan(chain, {chain[0].tree: False})
    assert step.action is Action.MOVE and step.culprit == chain[0].sha and step.passing is None
    assert step.probes == ()


def test_the_first_probe_is_the_middle_of_the_batch() -> None:
    chain = chain_of(8)
    step = plan(chain, {chain[7].tree: False})
    assert step.action is Action.RUN_SUITE
    assert step.probes == (chain[3].sha,)  # candidates c0..c7: a pass leaves c4..c7, a failure c0..c3
    assert "probing" in step.reason


def test_a_tree_already_tested_anywhere_is_reused() -> None:
    # c1 has the tree of a revert tested long ago: it passed; c2 is then the only candidate left
    chain = chain_of(3, trees=[0, 1, 2])
    step = plan(chain, {"t1": True, "t2": False})
    assert step.action is Action.MOVE
    assert step.passing == chain[1].sha and step.culprit == chain[2].sha


def test_two_commits_of_one_tree_are_probed_once() -> None:
    chain = chain_of(5, trees=[0, 1, 1, 2, 3])
    step = plan(chain, {"t3": False}, idle=3)
    trees = [next(c.tree for c in chain if c.sha == p) for p in step.probes]
    assert len(trees) == len(set(trees))


def test_idle_workers_split_the_range_into_k_plus_one_parts() -> None:
    chain = chain_of(9)
    step = plan(chain, {chain[8].tree: False}, idle=2)
    assert step.probes == (chain[2].sha, chain[5].sha)


def test_no_failure_means_nothing_to_bisect() -> None:
    chain = chain_of(3)
    assert plan(chain, {}).action is Action.NOTHING
    assert plan([], {}).action is Action.NOTHING


def test_a_known_pass_above_a_failure_moves_stable_past_it() -> None:
    # c1 failed, c3 (a fix) passed, c4 failed again: stable goes to c3, c4 is the culprit
    chain = chain_of(5)
    step = plan(chain, {"t1": False, "t3": True, "t4": False})
    assert step.found and step.passing == chain[3].sha and step.culprit == chain[4].sha


def test_boundary_and_split_points() -> None:
    chain = chain_of(6)
    assert boundary(chain, {"t1": True, "t4": False, "t5": False}) == (1, 4)
    assert boundary(chain, {}) == (-1, None)
    assert split_points(-1, 3, 2) == [1]
    assert split_points(0, 1, 4) == []
    assert serial_bound(4) == 3 and serial_bound(1) == 1 and serial_bound(5) == 4


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[ChainCommit], list[bool], int]:
    """A batch of n commits (some sharing trees, as reverts do) broken from commit ``first_bad`` on."""
    n = draw(st.integers(1, 40))
    first_bad = draw(st.integers(0, n - 1))
    fails = [i >= first_bad for i in range(n)]
    # a shared tree may only join commits with the same verdict (the same tree gives the same result)
    trees = [draw(st.integers(0, n - 1)) * 2 + int(fails[i]) for i in range(n)]
    return chain_of(n, trees), fails, first_bad


@settings(max_examples=300, deadline=None)
@given(batches(), st.integers(1, 8))
def test_the_culprit_is_the_first_failing_commit_for_any_monotone_batch(
        batch: tuple[list[ChainCommit], list[bool], int], idle: int) -> None:
    chain, fails, first_bad = batch
    passing, culprit, runs, _ = run_bisection(chain, fails, idle)
    assert culprit == chain[first_bad].sha
    # the newest passing first-parent ancestor: the commit right before the culprit (None: stable)
    assert passing == (chain[first_bad - 1].sha if first_bad > 0 else None)


@settings(max_examples=300, deadline=None)
@given(batches(), st.integers(1, 8))
def test_no_tree_is_probed_twice(batch: tuple[list[ChainCommit], list[bool], int], idle: int) -> None:
    chain, fails, _ = batch
    _, _, runs, _ = run_bisection(chain, fails, idle)
    assert len(runs) == len(set(runs))


@settings(max_examples=300, deadline=None)
@given(batches())
def test_serial_suite_runs_per_batch_stay_within_one_plus_log2_n(
        batch: tuple[list[ChainCommit], list[bool], int]) -> None:
    chain, fails, _ = batch
    _, _, runs, _ = run_bisection(chain, fails, idle=1)
    assert len(runs) <= serial_bound(len(chain)) == 1 + math.ceil(math.log2(len(chain)))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 6), st.data())
def test_k_idle_workers_need_about_log_k_plus_one_rounds(n: int, idle: int, data: st.DataObject) -> None:
    first_bad = data.draw(st.integers(0, n - 1))
    chain = chain_of(n)
    _, culprit, _, rounds = run_bisection(chain, [i >= first_bad for i in range(n)], idle)
    assert culprit == chain[first_bad].sha
    # each round keeps at most ⌈c/(k+1)⌉ of c candidates
    assert rounds <= math.ceil(math.log(n, idle + 1)) + 1 if n > 1 else rounds == 0


@settings(max_examples=200, deadline=None)
@given(batches(), st.data())
def test_ledger_knowledge_is_reused_and_never_run_again(
        batch: tuple[list[ChainCommit], list[bool], int], data: st.DataObject) -> None:
    chain, fails, first_bad = batch
    # some trees were already tested elsewhere (consistently with the batch)
    pre = {c.tree: not fails[i] for i, c in enumerate(chain) if data.draw(st.booleans())}
    passing, culprit, runs, _ = run_bisection(chain, fails, 1, known=pre)
    assert not set(runs) & set(pre)
    assert culprit == chain[first_bad].sha
