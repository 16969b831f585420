"""A private PostgreSQL server for the benchmarks, the way ``make cluster`` runs one.

``lpdeploy.tools.services.PrivatePostgres``: ``initdb`` in a temporary
directory, served on a free loopback port, password login only; stopped and
removed when the ``with`` block ends. One database per measured site.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lpdeploy.tools.localrun import stop
from lpdeploy.tools.services import PrivatePostgres, pg_bin

SQLITE, POSTGRES = "sqlite", "postgresql"
CHOICES = (SQLITE, POSTGRES)


def missing() -> str | None:
    """Why PostgreSQL cannot be measured here, or None."""
    if pg_bin() is None:
        return "PostgreSQL's binaries are not installed (Debian package postgresql)"
    try:
        import psycopg  # noqa: F401  # the cluster extra's driver
    except ImportError:
        return "the psycopg module is missing (pip install -e '.[cluster]')"
    return None


def databases(wanted: list[str]) -> list[str]:
    """The databases to measure: ``wanted``, without PostgreSQL (said loudly) where it cannot run."""
    why = missing() if POSTGRES in wanted else None
    if why:
        print(f"NOT MEASURED on PostgreSQL: {why}", flush=True)
        return [d for d in wanted if d != POSTGRES]
    return wanted


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private server in a temp dir the postgres user can enter (as root it runs as that user)."""
    home = Path(tempfile.mkdtemp(prefix="lpdeploy-bench-pg-", dir="/tmp"))
    os.chmod(home, 0o755)
    pg = PrivatePostgres(home / "pg")
    try:
        pg.create()
        pg.start()
        yield pg
    finally:
        if pg.proc is not None:
            stop([("PostgreSQL", pg.proc)])
        shutil.rmtree(home, ignore_errors=True)
        if pg.data != home / "pg" / "data":  # placed outside the home (root, closed directory)
            shutil.rmtree(pg.data.parent, ignore_errors=True)


def size_mib(url: str) -> float:
    """The database's size on disk, MiB."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return float(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()) / 2**20
    finally:
        engine.dispose()
