"""Splitting a suite into shards by recorded durations: pure functions, no Buildbot.

The general rules are ``hypothesis`` properties: each runs on ``max_examples``
generated suites (ids in any order, some without history, one stale entry in
the history, 1 to 9 shards) and shrinks a failure to a smallest suite that
breaks the rule, printing it with a ``@reproduce_failure`` blob (the examples
database is off: a failure is replayed from that blob, not from a local file).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpdeploy.core.partition import lower_bound, makespan, partition, round_robin, updated

PROPERTY = settings(max_examples=150, deadline=None, database=None, print_blob=True)
GONE = "pkg.gone_test"  # in the history, no longer listed: must be ignored
SECONDS = st.floats(min_value=0.01, max_value=60.0, allow_nan=False, allow_infinity=False)


@st.composite
def suites(draw, max_tests: int = 30, unknown: bool = True) -> tuple[list[str], dict[str, float], int]:
    """Ids (in any order; with ``unknown``, some without history), their known durations, a shard count."""
    n = draw(st.integers(0, max_tests))
    ids = draw(st.permutations([f"pkg.test_{i:03d}" for i in range(n)]))
    known = draw(st.lists(st.booleans(), min_size=n, max_size=n)) if unknown else [True] * n
    durations = {t: draw(SECONDS) for t, k in zip(ids, known, strict=True) if k}
    durations[GONE] = 99.0
    return list(ids), durations, draw(st.integers(1, 9))


def optimum(durations: list[float], shards: int) -> float:
    """The best makespan over every assignment (the first test on shard 0: shards are interchangeable)."""
    if not durations:
        return 0.0
    first, rest = durations[0], durations[1:]
    best = float("inf")
    for choice in itertools.product(range(shards), repeat=len(rest)):
        loads = [0.0] * shards
        loads[0] = first
        for d, k in zip(rest, choice, strict=True):
            loads[k] += d
        best = min(best, max(loads))
    return best


def loads(assignment: list[list[str]], durations: dict[str, float]) -> list[float]:
    return [sum(durations.get(t, 0.0) for t in shard) for shard in assignment]


# --- partition: every id exactly once -------------------------------------------


@PROPERTY
@given(suites())
def test_every_listed_id_is_assigned_to_exactly_one_shard(suite):
    ids, durations, shards = suite
    out = partition(ids, durations, shards)
    assert len(out) == shards
    assigned = [t for shard in out for t in shard]
    assert Counter(assigned) == Counter(ids)
    assert GONE not in assigned


def test_no_tests_gives_empty_shards():
    assert partition([], {}, 3) == [[], [], []]
    assert partition([], {"a": 1.0}, 1) == [[]]


def test_one_shard_holds_every_test():
    ids = ["c", "a", "b", "new"]
    (only,) = partition(ids, {"a": 1.0, "b": 5.0, "c": 2.0}, 1)
    assert sorted(only) == sorted(ids)


def test_one_shard_holds_every_test_when_none_are_known():
    assert partition(["x", "y", "z"], {}, 1) == [["x", "y", "z"]]


def test_more_shards_than_tests_leaves_the_extra_shards_empty():
    out = partition(["a", "b"], {"a": 3.0}, 5)
    assert len(out) == 5
    assert sorted(len(s) for s in out) == [0, 0, 0, 1, 1]
    assert sorted(t for s in out for t in s) == ["a", "b"]


@pytest.mark.parametrize("shards", [0, -1, -10])
def test_fewer_than_one_shard_is_refused(shards):
    with pytest.raises(ValueError):
        partition(["a"], {"a": 1.0}, shards)
    with pytest.raises(ValueError):
        partition([], {}, shards)


# --- known durations: longest processing time first -------------------------------


# integers often tie and make LPT's worst cases; fractions check the sums
SMALL_SUITE = st.lists(st.one_of(st.integers(1, 12).map(float),
                                 st.floats(min_value=0.1, max_value=30.0, allow_nan=False)), min_size=1, max_size=8)


@PROPERTY
@given(SMALL_SUITE, st.sampled_from([2, 3]))
def test_known_tests_finish_within_four_thirds_of_the_optimum(seconds, shards):
    durations = {f"t{i}": d for i, d in enumerate(seconds)}
    best = optimum(list(durations.values()), shards)
    got = makespan(partition(list(durations), durations, shards), durations)
    assert best - 1e-9 <= got <= (4 / 3 - 1 / (3 * shards)) * best + 1e-9
    assert got >= lower_bound(durations, shards) - 1e-9


@pytest.mark.parametrize(
    ("durations", "shards", "lpt", "best"),
    [
        # the textbook worst cases of LPT: 2m + 1 jobs, ratio 4/3 - 1/(3m)
        ([3, 3, 2, 2, 2], 2, 7, 6),
        ([5, 5, 4, 4, 3, 3, 3], 3, 11, 9),
    ],
)
def test_the_known_worst_cases_of_lpt_reach_its_bound_and_no_further(durations, shards, lpt, best):
    d = {f"t{i}": float(x) for i, x in enumerate(durations)}
    assert optimum(list(d.values()), shards) == best
    assert makespan(partition(list(d), d, shards), d) == lpt
    assert lpt == pytest.approx((4 / 3 - 1 / (3 * shards)) * best)


@PROPERTY
@given(suites(max_tests=200, unknown=False))
def test_known_tests_never_exceed_the_greedy_bound_on_a_large_suite(suite):
    # too large for the optimum by brute force: no shard ends later than a perfect share plus the longest test
    ids, durations, shards = suite
    listed = {t: durations[t] for t in ids}
    bound = sum(listed.values()) / shards + max(listed.values(), default=0.0)
    assert makespan(partition(ids, listed, shards), listed) <= bound + 1e-9


def test_the_longest_tests_go_first_each_to_the_least_loaded_shard():
    d = {"a": 10.0, "b": 7.0, "c": 6.0, "d": 4.0, "e": 1.0}
    out = partition(["e", "d", "c", "b", "a"], d, 2)
    # a→0, b→1, c→1 (7 < 10), d→0 (10 < 13), e→1 (13 < 14)
    assert out == [["a", "d"], ["b", "c", "e"]]
    assert loads(out, d) == [14.0, 14.0]


def test_one_very_long_test_gets_a_shard_of_its_own():
    d = {"slow": 100.0, **{f"t{i}": 1.0 for i in range(10)}}
    out = partition(sorted(d), d, 3)
    (alone,) = [s for s in out if "slow" in s]
    assert alone == ["slow"]
    assert makespan(out, d) == lower_bound(d, 3) == 100.0


# --- unknown tests: spread by count ------------------------------------------------


@pytest.mark.parametrize(("n", "shards"), [(1, 3), (7, 3), (9, 3), (10, 4), (100, 7), (3, 8)])
def test_tests_never_seen_are_spread_evenly_by_count(n, shards):
    ids = [f"new_{i}" for i in range(n)]
    counts = [len(s) for s in partition(ids, {}, shards)]
    assert sum(counts) == n
    assert max(counts) - min(counts) <= 1


@PROPERTY
@given(suites())
def test_unknown_tests_differ_by_at_most_one_per_shard_whatever_the_known_load(suite):
    ids, durations, shards = suite
    out = partition(ids, durations, shards)
    unknown = [sum(t not in durations for t in s) for s in out]
    assert max(unknown) - min(unknown) <= 1


def test_unknown_tests_go_first_to_the_least_loaded_shards():
    d = {"a": 10.0, "b": 1.0}
    out = partition(["x", "a", "y", "b", "z"], d, 3)
    # by history: shard 0 holds a (10s), shard 1 holds b (1s), shard 2 is empty
    assert out == [["a", "z"], ["b", "y"], ["x"]]


def test_known_tests_are_placed_as_if_the_unknown_ones_were_not_there():
    d = {"a": 9.0, "b": 5.0, "c": 4.0, "d": 3.0, "e": 2.0}
    with_new = partition(["new1", "a", "b", "new2", "c", "d", "e", "new3"], d, 3)
    without = partition(list(d), d, 3)
    assert [[t for t in s if t in d] for s in with_new] == without


@PROPERTY
@given(suites())
def test_unknown_tests_never_move_a_known_one(suite):
    ids, durations, shards = suite
    known_only = [t for t in ids if t in durations]
    with_unknown = partition(ids, durations, shards)
    assert [[t for t in s if t in durations] for s in with_unknown] == partition(known_only, durations, shards)


def test_mixed_known_and_unknown_tests_keep_the_history_balance():
    d = {f"k{i}": float(i + 1) for i in range(9)}
    ids = list(d) + [f"u{i}" for i in range(6)]
    out = partition(ids, d, 3)
    assert sorted(t for s in out for t in s) == sorted(ids)
    assert [sum(t.startswith("u") for t in s) for s in out] == [2, 2, 2]
    # 45s of history on 3 shards: 9|8|7, then 6, 5, 4 each onto the lightest, then 3, 2, 1
    assert loads(out, d) == [16.0, 15.0, 14.0]
    assert makespan(out, d) <= 4 / 3 * lower_bound(d, 3)


# --- determinism -------------------------------------------------------------------


@PROPERTY
@given(suites())
def test_equal_inputs_give_equal_partitions(suite):
    ids, durations, shards = suite
    first = partition(list(ids), dict(durations), shards)
    assert partition(list(ids), dict(durations), shards) == first
    assert partition(list(ids), dict(reversed(list(durations.items()))), shards) == first


@PROPERTY
@given(suites(unknown=False), st.randoms(use_true_random=False))
def test_the_order_of_the_list_does_not_change_where_known_tests_go(suite, rng):
    ids, durations, shards = suite
    shuffled = list(ids)
    rng.shuffle(shuffled)
    assert partition(shuffled, durations, shards) == partition(ids, durations, shards)


def test_equal_durations_are_broken_by_id():
    d = {"b": 1.0, "a": 1.0, "c": 1.0, "d": 1.0}
    assert partition(["d", "c", "b", "a"], d, 2) == [["a", "c"], ["b", "d"]]


def test_partition_does_not_modify_its_inputs():
    ids, durations = ["b", "a", "c"], {"a": 2.0, "b": 1.0}
    partition(ids, durations, 2)
    assert ids == ["b", "a", "c"]
    assert durations == {"a": 2.0, "b": 1.0}


# --- round_robin, makespan, lower_bound -------------------------------------------


def test_round_robin_deals_the_ids_in_turn():
    assert round_robin(["t0", "t1", "t2", "t3", "t4", "t5", "t6"], 3) == [
        ["t0", "t3", "t6"], ["t1", "t4"], ["t2", "t5"]]
    assert round_robin(["a", "b"], 1) == [["a", "b"]]
    assert round_robin(["a"], 3) == [["a"], [], []]
    assert round_robin([], 2) == [[], []]


def test_lpt_is_never_worse_than_round_robin_on_a_heavy_tailed_suite():
    rng = random.Random(7)
    d = {f"t{i:03d}": rng.paretovariate(1.2) for i in range(200)}
    ids = sorted(d)
    lpt = makespan(partition(ids, d, 8), d)
    assert lpt <= makespan(round_robin(ids, 8), d)
    assert lpt <= 4 / 3 * lower_bound(d, 8)


def test_makespan_is_the_load_of_the_busiest_shard():
    d = {"a": 1.5, "b": 2.0, "c": 4.0}
    assert makespan([["a", "b"], ["c"]], d) == 4.0
    assert makespan([["a", "b", "c"], []], d) == 7.5
    assert makespan([["a", "unknown"], ["b"]], d) == 2.0  # a test without history counts as 0
    assert makespan([[], []], d) == 0.0
    assert makespan([], d) == 0.0


def test_lower_bound_is_the_longest_test_or_the_total_shared_perfectly():
    assert lower_bound({}, 4) == 0.0
    assert lower_bound({"a": 3.0}, 4) == 3.0
    assert lower_bound({"a": 10.0, "b": 1.0, "c": 1.0}, 2) == 10.0  # the longest test dominates
    assert lower_bound({"a": 2.0, "b": 2.0, "c": 2.0, "d": 2.0}, 2) == 4.0  # the total dominates
    assert lower_bound({"a": 1.0, "b": 2.0}, 1) == 3.0


@PROPERTY
@given(suites(unknown=False))
def test_no_partition_beats_the_lower_bound(suite):
    ids, durations, shards = suite
    listed = {t: durations[t] for t in ids}
    for split in (partition(ids, listed, shards), round_robin(ids, shards)):
        assert makespan(split, listed) >= lower_bound(listed, shards) - 1e-9


# --- updated -------------------------------------------------------------------------


def test_a_measurement_of_a_known_test_blends_half_and_half():
    assert updated({"a": 10.0}, {"a": 20.0}) == {"a": 15.0}
    assert updated({"a": 10.0}, {"a": 2.0}) == {"a": 6.0}


def test_a_new_test_enters_as_measured():
    assert updated({}, {"a": 3.25}) == {"a": 3.25}
    assert updated({"a": 1.0}, {"b": 4.0}) == {"a": 1.0, "b": 4.0}


def test_tests_not_measured_keep_their_history():
    assert updated({"a": 1.0, "b": 2.0}, {"b": 4.0}) == {"a": 1.0, "b": 3.0}
    assert updated({"a": 1.0}, {}) == {"a": 1.0}


def test_the_weight_of_a_measurement_can_be_chosen():
    assert updated({"a": 10.0}, {"a": 20.0}, weight=0.25) == {"a": 12.5}
    assert updated({"a": 10.0}, {"a": 20.0}, weight=1.0) == {"a": 20.0}
    assert updated({"a": 10.0}, {"a": 20.0}, weight=0.0) == {"a": 10.0}


def test_one_slow_run_is_damped_and_repeated_runs_converge():
    history = {"a": 1.0}
    history = updated(history, {"a": 101.0})
    assert history["a"] == 51.0
    for _ in range(30):
        history = updated(history, {"a": 1.0})
    assert history["a"] == pytest.approx(1.0, abs=1e-6)


def test_updated_returns_a_new_dict_and_leaves_its_inputs_alone():
    history, measured = {"a": 1.0}, {"a": 3.0, "b": 2.0}
    out = updated(history, measured)
    assert out == {"a": 2.0, "b": 2.0}
    assert history == {"a": 1.0}
    assert measured == {"a": 3.0, "b": 2.0}
    assert out is not history
