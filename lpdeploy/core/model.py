"""The domain in plain values: branch tips, test records, decisions.

Nothing here does I/O. Decisions (``policy.py``) take these values and return a
``Decision``; adapters (steps, schedulers, the CLI) carry it out and show its
``reason`` to people.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lpdeploy.core.refs import short


class Result(enum.StrEnum):
    """Outcome of one suite run on one tree."""

    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class TestRecord:
    """One ledger entry: this suite ran on this tree (reached via this commit)."""

    __test__ = False  # not a pytest test class, despite the name

    tree: str
    commit: str
    suite: str
    result: Result
    build_url: str
    build_number: int | None
    finished_at: float  # seconds since the epoch
    duration: float = 0.0  # seconds the suite took

    @property
    def passed(self) -> bool:
        return self.result is Result.PASSED

    def describe(self) -> str:
        where = f"build #{self.build_number}" if self.build_number is not None else "a build"
        return f"{where} ({self.build_url}) on commit {short(self.commit)}"


@dataclass(frozen=True)
class Tips:
    """The branch tips of the upstream at one moment: ``{short branch name: sha}``."""

    heads: dict[str, str] = field(default_factory=dict)

    def get(self, branch: str) -> str | None:
        return self.heads.get(branch)


class Action(enum.StrEnum):
    RUN_SUITE = "run-suite"  # test the tree before anything moves
    SKIP_SUITE = "skip-suite"  # the tree already passed this suite
    MOVE = "move"  # fast-forward the named branches to the revision
    NOTHING = "nothing"  # the requested state already holds
    REFUSE = "refuse"  # do not act; the reason says why


@dataclass(frozen=True)
class Decision:
    """What to do, to which revision, and why: the value every adapter shows."""

    action: Action
    reason: str
    revision: str | None = None
    branches: tuple[str, ...] = ()
    record: TestRecord | None = None

    @property
    def refused(self) -> bool:
        return self.action is Action.REFUSE


class CowboyState(enum.StrEnum):
    """Where a cowboy stands (stored in the registry)."""

    ACTIVE = "active"  # on the server; no rollout may overwrite it
    RETIRED = "retired"  # its fix was deployed
    REMOVED = "removed"  # a sysadmin took it off by hand


@dataclass(frozen=True)
class Cowboy:
    """A hand-applied patch on one server; no rollout may overwrite it while active."""

    id: int
    server: str
    reason: str
    fixed_by: str | None  # the commit carrying the real fix
    created_by: str
    created_at: float
    state: CowboyState = CowboyState.ACTIVE
    ended_at: float | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    def __post_init__(self) -> None:  # rows and JSON hold the plain string
        object.__setattr__(self, "state", CowboyState(self.state))

    @property
    def active(self) -> bool:
        return self.state == CowboyState.ACTIVE

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


@dataclass(frozen=True)
class CowboyPatch:
    """The diff a cowboy applied by hand (``lpdeploy cowboy add --patch``), kept beside the cowboy.

    A target revision holding a commit with the same ``git patch-id --stable``
    between ``base`` (what lpdeploy had deployed on the server when the
    cowboy was recorded) and itself contains the fix: the cowboy retires as
    with ``--fixed-by``.
    """

    cowboy_id: int
    patch_id: str
    base: str | None  # the server's deployed revision when the cowboy was recorded
    diff: str

    def summary(self) -> dict[str, Any]:
        """What lists show: the id and size, not the diff itself."""
        return {"patch_id": self.patch_id, "base": self.base, "size": len(self.diff.encode("utf-8",
                                                                                           "surrogateescape"))}


@dataclass(frozen=True)
class PatchUpload:
    """A cowboy's diff waiting for its ``cowboy-add`` build, kept master-side under an opaque token.

    Build and buildset properties are readable by every viewer of the web UI,
    and a hot patch is often the fix of a vulnerability, so the diff never
    becomes a property: the cowboy-add form stores it as an upload and the
    build carries only ``token``. The build's step claims it once, as the user
    who uploaded it, within ``registry.UPLOAD_TTL`` seconds.
    """

    token: str
    diff: str
    by: str  # who uploaded it: only they may claim it
    at: float


@dataclass(frozen=True)
class Deployment:
    server: str
    revision: str
    deployed_at: float
    by: str
    build_url: str = ""


@dataclass(frozen=True)
class UnrecordedChange:
    """A server found running a tree lpdeploy did not deploy there, with no cowboy recorded for it.

    Recorded by the inspect builder (``[deploy] inspect_interval``) or a
    deploy's own inspection; while it stands, that server's rollouts are
    refused like a cowboy's. Cleared when a cowboy is recorded for the
    server, a losa deploys over it (``--override-cowboys --reason``), or a
    later inspection finds the deployed tree again.
    """

    server: str
    revision: str  # what lpdeploy deployed there
    expected: str  # the tree of that revision
    found: str  # the tree (or content hash) the server's inspect_command printed
    at: float  # when it was first found (a later inspection finding the same keeps this)
    by: str = ""  # who inspected: the inspect builder, or the deploy that found it

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Freeze:
    reason: str
    by: str
    at: float


@dataclass(frozen=True)
class AuditEntry:
    at: float
    who: str
    action: str  # an AuditAction in the audit trail, an EventKind among the flow events
    details: dict[str, Any] = field(default_factory=dict)


class FixState(enum.StrEnum):
    """Where a security fix stands, in one word (stored in ``SecurityFix.state``, shown by ``lpdeploy status``).

    The first five are the latest run of a security branch, stored:
    queued → testing → promoted (or failed / refused). The last four say where
    a released fix stands; they are read off the tips and the merge-back
    records, never stored as a state by lpdeploy (older rows may hold them).
    """

    QUEUED = "queued"
    TESTING = "testing"
    FAILED = "failed"  # the security build's suite failed, or the fix did not merge onto production-stable
    REFUSED = "refused"  # promotion refused (a freeze, a lost fix, a branch that moved)
    PROMOTED = "promoted"
    PENDING = "pending"  # released, not yet in devel
    MERGING = "merging"
    CONFLICT = "conflict"  # its last merge-back conflicted
    MERGED_BACK = "merged-back"


class MergeBackOutcome(enum.StrEnum):
    """What a merge-back attempt ended with (stored in ``MergeBackAttempt.outcome``)."""

    MERGED = "merged"
    NOTHING_TO_MERGE = "nothing"
    CONFLICT = "conflict"
    GAVE_UP = "failed"  # git failed, or devel kept moving: retried later


class JobKind(enum.StrEnum):
    """The two kinds of security work a job asks for (stored in ``SecurityJob.kind``)."""

    SECURITY_BUILD = "security-build"
    MERGE_BACK = "merge-back"


class Role(enum.StrEnum):
    """The roles a site file grants (``[auth.roles]``); templates may spell them as strings."""

    SECURITY = "security"  # may see embargoed fixes and run security work
    LOSA = "losa"  # sysadmins: force gate, promote, deploy and admin builds
    QA = "qa"  # QA engineers: mark revisions ok, bad or untestable (``lpdeploy qa``); losas may too


class FlowKind(enum.StrEnum):
    """Which flow a build step serves; also the ``kind`` of a flow event (``insights`` reads it)."""

    GATE = "gate"
    PROMOTE = "promote"
    DEPLOY = "deploy"
    ADMIN = "admin"
    SECURITY = "security"


class BuildOutcome(enum.StrEnum):
    """How a flow build ended, in one word: the ``lpdeploy_outcome`` property the CLI prints."""

    MOVED = "moved"  # branches fast-forwarded
    NOTHING = "nothing"  # the requested state already held
    DEPLOYED = "deployed"
    DONE = "done"  # an admin action was carried out
    REFUSED = "refused"  # a rule said no; the reason says which
    FAILED = "failed"  # git, the suite or a deploy command failed


OK_OUTCOMES = frozenset({BuildOutcome.MOVED, BuildOutcome.NOTHING, BuildOutcome.DEPLOYED, BuildOutcome.DONE})


class ServerStatus(enum.StrEnum):
    """What a deploy build did to one server (``lpdeploy_servers``, the deploy summary)."""

    DEPLOYED = "deployed"
    UNCHANGED = "unchanged"  # it already ran the target
    REFUSED = "refused"  # a cowboy, a freeze or a change during the rollout
    FAILED = "failed"  # its deploy command failed
    ROLLED_BACK = "rolled-back"  # deployed, its check failed, and it runs what it ran before again
    CHECK_FAILED = "check-failed"  # deployed, its check failed, and it could not be rolled back
    STOPPED = "stopped"  # not deployed: the check failed on a server before it, or the soak was cancelled


class AuditAction(enum.StrEnum):
    """What an audit entry records (``AuditEntry.action`` in the audit trail, shown by ``lpdeploy audit``)."""

    PROMOTE = "promote"
    DEPLOY = "deploy"
    DEPLOY_CHECK_FAILED = "deploy-check-failed"  # a deploy whose check failed: rolled back, or why not
    UNRECORDED_CHANGE = "unrecorded-change"  # a server runs a tree lpdeploy did not deploy there
    COWBOY_ADD = "cowboy-add"
    COWBOY_REMOVE = "cowboy-remove"
    COWBOY_RETIRE = "cowboy-retire"  # its fix was deployed
    COWBOY_OVERRIDE = "cowboy-override"  # a losa deployed over it
    FREEZE = "freeze"
    THAW = "thaw"
    SECURITY_BUILD = "security-build"  # security work: shown to the security role only
    SECURITY_PROMOTE = "security-promote"
    MERGE_BACK = "merge-back"
    FAILOVER = "failover"  # a master took over the work of a silent one (lpdeploy.core.failover)
    QA_MARK = "qa-mark"  # a revision marked ok, bad or untestable (by a person, or by a failed rollout check)


class EventKind(enum.StrEnum):
    """The flow events the steps record for the dashboard's numbers (``AuditEntry.action``)."""

    SUITE_RUN = "suite-run"
    SUITE_SKIPPED = "suite-skipped"
    MOVED = "moved"
    DEPLOYED = "deployed"


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without keys ``cls`` does not have: rows written by an older lpdeploy still load."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class SecurityFix:
    """The latest run of one security branch: what was (or is being) tested, and how it went.

    One row per branch, overwritten by every new push. It says nothing about
    what reached production: that is the append-only history of ``Release``
    records, which no later push can lose.
    """

    branch: str
    fix_commit: str  # the security branch tip that was (or is being) tested
    state: FixState  # QUEUED, TESTING, FAILED, REFUSED or PROMOTED
    by: str
    updated_at: float
    candidate: str | None = None  # what is tested (and promoted): the fix, or its merge onto production-stable
    build_url: str = ""
    note: str = ""  # why it failed or was refused

    def __post_init__(self) -> None:  # rows and JSON hold the plain string
        object.__setattr__(self, "state", FixState(self.state))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SecurityFix:
        return cls(**_known_fields(cls, data))


