"""Flaky or broken: what a sharded run's failures mean once re-run, and what the record shows.

A test that fails and then passes when run once more, alone, in a fresh
process on the same revision (``[suite] rerun_failures = 1``) is **flaky**:
it is recorded, and it does not fail the run. One that fails again, or whose
re-run gave no result, is **broken** and fails it. A test listed in ``[suite]
quarantine`` runs, but its failure never fails the gate; it is reported.

Pure: the adapters (``master/steps/shards.py``, ``master/steps/bisect.py``,
the web resources) hand in outcomes and records; nothing here runs a test.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lpdeploy.core.results import TestOutcome, TestStatus

MAX_RERUNS = 10  # more failures than this in one run is a broken commit, not bad luck: no re-runs
WINDOW_DAYS = 30  # what `lpdeploy flaky` and the dashboard count
DAY = 86400.0


class FlakyKind(enum.StrEnum):
    """Why a failure did not fail the run."""

    FLAKY = "flaky"  # failed, then passed when run alone
    QUARANTINED = "quarantined"  # listed in [suite] quarantine: never fails the gate


@dataclass(frozen=True)
class Verdict:
    """A sharded run's failures, sorted: what fails the run and what is only reported."""

    failed: tuple[str, ...]  # failed (and, when re-run, failed again or gave nothing): these fail the run
    flaky: tuple[str, ...] = ()  # failed, then passed alone: recorded, not a failure
    quarantined: tuple[str, ...] = ()  # failed but quarantined: reported, not a failure

    @property
    def passed(self) -> bool:
        return not self.failed


def failures(outcomes: Mapping[str, TestOutcome]) -> list[str]:
    """The ids that failed, sorted."""
    return sorted(t for t, o in outcomes.items() if o.status == TestStatus.FAILED)


def to_rerun(failed: Sequence[str], quarantine: Iterable[str], rerun_failures: int) -> tuple[list[str], str]:
    """Which failed tests run once more (each alone), and the reason, for the decision log.

    Quarantined tests are not re-run: their result never fails the gate. Over
    ``MAX_RERUNS`` failures nothing is re-run: so many at once is a broken
    commit, and re-running them one by one would only delay the verdict.
    """
    held = set(quarantine)
    candidates = [t for t in failed if t not in held]
    if not rerun_failures or not candidates:
        return [], ""
    if len(candidates) > MAX_RERUNS:
        return [], (f"{len(candidates)} tests failed, more than {MAX_RERUNS}: not re-run "
                    "(so many failures at once is a broken commit)")
    return candidates, f"re-running {len(candidates)} failed test(s), each alone: a pass then is flaky"


def judge(first: Mapping[str, TestOutcome], reruns: Mapping[str, TestOutcome | None],
          quarantine: Iterable[str]) -> Verdict:
    """Sort the failures of ``first`` with the ``reruns`` (test id → the re-run's outcome, None: none came back).

    A failed test that was re-run and passed is flaky; a quarantined one
    never fails; every other failure (not re-run, re-run and failed, re-run
    lost) fails the run.
    """
    held = set(quarantine)
    failed, flaky, quarantined = [], [], []
    for test in failures(first):
        if test in held:
            quarantined.append(test)
            continue
        again = reruns.get(test)
        if test in reruns and again is not None and again.status == TestStatus.PASSED:
            flaky.append(test)
        else:
            failed.append(test)
    return Verdict(tuple(failed), tuple(flaky), tuple(quarantined))


@dataclass(frozen=True)
class FlakyRecord:
    """One failure that did not fail its run: a flaky test, or a quarantined one that failed."""

    test: str
    suite: str
    revision: str
    build_url: str
    build_number: int
    at: float
    kind: FlakyKind = FlakyKind.FLAKY
    embargoed: bool = False  # from a security build: only the security role sees it

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FlakyRecord:
        return cls(str(d["test"]), str(d["suite"]), str(d["revision"]), str(d["build_url"]),
                   int(d["build_number"]), float(d["at"]), FlakyKind(d.get("kind", FlakyKind.FLAKY)),
                   bool(d.get("embargoed", False)))


@dataclass(frozen=True)
class FlakyCount:
    """How often one test was flaky (or failed in quarantine) in the window, and where last."""

    test: str
    kind: FlakyKind
    count: int
    last_revision: str
    last_build_url: str
    last_at: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def visible(records: Iterable[FlakyRecord], may_see_security: bool) -> list[FlakyRecord]:
    """The records a viewer may read: a security build's only with the security role (embargo)."""
    return [r for r in records if may_see_security or not r.embargoed]


def counts(records: Iterable[FlakyRecord], now: float, days: int = WINDOW_DAYS) -> list[FlakyCount]:
    """Per test and kind over the last ``days``: most often first, then by test id."""
    since = now - days * DAY
    by_test: dict[tuple[str, FlakyKind], list[FlakyRecord]] = {}
    for r in records:
        if since <= r.at <= now:
            by_test.setdefault((r.test, r.kind), []).append(r)
    found = []
    for (test, kind), rs in by_test.items():
        last = max(rs, key=lambda r: r.at)
        found.append(FlakyCount(test, kind, len(rs), last.revision, last.build_url, last.at))
    return sorted(found, key=lambda c: (-c.count, c.test, c.kind))
