"""Two real masters on a private PostgreSQL and Crossbar router, for the failover tests and bench.

``Pair`` starts (in a directory the postgres user can enter) one database
server and one router, then two masters of one site, each with a worker of
its own: the first from ``flow_harness.Flow``, the second a ``SecondMaster``
as in ``test_e2e_cluster.py``. It finds the master holding a scheduler or
change source (Buildbot's claim rows, through the REST API), kills one with
SIGKILL (``kill -9``) or pauses it (SIGSTOP), and stops everything after.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from lpdeploy.tools.cluster import reap
from lpdeploy.tools.localrun import stop
from lpdeploy.tools.services import Crossbar, PrivatePostgres
from tests.flow_harness import BIN, ROOT, Flow, _pid, wait_until

GATE_SCHEDULER = "lpdeploy-gate"
POLLER = "lpdeploy-poller"


class SecondMaster(Flow):
    """Another master of the same site: same upstream, database and router; own ports, directory and worker."""

    def __init__(self, first: Flow) -> None:
        super().__init__(first.base, workers=2)
        self.first = first
        self.workers = ["worker-2"]  # worker-1 is the first master's
        self.master_dir = first.base / "master-2"
        self.site = first.base / "site-2.toml"
        self.env = {**os.environ, "LPDEPLOY_CONFIG": str(self.site), "LPDEPLOY_URL": self.url}

    def create(self) -> None:
        text = self.first.site.read_text()
        for old, new in ((f"port = {self.first.www_port}", f"port = {self.www_port}"),
                         (self.first.url, self.url),
                         (f"port = {self.first.worker_port}", f"port = {self.worker_port}"),
                         ("local = 1", "local = 2")):
            assert old in text
            text = text.replace(old, new)
        self.site.write_text(text)
        subprocess.run([str(BIN / "buildbot"), "create-master", "--quiet", f"--config={ROOT / 'master.cfg'}",
                        str(self.master_dir)], check=True, env=self.env, capture_output=True)
        subprocess.run([str(BIN / "buildbot-worker"), "create-worker", "--quiet", str(self.worker_path("worker-2")),
                        f"127.0.0.1:{self.worker_port}", "worker-2", "e2e-worker-secret"],
                       check=True, capture_output=True)


class Pair:
    """PostgreSQL, Crossbar and two masters; ``close()`` stops all (a killed master's worker too)."""

    def __init__(self, extra_site: str = "") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="lpdeploy-failover-", dir="/tmp"))
        os.chmod(self.base, 0o755)  # as root, PostgreSQL runs as the postgres user: it must enter
        self.pg = PrivatePostgres(self.base / "pg")
        self.router = Crossbar(self.base / "crossbar")
        self.procs: list[tuple[str, Any]] = []
        self.extra_site = extra_site
        self.masters: list[Flow] = []

    def start(self) -> tuple[Flow, Flow]:
        self.pg.create()
        self.pg.start()
        self.procs.append(("PostgreSQL", self.pg.proc))
        self.pg.ensure_database("lp_failover")
        self.router.start()
        self.procs.append(("Crossbar", self.router.proc))
        shared = (f'[database]\nurl = "{self.pg.url("lp_failover")}"\n'
                  f'[mq]\nrouter_url = "{self.router.router_url}"\n{self.extra_site}')
        one = Flow(self.base / "site", extra_site=shared)
        one.base.mkdir()
        two = SecondMaster(one)
        one.create()
        subprocess.run([str(BIN / "buildbot"), "upgrade-master", str(one.master_dir)], check=True, env=one.env,
                       capture_output=True, timeout=300)
        one.start()
        self.masters.append(one)
        two.create()
        two.start()
        self.masters.append(two)
        return one, two

    def close(self) -> None:
        for m in reversed(self.masters):
            pid = _pid(m.master_dir)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)  # a paused master must be able to stop
                except ProcessLookupError:
                    pass
            m.stop()
        stop(list(reversed(self.procs)))
        if not os.environ.get("LPDEPLOY_KEEP_FAILOVER_RUN"):  # set it to read the masters' logs after a failure
            shutil.rmtree(self.base, ignore_errors=True)


def master_name(flow: Flow) -> str:
    """The suffix of Buildbot's master name for ``flow`` (``host:basedir``)."""
    return str(flow.master_dir.resolve())


def holder(flows: tuple[Flow, ...] | list[Flow], kind: str, name: str) -> Flow | None:
    """The master holding scheduler or change source ``name`` (``kind``: schedulers, changesources), or None."""
    for flow in flows:
        try:
            items = flow.api(kind)[kind]
        except OSError:
            continue
        item = next((i for i in items if i["name"] == name), None)
        if item is None or not item.get("master"):
            return None
        owner = item["master"]["name"]
        return next((f for f in flows if owner.endswith(":" + master_name(f))), None)
    return None


def wait_holder(flows: list[Flow], timeout: float = 120) -> Flow:
    """The master holding both the gate scheduler and the poller (they start on the same master)."""
    def both() -> Flow | None:
        gate, poller = holder(flows, "schedulers", GATE_SCHEDULER), holder(flows, "changesources", POLLER)
        return gate if gate is not None and gate is poller else None

    return wait_until(both, timeout, "one master to hold the gate and the poller")


def kill9(flow: Flow) -> float:
    """SIGKILL the master process of ``flow``; the moment it was sent (time.monotonic)."""
    pid = _pid(flow.master_dir)
    assert pid is not None, f"no twistd.pid in {flow.master_dir}"
    os.kill(pid, signal.SIGKILL)
    at = time.monotonic()
    reap([pid], grace=10)  # zombie-aware: in a container nobody may reap the daemon
    (flow.master_dir / "twistd.pid").unlink(missing_ok=True)
    return at


def signal_master(flow: Flow, sig: int) -> None:
    pid = _pid(flow.master_dir)
    assert pid is not None
    os.kill(pid, sig)


def restart_master(flow: Flow) -> None:
    """Start a killed master again (its worker kept running and reconnects by itself)."""
    proc = subprocess.run([str(BIN / "buildbot"), "start", str(flow.master_dir)], env=flow.env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in flow.workers:
        wait_until(lambda name=name: flow.api(f"workers/{name}")["workers"][0]["connected_to"], 120,
                   f"{name} to reconnect")
