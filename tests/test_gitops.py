"""gitops against real git repositories: a bare upstream, a work clone, a mirror."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from lpdeploy.core.errors import (
    GitError,
    InvalidInput,
    MergeConflict,
    PushUnconfirmed,
    StaleBranch,
    UnknownRevision,
)
from lpdeploy.git import gitops
from lpdeploy.git.gitops import Commit, Mirror, Move, branch_names, ls_remote

AUTHOR = ("-c", "user.name=Dev Eloper", "-c", "user.email=dev@example.org")
ABSENT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch, tmp_path):
    """No user or system git configuration may change what these tests see."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *AUTHOR, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


class Repo:
    """A bare upstream and a work clone that commits and pushes to it."""

    def __init__(self, root: Path) -> None:
        self.upstream = root / "upstream.git"
        self.work = root / "work"
        self.url = self.upstream.as_uri()
        subprocess.run(["git", "init", "--quiet", "--bare", str(self.upstream)], check=True)
        subprocess.run(["git", "init", "--quiet", "-b", "main", str(self.work)], check=True)

    def commit(self, message: str, **files: str) -> str:
        for name, content in files.items():
            (self.work / name).write_text(content)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work)
        return self.head()

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, sha: str, branch: str) -> None:
        git("push", "--quiet", "--force", str(self.upstream), f"{sha}:refs/heads/{branch}", cwd=self.work)

    def upstream_heads(self) -> dict[str, str]:
        out = git("for-each-ref", "--format=%(objectname) %(refname:lstrip=2)", "refs/heads/",
                  cwd=self.upstream)
        return dict(reversed(line.split(" ", 1)) for line in out.splitlines())


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path)


@pytest.fixture
def history(repo):
    """devel: A - B - revert(B); stable at A."""
    a = repo.commit("A: add app", **{"app.py": "print('a')\n"})
    b = repo.commit("B: change app", **{"app.py": "print('b')\n"})
    git("revert", "--no-edit", "HEAD", cwd=repo.work)
    r = repo.head()
    repo.push(r, "devel")
    repo.push(a, "stable")
    return {"A": a, "B": b, "R": r}


@pytest.fixture
def mirror(tmp_path, repo) -> Mirror:
    return Mirror(tmp_path / "master" / "mirror.git", repo.url)


# --- reading the upstream ------------------------------------------------------


def test_ls_remote_returns_the_upstream_heads(repo, history):
    repo.push(history["B"], "security/fix-1")
    assert ls_remote(repo.url) == {
        "devel": history["R"], "stable": history["A"], "security/fix-1": history["B"]
    }


def test_ls_remote_of_an_empty_upstream_is_empty(repo):
    assert ls_remote(repo.url) == {}


def test_ls_remote_ignores_tags(repo, history):
    git("tag", "v1", history["A"], cwd=repo.work)
    git("push", "--quiet", str(repo.upstream), "refs/tags/v1", cwd=repo.work)
    assert set(ls_remote(repo.url)) == {"devel", "stable"}


def test_ls_remote_of_a_missing_repository_is_a_git_error(tmp_path):
    with pytest.raises(GitError) as e:
        ls_remote((tmp_path / "missing.git").as_uri())
    assert e.value.argv[0] == "git"
    assert e.value.returncode != 0


def test_mirror_fetch_creates_the_mirror_and_returns_the_heads(mirror, history):
    assert not mirror.path.exists()
    assert mirror.fetch() == {"devel": history["R"], "stable": history["A"]}
    assert (mirror.path / "HEAD").exists()
    assert mirror.heads() == {"devel": history["R"], "stable": history["A"]}


def test_mirror_fetch_follows_moves_and_deletions_upstream(repo, mirror, history):
    repo.push(history["B"], "security/fix-1")
    mirror.fetch()
    repo.push(history["R"], "stable")
    git("push", "--quiet", str(repo.upstream), ":refs/heads/security/fix-1", cwd=repo.work)
    assert mirror.fetch() == {"devel": history["R"], "stable": history["R"]}


def test_tree_of_gives_the_commit_tree(repo, mirror, history):
    mirror.fetch()
    assert mirror.tree_of(history["B"]) == git("rev-parse", history["B"] + "^{tree}", cwd=repo.work)


def test_a_revert_to_an_earlier_state_has_the_same_tree(mirror, history):
    mirror.fetch()
    assert history["R"] != history["A"]
    assert mirror.tree_of(history["R"]) == mirror.tree_of(history["A"])
    assert mirror.tree_of(history["B"]) != mirror.tree_of(history["A"])


