"""Every error lpdeploy raises on purpose is declared in lpdeploy/core/errors.py, under one root (issue 11).

So a caller can catch ``LpDeployError`` and know it caught every refusal
lpdeploy means, and a reader finds every error class, with its fields, in one
file.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from lpdeploy.core import errors

PACKAGE = Path(errors.__file__).resolve().parents[1]


def _exception_classes_outside_errors() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(errors.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                if any(b.endswith(("Error", "Exception", "Conflict", "Branch", "Revision", "Input")) for b in bases):
                    found.append(f"{path.relative_to(PACKAGE.parent)}: {node.name}")
    return found


def test_no_error_class_is_declared_outside_core_errors() -> None:
    assert _exception_classes_outside_errors() == []


@pytest.mark.parametrize("cls", [c for _, c in inspect.getmembers(errors, inspect.isclass)
                                 if issubclass(c, BaseException) and c.__module__ == errors.__name__],
                         ids=lambda c: c.__name__)
def test_every_error_is_under_the_root(cls: type) -> None:
    assert issubclass(cls, errors.LpDeployError)


def test_the_moved_errors_are_still_found_where_they_were() -> None:
    """Other modules import them from their old homes; those names are the same classes."""
    from lpdeploy.stores.registry import UnknownCowboy
    from lpdeploy.tools.client import ApiError
    from lpdeploy.tools.localrun import RunError

    assert (UnknownCowboy, ApiError, RunError) == (errors.UnknownCowboy, errors.ApiError, errors.RunError)


def test_a_git_error_names_the_subcommand_and_gits_own_verdict_not_the_advice_after_it():
    stderr = ("fatal: '/srv/up.git' does not appear to be a git repository\n"
              "fatal: Could not read from remote repository.\n\n"
              "Please make sure you have the correct access rights\nand the repository exists.\n")
    argv = ["git", "-c", "fetch.writeCommitGraph=true", "--git-dir=/m", "fetch", "--prune", "origin"]
    e = errors.GitError(argv, 128, stderr)
    assert str(e) == "git fetch --prune failed (128): fatal: '/srv/up.git' does not appear to be a git repository"
    assert str(errors.GitError(["git", "status"], 1, "")) == "git status failed (1): no message"
    assert str(errors.GitError(["git", "push"], 1, "hint: x\nsomething odd\n")) == "git push failed (1): something odd"
