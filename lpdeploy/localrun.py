"""``make run``: one master and its local workers, started and stopped together.

Creates (only if missing) the master directory, the local workers and, when
``LPDEPLOY_CONFIG`` is unset, the demo upstream and htpasswd file; starts
everything in the foreground and stops everything on Ctrl-C or SIGTERM,
returning only when master and workers are gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lpdeploy import demo
from lpdeploy.configurator import site_file
from lpdeploy.errors import SettingsError
from lpdeploy.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 30  # seconds to wait for a clean stop before killing


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _say(text: str) -> None:
    print(f"lpdeploy run: {text}", flush=True)


def prepare(run_dir: Path, settings: Settings, cfg: Path) -> tuple[Path, list[Path]]:
    """Create the master and worker directories that are missing."""
    master = run_dir / "master"
    if not (master / "buildbot.tac").exists():
        _say(f"creating the master in {master}")
        subprocess.run([_bin("buildbot"), "create-master", "--quiet", "--relocatable",
                        f"--config={ROOT / 'master.cfg'}", f"--db={settings.database_url}", str(master)],
                       check=True, env={**os.environ, "LPDEPLOY_CONFIG": str(cfg)})
    workers = []
    for name in settings.workers.names:
        wdir = run_dir / "workers" / name
        if not (wdir / "buildbot.tac").exists():
            _say(f"creating worker {name} in {wdir}")
            wdir.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([_bin("buildbot-worker"), "create-worker", "--quiet", "--umask=0o022",
                            str(wdir), f"127.0.0.1:{settings.workers.port}", name, settings.workers.password],
                           check=True)
        workers.append(wdir)
    return master, workers


def _wait_port(port: int, procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop every child, politely then firmly; return when all are gone."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run",
                        help="where the master, workers and demo live (default: .run/)")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    cfg = site_file()
    if "LPDEPLOY_CONFIG" not in os.environ:
        if demo.create_upstream(run_dir / "demo-upstream.git"):
            _say(f"created the demo upstream {run_dir / 'demo-upstream.git'}")
        if demo.create_htpasswd(run_dir / "htpasswd"):
            _say(f"created demo users; passwords are in {run_dir / 'demo-passwords.txt'}")
    try:
        settings = load_settings(cfg)
    except SettingsError as e:
        print(f"lpdeploy run: site file {cfg}: {e}", file=sys.stderr)
        return 2
    master, workers = prepare(run_dir, settings, cfg)
    env = {**os.environ, "LPDEPLOY_CONFIG": str(cfg.resolve())}
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        procs.append(subprocess.Popen([_bin("buildbot"), "start", "--nodaemon", str(master)], env=env))
        if not _wait_port(settings.www.port, procs):
            _say(f"the master did not come up; see {master / 'twistd.log'}")
            return 1
        for wdir in workers:
            procs.append(subprocess.Popen([_bin("buildbot-worker"), "start", "--nodaemon", str(wdir)]))
        _say(f"web UI at {settings.www.url} (site file {cfg}); Ctrl-C stops master and workers")
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
        if not stopping:
            _say("a process exited on its own; stopping the rest")
            return 1
        return 0
    finally:
        _say("stopping")
        stop(list(reversed(procs)))
        _say("stopped")


if __name__ == "__main__":
    sys.exit(main())
