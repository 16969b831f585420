"""The worker's checkout as one command (``gitops.checkout_command``), run for real in a scratch directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import GitUpstream

from lpdeploy.core.errors import InvalidInput
from lpdeploy.git.gitops import CHECKOUT_SCRIPT, checkout_command


@pytest.fixture
def repo(tmp_path: Path) -> GitUpstream:
    return GitUpstream(str(tmp_path))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_it_checks_out_exactly_the_revision_and_prints_only_its_sha(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    second = repo.commit("Add search", first)
    repo.push("devel", second)
    build = tmp_path / "build"
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
    build = tmp_path / "build"
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
    build = tmp_path / "build"
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
        if any(v in line for v in ('"$1"', '"$2', '"$3"')):
            assert "--end-of-options" in line.split('"$')[0], line


def test_an_option_shaped_url_is_a_repository_name_not_an_option(repo: GitUpstream, tmp_path: Path) -> None:
    first = repo.commit("Initial release", None)
    witness = tmp_path / "pwned"
    done = run(checkout_command(f"--upload-pack=touch {witness}", "refs/heads/devel", first), tmp_path / "build")
    assert done.returncode != 0
    assert not witness.exists()


@pytest.mark.parametrize("ref, sha", [("devel", "a" * 40), ("refs/heads/devel", "--help"),
                                      ("refs/heads/devel", "HEAD")])
def test_bad_refs_and_revisions_are_refused_before_anything_runs(ref: str, sha: str) -> None:
    with pytest.raises(InvalidInput):
        checkout_command("file:///upstream.git", ref, sha)