def test_tree_of_an_unknown_revision_raises_unknown_revision(mirror, history):
    mirror.fetch()
    with pytest.raises(UnknownRevision):
        mirror.tree_of(ABSENT)


def test_tree_of_refuses_a_non_revision(mirror, history):
    mirror.fetch()
    with pytest.raises(InvalidInput):
        mirror.tree_of("devel")


def test_is_ancestor_answers_ancestry(mirror, history):
    mirror.fetch()
    assert mirror.is_ancestor(history["A"], history["R"]) is True
    assert mirror.is_ancestor(history["R"], history["A"]) is False
    assert mirror.is_ancestor(history["A"], history["A"]) is True


def test_is_ancestor_of_an_unknown_revision_is_an_error_not_a_no(mirror, history):
    mirror.fetch()
    with pytest.raises(GitError):
        mirror.is_ancestor(ABSENT, history["R"])


def test_commit_reads_one_commit(mirror, history):
    mirror.fetch()
    c = mirror.commit(history["B"])
    assert c.sha == history["B"]
    assert c.tree == mirror.tree_of(history["B"])
    assert c.author == "Dev Eloper <dev@example.org>"
    assert c.subject == "B: change app"
    assert isinstance(c.timestamp, int) and c.timestamp > 1_600_000_000


def test_commit_of_an_unknown_revision_raises_unknown_revision(mirror, history):
    mirror.fetch()
    with pytest.raises(UnknownRevision):
        mirror.commit(ABSENT)


def test_has_tells_whether_the_mirror_holds_a_commit(mirror, history):
    mirror.fetch()
    assert mirror.has(history["A"]) is True
    assert mirror.has(ABSENT) is False


def test_commits_between_lists_what_the_tip_adds_newest_first(mirror, history):
    mirror.fetch()
    between = mirror.commits_between(history["A"], history["R"])
    assert [c.sha for c in between] == [history["R"], history["B"]]
    assert all(isinstance(c, Commit) for c in between)
    assert between[1].subject == "B: change app"
    assert between[0].subject.startswith('Revert "B: change app"')


def test_commits_between_without_a_base_lists_the_whole_history(mirror, history):
    mirror.fetch()
    assert [c.sha for c in mirror.commits_between(None, history["R"])] == [
        history["R"], history["B"], history["A"]
    ]


def test_commits_between_respects_the_limit(mirror, history):
    mirror.fetch()
    assert [c.sha for c in mirror.commits_between(None, history["R"], limit=1)] == [history["R"]]


def test_first_parents_lists_the_batch_without_the_side_history_of_merges(repo, mirror, history):
    git("checkout", "--quiet", "-b", "side", history["A"], cwd=repo.work)
    side = repo.commit("S: side work", **{"side.py": "print('s')\n"})
    git("checkout", "--quiet", "main", cwd=repo.work)
    git("merge", "--quiet", "--no-edit", "--no-ff", "side", cwd=repo.work)
    merge = repo.head()
    repo.push(merge, "devel")
    mirror.fetch()
    chain = mirror.first_parents(history["A"], merge)
    assert [c.sha for c in chain] == [merge, history["R"], history["B"]]  # newest first, S left out
    assert side in [c.sha for c in mirror.commits_between(history["A"], merge)]
    assert chain[2].tree == mirror.tree_of(history["B"]) and chain[2].subject == "B: change app"
    assert [c.sha for c in mirror.first_parents(history["A"], merge, limit=1)] == [merge]
    assert [c.sha for c in mirror.first_parents(None, history["B"])] == [history["B"], history["A"]]


def test_commits_between_a_tip_and_itself_is_empty(mirror, history):
    mirror.fetch()
    assert mirror.commits_between(history["R"], history["R"]) == []


def test_a_fetch_keeps_a_commit_graph_in_the_mirror(repo, mirror, history):
    mirror.fetch()
    chain = mirror.path / "objects" / "info" / "commit-graphs" / "commit-graph-chain"
    assert chain.exists(), "the first fetch wrote no commit-graph"
    layers = chain.read_text().split()
    assert len(layers) == 1
    repo.push(repo.commit("C: later work", **{"app.py": "print('c')\n"}), "devel")
    mirror.fetch()
    assert len(chain.read_text().split()) == 2  # the new commits were added as a layer
    assert mirror.git("commit-graph", "verify", "--shallow").returncode == 0


