"""QA state per revision (``core/qa.py``): marks in, each commit's state and the ``deployable`` line out.

The story: commits land on stable, QA tests them on staging and marks them;
only a revision with everything from production-stable up to it ok or
untestable is "deployable as tip". A bad commit stops the line until a
later commit on stable reverts it or it is marked again; security fixes
never wait. The general rule is a hypothesis property; the examples name
each case.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpdeploy.core.model import AUTOMATIC, Action
from lpdeploy.core.qa import (
    Candidate,
    QaMark,
    QaState,
    bug_link,
    bug_refs,
    mark_refusal,
    promotion_decision,
    qa_report,
    reverted,
)

BASE = "b" * 40


def sha(i: int) -> str:
    return f"{i + 1:040x}"


def chain(n: int, messages: dict[int, str] | None = None, security: frozenset[int] = frozenset()) -> list[Candidate]:
    return [Candidate(sha(i), f"commit {i}", "Dev <dev@example.com>", (messages or {}).get(i, f"commit {i}"),
                      security=i in security) for i in range(n)]


def marks(**states: QaState) -> dict[str, QaMark]:
    """``marks(c0=OK, c2=BAD)``: marks by commit index."""
    out = {}
    for name, state in states.items():
        rev = sha(int(name[1:]))
        out[rev] = QaMark(rev, state, "quinn", 100.0, f"tested {name}")
    return out


def revert_of(i: int) -> str:
    return f'Revert "commit {i}"\n\nThis reverts commit {sha(i)}.\n'


OK, BAD, UNTESTABLE = QaState.OK, QaState.BAD, QaState.UNTESTABLE


def test_nothing_marked_nothing_deployable_and_the_first_commit_needs_testing() -> None:
    report = qa_report(BASE, chain(3), {}, qa_users=["quinn"])
    assert [r.qa for r in report.rows] == [QaState.NEEDS_TESTING] * 3
    assert report.deployable == BASE
    assert report.blocker is not None and report.blocker.revision == sha(0)
    assert "not QA'd yet" in report.blocker.why and "quinn" in report.blocker.who
    assert report.left_behind == (sha(0), sha(1), sha(2))


def test_deployable_stops_before_the_first_commit_that_needs_testing() -> None:
    report = qa_report(BASE, chain(4), marks(c0=OK, c1=UNTESTABLE, c3=OK))
    assert report.deployable == sha(1)
    assert report.blocker is not None and report.blocker.revision == sha(2)
    assert report.left_behind == (sha(2), sha(3))


def test_a_bad_commit_stops_the_line_and_names_its_author() -> None:
    report = qa_report(BASE, chain(3), marks(c0=OK, c1=BAD, c2=OK))
    assert report.deployable == sha(0)
    assert report.blocker is not None and report.blocker.revision == sha(1)
    assert "marked bad by quinn" in report.blocker.why and "Dev <dev@example.com>" in report.blocker.who


def test_a_later_revert_on_stable_clears_bad_from_the_revert_on() -> None:
    commits = chain(4, {3: revert_of(1)})
    report = qa_report(BASE, commits, marks(c0=OK, c1=BAD, c2=OK))
    bad = report.rows[1]
    assert bad.qa is BAD and bad.reverted_by == sha(3)
    assert report.rows[3].qa is OK and report.rows[3].marked_by == AUTOMATIC  # the revert restores a QA'd state
    assert report.deployable == sha(3) and report.blocker is None
    assert sha(2) not in report.tips  # between the bad commit and its revert: still carries the bad change
    assert sha(0) in report.tips and sha(3) in report.tips


def test_a_revert_before_the_bad_commit_does_not_clear_it() -> None:
    commits = chain(3, {0: revert_of(1)})
    report = qa_report(BASE, commits, marks(c0=OK, c1=BAD, c2=OK))
    assert report.rows[1].reverted_by is None
    assert report.deployable == sha(0)


def test_marking_a_bad_commit_again_clears_it() -> None:
    m = marks(c0=OK, c1=BAD)
    m[sha(1)] = QaMark(sha(1), OK, "quinn", 200.0, "fixed on staging after all")
    report = qa_report(BASE, chain(2), m)
    assert report.rows[1].qa is OK and report.deployable == sha(1)


def test_a_security_fix_never_waits_for_qa_and_is_shown_as_one() -> None:
    report = qa_report(BASE, chain(3, security=frozenset({1})), marks(c0=OK, c2=OK))
    assert report.rows[1].security and report.rows[1].qa is QaState.NEEDS_TESTING
    assert report.deployable == sha(2)


def test_bug_references_default_pattern_and_link() -> None:
    msg = "Fix login\n\nLP: #1234\nFixes #77, see also #9 and LP: #1234"
    assert bug_refs(msg) == ("1234", "77")
    assert bug_refs("Closes bug 5", r"bug (\d+)") == ("5",)
    assert bug_link("1234", "https://bugs.launchpad.net/bugs/{bug}") == "https://bugs.launchpad.net/bugs/1234"
    assert bug_link("1234", None) is None
    row = qa_report(BASE, chain(1, {0: msg}), {}).rows[0]
    assert row.as_json("https://b.example/{bug}")["bugs"][0] == {"bug": "1234", "url": "https://b.example/1234"}


def test_reverted_reads_gits_revert_line_only() -> None:
    assert reverted(revert_of(4)) == (sha(4),)
    assert reverted(f"mentions {sha(4)} in passing") == ()


def test_needs_testing_is_not_a_mark() -> None:
    with pytest.raises(ValueError):
        QaMark(sha(0), QaState.NEEDS_TESTING, "quinn", 0.0)


# --- require_qa: the promotion decision -------------------------------------------------------


def test_require_qa_promotes_the_deployable_revision_and_says_what_it_left_behind() -> None:
    report = qa_report(BASE, chain(3), marks(c0=OK, c1=BAD, c2=OK))
    d = promotion_decision(report, None)
    assert d.action is Action.MOVE and d.revision == sha(0)
    assert "left behind: 2 commits" in d.reason and "marked bad by quinn" in d.reason


def test_require_qa_refuses_a_revision_beyond_deployable_naming_the_blocker() -> None:
    report = qa_report(BASE, chain(3), marks(c0=OK, c1=BAD, c2=OK))
    d = promotion_decision(report, sha(2))
    assert d.refused and sha(1)[:12] in d.reason and "beyond the deployable revision" in d.reason


def test_require_qa_refuses_a_revision_between_a_bad_commit_and_its_revert() -> None:
    report = qa_report(BASE, chain(4, {3: revert_of(1)}), marks(c0=OK, c1=BAD, c2=OK))
    assert promotion_decision(report, sha(2)).refused
    assert promotion_decision(report, sha(3)).action is Action.MOVE
    assert promotion_decision(report, sha(0)).action is Action.MOVE


def test_require_qa_with_nothing_deployable_does_nothing_and_says_why() -> None:
    d = promotion_decision(qa_report(BASE, chain(2), {}), None)
    assert d.action is Action.NOTHING and "not QA'd yet" in d.reason


# --- the general rule ---------------------------------------------------------------------------

STATES = st.sampled_from([None, OK, BAD, UNTESTABLE])


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Candidate], dict[str, QaMark]]:
    n = draw(st.integers(0, 12))
    states = draw(st.lists(STATES, min_size=n, max_size=n))
    security = frozenset(i for i in range(n) if draw(st.booleans()) and draw(st.integers(0, 5)) == 0)
    msgs = {}
    for i in range(n):
        if i > 0 and draw(st.integers(0, 3)) == 0:
            msgs[i] = revert_of(draw(st.integers(0, n - 1)))
    m = {sha(i): QaMark(sha(i), s, "quinn", 1.0) for i, s in enumerate(states) if s is not None}
    return chain(n, msgs, security), m


def _passes_alone(report_row: object) -> bool:
    return report_row.security or report_row.qa in (OK, UNTESTABLE)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(histories())
def test_deployable_is_the_newest_revision_with_everything_up_to_it_passing(
        history: tuple[list[Candidate], dict[str, QaMark]]) -> None:
    commits, m = history
    report = qa_report(BASE, commits, m)
    rows = report.rows

    def deployable_as_tip(k: int) -> bool:
        """Everything up to k passes, counting a bad commit as gone only if its revert is at or before k."""
        for row in rows[:k + 1]:
            if _passes_alone(row):
                continue
            gone = row.qa is BAD and row.reverted_by is not None and \
                report.position(row.reverted_by) <= k  # type: ignore[operator]
            if not gone:
                return False
        return True

    # the line runs from production-stable: nothing beyond the first commit that stops it for good
    first_stop = next((i for i, r in enumerate(rows) if not _passes_alone(r)
                       and not (r.qa is BAD and r.reverted_by)), len(rows))
    expected = [i for i in range(first_stop) if deployable_as_tip(i)]
    assert report.deployable == (sha(expected[-1]) if expected else BASE)
    assert report.tips == frozenset(sha(i) for i in expected)
    assert report.left_behind == tuple(r.revision for r in rows[expected[-1] + 1 if expected else 0:])
    if first_stop < len(rows):
        assert report.blocker is not None and report.blocker.revision == sha(first_stop)
    # a bad commit never reverted is never inside the deployable line
    for i, row in enumerate(rows):
        if row.qa is BAD and not row.reverted_by and not row.security:
            assert all(report.position(t) < i for t in report.tips)  # type: ignore[operator]


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(0, 11))
def test_require_qa_promotes_exactly_the_deployable_tips(
        history: tuple[list[Candidate], dict[str, QaMark]], k: int) -> None:
    commits, m = history
    report = qa_report(BASE, commits, m)
    if k < len(commits):
        d = promotion_decision(report, sha(k))
        assert (d.action is Action.MOVE) == (sha(k) in report.tips)
    d = promotion_decision(report, None)
    assert d.revision == report.deployable
    assert d.action is (Action.NOTHING if report.deployable == BASE else Action.MOVE)


# --- who may mark -------------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "roles", "words"), [
    (None, set(), "log in"),
    ("carol", set(), "'carol' may not mark"),
    ("alice", {"security"}, "'alice' may not mark"),
])
def test_anonymous_and_developers_may_not_mark(user: str | None, roles: set[str], words: str) -> None:
    refusal = mark_refusal(user, roles)
    assert refusal is not None and words in refusal


@pytest.mark.parametrize("roles", [{"qa"}, {"losa"}, {"qa", "security"}])
def test_the_qa_and_losa_roles_may_mark(roles: set[str]) -> None:
    assert mark_refusal("quinn", roles) is None
