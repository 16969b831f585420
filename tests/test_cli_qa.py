"""``lpdeploy qa`` and ``lpdeploy promote`` under require_qa, against a scripted client: what they send and print."""

from __future__ import annotations

from typing import Any

import pytest
from test_cli_commands import OLD, SHA, Master, build, run

from lpdeploy.core.errors import ApiError

REPORT = {
    "base": OLD, "deployable": SHA, "left_behind": ["b" * 40], "staging_servers": ["qastaging"],
    "blocker": {"revision": "b" * 40, "why": "bbbbbbbbbbbb was marked bad by quinn: search 500s",
                "who": "Dev <dev@example.com> (its author), or the qa role (quinn)"},
    "commits": [
        {"revision": SHA, "subject": "Fix login", "author": "Dev <dev@example.com>", "qa": "ok", "security": False,
         "bugs": [{"bug": "1234", "url": "https://b/1234"}], "staging": ["qastaging"], "marked_by": "quinn",
         "marked_at": 1.0, "reason": "works", "reverted_by": None},
        {"revision": "b" * 40, "subject": "Speed up search", "author": "Dev <dev@example.com>", "qa": "bad",
         "security": False, "bugs": [], "staging": [], "marked_by": "quinn", "marked_at": 2.0,
         "reason": "search 500s", "reverted_by": None},
    ]}


class Marking(Master):
    def __init__(self, refuse: ApiError | None = None) -> None:
        super().__init__(pages={"plugins/lpdeploy/qa.json": REPORT})
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse

    def post(self, path: str, body: dict[str, Any]) -> Any:
        if self.refuse:
            raise self.refuse
        self.posted.append((path, body))
        return {"marked": body["revisions"], "state": body["state"], "by": "quinn", "at": 1.0,
                "reason": body["reason"]}


def test_qa_bad_posts_the_state_revisions_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    master = Marking()
    assert run(master, "qa", "bad", SHA, OLD, "--reason", "search 500s") == 0
    assert master.posted == [("plugins/lpdeploy/qa-mark", {"state": "bad", "revisions": [SHA, OLD],
                                                           "reason": "search 500s"})]
    assert f"{SHA[:12]} marked bad by quinn: search 500s" in capsys.readouterr().out


@pytest.mark.parametrize("rev", [["abc123"], ["--", "--all"], [SHA.upper()], [SHA + "0"]])
def test_a_revision_that_is_not_a_full_sha_is_refused_before_anything_is_sent(rev: list[str]) -> None:
    master = Marking()
    assert run(master, "qa", "ok", *rev) == 2
    assert master.posted == []


def test_a_refusal_by_the_master_exits_1_with_its_words(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = "not allowed: user 'carol' may not mark revisions (marking needs the qa or losa role)"
    assert run(Marking(ApiError(refusal, 403, refusal)), "qa", "ok", SHA) == 1
    assert refusal in capsys.readouterr().err


def test_qa_list_shows_the_deployable_line_the_blocker_and_each_commit(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Marking(), "qa", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"deployable: {SHA[:12]} (1 of 2 commits)"
    assert out[1].startswith("blocked by bbbbbbbbbbbb: bbbbbbbbbbbb was marked bad by quinn")
    assert out.index("  ---- deployable ----") == out.index(next(x for x in out if x.startswith(f"  {SHA[:12]}"))) + 2
    assert any("bugs: #1234" in x and "on qastaging" in x for x in out)


def test_promote_under_require_qa_prints_what_it_left_behind(capsys: pytest.CaptureFixture[str]) -> None:
    left = "promoting the deployable revision 0123456789ab; left behind: 1 commit (...)"
    master = Master(build=build("moved", "moving production-devel, production-stable to 0123456789ab",
                                lpdeploy_qa=left))
    assert run(master, "promote") == 0
    assert f"qa: {left}" in capsys.readouterr().out
