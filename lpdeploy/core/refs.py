"""What a branch name and a revision taken from outside may look like.

Every name or revision that reaches git from a site file, a form, the CLI or a
poll passes through here first. The rules are stricter than git's own
(``git check-ref-format``): a name may never look like an option, so that even
a caller that forgot ``--end-of-options`` could not be tricked.
"""

from __future__ import annotations

import fnmatch
import re

from lpdeploy.core.errors import InvalidInput

_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]*")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
MAX_BRANCH_LENGTH = 200


def validate_branch(name: object, what: str = "branch name") -> str:
    """Return ``name`` if it is a safe short branch name, else raise InvalidInput."""
    if not isinstance(name, str):
        raise InvalidInput(what, repr(name), "must be a string")
    if not name:
        raise InvalidInput(what, name, "must not be empty")
    if len(name) > MAX_BRANCH_LENGTH:
        raise InvalidInput(what, name, f"longer than {MAX_BRANCH_LENGTH} characters")
    if name.startswith("-"):
        raise InvalidInput(what, name, "must not start with '-' (it would read as an option)")
    if name.startswith("refs/"):
        raise InvalidInput(what, name, "give the short name, without 'refs/'")
    if not _BRANCH.fullmatch(name):
        raise InvalidInput(
            what, name, "only letters, digits and . _ / + - are allowed, starting with a letter or digit"
        )
    if ".." in name or "//" in name or name.endswith(("/", ".", ".lock")) or "/." in name:
        raise InvalidInput(what, name, "not a valid git branch name")
    return name


def validate_branch_pattern(pattern: object, what: str = "branch pattern") -> str:
    """A branch glob such as ``security/*``: a branch name in which ``*`` may stand."""
    if not isinstance(pattern, str):
        raise InvalidInput(what, repr(pattern), "must be a string")
    validate_branch(pattern.replace("*", "x"), what)
    return pattern


def branch_matches(name: str, pattern: str) -> bool:
    """Whether ``name`` matches the glob ``pattern`` (``*`` does not cross ``/``)."""
    regex = "".join("[^/]+" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None and fnmatch.fnmatchcase(name, pattern)


def validate_revision(rev: object, what: str = "revision") -> str:
    """Return ``rev`` if it is a full lower-case hex commit id, else raise InvalidInput."""
    if not isinstance(rev, str):
        raise InvalidInput(what, repr(rev), "must be a string")
    if not _SHA.fullmatch(rev):
        raise InvalidInput(what, rev, "must be a full 40-character hex commit id")
    return rev


def qualified(branch: str) -> str:
    """``refs/heads/<branch>`` for a validated short branch name."""
    return "refs/heads/" + validate_branch(branch)


def short(rev: str) -> str:
    """The short form used in messages."""
    return rev[:12]
