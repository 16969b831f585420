"""``make run``: one master and its local workers, started and stopped together.

For the site file named by ``LPDEPLOY_CONFIG`` (the demo's, ``demo/site.toml``,
when it is unset), under the run directory (``.run/`` in this checkout)::

    <site>/site-file             the site file this directory belongs to
    <site>/master/               Buildbot's master directory: buildbot.tac, twistd.log,
                                 the database (state.sqlite unless [database] url says otherwise)
    <site>/workers/worker-N/     one directory per local worker ([workers] local)

``<site>`` is ``demo`` for the demo and ``<stem>-<8 hex digits of the site
file's absolute path>`` for any other site file, so two sites never share a
database. For the demo it also creates the upstream and htpasswd file that
the demo site file names. Every run rewrites the buildbot.tac files (ports and
password follow the site file) and brings the database up to date; it never
deletes it.

Everything runs in the foreground; Ctrl-C or SIGTERM stops everything and
returns only when master and workers are gone. A failure is one line naming
its cause, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lpdeploy.core.errors import LpDeployError, RunError, SettingsError
from lpdeploy.core.settings import DEMO_SITE, Settings, load_settings, site_file
from lpdeploy.tools import demo

ROOT = Path(__file__).resolve().parents[2]  # the checkout: master.cfg, demo/
STOP_TIMEOUT = 30  # seconds to wait for a clean stop before killing
START_TIMEOUT = 90  # seconds for the master's web server to answer
# a line that names what went wrong in Buildbot's output: "...FileNotFoundError: ...", "error creating ..."
_CAUSE = re.compile(r"[A-Za-z.]*(Error|Exception)\b|^error\b")
Procs = list[tuple[str, subprocess.Popen[bytes]]]  # (name, process)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _say(text: str) -> None:
    print(f"lpdeploy run: {text}", flush=True)


def cause(output: str) -> str:
    """The line of a tool's output that names the problem: the last error line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if _CAUSE.search(line)]
    return (errors or lines or ["no output"])[-1]


def site_home(run_dir: Path, cfg: Path) -> Path:
    """The directory of one site file's master and workers (see the module docstring)."""
    path = cfg.resolve()
    if path == DEMO_SITE:
        return run_dir / "demo"
    return run_dir / f"{path.stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def sqlite_file(db_url: str, master: Path) -> Path | None:
    """The file a ``sqlite:///`` URL names (relative to the master directory), None for other databases."""
    if not db_url.startswith("sqlite:///"):
        return None
    name = db_url.removeprefix("sqlite:///").split("?")[0]
    return master / name if name else None


