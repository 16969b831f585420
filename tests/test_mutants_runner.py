"""``make mutants`` itself can fail: the runner on a tiny project of its own.

The runner (``tests/mutants/run.py``) is what makes the curated mutants a
contract, so it is tested like the rest: a mutant whose test kills it is
*killed*, one pointed at a test that cannot kill it *survives* (and fails the
run), a mutant that breaks collection is an *error*, a snippet that no longer
matches stops the run before anything runs, and a baseline that fails
unmutated makes every kill meaningless, so it stops the run too.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent / "mutants" / "run.py"


def load_runner():
    spec = importlib.util.spec_from_file_location("lpdeploy_mutants_run", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run = load_runner()

RULE = "def allowed(n):\n    return n > 0\n"
TESTS = """\
from toy.rule import allowed


def test_a_positive_number_is_allowed():
    assert allowed(1)


def test_zero_is_refused():
    assert not allowed(0)
"""


def mutant(name: str, tests: list[str], find: str = "return n > 0", replace: str = "return n >= 0") -> str:
    """One [[mutant]] entry of a curated list (TOML), breaking ``toy/rule.py``."""
    return f"""
[[mutant]]
name = "{name}"
invariant = 1
what = "the toy rule loses its boundary"
tests = {json.dumps(tests)}
[[mutant.edit]]
file = "toy/rule.py"
find = '''{find}'''
replace = '''{replace}'''
"""


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    project = tmp_path / "toy-project"
    (project / "toy").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "toy" / "__init__.py").write_text("")
    (project / "toy" / "rule.py").write_text(RULE)
    (project / "tests" / "test_rule.py").write_text(TESTS)
    return project


def run_list(toy: Path, text: str, capsys) -> tuple[int, str]:
    listing = toy.parent / "list.toml"
    listing.write_text(text)
    code = run.main(["--list", str(listing), "--project", str(toy), "--package", "toy"])
    out = capsys.readouterr()
    return code, out.out + out.err


KILLER = "tests/test_rule.py::test_zero_is_refused"
BYSTANDER = "tests/test_rule.py::test_a_positive_number_is_allowed"


def test_a_mutant_its_test_kills_is_reported_killed_and_the_run_passes(toy, capsys):
    code, out = run_list(toy, mutant("boundary", [KILLER]), capsys)
    assert code == 0, out
    assert "1 of 1 mutants killed" in out
    row = next(line for line in out.splitlines() if line.startswith("boundary "))
    assert "KILLED" in row and KILLER in row
    assert (toy / "toy" / "rule.py").read_text() == RULE  # the scratch copy was mutated, not the project


def test_a_mutant_pointed_at_a_test_that_cannot_kill_it_survives_and_fails_the_run(toy, capsys):
    code, out = run_list(toy, mutant("boundary", [KILLER]) + mutant("unguarded", [BYSTANDER]), capsys)
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("unguarded "))
    assert "SURVIVED" in row and "nothing: every listed test passed" in row
    assert "NOT killed: unguarded" in out


def test_a_mutant_that_breaks_collection_is_an_error_not_a_kill(toy, capsys):
    code, out = run_list(toy, mutant("syntax", [KILLER], replace="return n >"), capsys)
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("syntax "))
    assert "ERROR" in row


@pytest.mark.parametrize("find", ["return n < 0", "n"])  # not there at all / more than once
def test_a_snippet_that_does_not_occur_exactly_once_stops_the_run_saying_the_list_needs_updating(
        toy, capsys, find):
    code, out = run_list(toy, mutant("stale", [KILLER], find=find), capsys)
    assert code == 2
    assert "needs updating after a refactor" in out and "'stale'" in out
    assert "baseline" not in out  # nothing ran


def test_a_baseline_that_fails_unmutated_stops_the_run(toy, capsys):
    (toy / "tests" / "test_rule.py").write_text(TESTS + "\n\ndef test_broken():\n    assert False\n")
    code, out = run_list(toy, mutant("boundary", [KILLER, "tests/test_rule.py::test_broken"]), capsys)
    assert code == 2
    assert "do not pass on the unmutated copy" in out


def test_the_curated_list_loads_and_names_every_invariant():
    mutants = run.load(run.CURATED)
    assert {m.invariant.split()[0] for m in mutants} == {str(i) for i in range(1, 9)}
    run.check_applies(mutants, run.ROOT)  # every snippet occurs exactly once in this checkout
