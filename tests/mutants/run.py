"""``make mutants``: apply each curated semantic mutant to a scratch copy and check that its tests kill it.

The curated list (``curated.toml`` next to this file) is the contract: every
invariant (README.rst, "Invariants", numbered as in the design notes) and
every mutant named by issue 9 has an entry saying which code breaks the
invariant (an exact snippet and its mutated form) and which tests must then
fail. For each entry this runner

1. copies the project (without ``.venv``, ``.git``, ``.run``) to a scratch directory,
2. replaces each snippet, which must occur exactly once in its file (otherwise
   the list needs updating after a refactor, and the runner stops before
   running anything),
3. runs the entry's tests with this interpreter (the checkout's venv), in the
   scratch directory and with ``PYTHONPATH`` set to it, so the mutated
   ``lpdeploy`` and ``master.cfg`` are the ones used, by subprocesses too
   (the ``buildbot`` daemon, the ``lpdeploy`` CLI),
4. records the verdict: *killed* (pytest exit code 1: a test failed),
   *survived* (exit code 0: every test passed) or *error* (any other exit
   code: collection or usage errors, a timeout).

Before any mutant, the union of all selected tests runs once on an unmutated
scratch copy and must pass: a "kill" by tests that fail anyway means nothing.
Exit status: 0 when every mutant is killed, 1 when one survived or erred,
2 when the list is out of date or the unmutated baseline fails.

Not collected by pytest (no ``test_`` prefix); run it with
``.venv/bin/python tests/mutants/run.py [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CURATED = HERE / "curated.toml"
# not copied: the venv, git, the local run directory, caches, and mutmut's own working copy (``mutants/``)
IGNORED_AT_TOP = {".venv", ".git", ".run", "mutants", "bench-results.json"}
IGNORED_ANYWHERE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                                          ".hypothesis", "*.egg-info")
DEFAULT_TIMEOUT = 300  # seconds for one mutant's tests; a mutant that hangs is an error, not a kill
KILLED, SURVIVED, ERROR = "killed", "survived", "error"


class ListOutOfDate(Exception):
    """The curated list no longer matches the code (a refactor moved or changed a snippet)."""


@dataclass(frozen=True)
class Edit:
    file: str
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    invariant: str  # "1".."8" (README.rst, "Invariants"), with the issue item it comes from: "2 (issue 9.3)"
    what: str
    tests: tuple[str, ...]
    edits: tuple[Edit, ...]
    timeout: int = DEFAULT_TIMEOUT


@dataclass
class Verdict:
    mutant: Mutant
    verdict: str
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""


def load(path: Path) -> list[Mutant]:
    """The mutants of a curated list; a malformed entry stops the run with its name."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    mutants = []
    for i, entry in enumerate(data.get("mutant", []), 1):
        name = entry.get("name") or f"entry {i}"
        try:
            edits = tuple(Edit(e["file"], e["find"], e["replace"]) for e in entry["edit"])
            invariant = str(int(entry["invariant"])) + (f" (issue {entry['issue']})" if "issue" in entry else "")
            m = Mutant(name=entry["name"], invariant=invariant, what=entry["what"],
                       tests=tuple(entry["tests"]), edits=edits, timeout=int(entry.get("timeout", DEFAULT_TIMEOUT)))
        except (KeyError, TypeError, ValueError) as e:
            raise ListOutOfDate(f"{path}: mutant {name!r} is malformed ({e!r}): it needs name, invariant (a "
                                "number), what, tests and at least one [[mutant.edit]] with file, find and "
                                "replace") from None
        if not m.tests or not m.edits or any(e.find == e.replace for e in m.edits):
            raise ListOutOfDate(f"{path}: mutant {name!r} needs tests and edits that change something")
        mutants.append(m)
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        raise ListOutOfDate(f"{path}: mutant names must be unique")
    return mutants


def check_applies(mutants: Sequence[Mutant], project: Path) -> None:
    """Every snippet must occur exactly once in its file of the unmutated project."""
    problems = []
    for m in mutants:
        for e in m.edits:
            path = project / e.file
            text = path.read_text(encoding="utf-8") if path.is_file() else None
            count = text.count(e.find) if text is not None else 0
            if text is None:
                problems.append(f"mutant {m.name!r}: {e.file} does not exist")
            elif count != 1:
                first = e.find.strip().splitlines()[0] if e.find.strip() else e.find
                problems.append(f"mutant {m.name!r}: the snippet starting {first!r} occurs {count} times in "
                                f"{e.file} (it must occur exactly once)")
    if problems:
        raise ListOutOfDate("the curated mutant list needs updating after a refactor:\n  " + "\n  ".join(problems))


def copy_project(project: Path, dest: Path) -> Path:
    def ignored(directory: str, names: list[str]) -> set[str]:
        top = IGNORED_AT_TOP & set(names) if Path(directory).resolve() == project.resolve() else set()
        return top | IGNORED_ANYWHERE(directory, names)

    shutil.copytree(project, dest, ignore=ignored, symlinks=True)
    return dest