def taken_port(settings: Settings) -> str | None:
    """Why the web or worker port cannot be listened on now, naming its site key; None when both are free."""
    for key, interface, port in (("www.port", settings.www.interface, settings.www.port),
                                 ("workers.port", settings.workers.interface, settings.workers.port)):
        with socket.socket(socket.AF_INET6 if ":" in interface else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted listens
            try:
                s.bind((interface, port))
            except OSError as e:
                return f"{key} {port} on {interface or '*'} is not free ({e.strerror}); another master running?"
    return None


def local_host(interface: str) -> str:
    """Where a process on this machine reaches a server listening on ``interface``."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(interface, interface)


def _create(argv: list[str], made: list[Path], what: str) -> None:
    """Run a create command; fail unless it exited 0, printed no traceback and made every path in ``made``.

    ``buildbot create-master`` exits 0 even when it failed (it prints the
    traceback and carries on), so what it created is what counts.
    """
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    output = proc.stdout + proc.stderr
    missing = [p for p in made if not p.exists()]
    if proc.returncode != 0 or "Traceback (most recent call last)" in output or missing:
        raise RunError(what, cause(output) if output.strip() else f"{missing[0]} was not created")


def prepare(home: Path, settings: Settings, cfg: Path,
            worker_names: tuple[str, ...] | None = None) -> tuple[Path, list[Path]]:
    """Create or refresh the master and worker directories of one site; the database is kept.

    ``worker_names``: the local workers to make (default: all of ``[workers] local``).
    """
    master = home / "master"
    home.mkdir(parents=True, exist_ok=True)
    (home / "site-file").write_text(f"{cfg}\n")
    (master / "buildbot.tac").unlink(missing_ok=True)
    db = sqlite_file(settings.database_url, master)
    _create([_bin("buildbot"), "create-master", "--quiet", "--relocatable", f"--config={ROOT / 'master.cfg'}",
             f"--db={settings.database_url}", str(master)],
            [master / "buildbot.tac", *([db] if db else [])], f"buildbot create-master {master} failed")
    workers = []
    for name in settings.workers.names if worker_names is None else worker_names:
        wdir = home / "workers" / name
        wdir.parent.mkdir(parents=True, exist_ok=True)
        (wdir / "buildbot.tac").unlink(missing_ok=True)
        _create([_bin("buildbot-worker"), "create-worker", "--quiet", "--umask=0o022", str(wdir),
                 f"{local_host(settings.workers.interface)}:{settings.workers.port}", name,
                 settings.workers.password],
                [wdir / "buildbot.tac"], f"buildbot-worker create-worker {wdir} failed")
        workers.append(wdir)
    return master, workers


def create_demo(settings: Settings) -> None:
    """The demo's upstream and users, where the demo site file says they are (once)."""
    upstream = Path(unquote(urlsplit(settings.repository.url).path))
    if demo.create_upstream(upstream):
        _say(f"created the demo upstream {upstream}")
    if settings.auth.htpasswd and demo.create_htpasswd(Path(settings.auth.htpasswd)):
        _say(f"created demo users; passwords are in {Path(settings.auth.htpasswd).parent / 'demo-passwords.txt'}")


def wait_port(port: int, interface: str, give_up: Callable[[], bool]) -> bool:
    host = local_host(interface)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not give_up():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def stop(procs: Procs) -> None:
    """Stop every child, politely then firmly; return when all are gone."""
    for _, p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for _, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def serve(master: Path, workers: list[Path], settings: Settings, cfg: Path) -> int:
    """Start master and workers, wait for Ctrl-C/SIGTERM or a death, stop everything."""
    procs: Procs = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env = {**os.environ, "LPDEPLOY_CONFIG": str(cfg.resolve())}
    try:
        procs.append(("the master", subprocess.Popen([_bin("buildbot"), "start", "--nodaemon", str(master)],
                                                     env=env, stdin=subprocess.DEVNULL)))
        if not wait_port(settings.www.port, settings.www.interface,
                          lambda: stopping or procs[0][1].poll() is not None):
            if stopping:
                return 0
            log = master / "twistd.log"
            why = cause(log.read_text(errors="replace")[-20000:]) if log.exists() else "no twistd.log"
            _say(f"the master did not come up: {why} (see {log})")
            return 1
        for wdir in workers:
            procs.append((f"worker {wdir.name}", subprocess.Popen(
                [_bin("buildbot-worker"), "start", "--nodaemon", str(wdir)], stdin=subprocess.DEVNULL)))
        _say(f"web UI at {settings.www.url} (site file {cfg}); Ctrl-C stops master and workers")
        while not stopping and all(p.poll() is None for _, p in procs):
            time.sleep(0.3)
        if not stopping:
            name, dead = next((n, p) for n, p in procs if p.poll() is not None)
            _say(f"{name} exited on its own (status {dead.returncode}); stopping the rest")
            return 1
        return 0
    finally:
        _say("stopping")
        stop(list(reversed(procs)))
        _say("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run",
                        help="where each site's master and workers live (default: .run/ in this checkout)")
    args = parser.parse_args(argv)
    cfg = site_file()
    try:
        settings = load_settings(cfg)
    except SettingsError as e:
        print(f"lpdeploy run: site file {cfg}: {e}", file=sys.stderr)
        return 2
    try:
        taken = taken_port(settings)
        if taken:
            raise RunError(f"cannot start the site {cfg}", taken)
        if cfg.resolve() == DEMO_SITE:
            create_demo(settings)
        home = site_home(args.run_dir.resolve(), cfg)
        _say(f"site file {cfg}; master and workers in {home}")
        master, workers = prepare(home, settings, cfg)
    except (LpDeployError, OSError) as e:  # RunError, a GitError from the demo, a directory we cannot write
        print(f"lpdeploy run: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before anything was started
        _say("interrupted; nothing was started")
        return 130
    return serve(master, workers, settings, cfg)


if __name__ == "__main__":
    sys.exit(main())