def test_count_between_counts_what_the_tip_adds(mirror, history):
    mirror.fetch()
    assert mirror.count_between(history["A"], history["R"]) == 2
    assert mirror.count_between(None, history["R"]) == 3
    assert mirror.count_between(history["R"], history["A"]) == 0
    assert mirror.count_between([history["A"], history["B"]], [history["R"]]) == 1
    assert mirror.count_between(history["A"], []) == 0


def test_fetch_revision_brings_a_commit_on_an_upstream_branch(repo, mirror, history):
    mirror.ensure()
    assert not mirror.has(history["B"])
    mirror.fetch_revision(history["R"])
    assert mirror.has(history["R"])
    assert mirror.has(history["B"])  # and its history


def test_fetch_revision_of_a_sha_not_in_the_upstream_raises_unknown_revision(mirror, history):
    mirror.fetch()
    with pytest.raises(UnknownRevision):
        mirror.fetch_revision(ABSENT)


def test_branch_names_skips_names_that_must_never_reach_git():
    heads = {"devel": ABSENT, "-evil": ABSENT, "a..b": ABSENT, "security/fix-1": ABSENT}
    assert branch_names(heads) == ["devel", "security/fix-1"]


# --- moving upstream branches: compare-and-swap ---------------------------------


def test_push_with_the_expected_tip_moves_the_branch(repo, mirror, history):
    mirror.fetch()
    assert mirror.push([Move("stable", expected=history["A"], new=history["R"])]) is False  # heard back
    assert repo.upstream_heads()["stable"] == history["R"]
    assert mirror.heads()["stable"] == history["R"]  # the mirror follows what we wrote
    assert repo.upstream_heads()["devel"] == history["R"]


def test_push_with_a_stale_expected_tip_is_refused_and_the_branch_stays(repo, mirror, history):
    mirror.fetch()
    repo.push(history["B"], "stable")  # someone moved stable under us
    with pytest.raises(StaleBranch):
        mirror.push([Move("stable", expected=history["A"], new=history["R"])])
    assert repo.upstream_heads()["stable"] == history["B"]


def test_an_atomic_push_with_one_stale_lease_moves_neither_branch(repo, mirror, history):
    repo.push(history["A"], "production-devel")
    repo.push(history["A"], "production-stable")
    mirror.fetch()
    repo.push(history["B"], "production-stable")  # moved under us
    with pytest.raises(StaleBranch):
        mirror.push([
            Move("production-devel", expected=history["A"], new=history["R"]),
            Move("production-stable", expected=history["A"], new=history["R"]),
        ])
    heads = repo.upstream_heads()
    assert heads["production-devel"] == history["A"]
    assert heads["production-stable"] == history["B"]
    assert mirror.heads()["production-devel"] == history["A"]


def test_an_atomic_push_with_good_leases_moves_both_branches(repo, mirror, history):
    repo.push(history["A"], "production-devel")
    repo.push(history["A"], "production-stable")
    mirror.fetch()
    mirror.push([
        Move("production-devel", expected=history["A"], new=history["R"]),
        Move("production-stable", expected=history["A"], new=history["R"]),
    ])
    heads = repo.upstream_heads()
    assert heads["production-devel"] == heads["production-stable"] == history["R"]


def test_push_expecting_no_branch_creates_it(repo, mirror, history):
    mirror.fetch()
    mirror.push([Move("production-stable", expected=None, new=history["A"])])
    assert repo.upstream_heads()["production-stable"] == history["A"]


def test_push_expecting_no_branch_fails_if_it_exists(repo, mirror, history):
    mirror.fetch()
    with pytest.raises(StaleBranch):
        mirror.push([Move("stable", expected=None, new=history["R"])])
    assert repo.upstream_heads()["stable"] == history["A"]


def test_push_of_nothing_does_nothing(repo, mirror, history):
    before = repo.upstream_heads()
    mirror.push([])
    assert repo.upstream_heads() == before


def test_push_of_a_commit_the_mirror_lacks_is_a_git_error_and_moves_nothing(repo, mirror, history):
    mirror.fetch()
    with pytest.raises(GitError) as e:
        mirror.push([Move("stable", expected=history["A"], new=ABSENT)])
    assert not isinstance(e.value, StaleBranch)  # a missing object is not a branch that moved
    assert repo.upstream_heads()["stable"] == history["A"]


