"""The typed errors of lpdeploy: one root, fields instead of formatted blobs."""

from __future__ import annotations


class LpDeployError(Exception):
    """Root of every error lpdeploy raises on purpose."""


class SettingsError(LpDeployError):
    """A site file key is missing, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class InvalidInput(LpDeployError):
    """Input from outside (a branch name, a revision, a form field) was refused."""

    def __init__(self, what: str, value: str, problem: str) -> None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"invalid {what} {shown!r}: {problem}")
        self.what = what
        self.value = value
        self.problem = problem


class GitError(LpDeployError):
    """A git command failed; carries the argv (never a shell string) and its stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        # git's own verdict ("fatal: ... does not appear to be a git repository"), not the advice after it
        verdicts = [line for line in lines if line.startswith(("fatal:", "error:"))]
        last = verdicts[0] if verdicts else (lines or ["no message"])[-1]
        super().__init__(f"git {' '.join(_subcommand(argv)[:2])} failed ({returncode}): {last}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


def _subcommand(argv: list[str]) -> list[str]:
    """``argv`` after ``git`` without the options before the subcommand (``-c key=value``, ``--git-dir=``)."""
    words: list[str] = []
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg == "-c":
            skip = True
        elif not arg.startswith("--git-dir="):
            words.append(arg)
    return words


class UnknownRevision(GitError):
    """A revision or ref does not exist in the repository."""


class StaleBranch(GitError):
    """A compare-and-swap push was rejected: the branch moved under us."""


class PushUnconfirmed(GitError):
    """A push failed without a refusal and the upstream could not be read after it: it may have landed.

    The caller must read the tips again before deciding anything (the moves
    it pushed are either all there or none are: pushes are atomic).
    """


class MergeConflict(GitError):
    """Two commits do not merge cleanly; nothing was written. ``paths``: the conflicting files.

    The paths can name an embargoed fix's files: they go to the security
    role's decision log only, never into a summary or a property.
    """

    def __init__(self, argv: list[str], paths: list[str] | tuple[str, ...]) -> None:
        self.paths = tuple(paths)
        super().__init__(argv, 1, "conflict in " + (", ".join(self.paths[:10]) or "unknown paths"))


class UnknownCowboy(LpDeployError):
    """No active cowboy has this id (never recorded, or already retired or removed)."""

    def __init__(self, cowboy_id: int, problem: str = "no such cowboy") -> None:
        super().__init__(f"cowboy {cowboy_id}: {problem}")
        self.cowboy_id = cowboy_id
        self.problem = problem


class ApiError(LpDeployError):
    """The master refused or failed a CLI request; ``status`` is the HTTP status (0: unreachable).

    ``detail`` is the master's own message, without the "HTTP <status>:" prefix.
    """

    def __init__(self, message: str, status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message


class UsageError(LpDeployError):
    """The CLI was called wrongly (exit status 2); nothing was sent to the master."""


class RunError(LpDeployError):
    """``make run`` could not prepare or start a part; ``cause`` is one line of why."""

    def __init__(self, what: str, cause: str) -> None:
        super().__init__(f"{what}: {cause}")
        self.what = what
        self.cause = cause


class Interrupted(LpDeployError):
    """Ctrl-C while the CLI waited for a build that it then stopped (a deploy: the servers not yet reached stay)."""
