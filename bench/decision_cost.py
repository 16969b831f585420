"""Decision cost: "is this tree tested?" and "may this promotion happen?" with a large ledger.

The ledger lives in Buildbot's ``object_state`` table. This bench fills a real
SQLite database with Buildbot's schema with 10^3 … 10^6 ledger entries and
times, per decision, exactly what the master does: the state lookups
``DbLedger.lookup`` issues (Buildbot's own ``thdGetState``, as run in the DB
thread: a pass key, then a failure key on a miss) followed by the pure
``policy.suite_decision`` and ``policy.move_decision``. Half the lookups hit,
half miss. The reactor hop (a thread-pool round trip) is not included.

Memory: the master holds no ledger entries in memory (every decision asks the
database), so the process's peak RSS is reported to show it does not grow
with the ledger. Target: p99 ≤ 10 ms at 10^6 entries.
"""

from __future__ import annotations

import json
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from buildbot.db.model import Model
from buildbot.db.state import StateConnectorComponent

from bench.common import percentile, save, table
from lpdeploy.core import policy
from lpdeploy.core.model import TestRecord
from lpdeploy.stores.ledger import LEDGER_OBJECT, from_json

SIZES = (1_000, 10_000, 100_000, 1_000_000)
DECISIONS = 2_000
SUITE = "suite-0123456789ab"


class _Db:
    """The little of Buildbot's DBConnector that ``thdGetState`` touches."""

    model = Model


def _state() -> StateConnectorComponent:
    component = StateConnectorComponent.__new__(StateConnectorComponent)
    component.db = _Db()  # type: ignore[assignment]
    return component


def _tree(i: int) -> str:
    return f"{i:040x}"


def fill(engine: sa.Engine, objectid: int, start: int, stop: int) -> None:
    rows = []
    for i in range(start, stop):
        rec = {"tree": _tree(i), "commit": _tree(i + 1), "suite": SUITE, "result": "passed",
               "build_url": f"http://localhost:8010/#/builders/1/builds/{i}", "build_number": i,
               "finished_at": 1.7e9 + i, "duration": 3600.0}
        rows.append({"objectid": objectid, "name": f"passed/{SUITE}/{rec['tree']}", "value_json": json.dumps(rec)})
        if len(rows) == 50_000:
            with engine.begin() as conn:
                conn.execute(Model.object_state.insert(), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(Model.object_state.insert(), rows)


def decide(state: StateConnectorComponent, conn: Any, objectid: int, tree: str, target: str) -> Any:
    found = state.thdGetState(conn, objectid, f"passed/{SUITE}/{tree}", default=None)
    if found is None:
        found = state.thdGetState(conn, objectid, f"failed/{SUITE}/{tree}", default=None)
    record: TestRecord | None = from_json(found) if found else None
    policy.suite_decision(target, tree, record)
    return policy.move_decision(target, record, [policy.BranchFacts("production-stable", "f" * 40, True, False)])


def main() -> list[dict[str, float]]:
    out, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'state.sqlite'}")
        Model.metadata.create_all(engine)
        with engine.begin() as conn:
            objectid = conn.execute(Model.objects.insert().values(
                name=LEDGER_OBJECT[0], class_name=LEDGER_OBJECT[1])).inserted_primary_key[0]
        state = _state()
        rng = random.Random(1)
        filled = 0
        for size in SIZES:
            t0 = time.perf_counter()
            fill(engine, objectid, filled, size)
            fill_s = time.perf_counter() - t0
            filled = size
            times = []
            with engine.connect() as conn:
                for k in range(DECISIONS):
                    i = rng.randrange(size) if k % 2 == 0 else size + rng.randrange(size)  # hit, miss
                    t = time.perf_counter()
                    decide(state, conn, objectid, _tree(i), _tree(i + 1))
                    times.append((time.perf_counter() - t) * 1000)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            p50, p99 = percentile(times, 50), percentile(times, 99)
            rows.append([size, p50, p99, "yes" if p99 <= 10 else "NO", rss, fill_s])
            out.append({"entries": size, "p50_ms": p50, "p99_ms": p99, "peak_rss_mib": rss})
    print(table(f"Decision cost: ledger lookup + gate/promotion decision, {DECISIONS} decisions per size "
                "(SQLite, Buildbot's schema)",
                ["entries", "p50 ms", "p99 ms", "p99≤10ms", "peak RSS MiB", "fill s"], rows))
    save("decision_cost", out)
    return out


if __name__ == "__main__":
    main()
