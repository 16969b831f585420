"""Checkouts on a worker: the first and the next builder directories, with the worker's shared object store.

The worker's checkout is ``gitops.checkout_command``: one constant script that
borrows the history from one bare object store per worker
(``gitops.WORKER_OBJECT_STORE``). This runs it exactly as a worker does (the
same argv, in ``<worker>/<builder>/build``) against a generated upstream of
``--commits`` commits, side by side with a 10-commit one, and reports per
builder directory: wall time, the size of its ``.git``, and the size of the
worker's store. "Without the store" runs the same script where the store
cannot be made (a file in its place), which is how every checkout worked
before the store: each builder directory fetches the whole history itself.

Run with ``.venv/bin/python -m bench.checkout [--commits N] [--builders N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save, table
from bench.history import build_upstream
from lpdeploy.git.gitops import WORKER_OBJECT_STORE, checkout_command

COMMITS = 100_000
BUILDERS = 4  # gate, promote, deploy, shard: the builder directories a worker gets


def _size(path: Path) -> int:
    """Bytes under ``path`` (files only), as ``du --apparent-size`` counts them."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _checkout(worker: Path, builder: str, url: str, sha: str) -> tuple[float, int]:
    build = worker / builder / "build"
    build.mkdir(parents=True)
    started = time.perf_counter()
    proc = subprocess.run(checkout_command(url, "refs/heads/devel", sha), cwd=build, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0 or proc.stdout.strip().splitlines()[-1] != sha:
        raise RuntimeError(f"checkout in {build} failed: {proc.stderr.strip()}")
    return took, _size(build / ".git")


def measure(base: Path, commits: int, builders: int, shared: bool) -> list[dict[str, Any]]:
    upstream = base / f"upstream-{commits}.git"
    if not upstream.exists():
        build_upstream(upstream, commits)
    sha = subprocess.run(["git", f"--git-dir={upstream}", "rev-parse", "refs/heads/devel"], check=True,
                         capture_output=True, text=True).stdout.strip()
    worker = base / f"worker-{commits}-{'shared' if shared else 'alone'}"
    worker.mkdir()
    store = (worker / "gate" / "build" / WORKER_OBJECT_STORE).resolve()
    if not shared:
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text("not a repository: every checkout fetches on its own\n")
    rows = []
    for i in range(builders):
        took, git_bytes = _checkout(worker, f"builder-{i + 1}", upstream.as_uri(), sha)
        rows.append({"commits": commits, "store": shared, "builder": i + 1, "seconds": took,
                     "git_mib": git_bytes / 2**20, "store_mib": _size(store) / 2**20 if shared else 0.0})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=COMMITS)
    parser.add_argument("--builders", type=int, default=BUILDERS)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lpdeploy-bench-checkout-") as tmp:
        for commits in (10, args.commits):
            for shared in (False, True):
                rows += measure(Path(tmp), commits, args.builders, shared)
    print(table(f"Checkouts on one worker: {args.builders} builder directories, one after the other",
                ["commits", "object store", "builder dir", "seconds", ".git MiB", "store MiB"],
                [[r["commits"], "shared" if r["store"] else "none", r["builder"], r["seconds"], r["git_mib"],
                  r["store_mib"]] for r in rows]))
    save("checkout", rows)


if __name__ == "__main__":
    main()
