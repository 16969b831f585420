"""Test ids and results out of what a suite prints: plain lines, subunit v2, JUnit XML.

The subunit streams are written by python-subunit's own ``StreamResultToBytes``,
as a suite run under ``subunit.run`` would write them.
"""

from __future__ import annotations

import datetime
import io
import math
import xml.etree.ElementTree as ET  # noqa: S405 - only for its ParseError

import pytest
from subunit import StreamResultToBytes

from lpdeploy.core.results import TestOutcome as Outcome
from lpdeploy.core.results import (
    TestStatus,
    is_subunit_v2,
    match_ids,
    parse_junit,
    parse_results,
    parse_subunit,
    parse_test_list,
)

PASSED, FAILED, SKIPPED = TestStatus.PASSED, TestStatus.FAILED, TestStatus.SKIPPED

T0 = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def subunit_stream(*events: dict) -> bytes:
    buf = io.BytesIO()
    out = StreamResultToBytes(buf)
    for event in events:
        out.status(**event)
    return buf.getvalue()


def ran(test_id: str, status: str, start: float | None, end: float | None) -> list[dict]:
    """The two events of one test run: inprogress, then its final status."""
    return [
        {"test_id": test_id, "test_status": "inprogress", "timestamp": None if start is None else at(start)},
        {"test_id": test_id, "test_status": status, "timestamp": None if end is None else at(end)},
    ]


def junit(*cases: str, wrap: str = "testsuite") -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?><{wrap}>{"".join(cases)}</{wrap}>'.encode()


# --- parse_test_list: plain lines -----------------------------------------------------


def test_a_plain_list_is_one_id_a_line_in_order():
    assert parse_test_list(b"pkg.test_b\npkg.test_a\npkg.test_c\n") == ["pkg.test_b", "pkg.test_a", "pkg.test_c"]


def test_a_plain_list_ignores_blank_lines_and_surrounding_space():
    assert parse_test_list(b"\n  a \n\n\t\nb\n   \n") == ["a", "b"]


def test_a_plain_list_keeps_the_first_of_duplicate_ids():
    assert parse_test_list(b"a\nb\na\nc\nb\n") == ["a", "b", "c"]


def test_a_plain_list_with_crlf_line_ends_gives_clean_ids():
    assert parse_test_list(b"a.test_one\r\na.test_two\r\n") == ["a.test_one", "a.test_two"]


def test_a_plain_list_without_a_final_newline_keeps_its_last_id():
    assert parse_test_list(b"a\nb") == ["a", "b"]


def test_an_empty_list_has_no_ids():
    assert parse_test_list(b"") == []
    assert parse_test_list(b"\n\n  \n") == []


def test_a_plain_list_may_hold_utf8_names():
    assert parse_test_list("test_café\ntest_ß\n".encode()) == ["test_café", "test_ß"]


# --- parse_test_list and is_subunit_v2: a subunit list ------------------------------------


def test_a_subunit_list_gives_the_ids_that_exist_in_order():
    data = subunit_stream(*({"test_id": t, "test_status": "exists"} for t in ["pkg.b", "pkg.a", "pkg.c"]))
    assert is_subunit_v2(data)
    assert parse_test_list(data) == ["pkg.b", "pkg.a", "pkg.c"]


def test_a_subunit_list_has_no_duplicates():
    data = subunit_stream(*({"test_id": t, "test_status": "exists"} for t in ["a", "b", "a"]))
    assert parse_test_list(data) == ["a", "b"]


def test_a_subunit_list_ignores_events_that_name_no_test():
    data = subunit_stream({"test_id": "a", "test_status": "exists"},
                          {"file_name": "stdout", "file_bytes": b"hello\n", "eof": True},
                          {"test_id": "b", "test_status": "exists"})
    assert parse_test_list(data) == ["a", "b"]


def test_is_subunit_v2_looks_at_the_signature_byte():
    assert is_subunit_v2(subunit_stream({"test_id": "a", "test_status": "exists"}))
    assert not is_subunit_v2(b"")
    assert not is_subunit_v2(b"pkg.test_a\n")
    assert not is_subunit_v2(b"<testsuite/>")
    assert is_subunit_v2(bytes([0xB3]))


# --- parse_subunit ---------------------------------------------------------------


def test_durations_run_from_inprogress_to_the_final_status():
    data = subunit_stream(*ran("a", "success", 0.0, 1.5), *ran("b", "success", 2.0, 2.25))
    assert parse_subunit(data) == {"a": Outcome(PASSED, 1.5), "b": Outcome(PASSED, 0.25)}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("success", PASSED), ("xfail", PASSED), ("skip", SKIPPED), ("fail", FAILED), ("uxsuccess", FAILED)],
)
def test_subunit_final_statuses_map_to_passed_failed_or_skipped(status, expected):
    assert parse_subunit(subunit_stream(*ran("t", status, 0.0, 3.0))) == {"t": Outcome(expected, 3.0)}


