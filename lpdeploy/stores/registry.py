"""What the flow must remember besides the ledger: cowboys, deployments, freeze, audit, security work.

One interface, two stores: ``DbRegistry`` keeps everything in Buildbot's
database (``object_state``), so it survives restarts and several masters
share it; ``InMemoryRegistry`` serves pure tests. Both pass the same
contract scenarios (``tests/registry_contract.py``).

Security work: ``fix``/``save_fix`` hold the latest run of each security
branch (one row, overwritten by each push); ``record_release``/``releases``
the append-only history of fixes that reached production, which nothing
overwrites; ``record_merge_back``/``merge_backs`` every merge-back attempt;
``save_job``/``job`` what each security or merge-back build was asked to do
(branch, who asked), kept here so that the build itself carries only a token.
A cowboy's diff likewise: ``save_patch_upload`` keeps it under a token until
its cowboy-add build claims it (``claim_patch_upload``: once, by its
uploader, within ``UPLOAD_TTL``).

Writes that two masters could race on are made safe: a new cowboy id is
claimed with an atomic create (the loser takes the next id), a release is an
atomic create keyed by its candidate and fix commit (recording it twice keeps
the first), deployments and the freeze are last-writer-wins single rows,
audit entries, events and merge-back attempts never collide.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import asdict, replace
from typing import Any, Protocol

import sqlalchemy as sa

from lpdeploy.core.bisect import Culprit
from lpdeploy.core.errors import InvalidInput, UnknownCowboy
from lpdeploy.core.model import (
    AuditEntry,
    Cowboy,
    CowboyPatch,
    CowboyState,
    Deployment,
    Freeze,
    MergeBackAttempt,
    PatchUpload,
    Release,
    SecurityFix,
    SecurityJob,
    UnrecordedChange,
)

REGISTRY_OBJECT = ("lpdeploy-registry", "lpdeploy.registry.DbRegistry")
_AUDIT_SEQUENCE = itertools.count()  # orders audit entries recorded within one second
JOB_TOKEN = re.compile(r"[0-9a-f]{32}")
UPLOAD_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
UPLOAD_TTL = 3600.0  # seconds a cowboy's uploaded diff waits for its build; then it is refused and purged


def new_job_token() -> str:
    """An opaque, unguessable job token: all a security build's properties say about its work."""
    return secrets.token_hex(16)


def new_upload_token() -> str:
    """An opaque, unguessable token for a cowboy's uploaded diff (what its build's property says)."""
    return secrets.token_urlsafe(24)


