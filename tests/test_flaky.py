"""Flaky or broken, the pure parts (``core.flaky``) and the flaky log on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from buildbot.test.reactor import TestReactorMixin
from support import add_scenario_tests, make_db_master
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.flaky import (
    DAY,
    MAX_RERUNS,
    FlakyKind,
    FlakyRecord,
    counts,
    judge,
    to_rerun,
    visible,
)
from lpdeploy.core.results import TestOutcome, TestStatus
from lpdeploy.stores.flaky import DbFlakyLog, InMemoryFlakyLog

P, F = TestOutcome(TestStatus.PASSED, 1.0), TestOutcome(TestStatus.FAILED, 1.0)
NOW = 1_800_000_000.0
SUITE = "suite-0123456789ab"


def rec(test: str, at: float, kind: FlakyKind = FlakyKind.FLAKY, revision: str = "a" * 40,
        embargoed: bool = False, number: int = 1) -> FlakyRecord:
    return FlakyRecord(test, SUITE, revision, f"http://m/#/builders/1/builds/{number}", number, at, kind, embargoed)


# --- judging a run ---------------------------------------------------------------------------


def test_a_failure_that_passes_alone_is_flaky_and_the_run_passes():
    v = judge({"a": F, "b": P}, {"a": P}, ())
    assert (v.failed, v.flaky, v.passed) == ((), ("a",), True)


def test_a_failure_that_fails_again_fails_the_run():
    v = judge({"a": F, "b": P}, {"a": F}, ())
    assert (v.failed, v.flaky, v.passed) == (("a",), (), False)


def test_a_rerun_that_gave_no_result_fails_the_run():
    assert judge({"a": F}, {"a": None}, ()).failed == ("a",)


def test_a_failure_that_was_not_rerun_fails_the_run():
    assert judge({"a": F}, {}, ()).failed == ("a",)


def test_a_quarantined_failure_never_fails_the_run_and_is_reported():
    v = judge({"a": F, "b": P, "c": P}, {}, ("a", "c"))
    assert (v.failed, v.quarantined, v.passed) == ((), ("a",), True)
    assert judge({"a": F, "b": F}, {}, ("a",)).failed == ("b",)


def test_failures_are_rerun_except_quarantined_and_only_when_asked():
    assert to_rerun(["a", "b"], (), 0) == ([], "")
    wanted, why = to_rerun(["a", "b", "q"], ("q",), 1)
    assert wanted == ["a", "b"] and "re-running 2" in why


def test_too_many_failures_are_a_broken_commit_and_not_rerun():
    many = [f"t{i}" for i in range(MAX_RERUNS + 1)]
    wanted, why = to_rerun(many, (), 1)
    assert wanted == [] and "broken commit" in why
    assert to_rerun(many[:MAX_RERUNS], (), 1)[0] == many[:MAX_RERUNS]


# --- what is shown ---------------------------------------------------------------------------


def test_counts_per_test_over_thirty_days_most_often_first_with_the_last_build():
    records = [rec("a", NOW - 40 * DAY), rec("a", NOW - 2 * DAY, number=5), rec("a", NOW - DAY, number=7,
                                                                                  revision="b" * 40),
               rec("b", NOW - DAY), rec("a", NOW - DAY, FlakyKind.QUARANTINED)]
    got = counts(records, NOW)
    assert [(c.test, c.kind, c.count) for c in got] == [
        ("a", FlakyKind.FLAKY, 2), ("a", FlakyKind.QUARANTINED, 1), ("b", FlakyKind.FLAKY, 1)]
    assert (got[0].last_revision, got[0].last_build_url) == ("b" * 40, "http://m/#/builders/1/builds/7")


def test_records_of_security_builds_are_seen_with_the_security_role_only():
    records = [rec("a", NOW), rec("s", NOW, embargoed=True)]
    assert [r.test for r in visible(records, may_see_security=False)] == ["a"]
    assert [r.test for r in visible(records, may_see_security=True)] == ["a", "s"]


def test_a_record_survives_json():
    r = rec("pkg.test_x", NOW, FlakyKind.QUARANTINED, embargoed=True)
    assert FlakyRecord.from_json(r.as_json()) == r


# --- the store contract, on both stores ------------------------------------------------------


async def records_are_appended_and_read_oldest_first(log: Any) -> None:
    assert await log.records() == []
    await log.record(rec("b", NOW))
    await log.record(rec("a", NOW - 10))
    await log.record(rec("a", NOW))  # the same test and time twice: two records, none replaced
    got = await log.records()
    assert [(r.test, r.at) for r in got] == [("a", NOW - 10), ("b", NOW), ("a", NOW)] or \
        [(r.test, r.at) for r in got] == [("a", NOW - 10), ("a", NOW), ("b", NOW)]
    assert len(await log.records(since=NOW)) == 2


async def failed_tests_are_kept_per_suite_and_tree(log: Any) -> None:
    assert await log.failed(SUITE, "t1") is None
    await log.save_failed(SUITE, "t1", ["x", "y"])
    await log.save_failed("other", "t1", ["z"])
    assert await log.failed(SUITE, "t1") == ["x", "y"]
    await log.save_failed(SUITE, "t1", [])
    assert await log.failed(SUITE, "t1") == []
    assert await log.failed(SUITE, "t2") is None


Scenario = Callable[[Any], Awaitable[None]]
SCENARIOS: list[Scenario] = [records_are_appended_and_read_oldest_first, failed_tests_are_kept_per_suite_and_tree]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_flaky_log_passes_the_scenario(scenario):
    asyncio.run(scenario(InMemoryFlakyLog()))


class DbFlakyLogScenarios(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.log = DbFlakyLog(self.master)


add_scenario_tests(DbFlakyLogScenarios, SCENARIOS, store="log", kind="scenario", label="flaky log scenario")