def test_the_status_constants_are_subunits_own_words():
    assert (PASSED, FAILED, SKIPPED) == ("success", "fail", "skip")


def test_every_status_in_one_stream_is_kept_per_test():
    data = subunit_stream(*ran("ok", "success", 0, 1), *ran("bad", "fail", 1, 2), *ran("sk", "skip", 2, 2),
                          *ran("xf", "xfail", 2, 4), *ran("ux", "uxsuccess", 4, 5))
    assert {t: o.status for t, o in parse_subunit(data).items()} == {
        "ok": PASSED, "bad": FAILED, "sk": SKIPPED, "xf": PASSED, "ux": FAILED}


def test_a_test_that_never_finished_has_no_outcome():
    data = subunit_stream({"test_id": "hung", "test_status": "inprogress", "timestamp": at(0)},
                          *ran("done", "success", 0, 1))
    assert parse_subunit(data) == {"done": Outcome(PASSED, 1.0)}


def test_a_listed_but_not_run_test_has_no_outcome():
    data = subunit_stream({"test_id": "only-listed", "test_status": "exists"})
    assert parse_subunit(data) == {}


def test_a_final_status_without_a_start_has_no_duration():
    data = subunit_stream({"test_id": "a", "test_status": "success", "timestamp": at(5)},
                          *ran("b", "fail", None, None))
    assert parse_subunit(data) == {"a": Outcome(PASSED, 0.0), "b": Outcome(FAILED, 0.0)}


def test_a_clock_that_goes_back_gives_no_negative_duration():
    assert parse_subunit(subunit_stream(*ran("a", "success", 10.0, 4.0))) == {"a": Outcome(PASSED, 0.0)}


def test_attachments_after_the_final_status_keep_the_status_and_duration():
    data = subunit_stream(*ran("a", "fail", 0, 2),
                          {"test_id": "a", "file_name": "traceback", "file_bytes": b"boom", "eof": True,
                           "timestamp": at(9)})
    assert parse_subunit(data) == {"a": Outcome(FAILED, 2.0)}


def test_stdout_noise_between_subunit_packets_is_tolerated():
    first = subunit_stream(*ran("a", "success", 0, 1))
    second = subunit_stream(*ran("b", "fail", 1, 3.5))
    data = b"collecting tests...\n" + first + b"some print() from a test\n\xff\xfe binary junk\n" + second + b"bye\n"
    assert parse_subunit(data) == {"a": Outcome(PASSED, 1.0), "b": Outcome(FAILED, 2.5)}


def test_a_stream_of_noise_only_has_no_results():
    assert parse_subunit(b"Traceback (most recent call last):\n  ImportError\n") == {}
    assert parse_subunit(b"") == {}


def test_a_test_run_twice_keeps_its_last_run():
    data = subunit_stream(*ran("a", "fail", 0, 1), *ran("a", "success", 10, 14))
    assert parse_subunit(data) == {"a": Outcome(PASSED, 4.0)}


# --- parse_junit ---------------------------------------------------------------------


def test_junit_passed_failed_errored_and_skipped_cases():
    data = junit(
        '<testcase classname="pkg.TestA" name="test_ok" time="0.5"/>',
        '<testcase classname="pkg.TestA" name="test_bad" time="1.25"><failure message="x">tb</failure></testcase>',
        '<testcase classname="pkg.TestA" name="test_err" time="2"><error message="y">tb</error></testcase>',
        '<testcase classname="pkg.TestB" name="test_skip" time="0"><skipped message="not here"/></testcase>',
    )
    assert parse_junit(data) == {
        "pkg.TestA.test_ok": Outcome(PASSED, 0.5),
        "pkg.TestA.test_bad": Outcome(FAILED, 1.25),
        "pkg.TestA.test_err": Outcome(FAILED, 2.0),
        "pkg.TestB.test_skip": Outcome(SKIPPED, 0.0),
    }


def test_a_junit_case_without_a_classname_is_known_by_its_name():
    assert parse_junit(junit('<testcase name="test_plain" time="1"/>', '<testcase classname="" name="t2"/>')) == {
        "test_plain": Outcome(PASSED, 1.0), "t2": Outcome(PASSED, 0.0)}


def test_junit_cases_are_found_in_nested_testsuites():
    data = junit('<testsuite name="one"><testcase classname="a" name="t1" time="1"/></testsuite>'
                 '<testsuite name="two"><testsuite><testcase classname="b" name="t2" time="2"/></testsuite>'
                 '</testsuite>', wrap="testsuites")
    assert parse_junit(data) == {"a.t1": Outcome(PASSED, 1.0), "b.t2": Outcome(PASSED, 2.0)}


def test_a_junit_case_that_failed_and_was_skipped_counts_as_failed():
    data = junit('<testcase classname="a" name="t"><skipped/><failure>x</failure></testcase>')
    assert parse_junit(data) == {"a.t": Outcome(FAILED, 0.0)}


