"""How the CLI waits for a build: prompt for quick decisions, cheap for long builds (issue 15, part 5).

``Client.wait_for_request`` polls the REST API with a backing-off delay
(``next_poll``). These tests run it on a fake clock: the "master" answers
from a table of what the build looks like at each moment, and ``sleep``
only advances the clock, so the schedule is checked exactly, without timing.
"""

from __future__ import annotations

from typing import Any

import pytest

from lpdeploy.tools.client import Client, next_poll


class FakeClockClient(Client):
    """A client whose master finishes build request 7 at ``decided_at`` seconds on a fake clock."""

    def __init__(self, decided_at: float) -> None:
        super().__init__("http://master.invalid/")
        self.now = 0.0
        self.decided_at = decided_at
        self.requests = 0
        self.clock = lambda: self.now  # type: ignore[method-assign]
        self.sleep = self._advance  # type: ignore[method-assign]

    def _advance(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds

    def api(self, path: str) -> Any:
        self.requests += 1
        done = self.now >= self.decided_at
        if path == "buildrequests/7/builds":
            return {"builds": [{"buildid": 70, "number": 3, "complete": done,
                                "state_string": "finished" if done else "promoting", "results": 0 if done else None}]}
        if path == "builds/70/properties":
            return {"properties": [{"lpdeploy_outcome": ["moved", "Promote"]}]}
        raise AssertionError(path)


def wait(decided_at: float) -> FakeClockClient:
    client = FakeClockClient(decided_at)
    build = client.wait_for_request(7, lambda line: None, timeout=24 * 3600)
    assert build["complete"] and build["properties"] == {"lpdeploy_outcome": "moved"}
    return client


def test_the_first_poll_comes_after_50_ms_and_the_delay_grows_with_the_wait_up_to_1_s():
    assert next_poll(0.0) == 0.05
    assert next_poll(0.1) == 0.05
    assert next_poll(0.4) == pytest.approx(0.1)
    assert next_poll(0.8) == pytest.approx(0.2)
    assert next_poll(3.0) == 0.75
    assert next_poll(4.0) == 1.0
    assert next_poll(36_000.0) == 1.0
    waits = [i / 100 for i in range(0, 100_000)]
    assert all(a <= b for a, b in zip(map(next_poll, waits), map(next_poll, waits[1:]), strict=False))


@pytest.mark.parametrize("decided_at", [i / 100 for i in range(1, 81)])
def test_a_decision_within_0_8_s_is_seen_within_0_2_s(decided_at):
    client = wait(decided_at)
    assert decided_at <= client.now <= decided_at + 0.2


@pytest.mark.parametrize("decided_at", [5.0, 61.5, 3600.0, 4 * 3600.0 + 0.3])
def test_a_long_build_is_seen_within_a_second_at_about_one_request_a_second(decided_at):
    client = wait(decided_at)
    assert decided_at <= client.now <= decided_at + 1.0
    assert client.requests <= decided_at + 40  # one a second, plus the quicker ones at the start


def test_a_timeout_gives_up_naming_the_request():
    client = FakeClockClient(decided_at=10_000.0)
    from lpdeploy.tools.client import ApiError

    with pytest.raises(ApiError, match=r"gave up waiting after 30s; the build goes on \(request 7\)"):
        client.wait_for_request(7, lambda line: None, timeout=30)
    assert 30 < client.now <= 31
