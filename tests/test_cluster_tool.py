"""``make cluster``'s pieces: each master's overlay, and the private PostgreSQL it serves them.

The full ``make cluster`` (two masters, router, workers, stopped by SIGTERM)
runs in ``test_e2e_cluster.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

from lpdeploy.core.settings import load_settings
from lpdeploy.tools import cluster
from lpdeploy.tools.localrun import stop
from lpdeploy.tools.services import Crossbar, PrivatePostgres, pg_bin

SITE = """\
[repository]
url = "upstream.git"
[www]
port = 18020
url = "https://deploy.example.org:18020/lp/"
[workers]
port = 19990
local = 2
"""
PG_URL = "postgresql+psycopg://lp:pw@db.example.org/lp"


@pytest.fixture
def reachable_dir():
    """A temporary directory the postgres user can enter (as root the server runs as that user)."""
    path = Path(tempfile.mkdtemp(prefix="lpdeploy-pg-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def site(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE + extra)
    return path


def test_the_second_master_listens_one_port_up_and_both_share_the_private_database_and_router(tmp_path):
    cfg = site(tmp_path)
    m1, m2 = cluster.plan(cfg, load_settings(cfg), tmp_path / "run", "postgresql+psycopg://u:p@127.0.0.1:5/db",
                          "ws://127.0.0.1:6/ws")
    assert (m1.settings.www.port, m1.settings.www.url, m1.settings.workers.port) == \
        (18020, "https://deploy.example.org:18020/lp/", 19990)
    assert (m2.settings.www.port, m2.settings.www.url, m2.settings.workers.port) == \
        (18021, "https://deploy.example.org:18021/lp/", 19991)
    for m in (m1, m2):
        assert m.settings.database_url == "postgresql+psycopg://u:p@127.0.0.1:5/db"
        assert m.settings.mq.router_url == "ws://127.0.0.1:6/ws" and m.settings.mq.realm == "buildbot"
        # both masters know all four workers; each runs two of its own
        assert m.settings.workers.names == ("worker-1", "worker-2", "worker-3", "worker-4")
        assert oct(m.overlay.stat().st_mode & 0o777) == "0o600"  # it holds the database password
    assert (m1.workers, m2.workers) == (("worker-1", "worker-2"), ("worker-3", "worker-4"))


def test_a_site_file_that_names_its_database_and_router_keeps_them(tmp_path):
    cfg = site(tmp_path, f'[database]\nurl = "{PG_URL}"\n[mq]\nrouter_url = "wss://mq.example.org/ws"\n'
                         'realm = "lp"\n')
    for m in cluster.plan(cfg, load_settings(cfg), tmp_path / "run", None, None):
        assert m.settings.database_url == PG_URL
        assert (m.settings.mq.router_url, m.settings.mq.realm) == ("wss://mq.example.org/ws", "lp")
        assert set(tomllib.loads(m.overlay.read_text())) == {"www", "workers"}


@pytest.mark.parametrize(("url", "port", "expected"), [
    ("http://localhost:8010/", 8011, "http://localhost:8011/"),
    ("https://deploy.example.org/", 8443, "https://deploy.example.org:8443/"),
    ("http://[::1]:8010/x/", 8011, "http://[::1]:8011/x/"),
])
def test_a_url_with_another_port(url, port, expected):
    assert cluster.with_port(url, port) == expected


def test_each_site_gets_a_database_name_postgresql_takes_as_it_is():
    assert cluster.database_name(Path("/x/demo")) == "lp_demo"
    assert cluster.database_name(Path("/x/My-Site-1a2b3c4d")) == "lp_my_site_1a2b3c4d"
    assert cluster.database_name(Path("/x/" + "a;\"b" * 30)).replace("_", "").isalnum()


def test_the_router_has_one_realm_on_loopback(tmp_path):
    router = Crossbar(tmp_path, realm="lp")
    router.port = 4321
    worker = router.config()["workers"][0]  # type: ignore[index]
    assert [r["name"] for r in worker["realms"]] == ["lp"]
    assert worker["transports"][0]["endpoint"] == {"type": "tcp", "port": 4321, "interface": "127.0.0.1"}
    assert router.router_url == "ws://127.0.0.1:4321/ws"


@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL's binaries are not installed (Debian package postgresql)")
def test_the_private_postgresql_is_made_once_serves_a_database_per_site_and_stops(reachable_dir):
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[cluster]')")
    pg = PrivatePostgres(reachable_dir / "pg")
    assert pg.create() is True
    assert pg.create() is False  # created only if missing
    pg.start()
    try:
        pg.ensure_database("lp_demo")
        pg.ensure_database("lp_demo")  # idempotent
        with psycopg.connect(host="127.0.0.1", port=pg.port, user="lpdeploy", password=pg.password,
                             dbname="lp_demo") as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("lp_demo",)
        with pytest.raises(psycopg.OperationalError):  # a password login: no password, no entry
            psycopg.connect(host="127.0.0.1", port=pg.port, user="lpdeploy", password="wrong", dbname="lp_demo",
                            connect_timeout=5)
        assert pg.url("lp_demo") == f"postgresql+psycopg://lpdeploy:{pg.password}@127.0.0.1:{pg.port}/lp_demo"
    finally:
        assert pg.proc is not None
        stop([("PostgreSQL", pg.proc)])
    assert pg.proc.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to the postgres user")
@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL's binaries are not installed (Debian package postgresql)")
def test_as_root_in_a_directory_the_postgres_user_cannot_enter_the_cluster_lives_beside_it(tmp_path):
    # a new user's clone in a mode-700 directory (a private home, mktemp -d), make cluster run as root
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    pg = PrivatePostgres(closed / "pg")
    try:
        assert pg.create() is True
        assert not str(pg.data).startswith(str(closed))  # the server's files where its user may go
        assert (closed / "pg" / "data").resolve() == pg.data.resolve()  # found through .run all the same
        assert (pg.data / "PG_VERSION").exists()
        again = PrivatePostgres(closed / "pg")
        assert again.create() is False and again.data == pg.data  # made once, found again
        pg.start()
        assert pg.proc is not None
        stop([("PostgreSQL", pg.proc)])
        assert pg.proc.returncode == 0
    finally:
        shutil.rmtree(pg.data.parent, ignore_errors=True)


def test_stopping_reaps_what_the_servers_themselves_started():
    # a server's own children (PostgreSQL's backends, Crossbar's router) must not outlive make cluster
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"])
    try:
        wait = time.monotonic() + 10
        while len(cluster.descendants(proc.pid)) < 2 and time.monotonic() < wait:
            time.sleep(0.05)
        below = cluster.descendants(proc.pid)
        assert len(below) == 2  # the grandchild included
        assert set(below) <= set(cluster.descendants(os.getpid()))
        cluster.reap([proc.pid, *below], grace=0.2)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert not [p for p in below if cluster._running(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
