"""A month of the gate, replayed three ways (tip only, bisection, speculative bisection), each also with re-runs.

The same month for every mode and worker count, on a virtual clock:

* ``--pushes`` (200) pushes to devel at random moments of the working hours
  (weekdays 08:00-20:00 UTC) of a 30-day month (``month.arrivals``);
* one in ten (``--break-pct``) makes the suite fail: ``--flaky`` (2) of them
  only spuriously (the first suite run of a tree holding that push fails,
  every later one passes), the others for real until their revert lands;
* a suite of ``--suite-hours`` (6 h) plus ``--overhead-minutes`` (5) per
  build; a build that skips the suite (its tree already passed, or a moot
  probe) costs the overhead only; W identical workers (1, 4, 8), all serving
  the gate, one build at a time each.

The modes:

(a) **tip only**, the gate as it was before bisection: a build tests the
    devel tip of the moment it starts (pushes batch into it); a failed tip
    waits for a new push (``policy.gate_needed``); nobody is told which
    commit broke it.
(b) **bisection, serial**: as (a), and a failing batch is bisected one probe
    at a time (``core.bisect.plan`` with ``idle=1``); when the boundary is
    known, stable moves to the newest passing commit and the culprit is named.
(c) **bisection, speculative**: as (b) with ``idle`` = the workers free when
    the gate scheduler plans a round (minus one when it just queued the tip),
    so k idle workers test k cut points at once.

Every decision is lpdeploy's own pure code: ``policy.gate_needed`` (queue a
tip build?), ``policy.suite_decision`` (run or skip), ``policy.probe_target``
(a moot probe), ``policy.move_decision`` (move stable) and
``bisect.plan`` (probes, culprit, newest pass), on a ledger of trees (the
first pass wins). The dispatch is Buildbot's: one queued tip request at a
time, which takes the newest tip when it starts, ahead of queued probes
(``TIP_PRIORITY`` > ``PROBE_PRIORITY``); a round of probes is planned only
when no probe is pending, after every push and finished build.

People: a real break is reverted (one more push) by whoever finds it first:
the team reading a failing run (``--triage-hours``, 2 h, after the next
working moment; in every mode) or the author told by the bisection
(``--react-hours``, 0.5 h). A spurious failure is never reverted.

(a), (b) and (c) run a plain suite: nothing re-runs a failed test, so a
spurious failure marks its tree failed in the ledger like a real one, the tip
waits for the next push, and a bisection may name an innocent commit
(counted as a false blame). **+ rerun** is each of them with a sharded suite
and ``[suite] rerun_failures = 1``, as lpdeploy does it: every break and
flaky push makes one test fail; the failed tests are re-run alone
(``flaky.to_rerun``) and the run is judged by ``flaky.judge`` (a test that
passes when re-run is flaky: recorded, it does not fail the run); a failed
run keeps its still-failing tests, and before a bisection names a culprit it
runs them once more (the re-check before blame, once per tree; all passing:
the tree counts as passed and the bisection goes on). Re-runs and the
re-check run on the build's own worker and cost ``--rerun-fraction`` (5 %)
of a suite duration each round (a fresh process, its fixtures and one test;
several failed tests at once are re-run in parallel, as lpdeploy runs each
as a shard of its own). A flaky push's spurious failure is spent by its
run's re-run, so a re-check only ever confirms a real break here.

Measured per mode: commits reaching stable per day of the month (good pushes,
not reverted ones), stable moves per day, push-to-stable p50/p95 (hours, every
good push; the replay runs on after the month until the queue drains), suite
runs per landed commit, and blocked hours: for every good push, from the first
failing run on a tree holding it until it reaches stable, summed
("held" counts only good pushes whose own tree passes: the ones only
a bisection can let through before the revert).

A simulation of the gate's rules on a virtual clock, not a run of the master:
the master's behaviour under those rules is covered by the end-to-end tests.
"""

from __future__ import annotations

import argparse
import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import median, percentile, save, table
from bench.month import DAY, HOUR, MONTH_DAYS, SUITE, WORK, Commit, arrivals, working
from lpdeploy.core import bisect, flaky, policy
from lpdeploy.core.model import Action, Result, TestRecord
from lpdeploy.core.results import TestOutcome, TestStatus