# --- a push whose reply is lost (issue 12) --------------------------------------


def hook(repo: Repo, name: str, body: str) -> None:
    """Install a server-side hook in the bare upstream (``post-receive`` runs after the refs moved)."""
    path = repo.upstream / "hooks" / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_a_push_that_landed_but_whose_reply_timed_out_counts_as_landed(repo, mirror, history):
    # the upstream updates stable, then its post-receive hook holds the connection past the timeout:
    # the client never hears back, yet the move is there; reading the upstream must say so
    mirror.fetch()
    hook(repo, "post-receive", "sleep 10")
    mirror.timeout = 1
    assert mirror.push([Move("stable", expected=history["A"], new=history["R"])]) is True  # landed, reply lost
    assert repo.upstream_heads()["stable"] == history["R"]
    assert mirror.heads()["stable"] == history["R"]  # the mirror follows, as after any push


def test_a_push_that_timed_out_before_landing_is_a_git_error_and_never_lands_later(repo, mirror, history):
    # the pre-receive hook holds the push before any ref moves; the timeout kills the whole transport,
    # so nothing lands after the caller was told it failed
    mirror.fetch()
    hook(repo, "pre-receive", "sleep 3")
    mirror.timeout = 1
    with pytest.raises(GitError) as e:
        mirror.push([Move("stable", expected=history["A"], new=history["R"])])
    assert not isinstance(e.value, (StaleBranch, PushUnconfirmed))  # the upstream said: nothing moved
    assert "timed out after 1s" in e.value.stderr
    time.sleep(3.5)  # longer than the hook: a transport left running would have landed the push by now
    assert repo.upstream_heads()["stable"] == history["A"]
    assert mirror.heads()["stable"] == history["A"]


def test_a_failed_push_that_someone_else_overtook_is_a_stale_branch(repo, mirror, history):
    mirror.fetch()
    repo.push(history["B"], "stable")  # our push failed, and stable is neither where it was nor at ours
    with pytest.raises(StaleBranch):
        mirror.confirm_landed([Move("stable", expected=history["A"], new=history["R"])],
                              GitError(["git", "push"], 1, "remote rejected"))


def test_a_failed_push_whose_upstream_cannot_be_read_is_unconfirmed(tmp_path, repo, mirror, history):
    mirror.fetch()
    mirror.url = (tmp_path / "gone.git").as_uri()
    with pytest.raises(PushUnconfirmed):
        mirror.confirm_landed([Move("stable", expected=history["A"], new=history["R"])],
                              GitError(["git", "push"], 128, "connection reset"))


def test_every_call_to_the_upstream_is_bounded_by_the_timeout(repo, mirror, history, monkeypatch):
    seen = []
    real = gitops.run_git

    def spy(args, *rest, **kwargs):
        seen.append((args[args.index("--end-of-options") - 1] if "--end-of-options" in args else args[0],
                     args, kwargs.get("timeout")))
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(gitops, "run_git", spy)
    mirror.timeout = 7
    mirror.fetch()
    mirror.fetch_revision(history["B"])
    mirror.push_new_ref(f"refs/lpdeploy/candidates/{history['R']}", history["R"])
    mirror.push([Move("stable", expected=history["A"], new=history["R"])])
    ls_remote(repo.url, timeout=7)
    network = [(args, t) for _, args, t in seen if repo.url in args]
    assert len(network) >= 4
    assert all(t == 7 for _, t in network), network


# --- input from outside is data, never an option ---------------------------------


@pytest.fixture
def spy_subprocess(monkeypatch):
    calls: list[list[str]] = []
    real_popen = gitops.subprocess.Popen

    def spy(argv, *args, **kwargs):
        calls.append(list(argv))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(gitops.subprocess, "Popen", spy)
    return calls


def test_an_option_as_branch_name_is_refused_before_git_runs(tmp_path, repo, mirror, history, spy_subprocess):
    mirror.fetch()
    spy_subprocess.clear()
    pwned = tmp_path / "pwned-branch"
    with pytest.raises(InvalidInput):
        mirror.push([Move(f"--upload-pack=touch {pwned}", expected=history["A"], new=history["R"])])
    assert spy_subprocess == []
    assert not pwned.exists()
    assert repo.upstream_heads()["stable"] == history["A"]


