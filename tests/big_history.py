"""Long histories in seconds: ``git fast-import`` writes thousands of commits in one process.

Used by the tests of exact counts (distances above every old limit) and by
``bench/dashboard.py`` (100,000 commits). Every commit changes ``app.txt``,
so every commit has its own tree, as in a real project.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTHOR = "Bench Developer <bench@example.invalid>"


def extend(git_dir: str | Path, ref: str, parent: str | None, count: int, subject: str = "change",
           start: int = 1_700_000_000) -> str:
    """Write ``count`` commits, each on the one before, starting on ``parent`` (None: a new root).

    ``ref`` (fully qualified) is set to the last one, whose sha is returned.
    Subjects are ``<subject> <n>``; commit times advance one second each.
    """
    chunks = []
    for i in range(1, count + 1):
        msg = f"{subject} {i}".encode()
        body = f"{subject} {i}\n".encode()
        head = (f"commit {ref}\nauthor {AUTHOR} {start + i} +0000\ncommitter {AUTHOR} {start + i} +0000\n"
                f"data {len(msg)}\n").encode() + msg + b"\n"
        if i == 1 and parent is not None:
            head += f"from {parent}\n".encode()
        chunks.append(head + f"M 644 inline app.txt\ndata {len(body)}\n".encode() + body + b"\n")
    subprocess.run(["git", f"--git-dir={git_dir}", "fast-import", "--quiet", "--force"],
                   input=b"".join(chunks), check=True, capture_output=True)
    return rev_parse(git_dir, ref)


def rev_parse(git_dir: str | Path, rev: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "--verify", rev], check=True,
                          capture_output=True, text=True).stdout.strip()


def count(git_dir: str | Path, base: str | None, tip: str) -> int:
    """``git rev-list --count base..tip``, run here independently of lpdeploy: the expected number."""
    args = ["git", f"--git-dir={git_dir}", "rev-list", "--count", tip] + ([f"^{base}"] if base else [])
    return int(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