def apply(mutant: Mutant, scratch: Path) -> None:
    for e in mutant.edits:
        path = scratch / e.file
        text = path.read_text(encoding="utf-8")
        assert text.count(e.find) == 1, (mutant.name, e.file)  # checked on the project already
        path.write_text(text.replace(e.find, e.replace), encoding="utf-8")


def scratch_env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LPDEPLOY_CONFIG")}
    env["PYTHONPATH"] = str(scratch)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_tests(tests: Sequence[str], scratch: Path, timeout: int) -> tuple[int | None, list[str], str]:
    """Run ``tests`` in ``scratch``: (pytest's exit code or None on a timeout, failed test ids, output)."""
    argv = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--no-header", *tests]
    try:
        proc = subprocess.run(argv, cwd=scratch, env=scratch_env(scratch), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, [], out + f"\n(timed out after {timeout}s)"
    # a test id up to its parameters ("[...]" may hold anything, even spaces or a newline)
    failed = re.findall(r"^(?:FAILED|ERROR) ([^\[\s]+)", proc.stdout, flags=re.MULTILINE)
    return proc.returncode, failed, proc.stdout + proc.stderr


def verdict_of(code: int | None) -> str:
    return KILLED if code == 1 else SURVIVED if code == 0 else ERROR


def check_scratch_is_used(scratch: Path, package: str) -> None:
    """The scratch copy's package must shadow the checkout's editable install."""
    proc = subprocess.run([sys.executable, "-c", f"import {package}; print({package}.__file__)"], cwd=scratch,
                          env=scratch_env(scratch), capture_output=True, text=True, timeout=60)
    where = Path(proc.stdout.strip() or "?").resolve()
    if scratch.resolve() not in where.parents:
        raise ListOutOfDate(f"the scratch copy is not what Python imports ({package} comes from {where})")


def killers(failed: Sequence[str]) -> str:
    """The failed tests, each once; parametrized ones with their count of failed cases."""
    counts = Counter(failed)
    return ", ".join(t if n == 1 else f"{t} ({n} cases)" for t, n in counts.items())


def table(verdicts: Sequence[Verdict]) -> str:
    """mutant, invariant, verdict, time, and last (unpadded, it is long) the tests that killed it."""
    rows = [("mutant", "invariant", "verdict", "time", "killed by")]
    for v in verdicts:
        by = killers(v.failed) if v.verdict == KILLED else \
            "nothing: every listed test passed" if v.verdict == SURVIVED else "(error: see its output above)"
        rows.append((v.mutant.name, v.mutant.invariant, v.verdict.upper(), f"{v.seconds:.1f}s", by))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 9)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", type=Path, default=CURATED, help="the curated list (default: %(default)s)")
    ap.add_argument("--project", type=Path, default=ROOT, help="the checkout to copy (default: %(default)s)")
    ap.add_argument("--package", default="lpdeploy", help="the package the scratch copy must provide")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these mutants")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directories (their paths are printed)")
    args = ap.parse_args(argv)
    project = args.project.resolve()
    try:
        mutants = load(args.list)
        unknown = set(args.only) - {m.name for m in mutants}
        if unknown:
            raise ListOutOfDate(f"no such mutant: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if not args.only or m.name in args.only]
        check_applies(mutants, project)
    except ListOutOfDate as e:
        print(f"mutants: {e}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lpdeploy-mutants-"))
    try:
        pristine = copy_project(project, work / "pristine")
        try:
            check_scratch_is_used(pristine, args.package)
        except ListOutOfDate as e:
            print(f"mutants: {e}", file=sys.stderr)
            return 2
        tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
        print(f"baseline: {len(tests)} tests on the unmutated copy ...", flush=True)
        started = time.monotonic()
        code, failed, out = run_tests(tests, pristine, max(m.timeout for m in mutants) * 2)
        if code != 0:
            print(out, file=sys.stderr)
            print(f"mutants: the selected tests do not pass on the unmutated copy (pytest exit code {code}; "
                  f"failed: {', '.join(failed) or '-'}); a kill would mean nothing", file=sys.stderr)
            return 2
        print(f"baseline: passed in {time.monotonic() - started:.1f}s", flush=True)
        verdicts = []
        for i, m in enumerate(mutants, 1):
            scratch = copy_project(pristine, work / f"{i:02d}-{m.name}")
            apply(m, scratch)
            started = time.monotonic()
            code, failed, out = run_tests(m.tests, scratch, m.timeout)
            v = Verdict(m, verdict_of(code), failed, time.monotonic() - started, out)
            verdicts.append(v)
            print(f"[{i}/{len(mutants)}] {m.name}: {v.verdict} ({v.seconds:.1f}s)", flush=True)
            if v.verdict == ERROR:
                print(out[-4000:], file=sys.stderr)
            if not args.keep:
                shutil.rmtree(scratch, ignore_errors=True)
        print()
        print(table(verdicts))
        bad = [v for v in verdicts if v.verdict != KILLED]
        print(f"\n{len(verdicts) - len(bad)} of {len(verdicts)} mutants killed"
              + (f"; NOT killed: {', '.join(v.mutant.name for v in bad)}" if bad else ""))
        return 1 if bad else 0
    finally:
        if args.keep:
            print(f"scratch copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