def test_one_bad_move_stops_the_whole_push_before_git_runs(repo, mirror, history, spy_subprocess):
    mirror.fetch()
    spy_subprocess.clear()
    with pytest.raises(InvalidInput):
        mirror.push([
            Move("stable", expected=history["A"], new=history["R"]),
            Move("production-stable", expected="-f", new=history["R"]),
        ])
    assert spy_subprocess == []
    assert repo.upstream_heads()["stable"] == history["A"]


@pytest.mark.parametrize("bad", ["--all", "HEAD", "devel", ABSENT[:12]])
def test_an_option_or_ref_as_revision_is_refused_before_git_runs(mirror, history, spy_subprocess, bad):
    mirror.fetch()
    spy_subprocess.clear()
    for call in (mirror.tree_of, mirror.commit, mirror.has, mirror.fetch_revision,
                 lambda r: mirror.is_ancestor(r, history["A"]),
                 lambda r: mirror.commits_between(r, history["A"]),
                 lambda r: mirror.count_between(r, history["A"]), lambda r: mirror.count_between(None, r)):
        with pytest.raises(InvalidInput):
            call(bad)
    assert spy_subprocess == []


def test_an_option_as_upstream_url_is_only_ever_a_repository_name(tmp_path, monkeypatch, repo, history):
    # run from a clone with an origin: were the "url" read as an option, git would
    # use origin and run the injected upload-pack command
    git("remote", "add", "origin", str(repo.upstream), cwd=repo.work)
    monkeypatch.chdir(repo.work)
    pwned = tmp_path / "pwned-url"
    with pytest.raises(GitError):
        ls_remote(f"--upload-pack=touch {pwned}")
    with pytest.raises(GitError):
        Mirror(tmp_path / "m.git", f"--upload-pack=touch {pwned}").fetch()
    assert not pwned.exists()


# --- every outside value reaches git after --end-of-options (issue 9, mutant 8) ----

# options whose next argv element is their argument, never read as an option or a revision
OPTIONS_WITH_AN_ARGUMENT = {"-c", "-m", "-p"}


def misplaced(argv: list[str], outside: set[str]) -> list[str]:
    """The elements of ``argv`` that carry an outside value where git could read it as an option.

    An outside value (the upstream URL, a commit id, a branch or ref name) is
    safe after ``--end-of-options``, inside an option lpdeploy names itself
    (``--force-with-lease=refs/heads/stable:<sha>``) or as the argument of an
    option (``commit-tree -p <sha>``). Anywhere else it is misplaced.
    """
    end = argv.index("--end-of-options") if "--end-of-options" in argv else len(argv)
    bad = []
    for i, arg in enumerate(argv[:end]):
        if not any(value in arg for value in outside) or arg.startswith("-"):
            continue
        if i > 0 and argv[i - 1] in OPTIONS_WITH_AN_ARGUMENT:
            continue
        bad.append(arg)
    return bad


def test_misplaced_finds_an_outside_value_without_end_of_options():
    # the checker itself can fail: a push without --end-of-options is caught
    url, sha = "file:///srv/up.git", ABSENT
    assert misplaced(["git", "push", "--atomic", url, f"{sha}:refs/heads/stable"], {url, sha}) == [
        url, f"{sha}:refs/heads/stable"]
    assert misplaced(["git", "push", f"--force-with-lease=refs/heads/stable:{sha}", "--end-of-options", url,
                      f"{sha}:refs/heads/stable"], {url, sha}) == []
    assert misplaced(["git", "commit-tree", "t", "-p", sha, "-m", "merge"], {sha}) == []


def _push(repo, mirror, h):
    mirror.fetch()
    mirror.push([Move("stable", expected=h["A"], new=h["R"]), Move("production-stable", expected=None, new=h["A"])])
    assert repo.upstream_heads()["stable"] == h["R"]


def _stale_push(repo, mirror, h):
    mirror.fetch()
    repo.push(h["B"], "stable")
    with pytest.raises(StaleBranch):
        mirror.push([Move("stable", expected=h["A"], new=h["R"])])


def _fetch_revision(repo, mirror, h):
    mirror.ensure()
    mirror.fetch_revision(h["B"])
    assert mirror.has(h["B"])


def _fetch_revision_of_an_unknown_sha(repo, mirror, h):
    mirror.fetch()
    with pytest.raises(UnknownRevision):
        mirror.fetch_revision(ABSENT)


def _merge(repo, mirror, h):
    mirror.fetch()
    merged = mirror.merge(h["A"], h["R"], "Merge security/fix-1 into devel")
    assert mirror.commit(merged).subject == "Merge security/fix-1 into devel"


