"""Upstream down or slow (issue 12): the pure rules, both stores, and the reads that back off.

- ``core.upstream_health``: "since" is the first failure of a run, the wait
  between reads doubles and stays bounded, a success clears everything.
- The store contract on ``InMemoryUpstreamHealth`` and on ``DbUpstreamHealth``
  over a real Buildbot database (a second master on the same database reads
  the same "since": it is not in one process's memory).
- ``read_tips`` on a fake master with a real database and a real bare
  upstream: an unreachable upstream records a failure and the next read waits
  (no git at all before it is due); restoring it clears the record and
  announces the recovery on the message queue.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, add_scenario_tests, make_db_master, temp_dir, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.settings import parse_settings
from lpdeploy.core.upstream_health import (
    MAX_BACKOFF,
    RECOVERED_KEY,
    UpstreamHealth,
    after_read,
    backoff_cap,
    may_read,
    unreachable_line,
)
from lpdeploy.facts.services import services
from lpdeploy.master.upstream_watch import read_tips
from lpdeploy.stores.upstream_health import DbUpstreamHealth, InMemoryUpstreamHealth

URL = "file:///srv/git/app.git"
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


# --- the rules ---------------------------------------------------------------------------


def test_the_first_failure_sets_since_and_later_ones_keep_it():
    first = after_read(UpstreamHealth(), T0, "timed out after 120s", poll_interval=60)
    assert (first.unreachable_since, first.failures, first.next_read) == (T0, 1, T0 + 60)
    second = after_read(first, T0 + 60, "exit 128", poll_interval=60)
    assert (second.unreachable_since, second.failures, second.error) == (T0, 2, "exit 128")
    assert second.next_read == T0 + 60 + 120  # the wait doubled


def test_the_wait_between_reads_is_bounded():
    h = UpstreamHealth()
    for n in range(12):
        h = after_read(h, T0 + n, "down", poll_interval=60)
    assert h.next_read - (T0 + 11) == backoff_cap(60) == MAX_BACKOFF
    assert backoff_cap(1) == 5  # a fast poller waits at most five intervals
    assert backoff_cap(3600) == 3600  # and never reads more often than it polls


def test_a_success_clears_the_record():
    down = after_read(after_read(UpstreamHealth(), T0, "down", 60), T0 + 60, "down", 60)
    assert after_read(down, T0 + 200, None, 60) == UpstreamHealth()
    assert after_read(down, T0 + 200, None, 60).reachable


def test_a_read_is_due_while_reachable_and_after_the_backoff_while_not():
    assert may_read(UpstreamHealth(), T0)
    down = after_read(UpstreamHealth(), T0, "down", 60)
    assert not may_read(down, T0 + 59)
    assert may_read(down, T0 + 60)


def test_the_status_line_names_the_time_since_the_upstream_is_unreachable():
    assert unreachable_line(UpstreamHealth()) is None
    down = after_read(after_read(UpstreamHealth(), T0, "down", 60), T0 + 60, "down", 60)
    assert unreachable_line(down) == "upstream unreachable since 2027-01-15 08:00:00 UTC (2 failed reads)"
    assert down.as_json()["line"] == unreachable_line(down)
    assert UpstreamHealth.from_json(down.as_json()) == down


# --- the stores ----------------------------------------------------------------------------


async def nothing_recorded_is_reachable(store: Any) -> None:
    assert (await store.get(URL)).reachable


async def a_saved_failure_is_read_back_and_a_success_clears_it(store: Any) -> None:
    down = after_read(UpstreamHealth(), T0, "timed out", 60)
    await store.save(URL, down)
    assert await store.get(URL) == down
    assert (await store.get("file:///srv/git/other.git")).reachable  # per upstream
    await store.save(URL, UpstreamHealth())
    assert (await store.get(URL)).reachable


SCENARIOS = [nothing_recorded_is_reachable, a_saved_failure_is_read_back_and_a_success_clears_it]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_in_memory_store_passes_the_scenario(scenario):
    asyncio.run(scenario(InMemoryUpstreamHealth()))


class DbUpstreamHealthScenarios(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.store = DbUpstreamHealth(self.master)

    @async_to_deferred
    async def test_another_master_on_the_database_reads_the_same_since(self):
        a, b = await two_masters_on_one_database(self)
        down = after_read(UpstreamHealth(), T0, "timed out", 60)
        await DbUpstreamHealth(a).save(URL, down)
        self.assertEqual(await DbUpstreamHealth(b).get(URL), down)


add_scenario_tests(DbUpstreamHealthScenarios, SCENARIOS, store="store", kind="db", label="database store")


# --- the reads that back off ----------------------------------------------------------------


class ReadTips(TestReactorMixin, unittest.TestCase):
    """``read_tips`` as the poller and the schedulers call it, on Buildbot's fake clock."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-health-")
        self.repo = GitUpstream(base)
        self.repo.push("devel", self.repo.commit("Initial release"))
        self.master = yield make_db_master(self, basedir=os.path.join(base, "master"), wantMq=True)
        self.reactor.advance(T0)
        self.settings = parse_settings({"repository": {"url": self.repo.url, "poll_interval": 60, "timeout": 5},
                                        "suite": {"command": ["true"]}})
        self.hidden = self.repo.bare + ".away"

    def take_down(self):
        os.rename(self.repo.bare, self.hidden)

    def bring_back(self):
        os.rename(self.hidden, self.repo.bare)

    async def health(self):
        return await services(self.master).upstream_health.get(self.repo.url)

    def reads(self):
        """Count the upstream's fetches from now on."""
        upstream = services(self.master).upstream(self.repo.url)
        real, calls = upstream.fetch, []

        async def fetch():
            calls.append(self.reactor.seconds())
            return await real()

        upstream.fetch = fetch
        return calls

    @async_to_deferred
    async def test_an_unreachable_upstream_is_recorded_with_its_time_and_the_reads_back_off(self):
        calls = self.reads()
        self.take_down()
        self.assertIsNone(await read_tips(self.master, self.settings, "poller"))
        health = await self.health()
        self.assertEqual((health.unreachable_since, health.failures), (T0, 1))
        self.reactor.advance(59)
        self.assertIsNone(await read_tips(self.master, self.settings, "poller"))
        self.assertEqual(len(calls), 1, "read again before the backoff was over")
        self.reactor.advance(1)
        self.assertIsNone(await read_tips(self.master, self.settings, "poller"))
        health = await self.health()
        self.assertEqual((health.unreachable_since, health.failures, len(calls)), (T0, 2, 2))
        self.assertEqual(health.next_read, T0 + 60 + 120)
        self.assertEqual(self.master.mq.productions, [])

    @async_to_deferred
    async def test_a_recovery_clears_the_record_and_is_announced(self):
        self.take_down()
        await read_tips(self.master, self.settings, "poller")
        self.bring_back()
        self.reactor.advance(60)
        tips = await read_tips(self.master, self.settings, "poller")
        self.assertEqual(tips.get("devel"), self.repo.tip("devel"))
        self.assertTrue((await self.health()).reachable)
        self.assertEqual(self.master.mq.productions, [(RECOVERED_KEY, {"unreachable_since": T0})])
        await read_tips(self.master, self.settings, "poller")  # reachable and reachable: announced once
        self.assertEqual(len(self.master.mq.productions), 1)
