"""When a sharded run gives a shard up: pure functions, no Buildbot."""

from __future__ import annotations

import pytest

from lpdeploy.core.shard_watch import MAX_RETRIES, Bounds, Look, Phase, bounds, watch

LIMITS = Bounds(start=60.0, run=1000.0)


def test_the_start_bound_is_the_suite_timeout_but_never_more_than_five_minutes():
    assert bounds(timeout=60, max_time=600).start == 60.0
    assert bounds(timeout=1200, max_time=21600).start == 300.0


def test_the_run_bound_covers_max_time_a_silent_timeout_and_a_margin():
    assert bounds(timeout=1200, max_time=21600).run == 21600 + 1200 + 600


@pytest.mark.parametrize("phase", [Phase.STARTING, Phase.NO_WORKER])
def test_a_shard_that_does_not_start_is_given_up_after_the_start_bound(phase):
    assert watch(Look(phase, since=100.0), now=160.0, limits=LIMITS) is None  # exactly the bound: still waits
    why = watch(Look(phase, since=100.0, state="pinging worker"), now=161.0, limits=LIMITS)
    assert why is not None and why.startswith(f"{phase} after 61s")


def test_the_reason_quotes_buildbot_s_state_of_the_stuck_build():
    why = watch(Look(Phase.STARTING, since=0.0, state="pinging worker"), now=61.0, limits=LIMITS)
    assert "(still 'pinging worker')" in why


@pytest.mark.parametrize("phase", [Phase.QUEUED, Phase.RUNNING])
def test_a_shard_waiting_for_a_busy_worker_or_running_gets_the_run_bound(phase):
    assert watch(Look(phase, since=0.0), now=999.0, limits=LIMITS) is None
    assert watch(Look(phase, since=0.0), now=1001.0, limits=LIMITS).startswith(f"{phase} for 1001s")


def test_a_done_shard_is_never_given_up():
    assert watch(Look(Phase.DONE, since=0.0, retried=MAX_RETRIES), now=1e9, limits=LIMITS) is None


def test_a_shard_whose_worker_keeps_getting_lost_is_given_up_whatever_its_phase():
    assert watch(Look(Phase.RUNNING, since=0.0, retried=MAX_RETRIES - 1), now=1.0, limits=LIMITS) is None
    assert watch(Look(Phase.QUEUED, since=0.0, retried=MAX_RETRIES), now=1.0, limits=LIMITS) == (
        f"lost its worker {MAX_RETRIES} times")
