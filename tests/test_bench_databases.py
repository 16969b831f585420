"""The decision-cost benchmark measures both databases it names: SQLite and a private PostgreSQL.

A tiny run (correctness, nothing timed): the same decisions on each database,
the ledger really filled and read there. Skipped with a loud reason where
PostgreSQL's binaries or psycopg are missing, failing instead when
``LPDEPLOY_REQUIRE_CLUSTER=1`` (``.ci/run`` sets it).
"""

from __future__ import annotations

import os

import pytest

from bench import decision_cost, pg

MISSING = pg.missing()
REQUIRED = os.environ.get("LPDEPLOY_REQUIRE_CLUSTER") == "1"


def test_databases_drops_postgresql_only_when_it_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert pg.databases([pg.SQLITE]) == [pg.SQLITE]
    got = pg.databases([pg.SQLITE, pg.POSTGRES])
    if MISSING:
        assert got == [pg.SQLITE] and "NOT MEASURED on PostgreSQL" in capsys.readouterr().out
    else:
        assert got == [pg.SQLITE, pg.POSTGRES]


@pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=f"POSTGRESQL BENCH NOT TESTED: {MISSING}")
def test_decision_cost_runs_the_same_decisions_on_sqlite_and_postgresql(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision_cost, "save", lambda section, data: None)  # keep bench-results.json
    data = decision_cost.main(["--commits", "1200", "--entries", "5000", "--decisions", "6"])
    dbs = data["databases"]
    assert set(dbs) == {pg.SQLITE, pg.POSTGRES}
    sqlite, postgres = dbs[pg.SQLITE]["steps"], dbs[pg.POSTGRES]["steps"]
    assert sqlite.keys() == postgres.keys()
    for name in sqlite:  # the same seed, the same decisions: only the database differs
        assert sqlite[name]["outcomes"] == postgres[name]["outcomes"], name
        assert sqlite[name]["runs"] == postgres[name]["runs"] > 0
    assert postgres["gate: MoveBranches"]["outcomes"].get("moved", 0) > 0  # written to PostgreSQL, read back
    assert data["entries"] == 5000 and dbs[pg.POSTGRES]["db_mib"] > 1
    out = capsys.readouterr().out
    assert "SQLite p50 ms" in out and "PostgreSQL p50 ms" in out
