"""``make cluster``: two masters from one site file, on PostgreSQL and a Crossbar router, with their workers.

What a multi-master site runs, on one machine, in the foreground. For the
site file named by ``LPDEPLOY_CONFIG`` (the demo's when it is unset), under
``.run/cluster/``::

    pg/                     a private PostgreSQL cluster (data/, password, server.log), made once;
                            served on a free loopback port; one database per site file
    crossbar/               a private Crossbar router (config.json, node.log) on a free loopback port
    <site>/master-K/        for K = 1, 2: overlay.toml (what this master changes in the site
                            file), Buildbot's master/, workers/worker-N

Both masters read the same site file; each one's overlay moves the second
master to ``www.port + 1`` (its ``www.url`` with that port) and
``workers.port + 1``, and, where the site file leaves them unset, points
``[database]`` at the private PostgreSQL and ``[mq]`` at the private router.
Each master gets ``[workers] local`` workers of its own: worker-1..N attach to
the first master, worker-N+1..2N to the second; both masters know all 2N
names, as Buildbot's multi-master setup wants.

Ctrl-C or SIGTERM stops workers, masters, router and database, and returns
only when all are gone. A failure is one line naming its cause, and a
non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lpdeploy.core.errors import LpDeployError, SettingsError
from lpdeploy.core.settings import DEMO_SITE, Settings, load_settings, site_file
from lpdeploy.tools.localrun import (
    ROOT,
    Procs,
    RunError,
    _bin,
    cause,
    create_demo,
    prepare,
    site_home,
    stop,
    taken_port,
    wait_port,
)
from lpdeploy.tools.services import Crossbar, PrivatePostgres, missing_parts

MASTERS = 2


def _say(text: str) -> None:
    print(f"lpdeploy cluster: {text}", flush=True)


def database_name(home: Path) -> str:
    """The private cluster's database of one site: only [a-z0-9_], from the site's run directory name."""
    return "lp_" + re.sub(r"[^a-z0-9_]", "_", home.name.lower())[:50]


def with_port(url: str, port: int) -> str:
    """``url`` with its port replaced (or added)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def _toml(tables: dict[str, dict[str, str | int]]) -> str:
    """A TOML text of flat tables of strings and integers (JSON strings are valid TOML basic strings)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def overlay(settings: Settings, k: int, database_url: str | None, router_url: str | None) -> dict[str, dict]:
    """What master ``k`` (1-based) changes in the site file: ports, shared database and router, worker names."""
    www_port = settings.www.port + k - 1
    tables: dict[str, dict] = {
        "www": {"port": www_port, "url": with_port(settings.www.url, www_port)},
        "workers": {"port": settings.workers.port + k - 1, "local": settings.workers.local * MASTERS},
    }
    if database_url is not None:
        tables["database"] = {"url": database_url}
    if router_url is not None:
        tables["mq"] = {"router_url": router_url, "realm": "buildbot"}
    return tables


@dataclass
class Master:
    k: int
    home: Path
    overlay: Path
    settings: Settings
    workers: tuple[str, ...]


def plan(cfg: Path, settings: Settings, site: Path, database_url: str | None,
         router_url: str | None) -> list[Master]:
    """Write each master's overlay and read the site file through it (so every value is validated)."""
    masters = []
    n = settings.workers.local
    for k in range(1, MASTERS + 1):
        home = site / f"master-{k}"
        home.mkdir(parents=True, exist_ok=True)
        path = home / "overlay.toml"
        path.touch(mode=0o600)  # it may hold the database password
        path.write_text(_toml(overlay(settings, k, database_url, router_url)))
        mine = load_settings(cfg, overlay=path)
        masters.append(Master(k, home, path, mine, mine.workers.names[(k - 1) * n:k * n]))
    return masters


