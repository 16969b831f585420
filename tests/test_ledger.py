"""The ledger contract, run against the in-memory ledger; plus the JSON form of a record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from ledger_contract import SCENARIOS, make_record

from lpdeploy.core.model import Result
from lpdeploy.stores.ledger import InMemoryLedger, from_json, to_json


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def ledger() -> InMemoryLedger:
    return InMemoryLedger()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_ledger_honours_the_contract(scenario, ledger):
    run(scenario(ledger))


def test_the_contract_covers_every_scenario_in_its_module():
    import ledger_contract

    defined = {
        name for name, obj in vars(ledger_contract).items()
        if asyncio.iscoroutinefunction(obj) and getattr(obj, "__module__", None) == "ledger_contract"
    }
    assert defined == {s.__name__ for s in SCENARIOS}


def test_a_contract_scenario_can_fail():
    # a ledger that forgets everything must fail the "recorded pass is found" scenario
    class Forgetful:
        async def lookup(self, suite, tree):
            return None

        async def record(self, rec):
            return rec

    failing = [s for s in SCENARIOS if s.__name__ == "recorded_pass_is_found"]
    with pytest.raises(AssertionError):
        run(failing[0](Forgetful()))


def test_separate_in_memory_ledgers_share_nothing():
    a, b = InMemoryLedger(), InMemoryLedger()
    rec = make_record(Result.PASSED)
    run(a.record(rec))
    assert run(b.lookup(rec.suite, rec.tree)) is None


@pytest.mark.parametrize(
    "rec",
    [
        make_record(Result.PASSED),
        make_record(Result.FAILED, build_number=None, duration=0.0),
        make_record(Result.PASSED, finished_at=1_700_000_000.123456, duration=1.5),
    ],
    ids=["passed", "failed-no-build-number", "fractional-times"],
)
def test_a_record_survives_the_json_round_trip(rec):
    data = to_json(rec)
    assert from_json(data) == rec
    # what a database stores is text: the round trip must survive real JSON too
    assert from_json(json.loads(json.dumps(data))) == rec


def test_the_json_form_holds_plain_values():
    data = to_json(make_record(Result.FAILED))
    assert data["result"] == "failed"
    assert json.loads(json.dumps(data)) == data


def test_an_old_entry_without_duration_or_build_number_still_reads():
    data = to_json(make_record(Result.PASSED))
    del data["duration"]
    del data["build_number"]
    rec = from_json(data)
    assert rec.duration == 0.0
    assert rec.build_number is None
    assert rec.passed


def test_an_integer_finished_at_reads_as_a_float():
    data = to_json(make_record(Result.PASSED))
    data["finished_at"] = 1_700_000_000
    assert from_json(data).finished_at == 1_700_000_000.0
    assert isinstance(from_json(data).finished_at, float)
