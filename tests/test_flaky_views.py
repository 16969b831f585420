"""``flaky.json`` and ``lpdeploy flaky``: counts per test over 30 days, the quarantine, and the embargo.

The resource renders through Buildbot's ``FakeRequest`` on in-memory stores
(as ``test_www_resources.py``); the CLI runs in-process with ``Client.get``
answering (as ``test_cli_lists.py``).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from buildbot.test.fake.web import FakeRequest
from twisted.trial import unittest

from lpdeploy.core.flaky import DAY, FlakyKind, FlakyRecord
from lpdeploy.core.settings import parse_settings
from lpdeploy.facts import services
from lpdeploy.tools import cli
from lpdeploy.tools.client import Client
from lpdeploy.web.www import SERVICE_NAME, FlakyResource, LpDeployApp

NOW = 1_800_000_000.0
SETTINGS = parse_settings({"repository": {"url": "file:///srv/up.git"},
                           "suite": {"shards": 2, "list_command": ["t"], "run_command": ["t", "{id_file}"],
                                     "rerun_failures": 1, "quarantine": ["pkg.test_q"]}})


def record(test: str, at: float, embargoed: bool = False, kind: FlakyKind = FlakyKind.FLAKY) -> FlakyRecord:
    return FlakyRecord(test, SETTINGS.suite.identity, "a" * 40, "http://m/#/builders/3/builds/9", 9, at, kind,
                       embargoed)


class _Master:
    def __init__(self) -> None:
        self.www = SimpleNamespace(
            authz=SimpleNamespace(getRolesFromUser=lambda info: info.get("roles", [])),
            getUserInfos=lambda request: request.user_info)
        self.reactor = SimpleNamespace(seconds=lambda: NOW)
        self.service_manager = SimpleNamespace(namedServices={SERVICE_NAME: SimpleNamespace(settings=SETTINGS)})


class FlakyPage(unittest.TestCase):
    def setUp(self) -> None:
        self.master = _Master()
        self.stores = services.in_memory(self.master)
        self.app = LpDeployApp()
        self.app.master = self.master

    async def get(self, roles: tuple[str, ...] = ()) -> Any:
        request = FakeRequest(args={})
        request.user_info = {"roles": list(roles)}
        await request.test_render(FlakyResource(self.app))
        return json.loads(request.written)

    async def given(self, *records: FlakyRecord) -> None:
        for r in records:
            await self.stores.flaky_log.record(r)

    async def test_counts_per_test_over_thirty_days_and_the_quarantine(self) -> None:
        await self.given(record("pkg.test_a", NOW - DAY), record("pkg.test_a", NOW - 2 * DAY),
                         record("pkg.test_a", NOW - 31 * DAY), record("pkg.test_q", NOW - DAY,
                                                                     kind=FlakyKind.QUARANTINED))
        body = await self.get()
        self.assertEqual([(t["test"], t["kind"], t["count"]) for t in body["tests"]],
                         [("pkg.test_a", "flaky", 2), ("pkg.test_q", "quarantined", 1)])
        self.assertEqual(body["tests"][0]["last_build_url"], "http://m/#/builders/3/builds/9")
        self.assertEqual((body["quarantine"], body["window_days"], body["rerun_failures"]),
                         (["pkg.test_q"], 30, 1))

    async def test_a_security_builds_record_is_seen_by_the_security_role_only(self) -> None:
        await self.given(record("pkg.test_a", NOW - DAY), record("pkg.test_secret", NOW - DAY, embargoed=True))
        for roles in ((), ("losa",)):
            self.assertNotIn("pkg.test_secret", json.dumps(await self.get(roles)))
        body = await self.get(("security",))
        self.assertEqual(sorted(t["test"] for t in body["tests"]), ["pkg.test_a", "pkg.test_secret"])


REPORT = {"suite": "suite-x", "window_days": 30, "rerun_failures": 1, "quarantine": ["pkg.test_q"],
          "tests": [{"test": "pkg.test_a", "kind": "flaky", "count": 3, "last_revision": "b" * 40,
                     "last_build_url": "http://m/#/builders/3/builds/9", "last_at": NOW}]}


@pytest.fixture
def answer(monkeypatch):
    monkeypatch.setattr(Client, "login", lambda self: None)
    monkeypatch.setattr(Client, "get", lambda self, path: REPORT if path == "plugins/lpdeploy/flaky.json" else {})


def test_the_cli_lists_each_flaky_test_with_its_count_and_last_build(answer, capsys):
    assert cli.main(["flaky"]) == 0
    out = capsys.readouterr().out
    assert "3x flaky" in out and "pkg.test_a" in out and "bbbbbbbbbbbb" in out
    assert "http://m/#/builders/3/builds/9" in out
    assert "quarantined ([suite] quarantine): pkg.test_q" in out


def test_the_cli_prints_the_report_as_json(answer, capsys):
    assert cli.main(["flaky", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT
