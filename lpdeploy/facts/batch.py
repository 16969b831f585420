"""The gate's batch as the bisection planner sees it: devel's first-parent chain and the ledger's verdicts.

Read off the upstream (the chain from stable, exclusive, to the devel tip)
and the ledger (pass or fail per tree, whichever build or branch tested it),
so the planner in ``core.bisect`` decides on plain values. Nothing here is
kept: a bisection is recomputed from the tips and the ledger every time,
which is why it survives a restart and is shared by several masters.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpdeploy.core.bisect import ChainCommit
from lpdeploy.core.model import TestRecord
from lpdeploy.git.gitops import Commit
from lpdeploy.git.upstream import Upstream
from lpdeploy.stores.ledger import Ledger

BATCH_LIMIT = 1000  # a batch this long is not bisected (its oldest commits would be cut off)


@dataclass(frozen=True)
class Batch:
    """The commits of devel beyond stable, oldest first, with what the ledger knows of their trees."""

    commits: tuple[Commit, ...]
    records: dict[str, TestRecord]  # tree → the ledger's answer (a pass wins over a failure)
    truncated: bool = False

    @property
    def chain(self) -> list[ChainCommit]:
        return [ChainCommit(c.sha, c.tree) for c in self.commits]

    @property
    def known(self) -> dict[str, bool]:
        return {tree: rec.passed for tree, rec in self.records.items()}

    def commit(self, sha: str) -> Commit:
        return next(c for c in self.commits if c.sha == sha)


async def read_batch(upstream: Upstream, ledger: Ledger, suite: str, stable_tip: str | None,
                     devel_tip: str) -> Batch:
    """The batch from ``stable_tip`` (exclusive) to ``devel_tip`` and the ledger's verdict per tree."""
    newest_first = await upstream.first_parents(stable_tip, devel_tip, BATCH_LIMIT + 1)
    truncated = len(newest_first) > BATCH_LIMIT
    commits = tuple(reversed(newest_first[:BATCH_LIMIT]))
    records: dict[str, TestRecord] = {}
    for c in commits:
        if c.tree not in records:
            rec = await ledger.lookup(suite, c.tree)
            if rec is not None:
                records[c.tree] = rec
    return Batch(commits, records, truncated)
