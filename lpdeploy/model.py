"""The domain in plain values: branch tips, test records, decisions.

Nothing here does I/O. Decisions (``policy.py``) take these values and return a
``Decision``; adapters (steps, schedulers, the CLI) carry it out and show its
``reason`` to people.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from lpdeploy.refs import short


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


ACTIVE, RETIRED, REMOVED = "active", "retired", "removed"  # the states of a cowboy


@dataclass(frozen=True)
class Cowboy:
    """A hand-applied patch on one server; no rollout may overwrite it while active."""

    id: int
    server: str
    reason: str
    fixed_by: str | None  # the commit carrying the real fix
    created_by: str
    created_at: float
    state: str = ACTIVE
    ended_at: float | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


@dataclass(frozen=True)
class Deployment:
    server: str
    revision: str
    deployed_at: float
    by: str
    build_url: str = ""


@dataclass(frozen=True)
class Freeze:
    reason: str
    by: str
    at: float


@dataclass(frozen=True)
class AuditEntry:
    at: float
    who: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)


# the life of a security fix: queued → testing → promoted → merged-back (or failed / conflict)
QUEUED, TESTING, FAILED, REFUSED, PROMOTED, MERGING, CONFLICT, MERGED_BACK = (
    "queued", "testing", "failed", "refused", "promoted", "merging", "conflict", "merged-back")


@dataclass(frozen=True)
class SecurityFix:
    """The latest run of one security branch, and where its fix stands."""

    branch: str
    fix_commit: str  # the security branch tip that was (or is being) tested
    state: str
    by: str
    updated_at: float
    candidate: str | None = None  # what was tested and promoted: the fix, or its merge onto production-stable
    build_url: str = ""
    merged_back: str | None = None  # the merge commit pushed to devel
    note: str = ""  # why it failed or conflicted
    released: str | None = None  # the newest fix commit that reached production; kept across new pushes
    released_candidate: str | None = None  # the commit that carried it to production (what merges back)

    @property
    def embargoed(self) -> bool:
        """Until merged back, nothing of the fix is shown to users without the security role."""
        return self.state != MERGED_BACK

    @property
    def pending(self) -> bool:
        """On production, not yet merged back into devel."""
        return self.state in (PROMOTED, MERGING, CONFLICT)
