"""The registry contract, run against the in-memory registry."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from registry_contract import SCENARIOS

from lpdeploy.core.model import Cowboy, Deployment, Freeze, Release
from lpdeploy.stores.registry import InMemoryRegistry, Registry


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_registry_honours_the_contract(scenario):
    run(scenario(InMemoryRegistry()))


def test_the_contract_covers_every_scenario_in_its_module():
    import registry_contract

    defined = {
        name for name, obj in vars(registry_contract).items()
        if asyncio.iscoroutinefunction(obj) and getattr(obj, "__module__", None) == "registry_contract"
        and not name.startswith("_")  # helpers
    }
    assert defined == {s.__name__ for s in SCENARIOS}
    assert len(SCENARIOS) == len(set(SCENARIOS))


def test_the_contract_calls_every_method_of_the_registry_interface():
    # a store method no scenario calls is a method two stores may disagree on unnoticed
    methods = {name for name in vars(Registry) if not name.startswith("_") and callable(getattr(Registry, name))}
    called: set[str] = set()

    class Recording(InMemoryRegistry):
        def __getattribute__(self, name):
            if name in methods:
                called.add(name)
            return super().__getattribute__(name)

    for scenario in SCENARIOS:
        run(scenario(Recording()))
    assert methods - called == set()
    assert {"save_fix", "fixes", "fix", "record_event", "events", "record_release", "releases",
            "record_merge_back", "merge_backs", "save_job", "job"} <= methods


def test_a_contract_scenario_can_fail_on_a_history_that_keeps_only_the_latest_release_of_a_branch():
    class OneRowPerBranch(InMemoryRegistry):
        async def record_release(self, release):
            self._releases = {k: r for k, r in self._releases.items() if r.branch != release.branch}
            await super().record_release(release)

    with pytest.raises(AssertionError):
        run(_scenario("every_release_of_a_branch_is_kept")(OneRowPerBranch()))


def test_a_contract_scenario_can_fail_on_a_history_that_overwrites_a_release():
    class LastWins(InMemoryRegistry):
        async def record_release(self, release: Release):
            self._releases[(release.candidate, release.fix_commit)] = release

    with pytest.raises(AssertionError):
        run(_scenario("a_release_recorded_again_keeps_the_first_record")(LastWins()))


def _scenario(name: str):
    (found,) = [s for s in SCENARIOS if s.__name__ == name]
    return found


def test_a_contract_scenario_can_fail_on_a_registry_that_forgets_ends():
    class ForgetsEnds(InMemoryRegistry):
        async def end_cowboy(self, cowboy_id, state, who, reason, now):
            before = dict(self._cowboys)
            ended = await super().end_cowboy(cowboy_id, state, who, reason, now)
            self._cowboys = before  # answers as if ended, stores nothing
            return ended

    with pytest.raises(AssertionError):
        run(_scenario("a_retired_cowboy_leaves_the_active_list")(ForgetsEnds()))


def test_a_contract_scenario_can_fail_on_an_audit_log_in_recording_order():
    class OldestFirst(InMemoryRegistry):
        async def audit_log(self, limit=100):
            return list(self._audit)[:limit]

    with pytest.raises(AssertionError):
        run(_scenario("audit_entries_come_back_newest_first_with_their_details")(OldestFirst()))


def test_a_contract_scenario_can_fail_on_a_registry_that_reuses_ids():
    class CountsActive(InMemoryRegistry):
        async def add_cowboy(self, server, reason, fixed_by, who, now):
            c = Cowboy(len(await self.cowboys()) + 1, server, reason, fixed_by, who, now)
            self._cowboys[c.id] = c
            return c

    with pytest.raises(AssertionError):
        run(_scenario("ids_are_never_reused_after_an_end")(CountsActive()))


def test_separate_in_memory_registries_share_nothing():
    a, b = InMemoryRegistry(), InMemoryRegistry()

    async def story():
        await a.add_cowboy("app1", "hot patch", None, "bob", 1.0)
        await a.record_deployment(Deployment("app1", "a" * 40, 1.0, "bob"))
        await a.set_freeze(Freeze("release", "bob", 1.0))
        assert await b.cowboys() == []
        assert await b.deployment("app1") is None
        assert await b.freeze() is None
        assert (await b.add_cowboy("app1", "other", None, "carol", 2.0)).id == 1

    run(story())
