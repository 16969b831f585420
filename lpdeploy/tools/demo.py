"""The demo site: what ``make run`` uses when ``LPDEPLOY_CONFIG`` is unset.

``demo/site.toml`` names a bare repository with the four flow branches, a tiny
application and a small suite (``run-tests.sh``), and an htpasswd file with
one user per role; ``make run`` creates both where the site file says.
Nothing here imports Buildbot, so ``make run`` does not load it either.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import bcrypt

from lpdeploy.git.gitops import run_git

SUITE = """#!/bin/sh
# The demo's full suite: a few seconds of "tests" that check app.txt.
set -e
echo "running the demo suite"
for i in 1 2 3; do echo "test $i ... ok"; sleep 1; done
grep -q "^status: ok" app.txt || { echo "FAIL: app.txt says it is broken"; exit 1; }
echo "all tests passed"
"""
IDENTITY = {"GIT_AUTHOR_NAME": "Demo Developer", "GIT_AUTHOR_EMAIL": "dev@example.invalid",
            "GIT_COMMITTER_NAME": "Demo Developer", "GIT_COMMITTER_EMAIL": "dev@example.invalid"}



def _git(work: Path, *args: str) -> str:
    return run_git(["-c", "user.name=Demo Developer", "-c", "user.email=dev@example.invalid",
                    *args], cwd=work).stdout.strip()


def create_upstream(path: Path, branches: tuple[str, ...] = ("devel", "stable", "production-devel",
                                                             "production-stable")) -> bool:
    """Create the demo upstream at ``path`` unless it exists; True when created."""
    if (path / "HEAD").exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["init", "--quiet", "--bare", "--initial-branch=" + branches[0], str(path)])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _git(work, "init", "--quiet", "--initial-branch=" + branches[0])
        (work / "run-tests.sh").write_text(SUITE)
        (work / "app.txt").write_text("status: ok\nversion: 1\n")
        _git(work, "add", "run-tests.sh", "app.txt")
        _git(work, "commit", "--quiet", "-m", "Initial release")
        base = _git(work, "rev-parse", "HEAD")
        for b in branches:
            _git(work, "push", "--quiet", str(path), f"{base}:refs/heads/{b}")
        (work / "app.txt").write_text("status: ok\nversion: 2\n")
        _git(work, "commit", "--quiet", "-am", "Version 2 on devel")
        _git(work, "push", "--quiet", str(path), f"HEAD:refs/heads/{branches[0]}")
    return True


def create_htpasswd(path: Path, users: tuple[str, ...] = ("alice", "bob")) -> dict[str, str] | None:
    """Write an htpasswd file with random passwords unless it exists; return them when created."""
    if path.exists():
        return None
    passwords = {u: secrets.token_urlsafe(12) for u in users}
    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt()).decode()}" for u, p in passwords.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    (path.parent / "demo-passwords.txt").write_text(
        "".join(f"{u} {p}\n" for u, p in passwords.items()))
    (path.parent / "demo-passwords.txt").chmod(0o600)
    return passwords