def _push_new_ref(repo, mirror, h):
    mirror.fetch()
    mirror.push_new_ref(f"refs/lpdeploy/candidates/{h['R']}", h["R"])
    mirror.push_new_ref(f"refs/lpdeploy/candidates/{h['R']}", h["R"])  # exists already: nothing to do


def _reads(repo, mirror, h):
    mirror.fetch()
    mirror.heads()
    assert mirror.has(h["A"])
    assert mirror.tree_of(h["R"]) == mirror.tree_of(h["A"])
    assert mirror.is_ancestor(h["A"], h["R"])
    assert mirror.commit(h["B"]).sha == h["B"]
    assert set(mirror.commit_times([h["A"], h["B"], ABSENT])) == {h["A"], h["B"]}
    assert [c.sha for c in mirror.commits_between([h["A"]], [h["R"]])] == [h["R"], h["B"]]
    assert mirror.count_between([h["A"]], [h["R"]]) == 2
    assert [c.sha for c in mirror.first_parents(h["A"], h["R"])] == [h["R"], h["B"]]
    assert set(mirror.patch_ids([h["B"], h["R"]])) == {h["B"], h["R"]}
    assert set(mirror.first_parent_messages(h["A"], h["R"])) == {h["R"], h["B"]}


def _ls_remote(repo, mirror, h):
    assert ls_remote(repo.url)["devel"] == h["R"]


def _lost_reply(repo, mirror, h):
    mirror.fetch()
    hook(repo, "post-receive", "sleep 5")
    mirror.timeout = 1
    mirror.push([Move("stable", expected=h["A"], new=h["R"])])
    assert repo.upstream_heads()["stable"] == h["R"]


OPERATIONS = {"push": _push, "lost-reply": _lost_reply, "stale-push": _stale_push, "fetch_revision": _fetch_revision,
              "fetch_revision-unknown": _fetch_revision_of_an_unknown_sha, "merge": _merge,
              "push_new_ref": _push_new_ref, "reads": _reads, "ls_remote": _ls_remote}


def test_first_parent_messages_are_whole_messages_with_bodies(repo, mirror, history):
    """What QA reads: bug references and git revert's line live in the body, not the subject."""
    mirror.fetch()
    messages = mirror.first_parent_messages(history["A"], history["R"])
    commits = mirror.first_parents(history["A"], history["R"])
    assert list(messages) == [c.sha for c in commits]
    for c in commits:
        assert messages[c.sha].startswith(c.subject)
        assert "\x00" not in messages[c.sha] and "\x1e" not in messages[c.sha]
    assert f"This reverts commit {history['B']}." in messages[history["R"]]  # git revert wrote it in the body


def test_the_operations_cover_every_git_running_method_of_the_mirror():
    # a new Mirror method must be added to OPERATIONS, or this fails
    covered = {"push", "fetch_revision", "merge", "push_new_ref", "fetch", "heads", "has", "tree_of",
               "is_ancestor", "commit", "commit_times", "commits_between", "count_between", "first_parents",
               "patch_ids", "first_parent_messages", "ensure", "git", "remote", "confirm_landed"}
    public = {name for name in vars(Mirror) if not name.startswith("_")}
    assert public == covered


@pytest.fixture
def spy_run_git(monkeypatch):
    """The argv (after ``git``) of every git call lpdeploy makes: all of them go through ``run_git``."""
    calls: list[list[str]] = []
    real_run_git = gitops.run_git

    def spy(args, *rest, **kwargs):
        calls.append(list(args))
        return real_run_git(args, *rest, **kwargs)

    monkeypatch.setattr(gitops, "run_git", spy)
    return calls


@pytest.mark.parametrize("operation", OPERATIONS)
def test_outside_values_reach_git_only_after_end_of_options(operation, repo, mirror, history, spy_run_git):
    OPERATIONS[operation](repo, mirror, history)
    refs = {f"refs/heads/{b}" for b in ("devel", "stable", "production-stable")}
    outside = {repo.url, *history.values(), ABSENT, *refs, "refs/lpdeploy/candidates"}
    assert spy_run_git, "the operation ran no git at all"
    assert {" ".join(argv): misplaced(argv, outside) for argv in spy_run_git if misplaced(argv, outside)} == {}