class Registry(Protocol):
    """What every registry store promises; ``tests/registry_contract.py`` holds both stores to it."""

    async def add_cowboy(self, server: str, reason: str, fixed_by: str | None, who: str, now: float) -> Cowboy:
        """Record a new active cowboy on ``server``; returns it with a fresh id, never one used before.

        Ids count up from 1. Two masters adding at once get two different ids.
        """

    async def end_cowboy(self, cowboy_id: int, state: CowboyState, who: str, reason: str, now: float) -> Cowboy:
        """End an active cowboy as RETIRED (its fix was deployed) or REMOVED (by hand); returns it ended.

        Raises ``UnknownCowboy`` for an id never recorded or a cowboy already
        ended (it stays as it ended: the first end wins), ``ValueError`` for
        any other ``state``.
        """

    async def cowboys(self, include_ended: bool = False) -> list[Cowboy]:
        """The active cowboys (every cowboy with ``include_ended``), by id."""

    async def save_cowboy_patch(self, patch: CowboyPatch) -> None:
        """Keep the diff of cowboy ``patch.cowboy_id`` (written once, when the cowboy is recorded)."""

    async def cowboy_patch(self, cowboy_id: int) -> CowboyPatch | None:
        """The diff cowboy ``cowboy_id`` carries, or None."""

    async def save_patch_upload(self, upload: PatchUpload) -> None:
        """Keep a cowboy's diff under ``upload.token`` until its build claims it; uploads older than
        ``UPLOAD_TTL`` at ``upload.at`` are purged. ``ValueError`` for a token ``new_upload_token``
        could not have made."""

    async def claim_patch_upload(self, token: object, who: str, now: float) -> str:
        """The diff under ``token``, removed (single use); ``InvalidInput`` when it is unknown or used,
        older than ``UPLOAD_TTL`` (then it is removed), or uploaded by another user than ``who``
        (then it stays for its uploader)."""

    async def patch_ids(self, shas: list[str]) -> dict[str, str]:
        """The cached ``git patch-id --stable`` of those commits that have one cached ("" for none)."""

    async def save_patch_ids(self, ids: dict[str, str]) -> None:
        """Cache patch ids by commit (a commit's patch id never changes, so any writer writes the same)."""

    async def deployment(self, server: str) -> Deployment | None:
        """What ``server`` last got from lpdeploy, or None if it never got anything."""

    async def record_deployment(self, dep: Deployment) -> None:
        """Replace ``dep.server``'s deployment (last writer wins; only successful deploys are recorded)."""

    async def unrecorded_changes(self) -> list[UnrecordedChange]:
        """The standing unrecorded changes, one per server at most, by server name."""

    async def record_unrecorded_change(self, change: UnrecordedChange) -> None:
        """Replace ``change.server``'s unrecorded change (one row per server, last writer wins)."""

    async def clear_unrecorded_change(self, server: str) -> UnrecordedChange | None:
        """Remove ``server``'s unrecorded change; returns what was removed, or None if none stood."""

    async def freeze(self) -> Freeze | None:
        """The freeze in force, or None."""

    async def set_freeze(self, freeze: Freeze | None) -> None:
        """Freeze (replacing any freeze in force), or thaw with None."""

    async def audit(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the audit trail; nothing removes or rewrites an entry."""

    async def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` audit entries, newest first (entries of one second keep their order)."""

    async def record_event(self, event: AuditEntry) -> None:
        """Append a flow event (a ``core.model.EventKind``) for the dashboard's numbers; apart from the audit."""

    async def events(self, since: float = 0.0) -> list[AuditEntry]:
        """The flow events at or after ``since``, oldest first; never audit entries."""

    async def fixes(self) -> list[SecurityFix]:
        """The latest run of every security branch ever built, by branch name."""

    async def fix(self, branch: str) -> SecurityFix | None:
        """The latest run of ``branch``, or None."""

    async def save_fix(self, fix: SecurityFix) -> None:
        """Replace the latest run of ``fix.branch``: one row per branch, overwritten by each push."""

    async def record_release(self, release: Release) -> None:
        """Append a fix that reached production to the history; recording the same candidate and fix
        commit again keeps the first record. Nothing removes or rewrites a release."""

    async def releases(self) -> list[Release]:
        """Every release, oldest first, whatever has happened to the branches since."""

    async def record_merge_back(self, attempt: MergeBackAttempt) -> None:
        """Append a merge-back attempt (merged, nothing to merge, conflict or gave up)."""

    async def merge_backs(self) -> list[MergeBackAttempt]:
        """Every merge-back attempt, oldest first."""

    async def save_job(self, job: SecurityJob) -> None:
        """Store (or update) the job under ``job.token``; ``ValueError`` for a token
        ``new_job_token`` could not have made."""

    async def job(self, token: str) -> SecurityJob | None:
        """The job under ``token``, or None: for an unknown token, and for anything that is not a token
        (a build's property can be set by a forced build; it must never name another row)."""

    async def culprit(self) -> Culprit | None:
        """The commit the gate's last bisection named as breaking devel, or None (devel is green)."""

    async def save_culprit(self, culprit: Culprit | None) -> None:
        """Replace the culprit (one row); None clears it."""


def _is_token(token: object) -> bool:
    return isinstance(token, str) and JOB_TOKEN.fullmatch(token) is not None


def _check_token(token: str) -> None:
    if not _is_token(token):
        raise ValueError(f"not a job token: {token!r}")


def _upload_refusal(upload: PatchUpload | None, who: str, now: float) -> str | None:
    """Why ``who`` may not claim ``upload`` at ``now``, or None: the rule both stores keep."""
    if upload is None:
        return "no such upload (unknown, or already used)"
    if _expired(upload, now):
        return (f"expired: uploads wait {int(UPLOAD_TTL) // 60} minutes for their build; "
                "run lpdeploy cowboy add again")
    if upload.by != who:
        return "uploaded by another user; only they may record a cowboy with it"
    return None


def _expired(upload: PatchUpload | None, now: float) -> bool:
    return upload is not None and now - upload.at > UPLOAD_TTL


def _claim_error(token: object, problem: str) -> InvalidInput:
    return InvalidInput("patch upload", str(token)[:8] + "…", problem)


def _is_upload_token(token: object) -> bool:
    return isinstance(token, str) and UPLOAD_TOKEN.fullmatch(token) is not None


def _by_time(releases: list[Release]) -> list[Release]:
    return sorted(releases, key=lambda r: (r.released_at, r.candidate, r.fix_commit))


def _cowboy(d: dict[str, Any]) -> Cowboy:
    d = {k: v for k, v in d.items() if k != "active"}
    return Cowboy(**d)


def _ended(c: Cowboy, state: CowboyState, who: str, reason: str, now: float) -> Cowboy:
    if state not in (CowboyState.RETIRED, CowboyState.REMOVED):
        raise ValueError(f"cannot end a cowboy as {state!r}")
    if not c.active:
        raise UnknownCowboy(c.id, f"already {c.state}")
    return replace(c, state=state, ended_at=now, ended_by=who, end_reason=reason)


class InMemoryRegistry:
    def __init__(self) -> None:
        self._cowboys: dict[int, Cowboy] = {}
        self._deployments: dict[str, Deployment] = {}
        self._freeze: Freeze | None = None
        self._drift: dict[str, UnrecordedChange] = {}
        self._patches: dict[int, CowboyPatch] = {}
        self._patch_ids: dict[str, str] = {}
        self._uploads: dict[str, PatchUpload] = {}
        self._audit: list[AuditEntry] = []
        self._fixes: dict[str, SecurityFix] = {}
        self._events: list[AuditEntry] = []
        self._releases: dict[tuple[str, str], Release] = {}
        self._culprit: Culprit | None = None
        self._merge_backs: list[MergeBackAttempt] = []
        self._jobs: dict[str, SecurityJob] = {}

    async def add_cowboy(self, server: str, reason: str, fixed_by: str | None, who: str, now: float) -> Cowboy:
        c = Cowboy(len(self._cowboys) + 1, server, reason, fixed_by, who, now)
        self._cowboys[c.id] = c
        return c

    async def end_cowboy(self, cowboy_id: int, state: CowboyState, who: str, reason: str, now: float) -> Cowboy:
        if cowboy_id not in self._cowboys:
            raise UnknownCowboy(cowboy_id)
        c = self._cowboys[cowboy_id] = _ended(self._cowboys[cowboy_id], state, who, reason, now)
        return c

    async def cowboys(self, include_ended: bool = False) -> list[Cowboy]:
        return [c for _, c in sorted(self._cowboys.items()) if include_ended or c.active]

    async def save_cowboy_patch(self, patch: CowboyPatch) -> None:
        self._patches[patch.cowboy_id] = patch

    async def cowboy_patch(self, cowboy_id: int) -> CowboyPatch | None:
        return self._patches.get(cowboy_id)

    async def save_patch_upload(self, upload: PatchUpload) -> None:
        if not _is_upload_token(upload.token):
            raise ValueError("not an upload token")
        self._uploads = {t: u for t, u in self._uploads.items() if upload.at - u.at <= UPLOAD_TTL}
        self._uploads[upload.token] = upload

    async def claim_patch_upload(self, token: object, who: str, now: float) -> str:
        upload = self._uploads.get(str(token)) if _is_upload_token(token) else None
        refusal = _upload_refusal(upload, who, now)
        if refusal is not None:
            if _expired(upload, now):
                del self._uploads[str(token)]
            raise _claim_error(token, refusal)
        assert upload is not None
        return self._uploads.pop(upload.token).diff

    async def patch_ids(self, shas: list[str]) -> dict[str, str]:
        return {s: self._patch_ids[s] for s in shas if s in self._patch_ids}

    async def save_patch_ids(self, ids: dict[str, str]) -> None:
        self._patch_ids.update(ids)

    async def deployment(self, server: str) -> Deployment | None:
        return self._deployments.get(server)

    async def record_deployment(self, dep: Deployment) -> None:
        self._deployments[dep.server] = dep

    async def unrecorded_changes(self) -> list[UnrecordedChange]:
        return [c for _, c in sorted(self._drift.items())]

    async def record_unrecorded_change(self, change: UnrecordedChange) -> None:
        self._drift[change.server] = change

    async def clear_unrecorded_change(self, server: str) -> UnrecordedChange | None:
        return self._drift.pop(server, None)

    async def freeze(self) -> Freeze | None:
        return self._freeze

    async def set_freeze(self, freeze: Freeze | None) -> None:
        self._freeze = freeze

    async def audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    async def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return list(reversed(self._audit))[:limit]

    async def record_event(self, event: AuditEntry) -> None:
        self._events.append(event)

    async def events(self, since: float = 0.0) -> list[AuditEntry]:
        return sorted((e for e in self._events if e.at >= since), key=lambda e: e.at)

    async def fixes(self) -> list[SecurityFix]:
        return [f for _, f in sorted(self._fixes.items())]

    async def fix(self, branch: str) -> SecurityFix | None:
        return self._fixes.get(branch)

    async def save_fix(self, fix: SecurityFix) -> None:
        self._fixes[fix.branch] = fix

    async def record_release(self, release: Release) -> None:
        self._releases.setdefault((release.candidate, release.fix_commit), release)

    async def releases(self) -> list[Release]:
        return _by_time(list(self._releases.values()))

    async def record_merge_back(self, attempt: MergeBackAttempt) -> None:
        self._merge_backs.append(attempt)

    async def merge_backs(self) -> list[MergeBackAttempt]:
        return sorted(self._merge_backs, key=lambda a: a.at)

    async def save_job(self, job: SecurityJob) -> None:
        _check_token(job.token)
        self._jobs[job.token] = job

    async def job(self, token: str) -> SecurityJob | None:
        return self._jobs.get(token) if _is_token(token) else None

    async def culprit(self) -> Culprit | None:
        return self._culprit

    async def save_culprit(self, culprit: Culprit | None) -> None:
        self._culprit = culprit


class DbRegistry:
    """The registry in Buildbot's database."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._objectid: int | None = None

    async def _oid(self) -> int:
        if self._objectid is None:
            self._objectid = await self.master.db.state.getObjectId(*REGISTRY_OBJECT)
        return self._objectid

    async def _get(self, name: str) -> Any:
        return await self.master.db.state.getState(await self._oid(), name, None)

    async def _set(self, name: str, value: Any) -> None:
        await self.master.db.state.setState(await self._oid(), name, value)

    async def _rows(self, prefix: str) -> list[tuple[str, Any]]:
        oid = await self._oid()

        def thd(conn: Any) -> list[tuple[str, Any]]:
            tbl = self.master.db.model.object_state
            q = sa.select(tbl.c.name, tbl.c.value_json).where(
                tbl.c.objectid == oid, tbl.c.name.like(prefix + "%"))
            return [(r.name, json.loads(r.value_json)) for r in conn.execute(q)]

        return await self.master.db.pool.do(thd)

    async def add_cowboy(self, server: str, reason: str, fixed_by: str | None, who: str, now: float) -> Cowboy:
        oid = await self._oid()
        next_id = 1 + max((int(n.split("/")[1]) for n, _ in await self._rows("cowboy/")), default=0)
        while True:
            c = Cowboy(next_id, server, reason, fixed_by, who, now)
            token = secrets.token_hex(8)
            stored = await self.master.db.state.atomicCreateState(
                oid, f"cowboy/{next_id:08d}", lambda c=c, token=token: {**c.as_json(), "token": token})
            if stored.get("token") == token:
                return c
            next_id += 1  # another master took this id first

    async def _cowboy_row(self, cowboy_id: int) -> Cowboy:
        found = await self._get(f"cowboy/{cowboy_id:08d}")
        if found is None:
            raise UnknownCowboy(cowboy_id)
        found.pop("token", None)
        return _cowboy(found)

    async def end_cowboy(self, cowboy_id: int, state: CowboyState, who: str, reason: str, now: float) -> Cowboy:
        c = _ended(await self._cowboy_row(cowboy_id), state, who, reason, now)
        await self._set(f"cowboy/{cowboy_id:08d}", c.as_json())
        return c

    async def cowboys(self, include_ended: bool = False) -> list[Cowboy]:
        found = []
        for _, value in sorted(await self._rows("cowboy/")):
            value.pop("token", None)
            c = _cowboy(value)
            if include_ended or c.active:
                found.append(c)
        return found

    async def save_cowboy_patch(self, patch: CowboyPatch) -> None:
        await self._set(f"cowboy-patch/{patch.cowboy_id:08d}", asdict(patch))

    async def cowboy_patch(self, cowboy_id: int) -> CowboyPatch | None:
        found = await self._get(f"cowboy-patch/{cowboy_id:08d}")
        return CowboyPatch(**found) if found else None

    async def save_patch_upload(self, upload: PatchUpload) -> None:
        if not _is_upload_token(upload.token):
            raise ValueError("not an upload token")
        stale = [n for n, v in await self._rows("upload/") if upload.at - float(v.get("at", 0)) > UPLOAD_TTL]
        if stale:
            await self._delete(stale)
        await self._set(f"upload/{upload.token}", asdict(upload))

    async def claim_patch_upload(self, token: object, who: str, now: float) -> str:
        """Removing the row is the claim: of two masters claiming at once, one deletes it, the other finds none."""
        found = await self._get(f"upload/{token}") if _is_upload_token(token) else None
        upload = PatchUpload(**found) if found else None
        refusal = _upload_refusal(upload, who, now)
        if refusal is None:
            if await self._delete([f"upload/{token}"]) == 0:  # another master claimed it meanwhile
                refusal = _upload_refusal(None, who, now)
        elif _expired(upload, now):
            await self._delete([f"upload/{token}"])
        if refusal is not None:
            raise _claim_error(token, refusal)
        assert upload is not None
        return upload.diff

    async def _delete(self, names: list[str]) -> int:
        """Remove these rows; returns how many were there."""
        oid = await self._oid()

        def thd(conn: Any) -> int:
            tbl = self.master.db.model.object_state
            gone = conn.execute(tbl.delete().where(tbl.c.objectid == oid, tbl.c.name.in_(names))).rowcount
            conn.commit()
            return int(gone)

        return await self.master.db.pool.do(thd)

    async def patch_ids(self, shas: list[str]) -> dict[str, str]:
        """Read by name, a batch at a time: the cache grows with the history, a deploy asks for a few."""
        oid = await self._oid()
        names = [f"patchid/{s}" for s in shas]

        def thd(conn: Any) -> dict[str, str]:
            tbl = self.master.db.model.object_state
            out = {}
            for i in range(0, len(names), 500):
                q = sa.select(tbl.c.name, tbl.c.value_json).where(tbl.c.objectid == oid,
                                                                 tbl.c.name.in_(names[i:i + 500]))
                out.update({r.name[len("patchid/"):]: json.loads(r.value_json) for r in conn.execute(q)})
            return out

        return await self.master.db.pool.do(thd)

    async def save_patch_ids(self, ids: dict[str, str]) -> None:
        """One transaction per batch of rows, not one per commit: a deploy may bring thousands of commits.

        Rows already there are left alone (a commit's patch id never
        changes). Another master inserting the same rows at the same moment
        makes a batch fail on the unique index; it is then written row by row.
        """
        oid = await self._oid()
        rows = [(f"patchid/{sha}", json.dumps(pid)) for sha, pid in ids.items()]

        def thd(conn: Any, batch: list[tuple[str, str]]) -> None:
            tbl = self.master.db.model.object_state
            have = {r.name for r in conn.execute(sa.select(tbl.c.name).where(
                tbl.c.objectid == oid, tbl.c.name.in_([n for n, _ in batch])))}
            new = [{"objectid": oid, "name": n, "value_json": v} for n, v in batch if n not in have]
            if new:
                conn.execute(tbl.insert(), new)
            conn.commit()

        for i in range(0, len(rows), 500):
            batch = rows[i:i + 500]
            try:
                await self.master.db.pool.do(thd, batch)
            except sa.exc.IntegrityError:  # raced with another master: the rows it wrote are the same
                for name, value in batch:
                    await self._set(name, json.loads(value))

    async def deployment(self, server: str) -> Deployment | None:
        found = await self._get(f"deployed/{server}")
        return Deployment(**found) if found else None

    async def record_deployment(self, dep: Deployment) -> None:
        await self._set(f"deployed/{dep.server}", asdict(dep))

    async def unrecorded_changes(self) -> list[UnrecordedChange]:
        return [UnrecordedChange(**v) for _, v in sorted(await self._rows("drift/")) if v]

    async def record_unrecorded_change(self, change: UnrecordedChange) -> None:
        await self._set(f"drift/{change.server}", change.as_json())

    async def clear_unrecorded_change(self, server: str) -> UnrecordedChange | None:
        found = await self._get(f"drift/{server}")
        if not found:
            return None
        await self._set(f"drift/{server}", {})  # an empty row: none stands
        return UnrecordedChange(**found)

    async def freeze(self) -> Freeze | None:
        found = await self._get("freeze")
        return Freeze(**found) if found else None

    async def set_freeze(self, freeze: Freeze | None) -> None:
        await self._set("freeze", asdict(freeze) if freeze else {})

    async def audit(self, entry: AuditEntry) -> None:
        # time, then the order of recording in this process, then a token against other masters
        name = f"audit/{entry.at:020.6f}/{next(_AUDIT_SEQUENCE):012d}/{secrets.token_hex(4)}"
        await self._set(name, asdict(entry))

    async def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        rows = sorted(await self._rows("audit/"), reverse=True)[:limit]
        return [AuditEntry(**v) for _, v in rows]

    async def record_event(self, event: AuditEntry) -> None:
        """Flow events (gate moves, suite runs and skips, promotions) for the dashboard's numbers."""
        await self._set(f"event/{event.at:020.6f}/{next(_AUDIT_SEQUENCE):012d}/{secrets.token_hex(4)}",
                        asdict(event))

    async def events(self, since: float = 0.0) -> list[AuditEntry]:
        oid = await self._oid()
        low = f"event/{since:020.6f}"

        def thd(conn: Any) -> list[AuditEntry]:
            tbl = self.master.db.model.object_state
            q = sa.select(tbl.c.value_json).where(
                tbl.c.objectid == oid, tbl.c.name >= low, tbl.c.name < "event0").order_by(tbl.c.name)
            return [AuditEntry(**json.loads(r.value_json)) for r in conn.execute(q)]

        return await self.master.db.pool.do(thd)

    async def fixes(self) -> list[SecurityFix]:
        return [SecurityFix.from_json(v) for _, v in sorted(await self._rows("fix/"))]

    async def fix(self, branch: str) -> SecurityFix | None:
        found = await self._get(f"fix/{branch}")
        return SecurityFix.from_json(found) if found else None

    async def save_fix(self, fix: SecurityFix) -> None:
        await self._set(f"fix/{fix.branch}", asdict(fix))

    async def record_release(self, release: Release) -> None:
        """Append to the history; the same candidate and fix commit recorded again keeps the first."""
        await self.master.db.state.atomicCreateState(
            await self._oid(), f"release/{release.candidate}/{release.fix_commit}", lambda: asdict(release))

    async def releases(self) -> list[Release]:
        found = [Release.from_json(v) for _, v in await self._rows("release/")]
        return _by_time(found + await self._legacy_releases(found))

    async def _legacy_releases(self, known: list[Release]) -> list[Release]:
        """Releases an older lpdeploy kept only in the branch row (``released``, ``released_candidate``)."""
        have = {(r.candidate, r.fix_commit) for r in known}
        out = []
        for _, row in await self._rows("fix/"):
            fix_commit, candidate = row.get("released"), row.get("released_candidate")
            if fix_commit and candidate and (candidate, fix_commit) not in have:
                out.append(Release(row["branch"], fix_commit, candidate, float(row.get("updated_at") or 0.0),
                                   by=row.get("by", ""), build_url=row.get("build_url", "")))
        return out

    async def record_merge_back(self, attempt: MergeBackAttempt) -> None:
        name = f"mergeback/{attempt.at:020.6f}/{next(_AUDIT_SEQUENCE):012d}/{secrets.token_hex(4)}"
        await self._set(name, asdict(attempt))

    async def merge_backs(self) -> list[MergeBackAttempt]:
        return [MergeBackAttempt.from_json(v) for _, v in sorted(await self._rows("mergeback/"))]

    async def save_job(self, job: SecurityJob) -> None:
        _check_token(job.token)
        await self._set(f"job/{job.token}", asdict(job))

    async def job(self, token: str) -> SecurityJob | None:
        if not _is_token(token):
            return None
        found = await self._get(f"job/{token}")
        return SecurityJob.from_json(found) if found else None

    async def culprit(self) -> Culprit | None:
        """The latest bisection's culprit (one row, last-writer-wins: every writer found the same boundary)."""
        found = await self._get("culprit")
        return Culprit.from_json(found) if found else None

    async def save_culprit(self, culprit: Culprit | None) -> None:
        await self._set("culprit", culprit.as_json() if culprit else {})
