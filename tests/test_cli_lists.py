"""A list the CLI shortens says so, and ``--all`` prints all of it (issue 15, part 1).

The CLI runs in-process through ``lpdeploy.tools.cli.main``; the master's
answer is given by replacing ``Client.get`` (the HTTP round trip is tested in
``test_cli_input.py``).
"""

from __future__ import annotations

import pytest

from lpdeploy.tools import cli
from lpdeploy.tools.client import Client

ENTRIES = [{"at": 1_700_000_000.0 - i, "who": "losa-bob", "action": "freeze", "details": {"n": i}}
           for i in range(60)]


@pytest.fixture
def audit_answer(monkeypatch):
    monkeypatch.setattr(Client, "login", lambda self: None)
    monkeypatch.setattr(Client, "get", lambda self, path: ENTRIES if path == "plugins/lpdeploy/audit.json" else {})


def entry_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if " losa-bob freeze " in line]


def test_the_audit_list_says_when_it_is_shortened(audit_answer, capsys):
    assert cli.main(["audit"]) == 0
    out = capsys.readouterr().out
    assert len(entry_lines(out)) == 50
    assert "(the newest 50 of 60 entries shown; --all or --limit N for more)" in out


def test_all_prints_every_audit_entry_without_a_note(audit_answer, capsys):
    assert cli.main(["audit", "--all"]) == 0
    out = capsys.readouterr().out
    assert len(entry_lines(out)) == 60
    assert "shown" not in out


def test_a_list_within_the_limit_has_no_note(audit_answer, capsys):
    assert cli.main(["audit", "--limit", "60"]) == 0
    out = capsys.readouterr().out
    assert len(entry_lines(out)) == 60 and "shown" not in out