def test_the_worker_checkout_commands_pass_outside_values_after_end_of_options(repo, history):
    ref = f"refs/lpdeploy/candidates/{history['R']}"
    for branch_ref in ("refs/heads/stable", ref):
        commands = gitops.checkout_commands(repo.url, branch_ref, history["R"])
        outside = {repo.url, history["R"], branch_ref}
        assert [argv for argv in commands if misplaced(argv, outside)] == []
        assert any(repo.url in argv for argv in commands) and any(history["R"] in argv for argv in commands)


def test_a_merge_conflict_names_its_paths_as_a_field(repo, mirror):
    base = repo.commit("base", **{"app.py": "a\n", "lib.py": "a\n", "doc.txt": "a\n"})
    ours = repo.commit("ours", **{"app.py": "ours\n", "lib.py": "ours\n"})
    git("checkout", "--quiet", "-b", "fix", base, cwd=repo.work)
    theirs = repo.commit("theirs", **{"app.py": "theirs\n", "lib.py": "theirs\n", "doc.txt": "b\n"})
    repo.push(ours, "devel")
    repo.push(theirs, "security/fix-1")
    mirror.fetch()
    with pytest.raises(MergeConflict) as e:
        mirror.merge(ours, theirs, "Merge security/fix-1 into devel")
    assert e.value.paths == ("app.py", "lib.py")  # doc.txt merged cleanly: not a conflict
    assert e.value.stderr == "conflict in app.py, lib.py"
    assert isinstance(e.value, GitError) and e.value.argv[:2] == ["git", "merge-tree"]


# --- patch ids: the same change under another commit id ---------------------------------------------------


def test_a_hand_made_diff_has_the_patch_id_of_the_commit_that_makes_the_same_change_elsewhere(repo, mirror):
    base = repo.commit("base", **{"app.py": "one\ntwo\nthree\n", "conf.ini": "a = 1\n"})
    fix = repo.commit("Fix two", **{"app.py": "one\n2\nthree\n", "conf.ini": "a = 1\n"})
    diff = git("diff", base, fix, cwd=repo.work) + "\n"  # what a losa applied by hand
    git("checkout", "--quiet", "--detach", base, cwd=repo.work)
    repo.commit("Unrelated", **{"conf.ini": "a = 2\n"})
    git("cherry-pick", fix, cwd=repo.work)  # the same change, another commit id, another parent
    picked = repo.head()
    repo.push(picked, "stable")
    repo.push(fix, "devel")
    mirror.fetch()
    ids = mirror.patch_ids([picked, fix])
    assert picked != fix and ids[picked] == ids[fix] == gitops.patch_id(diff)
    assert len(ids[fix]) == 40


def test_a_merge_or_an_empty_commit_has_no_patch_id(repo, mirror):
    base = repo.commit("base", **{"a.txt": "a\n"})
    side = repo.commit("side", **{"b.txt": "b\n"})
    git("checkout", "--quiet", "--detach", base, cwd=repo.work)
    main = repo.commit("main", **{"c.txt": "c\n"})
    git("merge", "--quiet", "--no-ff", "--no-edit", side, cwd=repo.work)
    merge = repo.head()
    empty = repo.commit("nothing")
    repo.push(empty, "devel")
    mirror.fetch()
    ids = mirror.patch_ids([empty, merge, main])
    assert ids[empty] == "" and ids[merge] == "" and len(ids[main]) == 40


def test_text_that_is_not_one_change_has_no_patch_id(repo):
    assert gitops.patch_id("just some words\n") is None
    one = repo.commit("one", **{"a.txt": "a\n"})
    two = repo.commit("two", **{"a.txt": "b\n"})
    three = repo.commit("three", **{"a.txt": "c\n"})
    series = git("log", "-p", "--format=commit %H", f"{one}..{three}", cwd=repo.work) + "\n"  # two commits
    assert two in series and gitops.patch_id(series) is None


def test_a_diff_of_a_file_that_is_not_utf8_keeps_its_bytes(repo, mirror):
    base = repo.commit("base")
    (repo.work / "latin1.txt").write_bytes(b"caf\xe9\n")
    latin = repo.commit("Latin-1 text")
    repo.push(latin, "devel")
    diff = subprocess.run(["git", "diff", base, latin], cwd=repo.work, check=True, capture_output=True).stdout
    mirror.fetch()
    assert mirror.patch_ids([latin])[latin] == gitops.patch_id(diff.decode("utf-8", "surrogateescape"))
