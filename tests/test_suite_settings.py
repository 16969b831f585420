"""The [suite] table for sharded suites: shards, list_command, run_command, results, results_file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.settings import Suite, load_settings, parse_settings

REPO = {"url": "https://git.example.org/lp.git"}
LIST = ["python", "-m", "subunit.run", "discover", "--list"]
RUN = ["python", "-m", "subunit.run", "--load-list", "{id_file}"]


def suite_from(**table) -> Suite:
    return parse_settings({"repository": REPO, "suite": table}).suite


def error_for(**table) -> SettingsError:
    with pytest.raises(SettingsError) as e:
        suite_from(**table)
    return e.value


def sharded(**extra) -> dict:
    return {"shards": 4, "list_command": LIST, "run_command": RUN, **extra}


# --- shards ----------------------------------------------------------------------------


def test_one_shard_by_default_runs_the_plain_command():
    s = suite_from()
    assert s.shards == 1 and not s.sharded
    assert s.command == ("make", "check")
    assert s.list_command == () and s.run_command == ()
    assert s.results == "auto" and s.results_file is None


def test_one_shard_needs_no_list_or_run_command():
    s = suite_from(shards=1, command=["tox"])
    assert not s.sharded and s.command == ("tox",)


def test_a_sharded_suite_is_read_with_its_commands():
    s = suite_from(**sharded())
    assert s.sharded and s.shards == 4
    assert s.list_command == tuple(LIST)
    assert s.run_command == tuple(RUN)
    assert s.results_format == "subunit"


def test_a_sharded_suite_is_read_from_a_site_file(tmp_path: Path):
    site = tmp_path / "site.toml"
    site.write_text(
        '[repository]\nurl = "https://git.example.org/lp.git"\n'
        "[suite]\nshards = 3\n"
        'list_command = ["bin/test", "--list-tests"]\n'
        'run_command = ["bin/test", "--load-list", "{id_file}", "--junit"]\n'
        'results_file = "build/junit.xml"\n',
        encoding="utf-8")
    s = load_settings(site).suite
    assert s == Suite(shards=3, list_command=("bin/test", "--list-tests"),
                      run_command=("bin/test", "--load-list", "{id_file}", "--junit"),
                      results_file="build/junit.xml")
    assert s.results_format == "junit"


@pytest.mark.parametrize(("shards", "ok"), [(0, False), (-1, False), (2, True), (256, True), (257, False)])
def test_the_shard_count_is_between_one_and_256(shards, ok):
    if ok:
        assert suite_from(**sharded(shards=shards)).shards == shards
    else:
        assert error_for(**sharded(shards=shards)).key == "suite.shards"


@pytest.mark.parametrize("shards", ["4", 2.0, True])
def test_the_shard_count_is_an_integer(shards):
    assert error_for(**sharded(shards=shards)).key == "suite.shards"


def test_many_shards_need_a_list_command():
    table = sharded()
    del table["list_command"]
    e = error_for(**table)
    assert e.key == "suite.list_command"
    assert "4" in e.problem


def test_many_shards_need_a_run_command():
    table = sharded()
    del table["run_command"]
    assert error_for(**table).key == "suite.run_command"


def test_many_shards_with_neither_command_name_the_list_command_first():
    assert error_for(shards=2).key == "suite.list_command"


@pytest.mark.parametrize(
    "run",
    [["bin/test", "--load-list", "ids.txt"], ["bin/test", "{idfile}"], ["bin/test", "{ID_FILE}"],
     ["bin/test", "{id_file"]],
)
def test_the_run_command_must_name_the_id_file(run):
    e = error_for(**sharded(run_command=run))
    assert e.key == "suite.run_command"
    assert "{id_file}" in e.problem


@pytest.mark.parametrize("run", [["bin/test", "{id_file}"], ["bin/test", "--load-list={id_file}"],
                                 ["sh", "-c", "bin/test < {id_file}"]])
def test_the_id_file_may_stand_alone_or_inside_an_argument(run):
    assert suite_from(**sharded(run_command=run)).run_command == tuple(run)


def test_a_plain_suite_does_not_check_the_run_command():
    # shards = 1 runs `command`; the sharded commands may be written ahead of time
    s = suite_from(run_command=["bin/test", "no-id-file"])
    assert not s.sharded


@pytest.mark.parametrize(
    ("key", "value"),
    [("list_command", "bin/test --list"), ("list_command", []), ("list_command", ["", "x"]),
     ("run_command", "bin/test {id_file}"), ("run_command", []), ("run_command", ["bin/test", 3])],
)
def test_the_sharded_commands_are_argvs(key, value):
    assert error_for(**sharded(**{key: value})).key == f"suite.{key}"


# --- results and results_file --------------------------------------------------------------


@pytest.mark.parametrize("results", ["auto", "subunit", "junit"])
def test_the_known_result_formats_are_accepted(results):
    s = suite_from(**sharded(results=results, results_file="out/junit.xml"))
    assert s.results == results


@pytest.mark.parametrize("results", ["xml", "JUnit", "subunit1", "tap"])
def test_an_unknown_result_format_is_refused(results):
    assert error_for(**sharded(results=results)).key == "suite.results"


@pytest.mark.parametrize("results", ["", "  ", 1])
def test_the_result_format_is_a_non_empty_string(results):
    assert error_for(**sharded(results=results)).key == "suite.results"


def test_junit_results_need_the_results_file():
    e = error_for(**sharded(results="junit"))
    assert e.key == "suite.results_file"


def test_subunit_results_need_no_results_file():
    assert suite_from(**sharded(results="subunit")).results_format == "subunit"


@pytest.mark.parametrize("path", ["junit.xml", "build/junit.xml", "a/b/c.xml", "./out.xml", "x..y/r.xml",
                                  "reports/..hidden.xml"])
def test_a_results_file_inside_the_checkout_is_accepted(path):
    assert suite_from(**sharded(results_file=path)).results_file == path


@pytest.mark.parametrize("path", ["/tmp/junit.xml", "/etc/passwd", "-junit.xml", "--output=x.xml", "..",
                                  "../junit.xml", "build/../../junit.xml", "build/.."])
def test_a_results_file_outside_the_checkout_is_refused(path):
    e = error_for(**sharded(results_file=path))
    assert e.key == "suite.results_file"


def test_the_results_file_is_checked_for_a_plain_suite_too():
    assert error_for(results_file="/tmp/junit.xml").key == "suite.results_file"


@pytest.mark.parametrize("path", ["", "   ", 5])
def test_the_results_file_is_a_non_empty_string(path):
    assert error_for(**sharded(results_file=path)).key == "suite.results_file"


@pytest.mark.parametrize(
    ("results", "results_file", "fmt"),
    [("auto", None, "subunit"), ("auto", "junit.xml", "junit"), ("subunit", None, "subunit"),
     ("subunit", "junit.xml", "subunit"), ("junit", "junit.xml", "junit")],
)
def test_the_results_format_resolves_auto_by_the_results_file(results, results_file, fmt):
    assert Suite(shards=4, list_command=tuple(LIST), run_command=tuple(RUN), results=results,
                 results_file=results_file).results_format == fmt
    table = sharded(results=results) | ({"results_file": results_file} if results_file else {})
    assert suite_from(**table).results_format == fmt


# --- identity ------------------------------------------------------------------------------


def test_equal_sharded_configs_have_equal_identities():
    assert suite_from(**sharded()).identity == suite_from(**sharded()).identity
    assert Suite(shards=4, list_command=tuple(LIST), run_command=tuple(RUN)).identity == \
        suite_from(**sharded()).identity


def test_a_sharded_suite_is_not_the_plain_suite():
    plain = suite_from(command=RUN)
    shard = suite_from(**sharded(command=RUN))
    assert plain.identity != shard.identity
    assert shard.identity.startswith("suite-") and plain.identity.startswith("suite-")


def test_a_sharded_suite_differs_from_a_plain_suite_of_its_list_command():
    assert suite_from(command=LIST).identity != suite_from(**sharded()).identity


def test_different_run_commands_are_different_suites():
    ids = {suite_from(**sharded(run_command=run)).identity
           for run in (RUN, RUN + ["-v"], ["bin/test", "{id_file}"], ["bin/test {id_file}"])}
    assert len(ids) == 4


def test_different_list_commands_are_different_suites():
    assert suite_from(**sharded(list_command=["bin/test", "--list"])).identity != \
        suite_from(**sharded(list_command=["bin/test", "--list", "--subunit"])).identity


def test_the_result_format_is_part_of_the_identity():
    assert suite_from(**sharded(results="subunit", results_file="junit.xml")).identity != \
        suite_from(**sharded(results="junit", results_file="junit.xml")).identity


def test_settings_that_do_not_change_what_is_tested_keep_the_identity():
    # the recorded durations carry over when the shard count or the timeouts change
    base = suite_from(**sharded()).identity
    assert suite_from(**sharded(shards=8)).identity == base
    assert suite_from(**sharded(timeout=30, max_time=600)).identity == base
    assert suite_from(**sharded(command=["tox"])).identity == base  # `command` is not run when sharded


# --- flaky or broken: rerun_failures, quarantine ----------------------------------------------


def test_failures_are_not_rerun_and_nothing_is_quarantined_by_default():
    s = suite_from(**sharded())
    assert (s.rerun_failures, s.quarantine) == (0, ())


def test_rerun_failures_and_quarantine_are_read():
    s = suite_from(**sharded(rerun_failures=1, quarantine=["pkg.test_a", "pkg.test_b"]))
    assert (s.rerun_failures, s.quarantine) == (1, ("pkg.test_a", "pkg.test_b"))


@pytest.mark.parametrize("value", [2, -1, "1", True, 1.0])
def test_rerun_failures_is_zero_or_one(value):
    assert error_for(**sharded(rerun_failures=value)).key == "suite.rerun_failures"


@pytest.mark.parametrize("value", ["pkg.test_a", [""], [1], ["a", "a"]])
def test_quarantine_is_a_list_of_distinct_test_ids(value):
    assert error_for(**sharded(quarantine=value)).key == "suite.quarantine"


@pytest.mark.parametrize("key", ["rerun_failures", "quarantine"])
def test_rerun_and_quarantine_need_a_sharded_suite(key):
    value = 1 if key == "rerun_failures" else ["pkg.test_a"]
    err = error_for(shards=1, **{key: value})
    assert err.key == f"suite.{key}" and "sharded" in err.problem
