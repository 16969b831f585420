"""Dashboard render time with a busy database: 10,000 builds, 1,000 ledger entries.

A real master (started from ``master.cfg`` with its own site file) whose
database gets, while it is stopped, 10,000 finished gate builds (with their
buildsets and requests), 1,000 ledger entries and 2,000 flow events spread
over the last 30 days. Then the Pipeline page (``…/pipeline/page``) is
fetched 30 times as anonymous and as a security user; the table gives the
median and p95 of the full HTTP round trip. Target: under 1 s.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa
from buildbot.db.model import Model

from bench.common import median, percentile, save, table
from lpdeploy.stores.ledger import LEDGER_OBJECT
from lpdeploy.stores.registry import REGISTRY_OBJECT
from tests.flow_harness import Flow

BUILDS, LEDGER, EVENTS, FETCHES = 10_000, 1_000, 2_000, 30


def _objectid(conn: sa.Connection, name: tuple[str, str]) -> int:
    found = conn.execute(sa.select(Model.objects.c.id).where(
        Model.objects.c.name == name[0], Model.objects.c.class_name == name[1])).first()
    if found:
        return int(found[0])
    return int(conn.execute(Model.objects.insert().values(name=name[0], class_name=name[1])).inserted_primary_key[0])


def fill(db: Path, suite: str) -> None:
    engine = sa.create_engine(f"sqlite:///{db}")
    now = int(time.time())
    with engine.begin() as conn:
        builderid = conn.execute(
            sa.select(Model.builders.c.id).where(Model.builders.c.name == "lpdeploy-gate")).scalar()
        masterid = conn.execute(sa.select(Model.masters.c.id)).scalar()
        workerid = conn.execute(sa.select(Model.workers.c.id)).scalar()
        first_bs = (conn.execute(sa.select(sa.func.max(Model.buildsets.c.id))).scalar() or 0) + 1
        first_br = (conn.execute(sa.select(sa.func.max(Model.buildrequests.c.id))).scalar() or 0) + 1
        first_no = (conn.execute(sa.select(sa.func.max(Model.builds.c.number))).scalar() or 0) + 1
        t0 = now - 30 * 86400
        conn.execute(Model.buildsets.insert(), [
            {"id": first_bs + i, "reason": "bench", "submitted_at": t0 + i * 200, "complete": 1,
             "complete_at": t0 + i * 200 + 60, "results": 0} for i in range(BUILDS)])
        conn.execute(Model.buildrequests.insert(), [
            {"id": first_br + i, "buildsetid": first_bs + i, "builderid": builderid, "priority": 0, "complete": 1,
             "results": 0, "submitted_at": t0 + i * 200, "complete_at": t0 + i * 200 + 60} for i in range(BUILDS)])
        conn.execute(Model.builds.insert(), [
            {"number": first_no + i, "builderid": builderid, "buildrequestid": first_br + i, "workerid": workerid,
             "masterid": masterid, "started_at": t0 + i * 200, "complete_at": t0 + i * 200 + 60,
             "locks_duration_s": 0, "state_string": "build successful", "results": 0} for i in range(BUILDS)])
        ledger = _objectid(conn, LEDGER_OBJECT)
        conn.execute(Model.object_state.insert(), [
            {"objectid": ledger, "name": f"passed/{suite}/{i:040x}", "value_json": json.dumps({
                "tree": f"{i:040x}", "commit": f"{i + 1:040x}", "suite": suite, "result": "passed",
                "build_url": "http://localhost/#/builders/1/builds/1", "build_number": 1,
                "finished_at": float(t0 + i), "duration": 3600.0})} for i in range(LEDGER)])
        registry = _objectid(conn, REGISTRY_OBJECT)
        kinds = ["suite-run", "suite-skipped", "moved"]
        conn.execute(Model.object_state.insert(), [
            {"objectid": registry, "name": f"event/{t0 + i * 1200:020.6f}/{i:012d}/bench",
             "value_json": json.dumps({"at": t0 + i * 1200.0, "who": "bench", "action": kinds[i % 3], "details": {
                 "kind": "gate", "revision": f"{i:040x}", "duration": 3600.0, "saved": 3600.0}})}
            for i in range(EVENTS)])


def fetch_times(flow: Flow, user: str | None) -> list[float]:
    opener = flow.session(user) if user else urllib.request.build_opener()
    times = []
    for _ in range(FETCHES):
        t = time.perf_counter()
        with opener.open(flow.url + "plugins/wsgi_dashboards/pipeline/page", timeout=60) as r:
            assert r.status == 200 and b"stage-stable" in r.read()
        times.append(time.perf_counter() - t)
    return times


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        flow = Flow(Path(tmp))
        flow.create()
        flow.start()
        flow.wait_builds("lpdeploy-gate", 1, timeout=120)
        flow.stop()
        from lpdeploy.core.settings import load_settings

        fill(flow.master_dir / "state.sqlite", load_settings(flow.site).suite.identity)
        flow.start()
        try:
            rows, out = [], {}
            for user in (None, "alice"):
                times = fetch_times(flow, user)
                who = user or "anonymous"
                rows.append([who, median(times) * 1000, percentile(times, 95) * 1000,
                             "yes" if percentile(times, 95) < 1 else "NO"])
                out[who] = {"p50_ms": median(times) * 1000, "p95_ms": percentile(times, 95) * 1000}
        finally:
            flow.stop()
    print(table(f"Pipeline page with {BUILDS} builds, {LEDGER} ledger entries, {EVENTS} flow events "
                f"({FETCHES} fetches each)", ["viewer", "p50 ms", "p95 ms", "< 1 s"], rows))
    save("dashboard", out)
    return out


if __name__ == "__main__":
    main()
