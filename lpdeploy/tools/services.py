"""What several masters share, run privately on one machine: a PostgreSQL cluster and a Crossbar router.

``make cluster`` and the two-master tests use these; a real site runs its
own database server and router instead (README.rst, "Several masters").

- ``PrivatePostgres``: a cluster made with Debian's ``initdb`` (package
  ``postgresql``) in a directory of ours, created only if missing, served by
  its ``postgres`` binary in the foreground on a loopback port, password
  login only, no Unix socket. As root (CI, containers) the server runs as the
  ``postgres`` system user, which PostgreSQL insists on.
- ``Crossbar``: a router with one realm open to the masters on a loopback
  port, ``crossbar`` from the ``cluster`` extra in ``.venv``.

Both are child processes: ``localrun.stop`` stops them like the masters.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lpdeploy.tools.localrun import RunError, cause

PG_USER = "lpdeploy"  # the private cluster's superuser
START_TIMEOUT = 60  # seconds for a server to accept connections


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the caller listens on it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin() -> Path | None:
    """The newest Debian PostgreSQL ``bin`` directory holding initdb and postgres, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else None


def crossbar_bin() -> Path | None:
    """``crossbar`` beside this Python (``pip install -e '.[cluster]'``), or None."""
    path = Path(sys.executable).parent / "crossbar"
    return path if path.exists() else None


def missing_parts() -> list[str]:
    """Why a private cluster cannot run here, one phrase per missing part; empty when all are there."""
    missing = []
    if pg_bin() is None:
        missing.append("PostgreSQL's binaries (Debian package postgresql: /usr/lib/postgresql/*/bin/initdb)")
    if crossbar_bin() is None:
        missing.append(f"crossbar in {Path(sys.executable).parent} (pip install -e '.[cluster]')")
    try:
        import psycopg  # noqa: F401  # the masters' PostgreSQL driver
    except ImportError:
        missing.append("the psycopg module (pip install -e '.[cluster]')")
    return missing


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, log: Path,
                   timeout: float = START_TIMEOUT) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; RunError if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(f"{what} exited (status {proc.returncode})", _tail(log))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RunError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s", _tail(log))


def _tail(log: Path) -> str:
    return cause(log.read_text(errors="replace")[-20000:]) if log.exists() else f"no log at {log}"


class PrivatePostgres:
    """A private PostgreSQL cluster under ``home`` (``home/data``, ``home/password``, ``home/server.log``)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data = home / "data"
        self.password_file = home / "password"
        self.log = home / "server.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root

    def _argv(self, name: str, *args: str) -> list[str]:
        binary = pg_bin()
        if binary is None:
            raise RunError("PostgreSQL", "its binaries are not installed (Debian package postgresql)")
        argv = [str(binary / name), *args]
        if self._as_postgres:
            return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]
        return argv

    def _own(self, path: Path) -> None:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)

    def _reachable(self, path: Path) -> bool:
        """Whether the server's user can enter ``path`` and every directory above it (always, unless root)."""
        return not self._as_postgres or all(d.stat().st_mode & 0o001 for d in [path, *path.parents])

    def _place_data(self) -> None:
        """As root in a checkout the postgres user cannot enter (a private home, a mode-700 temp dir), the
        server's files go to a directory of their own in the system's temp dir, named after ``home``;
        ``home/data`` then links to it, so the cluster is still found (and removed) through ``.run``."""
        if self._reachable(self.home):
            return
        key = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        outside = Path(tempfile.gettempdir()) / f"lpdeploy-pg-{key}"
        if not self._reachable(outside.parent):
            raise RunError("PostgreSQL", f"the postgres user cannot enter {self.home} nor {outside.parent}; "
                                         "give others execute permission on one of them, or run as a normal user")
        outside.mkdir(mode=0o700, exist_ok=True)
        self._own(outside)
        link = self.home / "data"
        if link.is_symlink() or not link.exists():
            link.unlink(missing_ok=True)
            link.symlink_to(outside / "data")
        self.data = outside / "data"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def create(self) -> bool:
        """Make the cluster unless ``home/data`` already holds one; True when it was made now."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._place_data()
        if (self.data / "PG_VERSION").exists():
            return False
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_hex(16) + "\n")
        shutil.rmtree(self.data, ignore_errors=True)  # a half-made cluster from an interrupted run
        self.data.mkdir(mode=0o700)
        self._own(self.data)
        pwfile = self.data.parent / "initdb-password"  # readable by the server's user while initdb runs
        pwfile.unlink(missing_ok=True)
        pwfile.touch(mode=0o600)
        self._own(pwfile)
        pwfile.write_text(self.password + "\n")
        try:
            proc = subprocess.run(
                self._argv("initdb", "--pgdata", str(self.data), "--username", PG_USER, "--pwfile", str(pwfile),
                           "--auth-host", "scram-sha-256", "--auth-local", "reject", "--encoding", "UTF8",
                           "--locale", "C.UTF-8", "--no-instructions"),
                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RunError(f"initdb {self.data} failed", cause(proc.stdout + proc.stderr))
        return True

    def start(self, port: int | None = None) -> None:
        """Serve the cluster on 127.0.0.1:``port`` (default: a free port) in a child process."""
        self.port = port or free_port()
        with open(self.log, "ab") as out:
            self._own(self.log)
            self.proc = subprocess.Popen(
                self._argv("postgres", "-D", str(self.data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                           "-c", "unix_socket_directories=", "-c", "max_connections=200"),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_listening(self.port, self.proc, "PostgreSQL", self.log)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3) on the running server."""
        return f"postgresql+psycopg://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def ensure_database(self, database: str) -> None:
        """Create ``database`` unless it exists (one per site: two sites never share one)."""
        import psycopg  # installed with the cluster extra, like crossbar

        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the server listens a moment before it accepts logins
            try:
                conn = psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, password=self.password,
                                       dbname="postgres", autocommit=True, connect_timeout=5)
                break
            except psycopg.OperationalError as e:
                if time.monotonic() > deadline:
                    raise RunError("PostgreSQL refused our login", str(e).strip()) from None
                time.sleep(0.3)
        with conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{database}"')  # name from safe_name: [a-z0-9_] only


class Crossbar:
    """A Crossbar router under ``home`` with one realm for Buildbot, on a loopback port."""

    def __init__(self, home: Path, realm: str = "buildbot") -> None:
        self.home = home
        self.realm = realm
        self.log = home / "node.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def router_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def config(self) -> dict[str, object]:
        """The node's config: one router, the realm open to every client that reaches the loopback port."""
        permission = {"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                             "subscribe": True},
                      "disclose": {"caller": False, "publisher": False}, "cache": True}
        return {"version": 2, "controller": {}, "workers": [{
            "type": "router",
            "realms": [{"name": self.realm, "roles": [{"name": "anonymous", "permissions": [permission]}]}],
            "transports": [{"type": "web",
                            "endpoint": {"type": "tcp", "port": self.port, "interface": "127.0.0.1"},
                            "paths": {"ws": {"type": "websocket"}}}],
        }]}

    def start(self, port: int | None = None) -> None:
        binary = crossbar_bin()
        if binary is None:
            raise RunError("Crossbar", "crossbar is not installed in this venv (pip install -e '.[cluster]')")
        self.port = port or free_port()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "config.json").write_text(json.dumps(self.config(), indent=2) + "\n")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(binary), "start", "--cbdir", str(self.home), "--config", "config.json", "--loglevel", "warn",
                 "--color", "false"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "CROSSBAR_DIR": str(self.home)})
        wait_listening(self.port, self.proc, "Crossbar", self.log, timeout=120)
