"""Helpers shared by the unit tests: a real git upstream, temporary directories and fake masters.

Not a test module: the test modules import it by its bare name, as they do
``ledger_contract`` (``tests/`` has no ``__init__.py``, so pytest puts it on
``sys.path``)::

    from support import GitUpstream, RealUpstreamMixin, make_db_master

What is here:

- ``GitUpstream``: a real bare upstream repository and a scratch clone that
  makes commits and pushes them, as lpdeploy's own upstream would see them.
- ``temp_dir``: a fresh temporary directory removed when the test ends.
- ``RealUpstreamMixin``: for Buildbot's harness mixins (``ChangeSourceMixin``,
  ``SchedulerMixin``, ``TestBuildStepMixin``), which create their master
  themselves with ``fakemaster.make_master``. That defaults to
  ``basedir='basedir'`` relative to the working directory (and deletes it at
  shutdown), so the mixin wraps it to give each master a fresh temporary
  basedir, next to a real upstream.
- ``make_db_master`` and ``two_masters_on_one_database``: masters whose
  ``db`` is Buildbot's real ``DBConnector`` on a real SQLite database with the
  full, upgraded schema (``FakeDBConnector`` only adds test-data helpers).
- ``add_scenario_tests``: one test method per scenario of a contract list.
- ``FlowStepMixin``: small helpers for lpdeploy's steps in ``TestBuildStepMixin``.

Threads: ``TestReactorMixin.setup_test_reactor`` replaces
``threads.deferToThread`` with a synchronous stand-in (``NonThreadPool``), and
``lpdeploy.git.upstream`` looks it up at call time, so real git runs synchronously
in the test thread; no monkeypatching is needed.

None of the classes here is a ``unittest.TestCase`` or named ``Test*``, so
importing them into a test module adds no tests.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from buildbot.test.fake import fakemaster
from twisted.internet import defer
from twisted.trial import unittest

GIT_ID = ["-c", "user.name=Test Developer", "-c", "user.email=dev@example.invalid"]
DEV = "Test Developer <dev@example.invalid>"  # the author (and committer) of every GitUpstream commit


def temp_dir(case: unittest.TestCase, prefix: str = "lpdeploy-test-") -> str:
    """A fresh temporary directory that is removed (with all it holds) when ``case`` ends."""
    path = tempfile.mkdtemp(prefix=prefix)
    case.addCleanup(shutil.rmtree, path, True)
    return path


class GitUpstream:
    """A real bare upstream and a scratch clone that makes commits and pushes them.

    ``base`` is an existing directory; the bare repository is ``base/upstream.git``
    (its address is ``url``) and the clone is ``base/work``. Every commit has
    ``GIT_ID`` as its committer (and, unless told otherwise, its author).
    """

    def __init__(self, base: str) -> None:
        self.bare = os.path.join(base, "upstream.git")
        self.work = os.path.join(base, "work")
        self.url = "file://" + self.bare
        self._n = 0
        subprocess.run(["git", "init", "--quiet", "--bare", self.bare], check=True)
        subprocess.run(["git", "init", "--quiet", self.work], check=True)

    def git(self, *args: str) -> str:
        """Run git in the scratch clone; its stdout, stripped."""
        return subprocess.run(["git", *GIT_ID, *args], cwd=self.work, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(self, subject: str, parent: str | None = None, content: str | None = None,
               path: str = "app.txt", author: str | None = None) -> str:
        """A new commit on ``parent`` (None: a root commit holding only ``path``); its sha.

        The commit writes ``path`` (app.txt by default) with ``content``, or by
        default with the subject and a running number, so every commit has a new
        tree. ``author`` ("Name <email>") overrides the author.
        """
        self._n += 1
        if parent is None:
            self.git("checkout", "--quiet", "--orphan", f"root-{self._n}")
            self.git("rm", "-r", "--quiet", "--cached", "--ignore-unmatch", ".")
        else:
            self.git("checkout", "--quiet", "--detach", parent)
        with open(os.path.join(self.work, path), "w") as f:
            f.write(content if content is not None else f"{subject} #{self._n}\n")
        self.git("add", path)
        self.git("commit", "--quiet", "-m", subject, *([f"--author={author}"] if author else []))
        return self.git("rev-parse", "HEAD")

    def merge(self, ours: str, theirs: str, subject: str) -> str:
        """A merge commit (never a fast-forward) of ``theirs`` into ``ours``; its sha."""
        self.git("checkout", "--quiet", "--detach", ours)
        self.git("merge", "--quiet", "--no-ff", "--no-edit", "-m", subject, theirs)
        return self.git("rev-parse", "HEAD")

    def push(self, ref: str, sha: str) -> None:
        """Force ``ref`` upstream to ``sha``; a bare name means the branch ``refs/heads/<ref>``."""
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        self.git("push", "--quiet", "--force", self.bare, f"{sha}:{full}")

    def delete(self, branch: str) -> None:
        """Delete ``branch`` upstream."""
        self.git("push", "--quiet", self.bare, f":refs/heads/{branch}")

    def tip(self, branch: str) -> str | None:
        """The upstream tip of ``branch``, read off the bare repository; None if it does not exist."""
        out = subprocess.run(["git", f"--git-dir={self.bare}", "rev-parse", "--verify", "--quiet",
                              f"refs/heads/{branch}"], capture_output=True, text=True)
        return out.stdout.strip() or None

    def tree(self, sha: str) -> str:
        """The tree id of commit ``sha``."""
        return self.git("rev-parse", f"{sha}^{{tree}}")

    def content(self, sha: str) -> str:
        """What app.txt holds in commit ``sha`` (as ``commit(content=...)`` takes it)."""
        return self.git("show", f"{sha}:app.txt") + "\n"

    def timestamp(self, sha: str) -> int:
        """The committer time of ``sha``, in seconds since the epoch."""
        return int(self.git("log", "-1", "--format=%ct", sha))


def use_temp_master_basedir(case: unittest.TestCase, base: str) -> None:
    """Make every ``fakemaster.make_master`` of ``case`` use ``base/master`` as its basedir.

    For harness mixins that create the master themselves; the patch is undone
    when ``case`` ends.
    """
    case.patch(fakemaster, "make_master",
               functools.partial(fakemaster.make_master, basedir=os.path.join(base, "master")))


class RealUpstreamMixin:
    """For ``TestReactorMixin`` test cases whose harness makes the master: a real upstream and a temp basedir.

    Call ``setup_real_upstream`` first in ``setUp``, before the harness's own
    set-up (``setUpChangeSource``, ``setUpScheduler``, ``setup_test_build_step``).
    """

    def setup_real_upstream(self, prefix: str) -> str:
        """Start the test reactor, make a temporary base directory and a ``GitUpstream`` in it.

        Sets ``self.repo``, points ``fakemaster.make_master`` at ``base/master``
        and returns the base directory (removed when the test ends).
        """
        self.setup_test_reactor()
        base = temp_dir(self, prefix)
        use_temp_master_basedir(self, base)
        self.repo = GitUpstream(base)
        return base


def make_db_master(case: unittest.TestCase, basedir: str | None = None, **kwargs: Any) -> defer.Deferred:
    """A fake master (a Deferred) on Buildbot's real database: SQLite with the full schema.

    ``basedir`` defaults to a fresh temporary directory; ``kwargs`` go to
    ``fakemaster.make_master`` (``db_url``, ``master_id``, ...). Start the test
    reactor first.
    """
    if basedir is None:
        basedir = os.path.join(temp_dir(case), "basedir")
    return fakemaster.make_master(case, wantDb=True, basedir=basedir, **kwargs)


@defer.inlineCallbacks
def two_masters_on_one_database(case: unittest.TestCase):
    """Two masters (ids 1 and 2), each with its own basedir, on one SQLite file: a Deferred (a, b).

    The first creates the schema; the second neither re-creates nor cleans it:
    it joins the database, as a second master sharing one database does.
    """
    base = temp_dir(case)
    db_url = "sqlite:///" + os.path.join(base, "shared.sqlite")
    master_a = yield make_db_master(case, basedir=os.path.join(base, "a"), db_url=db_url, master_id=1)
    master_b = yield make_db_master(case, basedir=os.path.join(base, "b"), db_url=db_url, master_id=2,
                                    auto_upgrade=False, auto_clean=False)
    return master_a, master_b


def add_scenario_tests(cls: type, scenarios: Iterable[Callable[[Any], Awaitable[None]]], *,
                       store: str, kind: str, label: str) -> None:
    """Give ``cls`` one test per scenario: ``test_<kind>_<scenario>`` runs it on ``getattr(self, store)``.

    Each test's docstring is ``"<label>: <scenario name in words>"``.
    """
    def make_test(scenario: Callable[[Any], Awaitable[None]]) -> Callable[[Any], defer.Deferred]:
        def test(self):
            return defer.ensureDeferred(scenario(getattr(self, store)))

        test.__name__ = f"test_{kind}_{scenario.__name__}"
        test.__doc__ = f"{label}: {scenario.__name__.replace('_', ' ')}"
        return test

    for scenario in scenarios:
        test = make_test(scenario)
        setattr(cls, test.__name__, test)


class FlowStepMixin:
    """Helpers for running lpdeploy's steps in Buildbot's ``TestBuildStepMixin``."""

    def setup_flow_step(self, step, **props):
        """``setup_step`` plus what the steps need of the build: a builder id (100) and ``props``.

        Buildbot's ``FakeBuild`` has no ``getBuilderId``; the steps need it (for
        the build URL), so it answers with the builder id the harness inserted.
        """
        step = self.setup_step(step)
        self.build.getBuilderId = lambda: defer.succeed(100)  # FakeBuild lacks it
        for name, value in props.items():
            self.build.setProperty(name, value, "test")
        return step

    def prop(self, name):
        """The build's property ``name`` (None if unset)."""
        return self.build.getProperties().getProperty(name)