def _exited(proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: proc.poll() is not None


class Cluster:
    """Everything ``make cluster`` started, in start order; ``stop`` ends it in reverse."""

    def __init__(self, run_dir: Path, cfg: Path) -> None:
        self.run_dir = run_dir
        self.cfg = cfg
        self.procs: Procs = []
        self.masters: list[Master] = []

    def start_shared(self, settings: Settings, site: Path) -> tuple[str | None, str | None]:
        """The private PostgreSQL and router, for what the site file leaves unset; their URLs (None: the site's)."""
        database_url = router_url = None
        if settings.database_url.startswith("sqlite:"):
            pg = PrivatePostgres(self.run_dir / "cluster" / "pg")
            if pg.create():
                _say(f"created a PostgreSQL cluster in {pg.data}")
            pg.start()
            assert pg.proc is not None
            self.procs.append(("PostgreSQL", pg.proc))
            pg.ensure_database(database_name(site))
            database_url = pg.url(database_name(site))
            _say(f"PostgreSQL on 127.0.0.1:{pg.port}, database {database_name(site)}")
        if not settings.mq.shared:
            router = Crossbar(self.run_dir / "cluster" / "crossbar")
            router.start()
            assert router.proc is not None
            self.procs.append(("Crossbar", router.proc))
            router_url = router.router_url
            _say(f"Crossbar router at {router_url}")
        return database_url, router_url

    def start_masters(self) -> None:
        for m in self.masters:
            env = {**os.environ, "LPDEPLOY_CONFIG": str(self.cfg.resolve()), "LPDEPLOY_SITE_OVERLAY": str(m.overlay)}
            proc = subprocess.Popen([_bin("buildbot"), "start", "--nodaemon", str(m.home / "master")], env=env,
                                    stdin=subprocess.DEVNULL)
            self.procs.append((f"master {m.k}", proc))
            if not wait_port(m.settings.www.port, m.settings.www.interface, _exited(proc)):
                log = m.home / "master" / "twistd.log"
                why = cause(log.read_text(errors="replace")[-20000:]) if log.exists() else "no twistd.log"
                raise RunError(f"master {m.k} did not come up", f"{why} (see {log})")
        for m in self.masters:
            for wdir in sorted((m.home / "workers").iterdir()):
                if wdir.name in m.workers:
                    self.procs.append((f"worker {wdir.name}", subprocess.Popen(
                        [_bin("buildbot-worker"), "start", "--nodaemon", str(wdir)], stdin=subprocess.DEVNULL)))

    def watch(self, stopping: list[bool]) -> int:
        while not stopping[0] and all(p.poll() is None for _, p in self.procs):
            time.sleep(0.3)
        if stopping[0]:
            return 0
        name, dead = next((n, p) for n, p in self.procs if p.poll() is not None)
        _say(f"{name} exited on its own (status {dead.returncode}); stopping the rest")
        return 1


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now (Linux: read off /proc)."""
    parent_of = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent_of[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parent_of.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def reap(pids: list[int], grace: float = 10) -> None:
    """Wait up to ``grace`` seconds for ``pids`` to end after their parents stopped; kill what remains."""
    deadline = time.monotonic() + grace
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in pids:
        if _running(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5  # SIGKILL is not refused; it takes a moment to land
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def run(cfg: Path, run_dir: Path) -> int:
    try:
        settings = load_settings(cfg)
    except SettingsError as e:
        print(f"lpdeploy cluster: site file {cfg}: {e}", file=sys.stderr)
        return 2
    missing = missing_parts() if settings.database_url.startswith("sqlite:") or not settings.mq.shared else []
    if missing:
        print(f"lpdeploy cluster: missing {'; '.join(missing)}", file=sys.stderr)
        return 1
    cluster = Cluster(run_dir, cfg)
    stopping = [False]
    starting = [True]

    def on_signal(signum: int, frame: object) -> None:
        stopping[0] = True
        if starting[0]:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        site = site_home(run_dir / "cluster", cfg)
        if cfg.resolve() == DEMO_SITE:
            create_demo(settings)
        database_url, router_url = cluster.start_shared(settings, site)
        cluster.masters = plan(cfg, settings, site, database_url, router_url)
        for m in cluster.masters:
            taken = taken_port(m.settings)
            if taken:
                raise RunError(f"cannot start master {m.k}", taken)
            prepare(m.home, m.settings, cfg, worker_names=m.workers)
        cluster.start_masters()
        starting[0] = False
        for m in cluster.masters:
            _say(f"master {m.k}: web UI at {m.settings.www.url}, workers {', '.join(m.workers)} "
                 f"on port {m.settings.workers.port}")
        _say(f"site file {cfg}; Ctrl-C stops masters, workers, router and database")
        return cluster.watch(stopping)
    except (LpDeployError, SettingsError, OSError) as e:
        print(f"lpdeploy cluster: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _say("interrupted while starting")
        return 130 if not stopping[0] else 0
    finally:
        starting[0] = False
        if cluster.procs:
            _say("stopping")
            spawned = descendants(os.getpid())  # the servers' own children too (PostgreSQL backends, ...)
            stop(list(reversed(cluster.procs)))
            reap(spawned)
            _say("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run",
                        help="where the cluster lives, under cluster/ (default: .run/ in this checkout)")
    args = parser.parse_args(argv)
    return run(site_file(), args.run_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
