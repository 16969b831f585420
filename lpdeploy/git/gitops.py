"""The only code in lpdeploy that runs git.

Every call is an argv list (never a shell string) with ``--end-of-options``
before anything that came from outside, refs fully qualified, revisions
checked as full hex ids. Exit codes become typed errors (``GitError``,
``UnknownRevision``, ``StaleBranch``). Calls are synchronous: Twisted code
runs them in a thread (see ``upstream.py``).

The master keeps a bare *mirror* of the upstream in its base directory: a
cache of objects, never a source of truth. Truth is what ``ls-remote`` says,
and every branch move is a compare-and-swap push to the upstream.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lpdeploy.core.errors import (
    GitError,
    InvalidInput,
    MergeConflict,
    PushUnconfirmed,
    StaleBranch,
    UnknownRevision,
)
from lpdeploy.core.refs import qualified, validate_branch, validate_revision

GIT_TIMEOUT = 600  # seconds: a local git command that hangs must not hang a build forever
NETWORK_TIMEOUT = 120  # seconds a call that reaches the upstream may take (``[repository] timeout``)
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a terminal
    "GIT_ASKPASS": "true",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",  # stable messages to parse
}
# after a fetch, git writes the new commits into a split commit-graph (git >= 2.24)
WRITE_COMMIT_GRAPH = ("-c", "fetch.writeCommitGraph=true")
_PATCH_ID = re.compile(r"[0-9a-f]{40}")
PATCH_BATCH = 200  # commits per ``git log -p`` when their patch ids are computed


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str
    author: str
    subject: str
    timestamp: int


@dataclass(frozen=True)
class Move:
    """Move ``branch`` from ``expected`` (None: must not exist) to ``new``."""

    branch: str
    expected: str | None
    new: str


def run_git(args: list[str], cwd: str | Path | None = None, git_dir: str | Path | None = None,
            check: bool = True, stdin: str | None = None,
            timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``git <args>``; raise GitError on a non-zero exit when ``check``, and when it outlasts ``timeout``."""
    argv = ["git"]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv += args
    env = {**os.environ, **_ENV}
    # a session of its own: on a timeout the whole group goes (ssh, receive-pack, hooks), not git alone;
    # a transport child left running could still land a push after we gave up on it
    with subprocess.Popen(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          errors="surrogateescape",  # bytes that are not UTF-8 (a Latin-1 diff) survive
                          stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise GitError(argv, -1, f"timed out after {timeout:g}s") from None
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and done.returncode != 0:
        raise GitError(argv, done.returncode, done.stderr)
    return done


def patch_id(diff: str) -> str | None:
    """``git patch-id --stable`` of one change given as a diff (a cowboy's patch).

    None when git finds no change in it (it is not a diff) or finds several
    (a series of commits: one cowboy is one change). ``--stable``: the id
    does not depend on the order of the files, so a commit of the same change
    gets the same id however its diff was produced.
    """
    lines = run_git(["patch-id", "--stable"], stdin=diff).stdout.split("\n")
    ids = [line.split()[0] for line in lines if line.strip()]
    return ids[0] if len(ids) == 1 and _PATCH_ID.fullmatch(ids[0]) else None


def ls_remote(url: str, timeout: float = NETWORK_TIMEOUT) -> dict[str, str]:
    """The upstream's branch tips, ``{short branch name: sha}``: the truth of the flow."""
    out = run_git(["ls-remote", "--heads", "--end-of-options", url], timeout=timeout).stdout
    heads: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref[len("refs/heads/"):]] = sha
    return heads