# what people without the security role see in place of an embargoed commit's text
EMBARGOED = "embargoed"
# who did what no person asked for (the ``who`` of audit entries and events, a job's ``requested_by``)
AUTOMATIC = "lpdeploy (automatic)"

@dataclass(frozen=True)
class Release:
    """A security fix that reached production: one entry of the append-only history.

    ``candidate`` is the commit production moved to (the fix itself, or its
    merge onto production-stable); it is what merges back into devel.
    """

    branch: str
    fix_commit: str
    candidate: str
    released_at: float
    by: str = ""  # who asked for the security build
    job: str = ""  # the job token of the security build
    build_url: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class MergeBackAttempt:
    """One merge-back build's result: which released fixes it brought into devel, or why not."""

    at: float
    job: str
    by: str
    candidate: str  # what it merged (or tried to)
    outcome: MergeBackOutcome
    brought: tuple[str, ...] = ()  # the candidates of every released fix the merge brought in
    devel_tip: str | None = None  # devel as it was merged onto
    merge: str | None = None  # the merge commit pushed to devel
    note: str = ""


    def __post_init__(self) -> None:  # rows and JSON hold the plain string
        object.__setattr__(self, "outcome", MergeBackOutcome(self.outcome))
    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MergeBackAttempt:
        data = _known_fields(cls, data)
        data["brought"] = tuple(data.get("brought") or ())
        return cls(**data)


@dataclass(frozen=True)
class SecurityJob:
    """One piece of security work a build was asked to do, kept master-side under an opaque token.

    The build (its properties, buildset, request and reason) carries only the
    token: the branch name can itself be a secret, and who asked is who works
    on an embargoed fix. The steps read the job from the registry, and write
    back what they decided (``fix_commit``, ``candidate``, ``tree``).
    """

    token: str
    kind: JobKind
    branch: str
    requested_by: str
    requested_at: float
    automatic: bool = False  # started by lpdeploy itself (a push, or a merge-back that became due)
    candidate: str | None = None  # merge-back: what to merge; security build: what is tested
    fix_commit: str | None = None  # security build: the branch tip it tests
    tree: str | None = None

    def __post_init__(self) -> None:  # rows and JSON hold the plain string
        object.__setattr__(self, "kind", JobKind(self.kind))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SecurityJob:
        return cls(**_known_fields(cls, data))

def release_line(release: Release) -> str:
    """One line about a released fix, for decision logs (shas and the branch name: security users only)."""
    return f"{release.branch} (fix {release.fix_commit[:12]}, released as {release.candidate[:12]}, {EMBARGOED})"
