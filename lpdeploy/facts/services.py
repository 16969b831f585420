"""The one way steps, schedulers and web resources reach the stores and the upstream.

Every adapter asks ``services(master)`` for the ledger, the registry, the
timings and the upstream of its master, instead of constructing
``DbRegistry(master)`` or ``Upstream.of(...)`` on the spot. By default these
are the database stores (shared by every master on the database, surviving
restarts) and the master's one mirror per upstream URL. A test hands in other
implementations of the same interfaces — the in-memory twins — in one place,
``install(master, ...)``, and every step and resource of that master uses them.

Like ``Upstream.of``, the services are kept per master object (weakly: a
master that goes away takes them along), so nothing here is configured in
``master.cfg`` and nothing needs starting or stopping.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.flaky import DbFlakyLog, FlakyLog, InMemoryFlakyLog
from lpdeploy.stores.ledger import DbLedger, InMemoryLedger, Ledger
from lpdeploy.stores.qa import DbQaMarks, InMemoryQaMarks, QaMarks
from lpdeploy.stores.registry import DbRegistry, InMemoryRegistry, Registry
from lpdeploy.stores.timings import DbTimings, InMemoryTimings, Timings
from lpdeploy.stores.upstream_health import DbUpstreamHealth, InMemoryUpstreamHealth, UpstreamHealthStore

_per_master: weakref.WeakKeyDictionary[Any, Services] = weakref.WeakKeyDictionary()


@dataclass
class Services:
    """What one master's adapters reach: the stores, and one ``Upstream`` per URL."""

    master: Any
    ledger: Ledger
    registry: Registry
    timings: Timings
    upstreams: dict[str, Upstream] = field(default_factory=dict)  # URL → a stand-in; else the master's mirror
    health: UpstreamHealthStore | None = None  # None: the database store (issue 12: "unreachable since")
    flaky: FlakyLog | None = None  # None: the database's (``flaky_log``)
    qa_marks: QaMarks | None = None  # None: the database store

    @property
    def qa(self) -> QaMarks:
        """The QA marks (``stores/qa.py``): the database store unless ``install`` put another in place."""
        return self.qa_marks if self.qa_marks is not None else DbQaMarks(self.master)

    @property
    def flaky_log(self) -> FlakyLog:
        """Flaky records and the failing tests of failed runs: the database's unless a twin was installed."""
        return self.flaky if self.flaky is not None else DbFlakyLog(self.master)

    @property
    def upstream_health(self) -> UpstreamHealthStore:
        """Whether the upstream answers, and since when not (``stores/upstream_health.py``)."""
        if self.health is None:
            self.health = DbUpstreamHealth(self.master)
        return self.health

    def upstream(self, url: str, timeout: float | None = None) -> Upstream:
        """The upstream at ``url``: the master's one mirror of it, unless a stand-in was installed.

        ``timeout``: ``[repository] timeout``, the bound of each git call to the upstream.
        """
        found = self.upstreams.get(url)
        return found if found is not None else Upstream.of(self.master, url, timeout)


def services(master: Any) -> Services:
    """The services of ``master``: its database stores, unless ``install`` put others in their place."""
    found = _per_master.get(master)
    return found if found is not None else Services(master, DbLedger(master), DbRegistry(master), DbTimings(master))


def install(master: Any, ledger: Ledger | None = None, registry: Registry | None = None,
            timings: Timings | None = None, upstreams: dict[str, Upstream] | None = None,
            health: UpstreamHealthStore | None = None, flaky: FlakyLog | None = None,
            qa: QaMarks | None = None) -> Services:
    """Put other stores (or upstreams) in place for ``master``; what is not given stays as it was."""
    now = services(master)
    _per_master[master] = Services(master, ledger or now.ledger, registry or now.registry, timings or now.timings,
                                   {**now.upstreams, **(upstreams or {})}, health or now.health, flaky or now.flaky,
                                   qa or now.qa_marks)
    return _per_master[master]


def in_memory(master: Any) -> Services:
    """The in-memory twins of the stores for ``master`` (tests and benchmarks)."""
    return install(master, InMemoryLedger(), InMemoryRegistry(), InMemoryTimings(), health=InMemoryUpstreamHealth(),
                   flaky=InMemoryFlakyLog(), qa=InMemoryQaMarks())
