"""Bisection of a failing gate batch: which commits to test next, and who broke it.

When the gate's run on a devel tip fails, every commit pushed since stable
(the *batch*) waits behind the one that broke the suite. The first-parent
chain from stable (exclusive) to devel (inclusive) is searched for the
boundary between passing and failing: the **newest passing** commit (stable
moves there) and the **first failing** one after it (the culprit).

Pure: the adapters hand in the chain (with each commit's tree) and what the
ledger knows per tree; nothing here runs git or a suite. Results are per
tree, like the ledger, so a tree tested anywhere (a revert, a merge with a
known tree) is reused and no tree is ever probed twice. The search assumes
what bisection always assumes, that a batch breaks once and stays broken; a
known pass after a known failure (a fix landed in the batch) still moves
stable as far as it can: the boundary searched is the one above the newest
known pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lpdeploy.core.model import Action
from lpdeploy.core.refs import short


@dataclass(frozen=True)
class ChainCommit:
    """One first-parent commit of the batch, oldest first in a chain."""

    sha: str
    tree: str


@dataclass(frozen=True)
class Bisection:
    """What the bisection does next, and why.

    ``action``: RUN_SUITE with ``probes`` (the commits to test now, one per
    tree), MOVE when the boundary is found (``passing`` is the newest passing
    commit, None meaning stable itself; ``culprit`` the first failing one), or
    NOTHING when there is no failure to bisect.
    """

    action: Action
    reason: str
    probes: tuple[str, ...] = ()
    passing: str | None = None
    culprit: str | None = None

    @property
    def found(self) -> bool:
        return self.action is Action.MOVE


def serial_bound(n: int) -> int:
    """Suite runs a batch of ``n`` commits costs at most, serially: the tip's run plus ⌈log₂ n⌉ probes."""
    return 1 + math.ceil(math.log2(n)) if n > 0 else 0


def boundary(chain: Sequence[ChainCommit], known: Mapping[str, bool]) -> tuple[int, int | None]:
    """``(lo, hi)``: the newest known pass (-1: stable) and the first known failure above it (None: none)."""
    lo = max((i for i, c in enumerate(chain) if known.get(c.tree) is True), default=-1)
    hi = next((i for i in range(lo + 1, len(chain)) if known.get(chain[i].tree) is False), None)
    return lo, hi


def split_points(lo: int, hi: int, parts: int) -> list[int]:
    """Indexes strictly between ``lo`` and ``hi`` cutting the candidates ``lo+1..hi`` into ``parts`` parts.

    With ``parts == 2`` this is the midpoint ``lo + ⌊(hi-lo)/2⌋``, so either
    answer leaves at most ⌈(hi-lo)/2⌉ candidates: ⌈log₂ n⌉ probes for n.
    """
    span = hi - lo
    points = {lo + (j * span) // parts for j in range(1, parts)}
    return sorted(p for p in points if lo < p < hi)


def plan(chain: Sequence[ChainCommit], known: Mapping[str, bool], idle: int = 1) -> Bisection:
    """The next probes over ``chain`` (oldest first, stable excluded), or the boundary if it is known.

    ``known``: the ledger's verdict per tree (True passed, False failed).
    ``idle``: the workers free for probes; with k of them the open range is
    split into k+1 parts and its k cut points are tested at once (speculative
    parallel probes), so a batch of n needs about log_(k+1) n rounds.
    """
    if not chain:
        return Bisection(Action.NOTHING, "nothing to bisect: devel holds no commit beyond stable")
    lo, hi = boundary(chain, known)
    passing = chain[lo].sha if lo >= 0 else None
    where = f"{short(passing)}" if passing else "stable"
    if hi is None:
        return Bisection(Action.NOTHING, f"nothing to bisect: no known failure after {where}", passing=passing)
    culprit = chain[hi]
    if hi == lo + 1:
        return Bisection(Action.MOVE,
                         f"{short(culprit.sha)} is the first failing commit: {where} passed, "
                         f"{short(culprit.sha)} failed", passing=passing, culprit=culprit.sha)
    probes: list[str] = []
    trees: set[str] = set()
    for i in split_points(lo, hi, max(1, idle) + 1):
        if chain[i].tree not in trees:  # two commits of one tree: one probe answers both
            trees.add(chain[i].tree)
            probes.append(chain[i].sha)
    return Bisection(Action.RUN_SUITE,
                     f"bisecting {hi - lo} candidate(s) after {where} up to the failing {short(culprit.sha)}: "
                     f"probing {', '.join(short(p) for p in probes)}",
                     probes=tuple(probes), passing=passing)


@dataclass(frozen=True)
class Culprit:
    """The commit a bisection named as the first failing one; kept in the registry.

    Always a devel commit (public): ``build_url`` is the gate build that
    found it, whose ``decision`` log shows the range and every probe.
    """

    revision: str
    subject: str
    author: str
    build_url: str
    devel_tip: str  # the failing devel tip the bisection ran for
    passing: str | None  # the newest passing commit (None: stable as it was)
    found_at: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Culprit:
        return cls(revision=d["revision"], subject=d["subject"], author=d["author"], build_url=d["build_url"],
                   devel_tip=d["devel_tip"], passing=d.get("passing"), found_at=float(d["found_at"]))


def culprit_shown(culprit: Culprit | None, devel_passed: bool, on_devel: bool) -> bool:
    """Show the culprit while devel is red: its tip has not passed and still holds the culprit.

    A passing devel tip (the fix landed, stable moved past the bisection)
    makes devel green again; a culprit no longer on devel (history rewritten)
    names nothing anyone can act on.
    """
    return culprit is not None and not devel_passed and on_devel


def notify_argv(template: Sequence[str], culprit: Culprit) -> list[str]:
    """``[gate] notify_command`` for ``culprit``: each placeholder replaced inside its own argument.

    An argv, never a shell line: a subject or author name is one argument's
    text, whatever characters it holds.
    """
    fields = {"revision": culprit.revision, "author": culprit.author, "build_url": culprit.build_url}
    out = []
    for arg in template:
        for name, value in fields.items():
            arg = arg.replace("{" + name + "}", value)
        out.append(arg)
    return out


def newly_found(previous: Culprit | None, found: Culprit) -> bool:
    """Tell the author once: a culprit named again (a later probe of the same round) is not news."""
    return previous is None or previous.revision != found.revision