def test_system_out_in_a_junit_case_does_not_change_its_status():
    data = junit('<testcase classname="a" name="t" time="3"><system-out>failure error skipped</system-out>'
                 "</testcase>")
    assert parse_junit(data) == {"a.t": Outcome(PASSED, 3.0)}


@pytest.mark.parametrize("time", ['time=""', 'time="abc"', 'time="1,5"', ""])
def test_a_missing_or_unreadable_junit_time_is_zero(time):
    assert parse_junit(junit(f'<testcase classname="a" name="t" {time}/>')) == {"a.t": Outcome(PASSED, 0.0)}


@pytest.mark.parametrize("time", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_a_junit_time_that_is_not_finite_is_zero(time):
    # nan or inf would survive the JSON round trip through the database and reach
    # ``int(duration * 1e9)`` in RunShards._judge (ValueError / OverflowError), and
    # poison the recorded durations of the test through ``updated``
    (outcome,) = parse_junit(junit(f'<testcase classname="a" name="t" time="{time}"/>')).values()
    assert math.isfinite(outcome.duration)
    assert outcome.duration == 0.0


@pytest.mark.parametrize("time", ["-3", "-0.5"])
def test_a_negative_junit_time_is_zero(time):
    # as parse_subunit does for a clock that goes back: a duration is never negative
    assert parse_junit(junit(f'<testcase classname="a" name="t" time="{time}"/>')) == {"a.t": Outcome(PASSED, 0.0)}


def test_an_empty_junit_file_has_no_results():
    assert parse_junit(b"") == {}
    assert parse_junit(b"  \n\t") == {}
    assert parse_junit(junit()) == {}


def test_a_junit_file_that_is_not_xml_is_an_error():
    # a truncated report: CollectShard's step ends in an exception and the shard counts as lost
    with pytest.raises(ET.ParseError):
        parse_junit(b"<testsuite><testcase name='t'>")


# --- parse_results ----------------------------------------------------------------------


def test_parse_results_reads_junit_when_told():
    data = junit('<testcase classname="a" name="t" time="1"/>')
    assert parse_results(data, "junit") == {"a.t": Outcome(PASSED, 1.0)}


def test_parse_results_reads_subunit_when_told():
    data = subunit_stream(*ran("a.t", "fail", 0, 2))
    assert parse_results(data, "subunit") == {"a.t": Outcome(FAILED, 2.0)}


def test_parse_results_does_not_guess_junit_from_the_bytes():
    # the settings resolve "auto" to a format; anything but "junit" is read as subunit
    data = junit('<testcase classname="a" name="t"/>')
    assert parse_results(data, "subunit") == {}


# --- match_ids ---------------------------------------------------------------------------


def test_exact_ids_are_kept():
    outcomes = {"pkg.TestA.test_x": Outcome(PASSED, 1.0), "pkg.TestA.test_y": Outcome(FAILED, 2.0)}
    assert match_ids(outcomes, {"pkg.TestA.test_x", "pkg.TestA.test_y"}) == outcomes


def test_a_junit_classname_dot_name_matches_the_listed_plain_name():
    outcomes = parse_junit(junit('<testcase classname="suite" name="test_03" time="0.2"/>',
                                 '<testcase classname="suite" name="test_07" time="0.4"><failure/></testcase>'))
    assert match_ids(outcomes, {"test_03", "test_07"}) == {
        "test_03": Outcome(PASSED, 0.2), "test_07": Outcome(FAILED, 0.4)}


def test_results_for_tests_that_were_not_listed_are_dropped():
    outcomes = {"a.t1": Outcome(PASSED, 1.0), "b.t2": Outcome(FAILED, 1.0), "t3x": Outcome(PASSED, 1.0)}
    assert match_ids(outcomes, {"t1", "t3"}) == {"t1": Outcome(PASSED, 1.0)}


def test_a_suffix_matches_only_whole_dotted_parts():
    outcomes = {"pkg.test_foo": Outcome(PASSED, 1.0)}
    assert match_ids(outcomes, {"foo", "est_foo", "g.test_foo"}) == {}


def test_the_longest_listed_suffix_wins():
    outcomes = {"pkg.mod.TestA.test_x": Outcome(FAILED, 1.0)}
    assert match_ids(outcomes, {"test_x", "TestA.test_x", "mod.TestA.test_x"}) == {
        "mod.TestA.test_x": Outcome(FAILED, 1.0)}


def test_an_exact_match_beats_any_suffix():
    outcomes = {"a.b": Outcome(PASSED, 1.0)}
    assert match_ids(outcomes, {"a.b", "b"}) == {"a.b": Outcome(PASSED, 1.0)}


def test_nothing_listed_matches_nothing():
    assert match_ids({"a": Outcome(PASSED, 1.0)}, set()) == {}
    assert match_ids({}, {"a"}) == {}
