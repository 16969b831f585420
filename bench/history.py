"""A large, realistic upstream in seconds: ``git fast-import`` of a linear devel history.

Every commit changes one of ``FILES`` files (its content names the commit),
so every commit has a tree of its own, as real pushes do. Commits are one
minute apart. The benchmarks move the flow branches themselves.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

FILES = 100
AUTHOR = "Bench Developer <dev@example.invalid>"
START = 1_600_000_000  # the first commit's time, seconds since the epoch


def _stream(commits: int) -> Iterator[bytes]:
    for i in range(1, commits + 1):
        message = f"Push {i}\n".encode()
        content = f"change {i}\n".encode()
        yield b"commit refs/heads/devel\n"
        yield f"mark :{i}\ncommitter {AUTHOR} {START + 60 * i} +0000\n".encode()
        yield f"data {len(message)}\n".encode() + message
        if i > 1:
            yield f"from :{i - 1}\n".encode()
        yield f"M 100644 inline src/module_{i % FILES:03d}.py\ndata {len(content)}\n".encode() + content + b"\n"


def build_upstream(path: Path, commits: int) -> list[tuple[str, str]]:
    """A bare repository at ``path`` with ``commits`` commits on devel; ``[(commit, tree)]``, oldest first."""
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=devel", str(path)], check=True)
    proc = subprocess.Popen(["git", f"--git-dir={path}", "fast-import", "--quiet"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    chunk: list[bytes] = []
    for part in _stream(commits):
        chunk.append(part)
        if len(chunk) >= 4096:
            proc.stdin.write(b"".join(chunk))
            chunk = []
    proc.stdin.write(b"".join(chunk))
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    out = subprocess.run(["git", f"--git-dir={path}", "log", "--reverse", "--format=%H %T", "refs/heads/devel"],
                         check=True, capture_output=True, text=True).stdout
    return [(c, t) for c, t in (line.split() for line in out.splitlines())]


def set_ref(repo: Path, branch: str, sha: str) -> None:
    """Point ``refs/heads/<branch>`` of a bare ``repo`` at ``sha`` by writing the loose ref.

    No git process: the benchmarks move the upstream's branches between two
    timed decisions without adding child processes to what they measure.
    """
    ref = repo / "refs" / "heads" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(ref.name + ".bench-tmp")
    tmp.write_text(sha + "\n")
    tmp.replace(ref)
