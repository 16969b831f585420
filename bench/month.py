"""A month of the release flow, replayed twice: the old flow and lpdeploy's, on a virtual clock.

Both flows see the same month, event by event, at real scale:

* ``--pushes`` (200) pushes to devel, arriving at random moments of the
  working hours (weekdays 08:00-20:00 UTC) of a 30-day month; one in ten
  breaks the suite and is reverted by its author 30 minutes to 3 hours later
  (the revert is one more push);
* a promotion of the stable tip every weekday at 10:00 (a losa's routine);
* one security fix in the middle of the month: built on production-stable,
  always tested, released, then merged back into devel (the merge is one more
  push); until stable holds the merge, no promotion may drop the fix;
* a suite of ``--suite-hours`` (6 h) that fails exactly when the tree holds a
  breaking change; ``--overhead-minutes`` (5) per build on top.

Each flow has one test machine per builder (gate, promotion, security); a
machine runs one build at a time, so no machine can spend more hours than
the month has. The gate batches: a build tests the devel tip of the moment
it starts, and at most one gate build waits.

lpdeploy's flow decides with lpdeploy's own pure functions
(``policy.gate_needed``, ``policy.suite_decision``, ``policy.move_decision``)
and a ledger of tested trees: a tree that passed is never tested again (a
revert to a tested state, the promotion of a stable tip). The old flow is the
same gate without a ledger, and re-runs the suite on every promotion before
production moves. Trees are what git would make: the set of changes a commit
holds, so a revert that lands before anything else restores the old tree.

Lead time: push → the first moment production-stable holds the commit.
The replay is a simulation of the flow's rules on a virtual clock, not a run
of the master: the master's behaviour under those rules is covered by the
end-to-end tests (e.g. ``test_e2e_flow``: a promotion moves production without
running the suite).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import median, percentile, save, table
from lpdeploy.core import policy
from lpdeploy.core.model import Action, Result, TestRecord

HOUR = 3600.0
DAY = 24 * HOUR
MONTH_DAYS = 30
WORK = (8, 20)  # working hours, UTC
PROMOTE_AT = 10  # the daily promotion, hour of weekdays
SUITE = "suite"


def working(t: float) -> bool:
    day, hour = int(t // DAY), (t % DAY) / HOUR
    return day % 7 < 5 and WORK[0] <= hour < WORK[1]


def arrivals(n: int, rng: random.Random) -> list[float]:
    """``n`` moments spread at random over the working hours of the month, in order."""
    out: list[float] = []
    while len(out) < n:
        t = rng.uniform(0, MONTH_DAYS * DAY)
        if working(t):
            out.append(t)
    return sorted(out)


def tree_of(changes: frozenset[str]) -> str:
    """The tree of a commit holding ``changes``: equal sets, equal trees (as git's trees are)."""
    return hashlib.sha1("\n".join(sorted(changes)).encode()).hexdigest()  # noqa: S324 - an id, not security


@dataclass
class Commit:
    sha: str
    changes: frozenset[str]
    pushed_at: float | None  # None: not a developer's push (the initial commit)

    @property
    def tree(self) -> str:
        return tree_of(self.changes)


@dataclass
class Machine:
    """One test machine: one build at a time."""

    busy_until: float = 0.0
    suite_hours: float = 0.0
    builds: int = 0
    suite_runs: int = 0


@dataclass
class Replay:
    """One flow over the month. ``ledger``: lpdeploy's; ``retest``: the old flow's promotion re-test."""

    name: str
    ledger: bool
    retest: bool
    suite_s: float
    overhead_s: float
    devel: list[Commit] = field(default_factory=list)  # linear history; merges land on it too
    broken: set[str] = field(default_factory=set)
    stable: int = 0  # index into devel
    production: int = 0  # index into devel of the production base
    production_fix: str | None = None  # a security fix production holds on top of its base
    fix_merged_at: int | None = None  # index of the merge-back commit on devel
    records: dict[str, TestRecord] = field(default_factory=dict)  # by tree (lpdeploy) or by commit (old flow)
    end: float = MONTH_DAYS * DAY
    gate: Machine = field(default_factory=Machine)
    promoter: Machine = field(default_factory=Machine)
    security: Machine = field(default_factory=Machine)
    gate_queued: bool = False
    gate_running: bool = False
    gate_skips: int = 0
    promotion_skips: int = 0
    refused: int = 0
    reached: dict[str, float] = field(default_factory=dict)
    events: list[tuple[float, int, str, Any]] = field(default_factory=list)
    _seq: int = 0

    # --- the clock ---------------------------------------------------------------------
    def at(self, t: float, what: str, arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.events, (t, self._seq, what, arg))

    def run(self, until: float) -> None:
        while self.events and self.events[0][0] <= until:
            t, _, what, arg = heapq.heappop(self.events)
            handler: Callable[[float, Any], None] = getattr(self, f"on_{what}")
            handler(t, arg)

    # --- facts ---------------------------------------------------------------------------
    def passed(self, c: Commit) -> bool:
        return not (c.changes & self.broken)

    def key(self, c: Commit) -> str:
        """lpdeploy's ledger knows trees; the old flow knew which commit a build tested."""
        return c.tree if self.ledger else c.sha

    def record(self, c: Commit) -> TestRecord | None:
        return self.records.get(self.key(c))

    def remember(self, c: Commit, t: float) -> TestRecord:
        rec = TestRecord(tree=c.tree, commit=c.sha, suite=SUITE,
                         result=Result.PASSED if self.passed(c) else Result.FAILED,
                         build_url="", build_number=None, finished_at=t, duration=self.suite_s)
        known = self.records.get(self.key(c))
        if known is None or not known.passed:  # the first pass wins, failures are last-writer-wins
            self.records[self.key(c)] = rec
        return rec

    def spend(self, machine: Machine, start: float) -> None:
        """One suite run on ``machine`` from ``start``; hours after the month's end are not counted."""
        machine.suite_runs += 1
        machine.suite_hours += max(0.0, min(self.suite_s, self.end - start - self.overhead_s)) / HOUR

    def facts(self, name: str, tip: int, target: int) -> policy.BranchFacts:
        return policy.BranchFacts(name, self.devel[tip].sha, behind_target=tip < target,
                                  contains_target=tip > target)

    def production_reached(self, t: float) -> None:
        for c in self.devel[: self.production + 1]:
            if c.pushed_at is not None:
                self.reached.setdefault(c.sha, t)
        if self.production_fix is not None:
            self.reached.setdefault(self.production_fix, t)

    # --- pushes and the gate ---------------------------------------------------------------
    def on_push(self, t: float, commit: Commit) -> None:
        self.devel.append(commit)
        self.reconcile(t)

    def reconcile(self, t: float) -> None:
        """The gate scheduler after a push (lpdeploy also every few minutes: same answer here)."""
        tip = self.devel[-1]
        contains = len(self.devel) - 1 <= self.stable
        # a running build counts only if it tests this tip (it took the tip when it started)
        pending = self.gate_queued or (self.gate_running and self.gate_target == len(self.devel) - 1)
        decision = policy.gate_needed("devel", tip.sha, self.record(tip), contains, pending)
        if decision.action is Action.RUN_SUITE:
            self.gate_queued = True
            self.start_gate(t)

    gate_target: int | None = None

    def start_gate(self, t: float) -> None:
        if self.gate_running or not self.gate_queued:
            return
        start = max(t, self.gate.busy_until)
        if start > t:
            self.at(start, "gate_free")
            return
        self.gate_queued, self.gate_running = False, True
        target = len(self.devel) - 1  # the build takes the devel tip of the moment it starts
        self.gate_target = target
        c = self.devel[target]
        decision = policy.suite_decision(c.sha, c.tree, self.record(c))
        took = self.overhead_s
        if decision.action is Action.RUN_SUITE:
            took += self.suite_s
            self.spend(self.gate, t)
        else:
            self.gate_skips += 1
        self.gate.builds += 1
        self.gate.busy_until = t + took
        self.at(t + took, "gate_done", (target, decision.action is Action.RUN_SUITE))

    def on_gate_free(self, t: float, _: Any) -> None:
        self.start_gate(t)

    def on_gate_done(self, t: float, arg: tuple[int, bool]) -> None:
        target, ran = arg
        c = self.devel[target]
        record = self.remember(c, t) if ran else self.record(c)
        decision = policy.move_decision(c.sha, record, [self.facts("stable", self.stable, target)])
        if decision.action is Action.MOVE:
            self.stable = target
        self.gate_running, self.gate_target = False, None
        if self.gate_queued:
            self.start_gate(t)
        else:
            self.reconcile(t)

    # --- promotions --------------------------------------------------------------------------
    def loses_fix(self, target: int) -> bool:
        return self.production_fix is not None and (self.fix_merged_at is None or target < self.fix_merged_at)

    def on_promote(self, t: float, _: Any) -> None:
        target = self.stable
        if target <= self.production and self.production_fix is None:
            return  # nothing to do
        if self.loses_fix(target):
            self.refused += 1
            return
        c = self.devel[target]
        if not self.retest:
            decision = policy.suite_decision(c.sha, c.tree, self.record(c))
            assert decision.action is Action.SKIP_SUITE, decision.reason  # stable holds tested trees only
            self.promotion_skips += 1
            self.promoter.builds += 1
            self.at(t + self.overhead_s, "promoted", target)
            return
        start = max(t, self.promoter.busy_until)
        self.promoter.busy_until = start + self.overhead_s + self.suite_s
        self.promoter.builds += 1
        self.spend(self.promoter, start)
        self.at(self.promoter.busy_until, "promoted", target)

    def on_promoted(self, t: float, target: int) -> None:
        if target <= self.production or self.loses_fix(target) or not self.passed(self.devel[target]):
            return
        self.production = target
        self.production_fix = None if self.fix_merged_at is not None and target >= self.fix_merged_at \
            else self.production_fix
        self.production_reached(t)

    # --- the security fix --------------------------------------------------------------------
    def on_security(self, t: float, fix: str) -> None:
        start = max(t, self.security.busy_until)
        self.security.busy_until = start + self.overhead_s + self.suite_s
        self.security.builds += 1
        self.spend(self.security, start)
        self.reached.pop(fix, None)
        self.at(self.security.busy_until, "released", fix)

    def on_released(self, t: float, fix: str) -> None:
        self.production_fix = fix
        self.production_reached(t)
        merge = Commit(f"merge-{fix}", self.devel[-1].changes | {fix}, t)
        self.at(t, "merge_back", merge)

    def on_merge_back(self, t: float, merge: Commit) -> None:
        self.fix_merged_at = len(self.devel)
        self.on_push(t, merge)


def month(pushes: int, suite_hours: float, overhead_minutes: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    times = arrivals(pushes, rng)
    plan: list[tuple[float, str, bool]] = []  # (when, change, breaks)
    for i, t in enumerate(times):
        breaks = rng.random() < 0.1
        plan.append((t, f"change-{i}", breaks))
        if breaks:
            plan.append((t + rng.uniform(0.5, 3) * HOUR, f"revert-{i}", False))
    plan.sort()
    security_at = 15 * DAY + 14 * HOUR
    flows = [Replay("old flow (replayed)", ledger=False, retest=True, suite_s=suite_hours * HOUR,
                    overhead_s=overhead_minutes * 60),
             Replay("lpdeploy (replayed)", ledger=True, retest=False, suite_s=suite_hours * HOUR,
                    overhead_s=overhead_minutes * 60)]
    out: dict[str, Any] = {"pushes": len(plan), "breaking": sum(b for _, _, b in plan), "flows": {}}
    end = MONTH_DAYS * DAY
    for flow in flows:
        root = Commit("root", frozenset(), None)
        flow.devel.append(root)
        flow.records[root.tree] = TestRecord(root.tree, root.sha, SUITE, Result.PASSED, "", None, 0.0)
        live: set[str] = set()
        for when, change, breaks in plan:
            if change.startswith("revert-"):
                live.discard("change-" + change.split("-", 1)[1])
            else:
                live.add(change)
            if breaks:
                flow.broken.add(change)
            flow.at(when, "push", Commit(f"{change}", frozenset(live), when))
        for day in range(MONTH_DAYS):
            if day % 7 < 5:
                flow.at(day * DAY + PROMOTE_AT * HOUR, "promote")
        flow.at(security_at, "security", "security-fix")
        flow.run(end)  # what has not reached production when the month ends has no lead time
        pushed = [c for c in flow.devel if c.pushed_at is not None]
        leads = [(flow.reached[c.sha] - c.pushed_at) / HOUR for c in pushed if c.sha in flow.reached]
        machines = {"gate": flow.gate, "promotion": flow.promoter, "security": flow.security}
        out["flows"][flow.name] = {
            "suite_runs": sum(m.suite_runs for m in machines.values()),
            "gate_runs": flow.gate.suite_runs, "gate_skips": flow.gate_skips,
            "promotion_retests": flow.promoter.suite_runs, "promotion_skips": flow.promotion_skips,
            "security_runs": flow.security.suite_runs,
            "suite_hours": sum(m.suite_hours for m in machines.values()),
            "busiest_machine_pct": max(m.suite_hours for m in machines.values()) / (MONTH_DAYS * 24) * 100,
            "pushes_per_gate_run": len(pushed) / max(1, flow.gate.suite_runs),
            "reached_production": len(leads), "not_reached": len(pushed) - len(leads),
            "refused_promotions": flow.refused,
            "lead_p50_h": median(leads), "lead_p95_h": percentile(leads, 95),
            "security_lead_h": (flow.reached.get("security-fix", float("nan")) - security_at) / HOUR,
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--suite-hours", type=float, default=6.0)
    parser.add_argument("--overhead-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    data = month(args.pushes, args.suite_hours, args.overhead_minutes, args.seed)
    rows = []
    for name, f in data["flows"].items():
        rows.append([name, f["gate_runs"], f["gate_skips"], f["promotion_retests"], f["security_runs"],
                     f["suite_hours"], f["busiest_machine_pct"], f["pushes_per_gate_run"],
                     f["lead_p50_h"], f["lead_p95_h"], f["security_lead_h"], f["not_reached"]])
    print(table(f"A month ({MONTH_DAYS} days): {data['pushes']} pushes ({data['breaking']} break the suite and are "
                f"reverted), a promotion every weekday, 1 security fix; suite {args.suite_hours:g} h, "
                f"{args.overhead_minutes:g} min per build",
                ["flow", "gate runs", "gate skips", "prod re-tests", "security runs", "suite h", "busiest %",
                 "pushes/run", "lead p50 h", "lead p95 h", "fix lead h", "not in prod"], rows))
    print("gate skips: gate builds whose tree had passed (no suite run); prod re-tests: suite runs on the way "
          "to production; busiest %: suite hours of the busiest test machine over the month's hours; "
          "pushes/run: pushes per gate suite run (batching); lead: push → on production-stable; "
          "not in prod: pushes still on their way when the month ends")
    data.update(suite_hours=args.suite_hours, overhead_minutes=args.overhead_minutes, seed=args.seed)
    save("month", data)
    return data


if __name__ == "__main__":
    main()
