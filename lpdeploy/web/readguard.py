"""Which items of Buildbot's data API belong to an embargoed builder (design invariant 6).

Buildbot hands out builds, build requests, buildsets, steps, logs, test
result sets and test results through three doors, and each asks this module:

* a REST path (``/builds/51/steps``): ``lpdeploy.web.authz.EmbargoMatcher``
  resolves the ids the path names and denies the read;
* a REST collection (``/builds?property=*``, ``/workers/3/builds``): query
  filters select items no path names, so ``lpdeploy.web.restguard`` drops the
  embargoed ones from the answer, before pagination;
* pushed events (``/ws``, ``/sse``): Buildbot checks access only when a
  client connects, so ``lpdeploy.web.eventguard`` drops every event that
  concerns an embargoed item, per connection.

An item is named by a *reference*: a kind (``build``, ``buildrequest``,
``buildset``, ``step``, ``log``, ``test_result_set``, or ``builder``) and an
id. ``EmbargoedItems`` resolves references to builder ids through Buildbot's
database, with caches: a build's builder, a step's build, a log's step, a
request's builder, a test result set's builder and a buildset's requests
never change once written, so a resolved reference stays resolved. Builders
are known by id → name (a builder's row keeps its name for ever); the map
is read again only when an item names a builder id it does not hold yet,
so a builder created later — another master's, or an embargoed builder
configured after the web server started — is recognised by its name as
soon as one of its items shows up. One ``EmbargoedItems`` lives per
configuration (on the ``EmbargoMatcher`` the site file's authz holds), so a
reconfig starts with fresh caches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

BUILDER, BUILD, BUILDREQUEST, BUILDSET = "builder", "build", "buildrequest", "buildset"
STEP, LOG, TEST_RESULT_SET = "step", "log", "test_result_set"
Ref = tuple[str, int]

# the id fields an item or event message may carry, and the kind each names
ID_FIELDS: dict[str, str] = {
    "builderid": BUILDER, "buildid": BUILD, "parent_buildid": BUILD, "buildrequestid": BUILDREQUEST,
    "bsid": BUILDSET, "buildsetid": BUILDSET, "stepid": STEP, "logid": LOG,
    "test_result_setid": TEST_RESULT_SET,
}
# REST collections whose items are embargoed, and the field of an item that says whose it is
ITEM_FIELD: dict[str, str] = {
    "builds": "builderid", "buildrequests": "builderid", "test_result_sets": "builderid",
    "test_results": "builderid", "buildsets": "bsid", "steps": "buildid", "logs": "stepid",
    "build_data": "buildid",
}
CACHE_LIMIT = 100_000  # resolved references kept per kind; a full cache starts over


def field(item: Any, name: str) -> Any:
    """``item[name]`` for a dict, ``item.name`` for a dataclass (Buildbot sends both); None if absent."""
    if isinstance(item, Mapping):
        return item.get(name)
    if dataclasses.is_dataclass(item):
        return getattr(item, name, None)
    return None


def refs_of(item: Any, fields: Iterable[str] = ID_FIELDS) -> list[Ref]:
    """The references an item or message carries in its id fields (integers only)."""
    found = []
    for name in fields:
        value = field(item, name)
        if isinstance(value, int) and not isinstance(value, bool):
            found.append((ID_FIELDS[name], value))
    return found


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def event_refs(key: tuple[str, ...], message: Any) -> list[Ref]:
    """Every item an mq event concerns: the ids in its routing key and in its message.

    Routing keys are Buildbot's event paths plus the event name, e.g.
    ``builds/51/new``, ``builders/21/builds/3/update`` (3 is a build *number*),
    ``workers/13/builds/51/finished``, ``builds/51/properties/update``,
    ``buildsets/31/builders/21/buildrequests/41/new``, ``steps/61/logs/stdio/new``,
    ``control/builds/51/stop``. A builder's own events (``builders/21/started``)
    concern the builder, which is public, so neither its key nor its message
    (which carries ``builderid``) counts.
    """
    parts = key[1:] if key and key[0] == "control" else key
    refs: list[Ref] = []
    if len(parts) <= 3 and parts and parts[0] == "builders":
        return refs  # the builder itself: public
    by_name = {"builders": BUILDER, "buildrequests": BUILDREQUEST, "buildsets": BUILDSET,
               "test_result_sets": TEST_RESULT_SET}
    for i in range(len(parts) - 1):
        name, value = parts[i], _int(parts[i + 1])
        if value is None:
            continue
        if name in by_name:
            refs.append((by_name[name], value))
        elif name == "builds" and (i == 0 or parts[i - 2] == "workers"):
            refs.append((BUILD, value))  # under builders/N/ it is a build number, covered by the builder
        elif name == "steps" and (i == 0 or parts[i - 2] == "builds"):
            refs.append((STEP, value))
        elif name == "logs" and i == 0:
            refs.append((LOG, value))  # under steps/N/ it is a slug
    return refs + refs_of(message)


class _Cache(dict[int, Any]):
    def remember(self, key: int, value: Any) -> Any:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        self[key] = value
        return value


class EmbargoedItems:
    """Resolves references to builders and says whether any is an embargoed builder's."""

    def __init__(self, builder_names: Iterable[str]) -> None:
        self.builder_names = frozenset(builder_names)
        self.master: Any = None
        self._builders: dict[int, str] = {}  # builder id → name, as read from the database
        self._caches: dict[str, _Cache] = {kind: _Cache() for kind in
                                           (BUILD, BUILDREQUEST, BUILDSET, STEP, LOG, TEST_RESULT_SET)}

    def set_master(self, master: Any) -> None:
        self.master = master

    async def _read_builders(self) -> None:
        self._builders = {b.id: b.name for b in await self.master.db.builders.getBuilders()}

    async def builder_ids(self) -> frozenset[int]:
        """The ids of the embargoed builders known so far (read once, then kept)."""
        if not self._builders:
            await self._read_builders()
        return frozenset(i for i, name in self._builders.items() if name in self.builder_names)

    async def is_embargoed_builder(self, builderid: int) -> bool | None:
        """Whether the builder is embargoed; None when no builder has that id."""
        if builderid not in self._builders:
            await self._read_builders()
        name = self._builders.get(builderid)
        return None if name is None else name in self.builder_names

    async def builders_of(self, kind: str, id_: int) -> frozenset[int] | None:
        """The builders ``(kind, id_)`` belongs to; None when no such item exists."""
        if kind == BUILDER:
            return frozenset([id_])
        cache = self._caches[kind]
        if id_ in cache:
            return cache[id_]
        db = self.master.db
        found: frozenset[int] | None = None
        if kind == BUILD:
            build = await db.builds.getBuild(id_)
            found = frozenset([build.builderid]) if build else None
        elif kind == STEP:
            step = await db.steps.getStep(stepid=id_)
            found = await self.builders_of(BUILD, step.buildid) if step else None
        elif kind == LOG:
            log = await db.logs.getLog(id_)
            found = await self.builders_of(STEP, log.stepid) if log else None
        elif kind == BUILDREQUEST:
            req = await db.buildrequests.getBuildRequest(id_)
            found = frozenset([req.builderid]) if req else None
        elif kind == TEST_RESULT_SET:
            trs = await db.test_result_sets.getTestResultSet(id_)
            found = frozenset([trs.builderid]) if trs else None
        elif kind == BUILDSET:
            # a buildset and its requests are written in one transaction: once it exists, so do they
            reqs = await db.buildrequests.getBuildRequests(bsid=id_)
            found = frozenset(r.builderid for r in reqs) or None
        return found if found is None else cache.remember(id_, found)

    async def any_embargoed(self, refs: Iterable[Ref], unknown_is_embargoed: bool = True) -> bool:
        """Whether any reference belongs to an embargoed builder.

        A reference to an item that does not exist counts as embargoed unless
        told otherwise: what cannot be resolved is not shown (a path to a
        missing item is left to answer 404).
        """
        for kind, id_ in refs:
            builders = await self.builders_of(kind, id_)
            verdicts = [await self.is_embargoed_builder(b) for b in builders] if builders else [None]
            if any(verdicts) or (unknown_is_embargoed and None in verdicts):
                return True
        return False

    async def embargoed_buildsets(self) -> frozenset[int]:
        """The ids of every buildset with a request for an embargoed builder."""
        bsids: set[int] = set()
        for builderid in await self.builder_ids():
            bsids |= {r.buildsetid for r in await self.master.db.buildrequests.getBuildRequests(builderid=builderid)}
        return frozenset(bsids)
