"""The ledger contract: scenarios every ``Ledger`` implementation must pass.

Each scenario is a plain ``async`` function taking a fresh, empty ledger and
asserting on it; it does not care how it is awaited. ``test_ledger.py`` runs
them against ``InMemoryLedger``; the DB-backed ``DbLedger`` tests run the same
list against a real Buildbot database (``tests/`` has no ``__init__.py``, so
pytest puts it on ``sys.path`` and the module imports by its bare name)::

    from ledger_contract import SCENARIOS

    @pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
    def test_db_ledger_contract(scenario, db_ledger):
        run(scenario(db_ledger))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lpdeploy.core.model import Result, TestRecord

SUITE = "suite-aaaaaaaaaaaa"
OTHER_SUITE = "suite-bbbbbbbbbbbb"
TREE = "1" * 40
OTHER_TREE = "2" * 40
COMMIT = "3" * 40
OTHER_COMMIT = "4" * 40


def make_record(
    result: Result = Result.PASSED,
    *,
    tree: str = TREE,
    commit: str = COMMIT,
    suite: str = SUITE,
    build_number: int | None = 7,
    finished_at: float = 1_700_000_000.5,
    duration: float = 3600.25,
) -> TestRecord:
    return TestRecord(
        tree=tree, commit=commit, suite=suite, result=result,
        build_url=f"http://localhost:8010/#/builders/1/builds/{build_number}",
        build_number=build_number, finished_at=finished_at, duration=duration,
    )


async def unknown_tree_is_not_found(ledger: Any) -> None:
    assert await ledger.lookup(SUITE, TREE) is None


async def recorded_pass_is_found(ledger: Any) -> None:
    rec = make_record(Result.PASSED)
    assert await ledger.record(rec) == rec
    assert await ledger.lookup(SUITE, TREE) == rec


async def recorded_failure_is_found(ledger: Any) -> None:
    rec = make_record(Result.FAILED)
    assert await ledger.record(rec) == rec
    found = await ledger.lookup(SUITE, TREE)
    assert found == rec
    assert not found.passed


async def later_failure_does_not_erase_a_pass(ledger: Any) -> None:
    passed = make_record(Result.PASSED, build_number=1)
    await ledger.record(passed)
    answer = await ledger.record(
        make_record(Result.FAILED, build_number=2, commit=OTHER_COMMIT, finished_at=1_700_000_100.0)
    )
    assert answer == passed  # record() returns what lookup now answers: still the pass
    assert await ledger.lookup(SUITE, TREE) == passed


async def failure_then_pass_is_a_pass(ledger: Any) -> None:
    await ledger.record(make_record(Result.FAILED, build_number=1))
    passed = make_record(Result.PASSED, build_number=2, finished_at=1_700_000_100.0)
    assert await ledger.record(passed) == passed
    assert await ledger.lookup(SUITE, TREE) == passed


async def first_pass_wins(ledger: Any) -> None:
    # two masters recording a pass of the same tree agree on the first one
    first = make_record(Result.PASSED, build_number=1)
    second = make_record(Result.PASSED, build_number=2, commit=OTHER_COMMIT, finished_at=1_700_000_100.0)
    await ledger.record(first)
    assert await ledger.record(second) == first
    assert await ledger.lookup(SUITE, TREE) == first


async def latest_failure_wins(ledger: Any) -> None:
    await ledger.record(make_record(Result.FAILED, build_number=1))
    latest = make_record(Result.FAILED, build_number=2, finished_at=1_700_000_100.0)
    assert await ledger.record(latest) == latest
    assert await ledger.lookup(SUITE, TREE) == latest


async def another_suite_has_not_tested_the_tree(ledger: Any) -> None:
    await ledger.record(make_record(Result.PASSED, suite=SUITE))
    assert await ledger.lookup(OTHER_SUITE, TREE) is None
    assert await ledger.lookup(SUITE, TREE) is not None


async def another_tree_is_not_tested(ledger: Any) -> None:
    await ledger.record(make_record(Result.PASSED, tree=TREE))
    assert await ledger.lookup(SUITE, OTHER_TREE) is None


async def trees_and_suites_are_kept_apart(ledger: Any) -> None:
    a = make_record(Result.PASSED, tree=TREE, suite=SUITE, build_number=1)
    b = make_record(Result.FAILED, tree=OTHER_TREE, suite=SUITE, build_number=2)
    c = make_record(Result.FAILED, tree=TREE, suite=OTHER_SUITE, build_number=3)
    for rec in (a, b, c):
        await ledger.record(rec)
    assert await ledger.lookup(SUITE, TREE) == a
    assert await ledger.lookup(SUITE, OTHER_TREE) == b
    assert await ledger.lookup(OTHER_SUITE, TREE) == c
    assert await ledger.lookup(OTHER_SUITE, OTHER_TREE) is None


async def record_without_build_number_round_trips(ledger: Any) -> None:
    rec = make_record(Result.PASSED, build_number=None, duration=0.0)
    await ledger.record(rec)
    found = await ledger.lookup(SUITE, TREE)
    assert found == rec
    assert found.build_number is None


Scenario = Callable[[Any], Awaitable[None]]

SCENARIOS: list[Scenario] = [
    unknown_tree_is_not_found,
    recorded_pass_is_found,
    recorded_failure_is_found,
    later_failure_does_not_erase_a_pass,
    failure_then_pass_is_a_pass,
    first_pass_wins,
    latest_failure_wins,
    another_suite_has_not_tested_the_tree,
    another_tree_is_not_tested,
    trees_and_suites_are_kept_apart,
    record_without_build_number_round_trips,
]
