"""The worker's checkout as one command (``gitops.checkout_command``), run for real in scratch directories.

Builder directories are laid out as Buildbot lays them out on a worker,
``<worker basedir>/<builder>/build``, so that the worker's shared object store
(``../../.lpdeploy-objects.git``) lands in the scratch worker's base directory.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from big_history import extend
from support import GitUpstream

from lpdeploy.core.errors import InvalidInput
from lpdeploy.git.gitops import CHECKOUT_SCRIPT, WORKER_OBJECT_STORE, checkout_command

MB = 1024 * 1024


@pytest.fixture
def repo(tmp_path: Path) -> GitUpstream:
    return GitUpstream(str(tmp_path))


def builder(tmp_path: Path, name: str = "gate", worker: str = "worker") -> Path:
    """The working directory of builder ``name`` on a scratch worker (created)."""
    build = tmp_path / worker / name / "build"
    build.mkdir(parents=True, exist_ok=True)
    return build


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_it_checks_out_exactly_the_revision_and_prints_only_its_sha(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    second = repo.commit("Add search", first)
    repo.push("devel", second)
    build = builder(tmp_path)
    done = run(checkout_command(repo.url, "refs/heads/devel", first), build)  # an ancestor of the tip
    assert done.returncode == 0, done.stderr
    assert done.stdout == first + "\n"  # nothing else: no commit subject reaches the log
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=build, capture_output=True,
                          text=True).stdout.strip() == first
    assert (build / "app.txt").read_text() == repo.content(first)


def test_an_earlier_build_leaves_nothing_behind(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    second = repo.commit("Add search", first)
    repo.push("devel", second)
    build = builder(tmp_path)
    assert run(checkout_command(repo.url, "refs/heads/devel", second), build).returncode == 0
    (build / "results.xml").write_text("<old results/>")
    (build / "app.txt").write_text("edited by the last build\n")
    done = run(checkout_command(repo.url, "refs/heads/devel", first), build)
    assert done.returncode == 0 and done.stdout.strip() == first
    assert not (build / "results.xml").exists()
    assert (build / "app.txt").read_text() == repo.content(first)


def test_a_failing_step_fails_the_whole_checkout(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    repo.push("devel", first)
    build = builder(tmp_path)
    assert run(checkout_command(repo.url, "refs/heads/devel", first), build).returncode == 0
    absent = "f" * 40  # not in the upstream: update-ref fails, and nothing after it may run
    done = run(checkout_command(repo.url, "refs/heads/devel", absent), build)
    assert done.returncode != 0
    assert first not in done.stdout  # the earlier checkout is never reported as the new one


def test_outside_values_are_arguments_of_a_constant_script(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    repo.push("devel", first)
    argv = checkout_command(repo.url, "refs/heads/devel", first)
    assert argv[:4] == ["sh", "-c", CHECKOUT_SCRIPT, "lpdeploy-checkout"]
    assert argv[4:] == [repo.url, "refs/heads/devel", first]
    for line in CHECKOUT_SCRIPT.splitlines():
        places = [line.index(v) for v in ('"$1"', '"$2', '"+$2', '"$3"') if v in line]
        if places:  # every outside value comes after --end-of-options on its line
            assert "--end-of-options" in line[:min(places)], line


def test_an_option_shaped_url_is_a_repository_name_not_an_option(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    witness = tmp_path / "pwned"
    done = run(checkout_command(f"--upload-pack=touch {witness}", "refs/heads/devel", first), builder(tmp_path))
    assert done.returncode != 0
    assert not witness.exists()


@pytest.mark.parametrize("ref, sha", [("devel", "a" * 40), ("refs/heads/devel", "--help"),
                                      ("refs/heads/devel", "HEAD")])
def test_bad_refs_and_revisions_are_refused_before_anything_runs(ref: str, sha: str) -> None:
    with pytest.raises(InvalidInput):
        checkout_command("file:///upstream.git", ref, sha)


# The worker's shared object store (issue 15, item 4): a new builder directory borrows the history.

def size(path: Path) -> int:
    """Bytes in the files under ``path`` (what a builder directory's ``.git`` costs on disk)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.fixture
def long_history(repo: GitUpstream) -> str:
    """10,000 commits on devel, each with its own tree: about 3 MB of objects, far above 1 MB."""
    return extend(repo.bare, "refs/heads/devel", None, 10_000)


def head(build: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=build, capture_output=True, text=True).stdout.strip()


def test_a_new_builder_directory_borrows_the_workers_history(repo: GitUpstream, tmp_path: Path,
                                                             long_history: str) -> None:
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    assert not store.exists()
    first = run(checkout_command(repo.url, "refs/heads/devel", long_history), builder(tmp_path, "gate"))
    assert (first.returncode, first.stdout, first.stderr) == (0, long_history + "\n", "")
    assert store.is_dir() and size(store / "objects") > 2 * MB  # the first checkout fills the store...
    for name in ("gate", "deploy", "security"):  # ...and every builder directory, old or new, borrows it
        build = builder(tmp_path, name)
        done = run(checkout_command(repo.url, "refs/heads/devel", long_history), build)
        assert (done.returncode, done.stdout, done.stderr) == (0, long_history + "\n", "")
        assert head(build) == long_history and (build / "app.txt").read_text() == "change 10000\n"
        assert size(build / ".git") < 1 * MB, name
    assert size(store / "objects") < 4 * MB  # the history is stored once, not once per builder


def test_the_store_never_prunes_and_keeps_what_it_fetched_under_its_name(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    repo.push("devel", first)
    assert run(checkout_command(repo.url, "refs/heads/devel", first), builder(tmp_path)).returncode == 0
    store = tmp_path / "worker" / ".lpdeploy-objects.git"

    def store_git(*args: str) -> str:
        return subprocess.run(["git", f"--git-dir={store}", *args], capture_output=True, text=True).stdout.strip()

    assert store_git("config", "gc.auto") == "0"
    assert store_git("config", "gc.pruneExpire") == "never"
    assert store_git("rev-parse", "--verify", "refs/heads/devel") == first  # what the next fetch negotiates from
    assert sorted(p.name for p in store.parent.iterdir()) == [".lpdeploy-objects.git", "gate"]  # no leftovers
    assert store_git("rev-parse", "--is-bare-repository") == "true"


def test_the_next_revision_costs_only_its_own_objects(repo: GitUpstream, tmp_path: Path, long_history: str) -> None:
    assert run(checkout_command(repo.url, "refs/heads/devel", long_history), builder(tmp_path)).returncode == 0
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    before = size(store / "objects")
    tip = extend(repo.bare, "refs/heads/devel", long_history, 3, subject="fix")
    build = builder(tmp_path, "deploy")
    done = run(checkout_command(repo.url, "refs/heads/devel", tip), build)
    assert (done.returncode, done.stdout) == (0, tip + "\n")
    assert size(store / "objects") - before < 100_000  # three commits, not the history again
    assert size(build / ".git") < 1 * MB


@pytest.mark.parametrize("spoil", ["a file", "not a repository", "a pruning repository"])
def test_an_unusable_store_costs_time_never_the_checkout(repo: GitUpstream, tmp_path: Path, spoil: str) -> None:
    first = repo.commit("Initial release", None)
    repo.push("devel", first)
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    store.parent.mkdir()
    if spoil == "a file":
        store.write_text("not a directory\n")
    elif spoil == "not a repository":
        (store / "objects").mkdir(parents=True)
    else:  # a repository that may prune what builder directories borrow is not borrowed from
        subprocess.run(["git", "init", "--quiet", "--bare", str(store)], check=True)
    build = builder(tmp_path)
    done = run(checkout_command(repo.url, "refs/heads/devel", first), build)
    assert (done.returncode, done.stdout) == (0, first + "\n")
    assert done.stderr == f"lpdeploy-checkout: fetching without the worker's object store {WORKER_OBJECT_STORE}\n"
    assert not (build / ".git" / "objects" / "info" / "alternates").exists()
    assert head(build) == first and (build / "app.txt").read_text() == repo.content(first)


def test_a_store_gone_after_borrowing_is_replaced_by_a_fetch_of_its_own(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    second = repo.commit("Add search", first)
    repo.push("devel", second)
    build = builder(tmp_path)
    assert run(checkout_command(repo.url, "refs/heads/devel", first), build).returncode == 0
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    shutil.rmtree(store)
    store.write_text("a sysadmin's file\n")  # the borrowed objects are gone, and no store can be made
    done = run(checkout_command(repo.url, "refs/heads/devel", second), build)
    assert (done.returncode, done.stdout) == (0, second + "\n"), done.stderr
    assert done.stderr == f"lpdeploy-checkout: fetching without the worker's object store {WORKER_OBJECT_STORE}\n"
    assert not (build / ".git" / "objects" / "info" / "alternates").exists()  # borrows from nothing any more
    assert head(build) == second and (build / "app.txt").read_text() == repo.content(second)
    assert subprocess.run(["git", "fsck", "--no-dangling"], cwd=build, capture_output=True).returncode == 0


def test_a_wrong_revision_never_passes_through_the_store(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    repo.push("devel", first)
    assert run(checkout_command(repo.url, "refs/heads/devel", first), builder(tmp_path, "gate")).returncode == 0
    absent = "e" * 40  # neither upstream nor store has it: the checkout fails, reporting nothing checked out
    done = run(checkout_command(repo.url, "refs/heads/devel", absent), builder(tmp_path, "deploy"))
    assert done.returncode != 0 and done.stdout == ""


def test_checkouts_in_parallel_share_one_store(repo: GitUpstream, tmp_path: Path, long_history: str) -> None:
    names = ["gate", "deploy", "shard-1", "shard-2"]
    for rnd, tip in enumerate([long_history, extend(repo.bare, "refs/heads/devel", long_history, 2, "next")]):
        procs = {n: subprocess.Popen(checkout_command(repo.url, "refs/heads/devel", tip), cwd=builder(tmp_path, n),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in names}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            assert (proc.returncode, out, err) == (0, tip + "\n", ""), (rnd, name)  # none had to go without
            assert head(builder(tmp_path, name)) == tip
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    assert subprocess.run(["git", f"--git-dir={store}", "fsck", "--no-dangling", "--connectivity-only"],
                          capture_output=True).returncode == 0


def test_a_store_that_cannot_be_filled_is_said_and_the_checkout_goes_on(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    repo.push("devel", first)
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(store)], check=True)
    for key, value in [("gc.auto", "0"), ("fetch.unpackLimit", "1")]:  # every fetch must write a pack...
        subprocess.run(["git", f"--git-dir={store}", "config", key, value], check=True)
    shutil.rmtree(store / "objects" / "pack")
    (store / "objects" / "pack").write_text("...where a file stands\n")
    build = builder(tmp_path)
    done = run(checkout_command(repo.url, "refs/heads/devel", first), build)
    assert (done.returncode, done.stdout) == (0, first + "\n")
    assert done.stderr == (f"lpdeploy-checkout: could not fill the worker's object store {WORKER_OBJECT_STORE}\n"
                           f"lpdeploy-checkout: fetching without the worker's object store {WORKER_OBJECT_STORE}\n")
    assert not (build / ".git" / "objects" / "info" / "alternates").exists()  # a store it could not fill
    assert head(build) == first and (build / "app.txt").read_text() == repo.content(first)


def test_a_store_that_cannot_record_the_revision_is_said_and_still_lends(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    second = repo.commit("Add search", first)
    repo.push("devel", first)
    assert run(checkout_command(repo.url, "refs/heads/devel", first), builder(tmp_path, "gate")).returncode == 0
    repo.push("devel", second)
    store = tmp_path / "worker" / ".lpdeploy-objects.git"
    (store / "refs" / "heads" / "devel.lock").write_text("")  # left by a crashed process: devel cannot move
    build = builder(tmp_path, "deploy")
    done = run(checkout_command(repo.url, "refs/heads/devel", second), build)
    assert (done.returncode, done.stdout) == (0, second + "\n")
    assert done.stderr == ("lpdeploy-checkout: could not record the revision in the worker's object store "
                           f"{WORKER_OBJECT_STORE}\n")
    assert (build / ".git" / "objects" / "info" / "alternates").exists()  # the objects are all there: borrowed
    assert head(build) == second and (build / "app.txt").read_text() == repo.content(second)