class Mirror:
    """A bare local mirror of the upstream, for reading trees, ancestry and commits.

    ``timeout`` bounds every call that reaches the upstream (fetch, push): a
    hung or unreachable upstream fails the call with a ``GitError`` instead of
    holding the build (and the mirror's lock) for ``GIT_TIMEOUT``.
    """

    def __init__(self, path: str | Path, url: str, timeout: float = NETWORK_TIMEOUT) -> None:
        self.path = Path(path)
        self.url = url
        self.timeout = timeout

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_git(list(args), git_dir=self.path, check=check)

    def remote(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``git`` for a call that reaches the upstream: bounded by ``timeout``."""
        return run_git(list(args), git_dir=self.path, check=check, timeout=self.timeout)

    def ensure(self) -> None:
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", str(self.path)])

    def fetch(self) -> dict[str, str]:
        """Bring every upstream branch into the mirror; return the tips as fetched.

        Every fetch also extends the mirror's commit-graph (``--split``: only
        the new commits are written), so ancestry and counting questions stay
        in milliseconds on a long history instead of parsing every commit.
        """
        self.ensure()
        self.remote(*WRITE_COMMIT_GRAPH, "fetch", "--quiet", "--prune", "--no-tags", "--end-of-options", self.url,
                    "+refs/heads/*:refs/heads/*")
        return self.heads()

    def fetch_revision(self, sha: str) -> None:
        """Make sure one commit, on any upstream ref, is present in the mirror.

        Fetching by id works where the upstream allows it; otherwise every
        upstream ref is fetched into ``refs/upstream/*`` and looked at again.
        """
        validate_revision(sha)
        if self.has(sha):
            return
        self.ensure()
        self.remote(*WRITE_COMMIT_GRAPH, "fetch", "--quiet", "--no-tags", "--end-of-options", self.url, sha,
                    check=False)
        if not self.has(sha):
            self.remote(*WRITE_COMMIT_GRAPH, "fetch", "--quiet", "--no-tags", "--end-of-options", self.url,
                        "+refs/*:refs/upstream/*", check=False)
        if not self.has(sha):
            raise UnknownRevision(["git", "fetch", sha], 1, f"{sha} is not in the upstream repository")

    def heads(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/").stdout
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            heads[ref[len("refs/heads/"):]] = sha
        return heads

    def has(self, sha: str) -> bool:
        validate_revision(sha)
        return self.git("cat-file", "-e", "--end-of-options", sha + "^{commit}", check=False).returncode == 0

    def tree_of(self, sha: str) -> str:
        validate_revision(sha)
        proc = self.git("rev-parse", "--verify", "--quiet", "--end-of-options", sha + "^{tree}", check=False)
        if proc.returncode != 0:
            raise UnknownRevision(["git", "rev-parse", sha], proc.returncode, f"unknown revision {sha}")
        return proc.stdout.strip()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        validate_revision(ancestor)
        validate_revision(descendant)
        proc = self.git("merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant, check=False)
        if proc.returncode in (0, 1):
            return proc.returncode == 0
        raise GitError(["git", "merge-base", ancestor, descendant], proc.returncode, proc.stderr)

    def commit(self, sha: str) -> Commit:
        validate_revision(sha)
        proc = self.git("log", "-1", "--format=%H%x00%T%x00%an <%ae>%x00%ct%x00%s",
                        "--end-of-options", sha, check=False)
        if proc.returncode != 0:
            raise UnknownRevision(["git", "log", sha], proc.returncode, f"unknown revision {sha}")
        h, tree, author, ts, subject = proc.stdout.rstrip("\n").split("\x00", 4)
        return Commit(sha=h, tree=tree, author=author, subject=subject, timestamp=int(ts))

    def commit_times(self, shas: list[str]) -> dict[str, int]:
        """Committer times of many commits in one git call; unknown ones are left out."""
        wanted = [validate_revision(s) for s in shas]
        if not wanted:
            return {}
        # one call to learn which exist (a missing one would fail the whole log)
        check = run_git(["cat-file", "--batch-check=%(objectname) %(objecttype)"], git_dir=self.path,
                        stdin="".join(s + "\n" for s in wanted)).stdout
        known = [line.split()[0] for line in check.splitlines() if line.endswith(" commit")]
        if not known:
            return {}
        proc = self.git("log", "--no-walk=unsorted", "--format=%H %ct", "--end-of-options", *known)
        out = {}
        for line in proc.stdout.splitlines():
            sha, _, ts = line.partition(" ")
            out[sha] = int(ts)
        return out

    def commits_between(self, base: str | list[str] | None, tip: str | list[str],
                        limit: int = 200) -> list[Commit]:
        """Commits reachable from ``tip`` (one or several) but from no ``base``, newest first."""
        tips = [tip] if isinstance(tip, str) else list(tip)
        bases = [] if base is None else [base] if isinstance(base, str) else list(base)
        if not tips:
            return []
        args = ["log", f"--max-count={limit}", "--format=%H%x00%T%x00%an <%ae>%x00%ct%x00%s",
                "--end-of-options", *(validate_revision(t) for t in tips),
                *("^" + validate_revision(b) for b in bases)]
        out = self.git(*args).stdout
        commits = []
        for line in out.splitlines():
            h, tree, author, ts, subject = line.split("\x00", 4)
            commits.append(Commit(sha=h, tree=tree, author=author, subject=subject, timestamp=int(ts)))
        return commits

    def patch_ids(self, shas: list[str]) -> dict[str, str]:
        """``git patch-id --stable`` of each commit; "" for one without a patch id (a merge, an empty commit).

        Their diffs go through ``git patch-id`` in batches of ``PATCH_BATCH``
        commits; external diff drivers and textconv filters are off, so the
        ids are the same as a developer's ``git show | git patch-id --stable``.
        """
        wanted = [validate_revision(s) for s in shas]
        found: dict[str, str] = {}
        for i in range(0, len(wanted), PATCH_BATCH):
            batch = wanted[i:i + PATCH_BATCH]
            diffs = self.git("log", "--no-walk=unsorted", "--no-merges", "-p", "--no-color", "--no-ext-diff",
                             "--no-textconv", "--format=commit %H", "--end-of-options", *batch).stdout
            for line in run_git(["patch-id", "--stable"], stdin=diffs).stdout.splitlines():
                pid, _, sha = line.partition(" ")
                found[sha.strip()] = pid
        return {sha: found.get(sha, "") for sha in wanted}

    def count_between(self, base: str | list[str] | None, tip: str | list[str]) -> int:
        """How many commits ``tip`` (one or several) reaches that no ``base`` does: exact, however many.

        ``rev-list --count`` counts without formatting a single commit; with the
        mirror's commit-graph it stays in milliseconds at 100,000 commits.
        """
        tips = [tip] if isinstance(tip, str) else list(tip)
        bases = [] if base is None else [base] if isinstance(base, str) else list(base)
        if not tips:
            return 0
        out = self.git("rev-list", "--count", "--end-of-options", *(validate_revision(t) for t in tips),
                       *("^" + validate_revision(b) for b in bases)).stdout
        return int(out.strip())

    def first_parents(self, base: str | None, tip: str, limit: int = 200) -> list[Commit]:
        """The first-parent chain of ``tip`` down to ``base`` (exclusive), newest first.

        The commits a gate batch is made of: what devel's tip added on top of
        stable, one landing at a time, without the side history of merges.
        """
        args = ["log", "--first-parent", f"--max-count={limit}", "--format=%H%x00%T%x00%an <%ae>%x00%ct%x00%s",
                "--end-of-options", validate_revision(tip)]
        if base is not None:
            args.append("^" + validate_revision(base))
        commits = []
        for line in self.git(*args).stdout.splitlines():
            h, tree, author, ts, subject = line.split("\x00", 4)
            commits.append(Commit(sha=h, tree=tree, author=author, subject=subject, timestamp=int(ts)))
        return commits

    def first_parent_messages(self, base: str | None, tip: str, limit: int = 200) -> dict[str, str]:
        """The whole message of each commit of ``first_parents(base, tip, limit)``, by sha.

        What QA reads besides the subject: bug references and git revert's
        ``This reverts commit <sha>.`` line.
        """
        args = ["log", "--first-parent", f"--max-count={limit}", "--format=%H%x00%B%x1e",
                "--end-of-options", validate_revision(tip)]
        if base is not None:
            args.append("^" + validate_revision(base))
        out = {}
        for record in self.git(*args).stdout.split("\x1e"):
            sha, sep, message = record.lstrip("\n").partition("\x00")
            if sep:
                out[sha] = message
        return out

    def merge(self, ours: str, theirs: str, message: str) -> str:
        """Create (in the mirror only) a merge commit of ``theirs`` into ``ours``; return its sha.

        Uses ``git merge-tree --write-tree``, which needs no work tree; a
        conflict raises MergeConflict naming the conflicting paths and writes
        no commit.
        """
        validate_revision(ours)
        validate_revision(theirs)
        proc = self.git("merge-tree", "--write-tree", "--name-only", "--no-messages",
                        "--end-of-options", ours, theirs, check=False)
        if proc.returncode == 1:
            raise MergeConflict(["git", "merge-tree", ours, theirs], proc.stdout.splitlines()[1:])
        if proc.returncode != 0:
            raise GitError(["git", "merge-tree", ours, theirs], proc.returncode, proc.stderr)
        tree = proc.stdout.splitlines()[0].strip()
        env_id = ["-c", "user.name=lpdeploy", "-c", "user.email=lpdeploy@localhost"]
        out = run_git([*env_id, "commit-tree", tree, "-p", ours, "-p", theirs, "-m", message],
                      git_dir=self.path)
        return out.stdout.strip()

    def push_new_ref(self, ref: str, sha: str) -> None:
        """Publish ``sha`` under a hidden ref (``refs/lpdeploy/...``) so that workers can fetch it.

        The ref is create-only (an empty lease): a candidate ref names its sha,
        so an existing one already holds exactly this commit.
        """
        validate_revision(sha)
        if not ref.startswith("refs/lpdeploy/") or ".." in ref or ref.endswith("/"):
            raise InvalidInput("scratch ref", ref, "must be under refs/lpdeploy/")
        self.git("update-ref", "--end-of-options", ref, sha)
        proc = self.remote("push", "--quiet", "--porcelain", f"--force-with-lease={ref}:", "--end-of-options",
                           self.url, f"{sha}:{ref}", check=False)
        if proc.returncode != 0 and "stale info" not in proc.stdout + proc.stderr:
            raise GitError(["git", "push", ref], proc.returncode, proc.stdout + proc.stderr)

    def push(self, moves: list[Move]) -> bool:
        """Move upstream branches atomically, each as a compare-and-swap.

        ``--force-with-lease=<ref>:<expected>`` makes the upstream refuse when a
        branch is no longer where we saw it; callers check fast-forwardness
        before (``policy.move_decision``), so the lease turns "is an ancestor"
        into "was an ancestor of exactly what we replace". All moves land or
        none (``--atomic``).

        A push that fails without a refusal (a timeout, a dropped connection,
        exit 128) may still have landed: the upstream updated its refs and only
        its reply was lost. So the upstream is read (``confirm_landed``) before
        the failure is believed; a move that landed returns as if the reply had
        come (True: "landed, though its reply was lost"; False: a normal push),
        and the caller records it once.
        """
        if not moves:
            return False
        args = ["push", "--quiet", "--atomic", "--porcelain"]
        refspecs = []
        for m in moves:
            ref = qualified(m.branch)
            validate_revision(m.new)
            expected = validate_revision(m.expected) if m.expected is not None else ""
            args.append(f"--force-with-lease={ref}:{expected}")
            refspecs.append(f"{m.new}:{ref}")
        argv = args + ["--end-of-options", self.url, *refspecs]
        try:
            proc = self.remote(*argv, check=False)
        except GitError as e:  # timed out: the reply is lost, the push may have landed
            self.confirm_landed(moves, e)
            return True
        if proc.returncode != 0:
            text = proc.stdout + proc.stderr
            if "stale info" in text or "fetch first" in text or "non-fast-forward" in text:
                raise StaleBranch(["git", *argv], proc.returncode, text)
            self.confirm_landed(moves, GitError(["git", *argv], proc.returncode, text))
            return True
        self._moved(moves)
        return False

    def confirm_landed(self, moves: list[Move], failure: GitError) -> None:
        """After a push failed without a refusal: return if every move is upstream, else raise.

        Every branch at its new sha: the push landed (a lost reply), the mirror
        follows. Every branch still where it was: ``failure`` stands (nothing
        moved). A branch somewhere else: someone moved it (``StaleBranch``).
        An upstream that cannot be read either: ``PushUnconfirmed`` — the
        caller reads the tips again later, never assumes either way.
        """
        try:
            heads = ls_remote(self.url, self.timeout)
        except GitError as e:
            raise PushUnconfirmed(failure.argv, failure.returncode,
                                  f"{failure.stderr.strip()}; reading the upstream after it failed too: {e}") from None
        if all(heads.get(m.branch) == m.new for m in moves):
            self._moved(moves)
            return
        if any(heads.get(m.branch) not in (m.expected, m.new) for m in moves):
            raise StaleBranch(failure.argv, failure.returncode, f"stale info: {failure.stderr.strip()}")
        raise failure

    def _moved(self, moves: list[Move]) -> None:
        for m in moves:  # keep the mirror in step with what we just wrote
            self.git("update-ref", "--end-of-options", qualified(m.branch), m.new)


def checkout_commands(url: str, ref: str, sha: str) -> list[list[str]]:
    """The argv lists a worker runs to check out exactly ``sha`` (fetched via ``ref``), quietly.

    Quiet on purpose: ``git checkout`` would print the commit's subject, and an
    embargoed subject must not reach a build log. Every outside value comes
    after ``--end-of-options``.
    """
    validate_revision(sha)
    if not (ref.startswith("refs/heads/") or ref.startswith("refs/lpdeploy/")):
        raise InvalidInput("ref", ref, "must be fully qualified (refs/heads/... or refs/lpdeploy/...)")
    return [
        ["git", "init", "--quiet", "."],
        # first of all, drop what an earlier build left (old results must never pass for new ones)
        ["git", "clean", "--quiet", "-d", "--force", "-x"],
        ["git", "fetch", "--quiet", "--no-tags", "--end-of-options", url, f"+{ref}:refs/lpdeploy-build"],
        # update-ref takes --end-of-options where checkout --detach does not (git 2.39)
        ["git", "update-ref", "--no-deref", "--end-of-options", "HEAD", sha],
        ["git", "reset", "--hard", "--quiet"],
        ["git", "clean", "--quiet", "-d", "--force", "-x"],
        ["git", "rev-parse", "--verify", "HEAD"],
    ]


# ``checkout_commands`` as one shell script: constant text, the outside values only as its arguments
# ("$1" url, "$2" ref, "$3" sha), each reaching git after --end-of-options. ``set -e``: the first failure ends it.
#
# One object store per worker: Buildbot runs a builder's steps in ``<worker basedir>/<builder>/build``,
# so ``../../.lpdeploy-objects.git`` (WORKER_OBJECT_STORE) is one bare repository per worker. The
# builder directory borrows its objects through ``.git/objects/info/alternates`` (a constant relative
# path, resolved from ``.git/objects``): a new builder directory then fetches refs, not history.
# - The store is made whole or not at all (set up under a temporary name, then renamed into place,
#   ``mv -T``: of two first checkouts on a worker one wins, the other uses the winner's).
# - Its fetch writes objects only, then moves the ref to "$3" with no old value to compare: concurrent
#   checkouts of one ref from several builders never fail on each other's ref update (a fetch that
#   moves a ref checks the old value and does fail; a held lock is waited for up to 2 s, not git's
#   0.1 s, as a busy worker may be slow). The ref is what the next fetch negotiates from.
# - It never prunes (``gc.auto 0``, ``gc.pruneExpire never``): a borrower may need an object that
#   a later ref move left unreachable there. A store without ``gc.auto 0`` is not borrowed from.
# - Anything wrong with it (cannot be made, filled or read) only costs time: the checkout says so in
#   one line on stderr and fetches on its own, as before (dropping a ``.git`` that borrowed, whose
#   objects may be gone). The last line still prints what HEAD is, which the steps compare with "$3".
# - The builder directory's fetch skips the "forced update" check (``--no-show-forced-updates``): it is
#   quiet anyway, and without a commit-graph the check walks the whole history (0.4-0.6 s at 100,000
#   commits) each time refs/lpdeploy-build moves.
WORKER_OBJECT_STORE = "../../.lpdeploy-objects.git"

CHECKOUT_SCRIPT = """set -e
git init --quiet .
git clean --quiet -d --force -x
store=../../.lpdeploy-objects.git
shared=no
if { test -d "$store" || { new="$store.new.$$" && git init --quiet --bare "$new" &&
       git --git-dir="$new" config gc.auto 0 && git --git-dir="$new" config gc.pruneExpire never &&
       { mv -T "$new" "$store" || { rm -rf "$new"; test -d "$store"; }; }; }; } 2>/dev/null &&
   test "$(git --git-dir="$store" config gc.auto 2>/dev/null)" = 0; then
  if git --git-dir="$store" fetch --quiet --no-tags --no-write-fetch-head --end-of-options "$1" "$2" 2>/dev/null; then
    git -c core.filesRefLockTimeout=2000 --git-dir="$store" update-ref --no-deref \\
      --end-of-options "$2" "$3" 2>/dev/null ||
      echo "lpdeploy-checkout: could not record the revision in the worker's object store $store" >&2
    printf '%s\\n' ../../../../.lpdeploy-objects.git/objects >.git/objects/info/alternates
    git -c advice.fetchShowForcedUpdates=false fetch --quiet --no-tags --no-show-forced-updates \\
      --end-of-options "$1" "+$2:refs/lpdeploy-build" 2>/dev/null && shared=yes
  else
    echo "lpdeploy-checkout: could not fill the worker's object store $store" >&2
  fi
fi
if test "$shared" = no; then
  echo "lpdeploy-checkout: fetching without the worker's object store $store" >&2
  if test -e .git/objects/info/alternates; then rm -rf .git && git init --quiet .; fi
  git -c advice.fetchShowForcedUpdates=false fetch --quiet --no-tags --no-show-forced-updates \\
    --end-of-options "$1" "+$2:refs/lpdeploy-build"
fi
git update-ref --no-deref --end-of-options HEAD "$3"
git reset --hard --quiet
git clean --quiet -d --force -x
git rev-parse --verify HEAD
"""


def checkout_command(url: str, ref: str, sha: str) -> list[str]:
    """The worker's checkout of exactly ``sha`` as one command: ``checkout_commands`` run by one ``sh``.

    One remote command instead of seven: each costs the master a round trip
    with the worker and a few database writes, and the gate runs a checkout
    on its own worker and one per shard (``bench/gate_e2e.py`` measures it).
    The script is constant; ``url``, ``ref`` and ``sha`` are its positional
    arguments (``sh`` never reads those as options), validated as
    ``checkout_commands`` validates them. It prints only the checked-out sha.
    Unlike ``checkout_commands`` it borrows the history from the worker's
    object store (``WORKER_OBJECT_STORE``, see ``CHECKOUT_SCRIPT``), so a new
    builder directory costs tens of milliseconds and kilobytes, not a clone.
    """
    checkout_commands(url, ref, sha)  # the same validation
    return ["sh", "-c", CHECKOUT_SCRIPT, "lpdeploy-checkout", url, ref, sha]


def branch_names(heads: dict[str, str]) -> list[str]:
    """Upstream branch names that pass validation; others are ignored, never passed to git."""
    names = []
    for name in heads:
        try:
            names.append(validate_branch(name))
        except InvalidInput:  # an odd upstream name is skipped, never passed to git
            continue
    return names
