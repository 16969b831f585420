"""The Pipeline dashboard's snapshot: one computation of the flow's picture, shared by every viewer.

Every open Pipeline tab reloads its fragment every few seconds; computing the
picture per request ran a dozen git commands each time (a fetch among them)
behind the one lock the poller uses, so renders queued behind each other. The
snapshot computes the picture once and keeps it until something it shows may
have changed:

- the upstream's tips moved (``Upstream.generation``: a fetch, the poller's
  included, found other tips, or lpdeploy pushed);
- a build finished (gates, promotions, deploys, security builds and every
  admin action — cowboys, freeze, thaw — are builds; Buildbot announces each
  on its message queue);
- it is older than the poll interval (ages and lead times move with the clock,
  and another master's builds may not reach this one's queue).

A recomputation reads the tips of the last fetch when it is younger than the
poll interval (the poller fetches that often), so the dashboard adds at most
one fetch per poll interval, however many viewers it has.

The embargo (design invariant 6): the picture depends on the viewer only
through the security role, so the snapshot keeps one picture per answer to
"may this viewer see security work", each computed by ``pipeline_view`` with
exactly that answer, masked there as before. Both are computed together from
one set of git answers (``_Remembering``): one computation, then no git for
any viewer of either role until something changes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet import defer

from lpdeploy.core.model import Tips
from lpdeploy.core.settings import Settings
from lpdeploy.facts.qa import qa_report
from lpdeploy.facts.services import services
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import Ledger
from lpdeploy.stores.qa import QaMarks
from lpdeploy.stores.registry import Registry
from lpdeploy.web.pipeline import pipeline_view

T = TypeVar("T")
_per_master: weakref.WeakKeyDictionary[Any, DashboardSnapshot] = weakref.WeakKeyDictionary()
BUILD_FINISHED = ("builds", None, "finished")


class _Remembering(Upstream):
    """The upstream as one snapshot sees it: fixed tips, and each read-only git answer asked once.

    Used only for reading (``pipeline_view`` never pushes or merges); the
    answers are immutable values (commits, counts, sets of shas built anew by
    the callers), so sharing them between the two pictures is safe.
    """

    def __init__(self, upstream: Upstream, tips: Tips) -> None:
        super().__init__(upstream.mirror, upstream.clock)
        self._real = upstream
        self._tips = tips
        self._answers: dict[tuple[str, str], Any] = {}

    async def fetch(self) -> Tips:
        return self._tips

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        key = (fn.__name__, repr(args))
        if key not in self._answers:
            self._answers[key] = await self._real._run(fn, *args)
        answer: T = self._answers[key]
        return answer


@dataclass
class _Picture:
    view: dict[str, Any]
    stamp: tuple[int, ...]
    at: float


class DashboardSnapshot:
    """The flow's picture for the dashboard of one master, kept fresh by the flow's own events."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self.builds_finished = 0
        self.computations = 0  # how many pictures were computed: N viewers, one computation
        self._pictures: dict[bool, _Picture] = {}
        self._lock = defer.DeferredLock()
        self._listening = False

    @classmethod
    def of(cls, master: Any) -> DashboardSnapshot:
        if master not in _per_master:
            _per_master[master] = cls(master)
        return _per_master[master]

    def invalidate(self) -> None:
        """Something the page shows changed (called on every finished build, and by a QA mark)."""
        self.builds_finished += 1

    async def _listen(self) -> None:
        if not self._listening:
            self._listening = True
            await self.master.mq.startConsuming(lambda key, msg: self.invalidate(), BUILD_FINISHED)

    async def view(self, upstream: Upstream, ledger: Ledger, registry: Registry, settings: Settings,
                   may_see_security: bool, now: float) -> dict[str, Any]:
        """The picture for a viewer with (or without) the security role, as of ``now``."""
        await self._listen()
        max_age = float(settings.repository.poll_interval)
        picture = self._fresh(may_see_security, upstream, settings, now, max_age)
        if picture is None:
            picture = await self._lock.run(self._compute, upstream, ledger, registry, settings,
                                           may_see_security, now, max_age)
        return {**picture.view, "now": now}

    def _stamp(self, upstream: Upstream, settings: Settings) -> tuple[int, ...]:
        """What a picture was computed from: this upstream at this generation, these settings, these builds."""
        return id(upstream), upstream.generation, id(settings), self.builds_finished

    def _fresh(self, key: bool, upstream: Upstream, settings: Settings, now: float,
               max_age: float) -> _Picture | None:
        picture = self._pictures.get(key)
        if picture is None or picture.stamp != self._stamp(upstream, settings):
            return None
        return picture if now - picture.at < max_age else None

    async def _compute(self, upstream: Upstream, ledger: Ledger, registry: Registry, settings: Settings,
                       key: bool, now: float, max_age: float) -> _Picture:
        """Both pictures from one set of git answers: the next viewer of either role runs no git."""
        picture = self._fresh(key, upstream, settings, now, max_age)  # computed while we waited for the lock
        if picture is not None:
            return picture
        tips = await upstream.shown_tips(max_age)  # the mirror's last tips while the upstream does not answer
        stamp = self._stamp(upstream, settings)  # taken before computing: a change meanwhile invalidates
        facts = _Remembering(upstream, tips)
        self.computations += 1
        for may_see_security in (key, not key):
            view = await pipeline_view(facts, ledger, registry, settings, may_see_security=may_see_security, now=now)
            view["qa"] = await _qa(facts, registry, services(self.master).qa, settings, tips,
                                   may_see_security)  # the deployment report
            self._pictures[may_see_security] = _Picture(view, stamp, now)
        return self._pictures[key]


async def _qa(upstream: Upstream, registry: Registry, marks: QaMarks, settings: Settings, tips: Tips,
              may_see_security: bool) -> dict[str, Any]:
    """The deployment report (``facts/qa.py``) as the page shows it: the same rows as ``lpdeploy qa list``."""
    report = await qa_report(upstream, registry, marks, settings, tips, may_see_security)
    return report.as_json(settings.qa.bug_url)
