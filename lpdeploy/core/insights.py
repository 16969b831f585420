"""The numbers people argue with, computed from flow events: pure functions.

Events are recorded by the steps (``EventKind``: ``suite-run``, ``suite-skipped``, ``moved``,
``deployed``); this module turns them into lead times per production
revision and into what the ledger saved. No I/O: the dashboard hands in the
events and the commit times it read.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpdeploy.core.model import AuditEntry, EventKind, FlowKind

PRODUCTION_KINDS = (FlowKind.PROMOTE, FlowKind.SECURITY)
DAY = 86400.0


@dataclass(frozen=True)
class LeadTime:
    """When one production revision was pushed, gated, promoted and first deployed (epoch seconds)."""

    revision: str
    pushed: float
    stable: float | None
    production: float
    deployed: float | None

    @property
    def total(self) -> float:
        return (self.deployed or self.production) - self.pushed


@dataclass(frozen=True)
class SuiteNumbers:
    runs: int
    avoided: int
    saved_seconds: float
    production_revisions: int

    @property
    def runs_per_production_revision(self) -> float | None:
        return self.runs / self.production_revisions if self.production_revisions else None


def lead_times(events: list[AuditEntry], pushed: dict[str, float], now: float, days: int = 30) -> list[LeadTime]:
    """Lead time of every revision that reached production in the last ``days`` days, oldest first.

    ``pushed`` maps a revision to its push time (its commit time when nothing
    better is known); a revision with no push time is left out.
    """
    since = now - days * DAY
    gated: dict[str, float] = {}
    deployed: dict[str, float] = {}
    out = []
    for e in sorted(events, key=lambda e: e.at):
        rev = str(e.details.get("revision", ""))
        if e.action == EventKind.MOVED and e.details.get("kind") == FlowKind.GATE:
            gated.setdefault(rev, e.at)
        elif e.action == EventKind.DEPLOYED:
            deployed.setdefault(rev, e.at)
    for e in sorted(events, key=lambda e: e.at):
        rev = str(e.details.get("revision", ""))
        production = e.action == EventKind.MOVED and e.details.get("kind") in PRODUCTION_KINDS
        if production and e.at >= since and rev in pushed:
            out.append(LeadTime(rev, pushed[rev], gated.get(rev), e.at, deployed.get(rev)))
    return out


def suite_numbers(events: list[AuditEntry], now: float, days: int = 30) -> SuiteNumbers:
    since = now - days * DAY
    recent = [e for e in events if e.at >= since]
    return SuiteNumbers(
        runs=sum(1 for e in recent if e.action == EventKind.SUITE_RUN),
        avoided=sum(1 for e in recent if e.action == EventKind.SUITE_SKIPPED),
        saved_seconds=sum(float(e.details.get("saved") or 0.0) for e in recent if e.action == EventKind.SUITE_SKIPPED),
        production_revisions=len({e.details.get("revision") for e in recent
                                  if e.action == EventKind.MOVED and e.details.get("kind") in PRODUCTION_KINDS}),
    )