MODES = {"a": "(a) tip only", "b": "(b) bisection", "c": "(c) speculative",
         "a+": "(a) + rerun", "b+": "(b) + rerun", "c+": "(c) + rerun"}


def test_id(change: str) -> str:
    """The one test a break or a flaky push makes fail (the suite's other tests pass and are not listed)."""
    return f"test_{change}"


def next_working(t: float) -> float:
    """``t`` if people are at work then, else the start of the next working day."""
    if working(t):
        return t
    day = int(t // DAY)
    for d in range(day, day + 8):
        start = d * DAY + WORK[0] * HOUR
        if d % 7 < 5 and start >= t:
            return start
    raise AssertionError("a week without a working day")


@dataclass
class Run:
    """One gate build on one worker: the devel tip of its start, or a bisection probe."""

    index: int  # of the commit on devel
    probe: bool
    suite: bool  # whether it runs the suite (else the overhead only)
    stage: str = "suite"  # what ends at its next "done": the suite, its re-runs, or the bisection's re-check
    first: dict[str, TestOutcome] = field(default_factory=dict)  # the suite's failures, test by test
    wanted: list[str] = field(default_factory=list)  # the failed tests re-run alone (flaky.to_rerun)
    passed: bool = True
    culprit: str = ""  # the commit being re-checked before blame
    rechecking: tuple[str, ...] = ()  # its kept failing tests, run once more


@dataclass
class Episode:
    """One bisection: the range it started with and the suite runs it cost (the failing run included)."""

    lo: int
    hi: int
    runs: int = 1
    over: bool = False


@dataclass
class Gate:
    mode: str
    workers: int
    suite_s: float
    overhead_s: float
    triage_s: float
    react_s: float
    rerun_failures: int = 0  # [suite] rerun_failures: 1 re-runs each failed test alone (rerun_s), as lpdeploy does
    recheck: bool = False  # a sharded suite keeps its failing tests: the bisection re-checks them before blame
    rerun_s: float = 0.0  # one round of re-runs (or a re-check), on the build's own worker
    broken: set[str] = field(default_factory=set)  # changes that really break the suite
    flaky: set[str] = field(default_factory=set)  # changes whose first run fails spuriously
    devel: list[Commit] = field(default_factory=list)
    stable: int = 0
    ledger: dict[str, TestRecord] = field(default_factory=dict)
    running: list[Run] = field(default_factory=list)
    tip_queued: bool = False
    probes: list[int] = field(default_factory=list)  # queued probe requests (devel indexes)
    flaky_spent: set[str] = field(default_factory=set)
    reverted: set[str] = field(default_factory=set)
    reached: dict[str, float] = field(default_factory=dict)  # sha → first moment stable held it
    blocked_from: dict[str, float] = field(default_factory=dict)  # good sha → first failing run holding it
    named: dict[str, float] = field(default_factory=dict)  # culprit sha → when a bisection named it
    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tree → the failing tests its failed run kept
    flaky_recorded: list[tuple[str, float]] = field(default_factory=list)  # (test, when): a re-run or re-check passed
    reruns: int = 0  # builds that re-ran failed tests
    rechecks: int = 0  # re-checks before blame
    episodes: list[Episode] = field(default_factory=list)
    suite_runs: int = 0
    probe_runs: int = 0
    builds: int = 0
    moves: list[float] = field(default_factory=list)
    events: list[tuple[float, int, str, Any]] = field(default_factory=list)
    _seq: int = 0

    # --- the clock -------------------------------------------------------------------------
    def at(self, t: float, what: str, arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.events, (t, self._seq, what, arg))

    def run(self) -> None:
        while self.events:
            t, _, what, arg = heapq.heappop(self.events)
            getattr(self, f"on_{what}")(t, arg)

    # --- facts -----------------------------------------------------------------------------
    def known(self) -> dict[str, bool]:
        return {tree: rec.passed for tree, rec in self.ledger.items()}

    def chain(self) -> list[bisect.ChainCommit]:
        """devel's first-parent commits beyond stable, oldest first (the history is linear here)."""
        return [bisect.ChainCommit(c.sha, c.tree) for c in self.devel[self.stable + 1:]]

    def index(self, sha: str) -> int:
        return next(i for i, c in enumerate(self.devel) if c.sha == sha)

    def tests(self, c: Commit, only: Sequence[str] | None = None) -> dict[str, TestOutcome]:
        """Run the suite (or ``only`` these tests) on ``c``'s tree: a live break's test fails, a flaky push's
        fails spuriously in the first run of a tree holding it, and passes in every later run (a re-run too)."""
        found = {}
        for change in sorted(c.changes & (self.broken | self.flaky)):
            if only is not None and test_id(change) not in only:
                continue
            spurious = change in self.flaky and change not in self.flaky_spent
            if spurious:
                self.flaky_spent.add(change)
            fails = spurious or change in self.broken
            found[test_id(change)] = TestOutcome(TestStatus.FAILED if fails else TestStatus.PASSED, 0.0)
        return found

    def record(self, c: Commit, passed: bool, t: float) -> None:
        known = self.ledger.get(c.tree)
        if known is None or not known.passed:  # the first pass wins, as in the ledger
            self.ledger[c.tree] = TestRecord(c.tree, c.sha, SUITE, Result.PASSED if passed else Result.FAILED,
                                             "", None, t, self.suite_s)

    # --- pushes ----------------------------------------------------------------------------
    def on_push(self, t: float, commit: Commit) -> None:
        self.devel.append(commit)
        self.reconcile(t)

    def on_push_changes(self, t: float, changes: list[str]) -> None:
        """A developer's push of one or more commits, each devel's tree plus its change (reverts are kept)."""
        for change in changes:
            self.devel.append(Commit(change, self.devel[-1].changes | {change}, t))
        self.reconcile(t)

    def on_revert(self, t: float, change: str) -> None:
        if change in self.reverted:
            return  # found twice (the team and the bisection): one revert
        self.reverted.add(change)
        self.on_push(t, Commit(f"revert-{change}", self.devel[-1].changes - {change}, t))

    def revert_at(self, t: float, change: str) -> None:
        if change in self.broken and change not in self.reverted:
            self.at(t, "revert", change)

    # --- the gate scheduler (after every push and finished build) ----------------------------
    def reconcile(self, t: float) -> None:
        tip = len(self.devel) - 1
        c = self.devel[tip]
        pending = self.tip_queued or any(not r.probe and r.index == tip for r in self.running)
        decision = policy.gate_needed("devel", c.sha, self.ledger.get(c.tree), tip <= self.stable, pending)
        queued_now = decision.action is Action.RUN_SUITE
        self.tip_queued = self.tip_queued or queued_now
        if self.mode != "a" and not self.probes and not any(r.probe for r in self.running):
            idle = self.workers - len(self.running) - (1 if queued_now else 0)
            step = bisect.plan(self.chain(), self.known(), idle=max(1, idle) if self.mode == "c" else 1)
            if step.action is Action.RUN_SUITE:
                self.probes.extend(self.index(p) for p in step.probes)
        self.dispatch(t)

    def dispatch(self, t: float) -> None:
        """Free workers take requests, the tip's first (it has the higher priority)."""
        while len(self.running) < self.workers and (self.tip_queued or self.probes):
            if self.tip_queued:
                self.tip_queued = False
                self.start(t, Run(len(self.devel) - 1, probe=False, suite=False))
            else:
                self.start(t, Run(self.probes.pop(0), probe=True, suite=False))

    def start(self, t: float, run: Run) -> None:
        c = self.devel[run.index]
        if run.probe:
            target = policy.probe_target("devel", self.devel[-1].sha, c.sha, on_devel=True,
                                         on_stable=run.index <= self.stable)
            if target.action is not Action.RUN_SUITE:
                run.index = -1  # moot: stable already holds it
        if run.index >= 0:
            run.suite = policy.suite_decision(c.sha, c.tree, self.ledger.get(c.tree)).action is Action.RUN_SUITE
        self.running.append(run)
        self.builds += 1
        if run.suite:
            self.suite_runs += 1
            self.probe_runs += run.probe
        self.at(t + self.overhead_s + (self.suite_s if run.suite else 0.0), "done", run)

    # --- a build finishes --------------------------------------------------------------------
    def on_done(self, t: float, run: Run) -> None:
        if run.index >= 0 and self.goes_on(t, run):
            return  # the same build goes on, on its worker: re-runs of failed tests, or a re-check before blame
        self.running.remove(run)
        self.reconcile(t)

    def later(self, t: float, run: Run, stage: str) -> bool:
        run.stage = stage
        self.at(t + self.rerun_s, "done", run)
        return True

    def goes_on(self, t: float, run: Run) -> bool:
        """The build's steps after its suite: re-runs (``rerun_failures``), the verdict, the bisect step."""
        if run.stage == "suite" and run.suite:
            run.first = self.tests(self.devel[run.index])
            run.wanted, _ = flaky.to_rerun(flaky.failures(run.first), (), self.rerun_failures)
            if run.wanted:
                self.reruns += 1
                return self.later(t, run, "rerun")
        if run.stage in ("suite", "rerun"):
            run.passed = self.judged(t, run)
            if self.mode == "a" or not (run.probe or not run.passed):
                return False
        elif run.stage == "recheck":
            self.rechecked(t, run)
        return self.bisect_step(t, run)

    def judged(self, t: float, run: Run) -> bool:
        """The suite step's verdict (``flaky.judge``: a failure that passed when re-run alone is flaky), recorded."""
        c = self.devel[run.index]
        passed = True
        if run.suite:
            reruns: dict[str, TestOutcome | None] = dict(self.tests(c, run.wanted)) if run.wanted else {}
            verdict = flaky.judge(run.first, reruns, ())
            passed = verdict.passed
            self.flaky_recorded.extend((test, t) for test in verdict.flaky)
            self.record(c, passed, t)
            if not passed:
                if self.recheck:
                    self.kept[c.tree] = verdict.failed
                self.failed(t, run.index)
        for e in self.episodes:
            if not e.over and run.probe and run.suite and e.lo < run.index < e.hi:
                e.runs += 1
        if not run.probe and passed:
            self.move(t, run.index)
        return passed

    def rechecked(self, t: float, run: Run) -> None:
        """The re-check's result: the kept failing tests, run once more; all passing is flaky, the tree passed."""
        c = self.devel[self.index(run.culprit)]
        again = flaky.judge({test: TestOutcome(TestStatus.FAILED, 0.0) for test in run.rechecking},
                            dict(self.tests(c, run.rechecking)), ())
        if again.passed:
            self.flaky_recorded.extend((test, t) for test in again.flaky)
            self.record(c, True, t)

    def failed(self, t: float, index: int) -> None:
        """A failing run: every good push it holds now waits; the team starts reading the failure."""
        for c in self.devel[self.stable + 1: index + 1]:
            if c.pushed_at is not None and c.sha not in self.broken and not c.sha.startswith("revert-"):
                self.blocked_from.setdefault(c.sha, t)
        for change in sorted(self.devel[index].changes & self.broken):
            self.revert_at(next_working(t) + self.triage_s, change)
        if self.mode != "a" and not any(not e.over for e in self.episodes):
            lo, hi = bisect.boundary(self.chain(), self.known())
            if hi is not None:
                self.episodes.append(Episode(self.stable + 1 + lo, self.stable + 1 + hi))

    def bisect_step(self, t: float, run: Run) -> bool:
        """The ``bisect`` step at the end of a failing run or a probe: move to the newest pass, name the culprit.

        True when it first re-checks the culprit's kept failing tests (the build goes on for ``rerun_s``).
        """
        step = bisect.plan(self.chain(), self.known())
        if not step.found:
            if step.action is Action.NOTHING:
                self.close_episodes()
                if run.stage == "recheck" and step.passing is not None:
                    self.move(t, self.index(step.passing))  # the flaky failure was all that held stable back
            return False
        assert step.culprit is not None
        tree = self.devel[self.index(step.culprit)].tree
        if self.kept.get(tree):
            # once per tree, whatever comes of it: a bisect step that ends meanwhile finds none and names it
            run.culprit, run.rechecking = step.culprit, self.kept.pop(tree)
            self.rechecks += 1
            return self.later(t, run, "recheck")
        self.close_episodes()
        if step.culprit not in self.named:
            self.named[step.culprit] = t
            self.revert_at(next_working(t) + self.react_s, step.culprit)
        if step.passing is not None:
            self.move(t, self.index(step.passing))
        return False

    def close_episodes(self) -> None:
        for e in self.episodes:
            e.over = True

    def move(self, t: float, index: int) -> None:
        c = self.devel[index]
        facts = [policy.BranchFacts("stable", self.devel[self.stable].sha, behind_target=self.stable < index,
                                    contains_target=self.stable > index)]
        decision = policy.move_decision(c.sha, self.ledger.get(c.tree), facts)
        if decision.action is not Action.MOVE:
            return
        assert not (c.changes & self.broken), f"stable would hold the broken tree of {c.sha}"
        for landed in self.devel[self.stable + 1: index + 1]:
            self.reached.setdefault(landed.sha, t)
        self.stable = index
        self.moves.append(t)
        for e in self.episodes:
            if e.hi <= index:
                e.over = True  # a tip that passed moved stable past the bisection, which stops


RERUN_FRACTION = 0.05  # a failed test re-run alone: a fresh process, its fixtures, one test (18 min of 6 h)


def plan_month(pushes: int, break_pct: float, flaky: int, seed: int) -> list[tuple[float, str, str]]:
    """``(when, change, kind)`` with kind ``good``, ``broken`` or ``flaky``: the same month for every mode."""
    rng = random.Random(seed)
    times = arrivals(pushes, rng)
    bad = rng.sample(range(pushes), round(pushes * break_pct / 100))
    spurious = set(bad[:flaky])
    kinds = ["flaky" if i in spurious else "broken" if i in bad else "good" for i in range(pushes)]
    return [(t, f"change-{i}", kinds[i]) for i, t in enumerate(times)]


def simulate(mode: str, workers: int, plan: list[tuple[float, str, str]], suite_hours: float = 6.0,
             overhead_minutes: float = 5.0, triage_hours: float = 2.0, react_hours: float = 0.5,
             rerun_fraction: float = RERUN_FRACTION, recheck: bool | None = None) -> Gate:
    """Replay ``plan`` in ``mode``: ``a``/``b``/``c``, or with ``+`` a sharded suite with ``rerun_failures = 1``.

    ``recheck``: whether failed runs keep their failing tests for the re-check before blame (default: with
    ``+``; a sharded suite keeps them whatever ``rerun_failures`` says).
    """
    rerun = mode.endswith("+")
    gate = Gate(mode.rstrip("+"), workers, suite_hours * HOUR, overhead_minutes * 60, triage_hours * HOUR,
                react_hours * HOUR, rerun_failures=int(rerun), recheck=rerun if recheck is None else recheck,
                rerun_s=rerun_fraction * suite_hours * HOUR)
    root = Commit("root", frozenset(), None)
    gate.devel.append(root)
    gate.ledger[root.tree] = TestRecord(root.tree, root.sha, SUITE, Result.PASSED, "", None, 0.0)
    gate.broken = {change for _, change, kind in plan if kind == "broken"}
    gate.flaky = {change for _, change, kind in plan if kind == "flaky"}
    together: dict[float, list[str]] = {}  # changes pushed at the same moment are one push
    for when, change, _ in plan:
        together.setdefault(when, []).append(change)
    for when, changes in together.items():
        gate.at(when, "push_changes", changes)
    gate.run()
    return gate



def measure(gate: Gate, plan: list[tuple[float, str, str]]) -> dict[str, Any]:
    end = MONTH_DAYS * DAY
    good = {change: when for when, change, kind in plan if kind != "broken"}
    leads = [(gate.reached[c] - t) / HOUR for c, t in good.items() if c in gate.reached]
    landed_in_month = sum(1 for c in good if gate.reached.get(c, end + 1) <= end)
    passing_own = {c.sha for c in gate.devel if c.sha in good and not (c.changes & gate.broken)}
    # a good push never on stable (a flaky last push, no re-run, nothing after it) is counted as stranded
    blocked = {c: (gate.reached[c] - t) / HOUR for c, t in gate.blocked_from.items() if c in gate.reached}
    return {
        "commits_per_day": landed_in_month / MONTH_DAYS,
        "stable_moves_per_day": sum(1 for m in gate.moves if m <= end) / MONTH_DAYS,
        "lead_p50_h": median(leads), "lead_p95_h": percentile(leads, 95),
        "suite_runs": gate.suite_runs, "probe_runs": gate.probe_runs,
        "runs_per_landed": gate.suite_runs / max(1, len(leads)),
        "blocked_h": sum(blocked.values()),
        "held_h": sum(h for c, h in blocked.items() if c in passing_own),
        "false_blames": sorted(c for c in gate.named if c not in gate.broken),
        "named": len(gate.named),
        "flaky_outcome": {c: {"blocked_h": round(blocked.get(c, 0.0), 2), "blamed": c in gate.named}
                          for c in sorted(gate.flaky)},
        "reruns": gate.reruns, "rechecks": gate.rechecks, "flaky_recorded": len(gate.flaky_recorded),
        "landed": len(leads), "good": len(good), "reverts": len(gate.reverted),
        "stranded": sorted(set(good) - set(gate.reached)),
        "bisections": [(e.hi - e.lo, e.runs) for e in gate.episodes],
    }


def seed_means(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The same replay over ``--seeds`` months: one month's numbers hang on where a run ends near 20:00."""
    seeds = range(args.seed, args.seed + args.seeds)
    plans = [plan_month(args.pushes, args.break_pct, args.flaky, seed) for seed in seeds]
    means: dict[str, dict[str, float]] = {}
    rows = []
    for workers in args.workers:
        for mode, name in MODES.items():
            ms = [measure(simulate(mode, workers, plan, args.suite_hours, args.overhead_minutes, args.triage_hours,
                                   args.react_hours, args.rerun_fraction), plan) for plan in plans]
            mean = {"commits_per_day": sum(m["commits_per_day"] for m in ms) / len(ms),
                    "blocked_h": sum(m["blocked_h"] for m in ms) / len(ms),
                    "false_blames": sum(len(m["false_blames"]) for m in ms) / len(ms),
                    "flaky_blocked_h": sum(o["blocked_h"] for m in ms for o in m["flaky_outcome"].values()) / len(ms),
                    "stranded": sum(len(m["stranded"]) for m in ms) / len(ms)}
            means[f"{mode}/{workers}"] = mean
            rows.append([workers, name, *mean.values()])
    print(table(f"Means over {len(plans)} months (seeds {seeds.start}-{seeds.stop - 1}): flaky pushes' blocked h "
                "(a real break in their batch blocks them too); stranded: good pushes never on stable (a flaky last "
                "push, nothing after it)", ["workers", "mode", "commits/day", "blocked h", "false blames",
                                            "flaky pushes' blocked h", "stranded"], rows))
    return means


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--break-pct", type=float, default=10.0)
    parser.add_argument("--flaky", type=int, default=2)
    parser.add_argument("--suite-hours", type=float, default=6.0)
    parser.add_argument("--overhead-minutes", type=float, default=5.0)
    parser.add_argument("--triage-hours", type=float, default=2.0)
    parser.add_argument("--react-hours", type=float, default=0.5)
    parser.add_argument("--rerun-fraction", type=float, default=RERUN_FRACTION,
                        help="one round of re-runs (or a re-check), as a fraction of the suite's duration")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=20, help="months (seeds from --seed on) for the table of means")
    args = parser.parse_args(argv)
    plan = plan_month(args.pushes, args.break_pct, args.flaky, args.seed)
    data: dict[str, Any] = {"pushes": len(plan), "broken": sum(k == "broken" for _, _, k in plan),
                            "flaky": sum(k == "flaky" for _, _, k in plan), "runs": {}}
    rows = []
    for workers in args.workers:
        for mode, name in MODES.items():
            gate = simulate(mode, workers, plan, args.suite_hours, args.overhead_minutes, args.triage_hours,
                            args.react_hours, args.rerun_fraction)
            m = measure(gate, plan)
            data["runs"][f"{mode}/{workers}"] = m
            rows.append([workers, name, m["commits_per_day"], m["stable_moves_per_day"], m["lead_p50_h"],
                         m["lead_p95_h"], m["runs_per_landed"], m["probe_runs"], m["blocked_h"], m["held_h"],
                         len(m["false_blames"]), f"{m['reruns']}/{m['rechecks']}"])
    print(table(f"The gate over a month ({MONTH_DAYS} days): {data['pushes']} pushes, {data['broken']} break the "
                f"suite, {data['flaky']} fail it once spuriously; suite {args.suite_hours:g} h + "
                f"{args.overhead_minutes:g} min per build; triage {args.triage_hours:g} h, author "
                f"{args.react_hours:g} h; + rerun: a re-run or re-check {args.rerun_fraction:g} of the suite",
                ["workers", "mode", "commits/day", "moves/day", "p50 h", "p95 h", "runs/landed", "probes",
                 "blocked h", "held h", "false blames", "re-runs/checks"], rows))
    goals = []
    for workers in args.workers:
        a = data["runs"][f"a/{workers}"]
        row: list[Any] = [workers]
        for c in (data["runs"][f"c/{workers}"], data["runs"][f"c+/{workers}"]):
            ratio = c["commits_per_day"] / a["commits_per_day"] if a["commits_per_day"] else float("nan")
            share = c["blocked_h"] / a["blocked_h"] * 100 if a["blocked_h"] else float("nan")
            row += [ratio, share, "yes" if ratio >= 2 and share <= 25 else "no"]
        goals.append(row)
    print(table("Goal (issue 13, on 4 workers): (c) ≥ 2× the commits per day of (a), blocked ≤ 25 % of (a)",
                ["workers", "commits/day (c)/(a)", "blocked (c)/(a) %", "met", "(c)+rerun/(a)",
                 "blocked (c)+rerun/(a) %", "met"], goals))
    flaky_rows = []
    for workers in args.workers:
        for mode, name in MODES.items():
            outcome = data["runs"][f"{mode}/{workers}"]["flaky_outcome"]
            flaky_rows.append([workers, name] + [f"{o['blocked_h']:.1f} h, {'blamed' if o['blamed'] else 'not blamed'}"
                                                 for o in outcome.values()])
    if flaky_rows and len(flaky_rows[0]) > 2:
        print(table("Pushes failing once spuriously: blocked hours, and whether a bisection named the push "
                    "(+ rerun: the failed test passes when re-run alone)", ["workers", "mode"] + [f"flaky push {i + 1}"
                                                             for i in range(len(flaky_rows[0]) - 2)], flaky_rows))
    for workers in args.workers:
        episodes = data["runs"][f"b/{workers}"]["bisections"]
        over = [(n, runs) for n, runs in episodes if runs > bisect.serial_bound(n)]
        longest = max(episodes, default=(0, 0))
        print(f"(b) on {workers} worker(s): {len(episodes)} failing batches bisected, the longest {longest[0]} "
              f"commit(s) in {longest[1]} suite run(s); over 1 + ⌈log₂ N⌉: {len(over)}")
    data["means"] = seed_means(args)
    print("commits/day: good pushes on stable within the month; p50/p95: push → on stable, every good push "
          "(the replay drains after the month); runs/landed: suite runs per good push landed; blocked h: "
          "summed over good pushes, first failing run holding it → on stable; held h: the same for good pushes "
          "whose own tree passes; false blames: commits a bisection named that broke nothing; re-runs/checks: "
          "builds that re-ran failed tests / re-checks before blame (+ rerun only)")
    data.update(vars(args))
    save("gate_month", data)
    return data


if __name__ == "__main__":
    main()
