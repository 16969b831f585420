"""The master's asynchronous view of the upstream repository.

Buildbot code runs in the reactor thread; git runs in ``gitops`` synchronously.
This adapter runs each git call in a worker thread, one at a time per mirror
(concurrent fetches into one bare repository would fight over its ref locks),
and turns the answers into the facts ``policy`` decides on.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer, threads

from lpdeploy.core.errors import GitError
from lpdeploy.core.model import Tips
from lpdeploy.core.policy import BranchFacts
from lpdeploy.git import gitops
from lpdeploy.git.gitops import Commit, Mirror, Move

T = TypeVar("T")
_per_master: weakref.WeakKeyDictionary[Any, dict[str, Upstream]] = weakref.WeakKeyDictionary()


class Upstream:
    """Serialised, thread-backed access to one mirror of one upstream URL.

    ``generation`` counts the times the tips were seen to change (a fetch
    that found other tips than the one before, or a push of ours): readers
    that keep a picture of the flow (the dashboard's snapshot) compare it to
    know when theirs is stale.
    """

    def __init__(self, mirror: Mirror, clock: Callable[[], float] = time.monotonic) -> None:
        self.mirror = mirror
        self.clock = clock
        self.generation = 0
        self._fetched: tuple[float, Tips] | None = None  # when the last fetch ran, and what it found
        self._lock = defer.DeferredLock()

    @classmethod
    def of(cls, master: Any, url: str, timeout: float | None = None) -> Upstream:
        """The one Upstream for ``url`` on this master (its mirror lives in the master's basedir).

        ``timeout`` (``[repository] timeout``), when given, bounds each git call
        to the upstream from now on (a reconfig may change it).
        """
        known = _per_master.setdefault(master, {})
        if url not in known:
            path = os.path.join(os.path.abspath(master.basedir), "lpdeploy-mirror.git")
            known[url] = cls(Mirror(path, url), clock=master.reactor.seconds)
        if timeout is not None:
            known[url].mirror.timeout = timeout
        return known[url]

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._lock.run(threads.deferToThread, fn, *args)

    async def fetch(self) -> Tips:
        tips = Tips(await self._run(self.mirror.fetch))
        if self._fetched is None or self._fetched[1] != tips:
            self.generation += 1
        self._fetched = (self.clock(), tips)
        return tips

    async def recent_tips(self, max_age: float) -> Tips:
        """The tips of a fetch at most ``max_age`` seconds old (anyone's, the poller's too), else of a new one.

        So readers that only show the flow share the poller's fetches: at
        most one fetch per ``max_age`` however many of them ask.
        """
        if self._fetched is not None and self.clock() - self._fetched[0] < max_age:
            return self._fetched[1]
        return await self.fetch()

    async def shown_tips(self, max_age: float) -> Tips:
        """For pages that only show the flow: ``recent_tips``, else (the upstream does not answer) the
        tips of the mirror's last fetch, so a status still shows where the flow stood; never for deciding.
        """
        try:
            return await self.recent_tips(max_age)
        except GitError:
            try:
                return Tips(await self._run(self.mirror.heads))
            except GitError:  # no mirror yet
                return Tips({})

    async def fetch_revision(self, sha: str) -> None:
        await self._run(self.mirror.fetch_revision, sha)

    async def tree_of(self, sha: str) -> str:
        return await self._run(self.mirror.tree_of, sha)

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return await self._run(self.mirror.is_ancestor, ancestor, descendant)

    async def contains(self, tip: str, rev: str) -> bool:
        """Whether the commit ``tip`` contains ``rev`` (is it, or descends from it).

        A revision the mirror does not have (or any git failure) means no: every
        caller asks before acting on "yes", so "no" is the safe answer.
        """
        if rev == tip:
            return True
        try:
            return await self.is_ancestor(rev, tip)
        except GitError:
            return False

    async def commit(self, sha: str) -> Commit:
        return await self._run(self.mirror.commit, sha)

    async def commit_times(self, shas: list[str]) -> dict[str, int]:
        return await self._run(self.mirror.commit_times, shas)

    async def commits_between(self, base: str | list[str] | None, tip: str | list[str],
                              limit: int = 200) -> list[Commit]:
        return await self._run(self.mirror.commits_between, base, tip, limit)

    async def patch_ids(self, shas: list[str]) -> dict[str, str]:
        return await self._run(self.mirror.patch_ids, shas)

    async def patch_id(self, diff: str) -> str | None:
        return await threads.deferToThread(gitops.patch_id, diff)  # no mirror involved: no lock

    async def count_between(self, base: str | list[str] | None, tip: str | list[str]) -> int:
        return await self._run(self.mirror.count_between, base, tip)
    async def first_parents(self, base: str | None, tip: str, limit: int = 200) -> list[Commit]:
        return await self._run(self.mirror.first_parents, base, tip, limit)

    async def first_parent_messages(self, base: str | None, tip: str, limit: int = 200) -> dict[str, str]:
        return await self._run(self.mirror.first_parent_messages, base, tip, limit)

    async def push(self, moves: list[Move]) -> bool:
        """``Mirror.push``: True when the push landed though its reply was lost."""
        try:
            return await self._run(self.mirror.push, moves)
        finally:  # moved, or refused because a tip moved under us: either way what we saw is stale
            self.generation += 1
            self._fetched = None

    async def merge(self, ours: str, theirs: str, message: str) -> str:
        return await self._run(self.mirror.merge, ours, theirs, message)

    async def push_new_ref(self, ref: str, sha: str) -> None:
        await self._run(self.mirror.push_new_ref, ref, sha)

    async def facts(self, tips: Tips, target: str, branches: tuple[str, ...]) -> list[BranchFacts]:
        """Where each branch stands relative to ``target``, for ``policy.move_decision``."""
        out = []
        for name in branches:
            tip = tips.get(name)
            if tip is None or tip == target:
                out.append(BranchFacts(name, tip))
                continue
            out.append(BranchFacts(
                name, tip,
                behind_target=await self.is_ancestor(tip, target),
                contains_target=await self.is_ancestor(target, tip),
            ))
        return out
