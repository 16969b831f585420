"""A real lpdeploy installation in a temporary directory, for end-to-end tests.

Real parts only: a bare upstream git repository, a Buildbot master started
from this checkout's ``master.cfg`` with its own site file, a real
``buildbot-worker`` process, and the ``lpdeploy`` CLI as a subprocess.
Every server listens on 127.0.0.1 on a free port; every wait is bounded.
"""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import websocket

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GIT_ID = ["-c", "user.name=Test Developer", "-c", "user.email=test@example.invalid"]
SUITE = """#!/bin/sh
# records which commit it ran on, shows app.txt, then passes unless it says broken
git rev-parse HEAD >> "$1"
cat app.txt
sleep 0.2
grep -q "^status: ok" app.txt
"""
PASSWORDS = {"bob": "bob-pw", "alice": "alice-pw", "carol": "carol-pw", "quinn": "quinn-pw"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair(taken: tuple[int, ...] = ()) -> int:
    """A port ``p`` with ``p + 1`` free too, for ``make cluster``'s second master (it listens on port + 1).

    Chosen below Linux's ephemeral range (32768-60999): there no outgoing
    connection of a parallel test can take ``p + 1`` between this check and
    the master's start, as happened with ``free_port() + 1``.
    """
    rng = random.Random()
    for _ in range(200):  # bounded: 12,000 candidates, almost all free
        port = rng.randrange(20000, 32000, 2)
        if port in taken or port + 1 in taken:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two free neighbouring ports between 20000 and 32000")


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _pid(basedir: Path) -> int | None:
    try:
        return int((basedir / "twistd.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _reap(pid: int | None, grace: float = 30) -> None:
    """Wait for ``pid`` to exit after a stop; kill it if it is still there after ``grace`` seconds."""
    if pid is None:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_until(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Flow:
    """One upstream, one master, one worker, and helpers to push and ask."""

    def __init__(self, base: Path, extra_site: str = "", suite_toml: str | None = None, workers: int = 1,
                 files: dict[str, str] | None = None, poll_interval: int = 1) -> None:
        self.base = base
        self.upstream = base / "upstream.git"
        self.work = base / "work"
        self.suite_log = base / "suite-runs.log"
        self.master_dir = base / "master"
        self.worker_dir = base / "worker"
        self.www_port = free_port()
        self.worker_port = free_port()
        self.url = f"http://127.0.0.1:{self.www_port}/"
        self.site = base / "site.toml"
        self.extra_site = extra_site
        self.suite_toml = suite_toml
        self.workers = [f"worker-{i}" for i in range(1, workers + 1)]
        self.files = files or {}
        self.poll_interval = poll_interval  # seconds; the webhook tests poll rarely, to see the hook act
        self.env = {**os.environ, "LPDEPLOY_CONFIG": str(self.site), "LPDEPLOY_URL": self.url}

    # --- setting up -----------------------------------------------------
    def running(self) -> Iterator[Flow]:
        """Create, start, hand over, and always stop: the body of every module fixture."""
        self.create()
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def create(self) -> None:
        git("init", "--quiet", "--bare", "--initial-branch=devel", str(self.upstream))
        git("init", "--quiet", "--initial-branch=devel", str(self.work))
        (self.work / "run-tests.sh").write_text(SUITE)
        (self.work / "app.txt").write_text("status: ok\nversion: 0\n")
        for name, text in self.files.items():
            (self.work / name).write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", "Initial release", cwd=self.work)
        for b in ("devel", "stable", "production-devel", "production-stable"):
            git("push", "--quiet", str(self.upstream), f"HEAD:refs/heads/{b}", cwd=self.work)
        htpasswd = self.base / "htpasswd"
        htpasswd.write_text("".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode().replace('$2b$', '$2y$')}\n"
            for u, p in PASSWORDS.items()))
        self.site.write_text(f"""
[repository]
url = "{self.upstream.as_uri()}"
poll_interval = {self.poll_interval}
{self.suite_toml or f'[suite]{chr(10)}command = ["sh", "run-tests.sh", "{self.suite_log}"]'}
[www]
port = {self.www_port}
url = "{self.url}"
[workers]
port = {self.worker_port}
password = "e2e-worker-secret"
local = {len(self.workers)}
[auth]
htpasswd = "{htpasswd}"
[auth.roles]
security = ["alice"]
losa = ["bob"]
{self.extra_site}
""")
        subprocess.run([str(BIN / "buildbot"), "create-master", "--quiet",
                        f"--config={ROOT / 'master.cfg'}", str(self.master_dir)],
                       check=True, env=self.env, capture_output=True)
        for name in self.workers:
            subprocess.run([str(BIN / "buildbot-worker"), "create-worker", "--quiet", str(self.worker_path(name)),
                            f"127.0.0.1:{self.worker_port}", name, "e2e-worker-secret"],
                           check=True, capture_output=True)

    def worker_path(self, name: str) -> Path:
        return self.worker_dir if name == "worker-1" else self.base / name

    def start(self) -> None:
        proc = subprocess.run([str(BIN / "buildbot"), "start", str(self.master_dir)], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = (self.master_dir / "twistd.log").read_text()[-3000:]
            raise AssertionError(f"master did not start: {proc.stdout}{proc.stderr}\n{log}")
        for name in self.workers:
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        subprocess.run([str(BIN / "buildbot-worker"), "start", str(self.worker_path(name))], check=True,
                       capture_output=True, timeout=60)
        wait_until(lambda: self.api(f"workers/{name}")["workers"][0]["connected_to"], 60, f"{name} to connect")

    def stop_worker(self, name: str) -> None:
        pid = _pid(self.worker_path(name))
        subprocess.run([str(BIN / "buildbot-worker"), "stop", str(self.worker_path(name))],
                       capture_output=True, timeout=120)
        _reap(pid)

    def stop(self) -> None:
        """Stop workers and master; a daemon that will not stop is killed: no test leaves one behind."""
        for name in self.workers:
            self.stop_worker(name)
        pid = _pid(self.master_dir)
        subprocess.run([str(BIN / "buildbot"), "stop", str(self.master_dir)], capture_output=True, timeout=120,
                       env=self.env)
        _reap(pid)

    # --- the repository -------------------------------------------------
    def tip(self, branch: str) -> str | None:
        out = git("ls-remote", "--heads", str(self.upstream), f"refs/heads/{branch}")
        return out.split()[0] if out else None

    def commit(self, status: str, message: str, branch: str = "devel") -> str:
        """Commit on top of ``branch`` (or of devel, for a new branch) and push it."""
        base = branch if self.tip(branch) else "devel"
        git("fetch", "--quiet", str(self.upstream), f"refs/heads/{base}", cwd=self.work)
        git("checkout", "--quiet", "-B", branch, "FETCH_HEAD", cwd=self.work)
        text = (self.work / "app.txt").read_text().splitlines()
        version = int(text[1].split(":")[1]) + 1
        (self.work / "app.txt").write_text(f"status: {status}\nversion: {version}\n")
        git("commit", "--quiet", "-am", message, cwd=self.work)
        git("push", "--quiet", str(self.upstream), f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def revert_head(self, branch: str = "devel") -> str:
        git("fetch", "--quiet", str(self.upstream), f"refs/heads/{branch}", cwd=self.work)
        git("checkout", "--quiet", "-B", branch, "FETCH_HEAD", cwd=self.work)
        git("revert", "--no-edit", "HEAD", cwd=self.work)
        git("push", "--quiet", str(self.upstream), f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def suite_runs(self) -> list[str]:
        return self.suite_log.read_text().split() if self.suite_log.exists() else []

    # --- the master -----------------------------------------------------
    viewer: str | None = None  # who the REST helpers read as (None: anonymous)

    def api(self, path: str) -> Any:
        opener = self.session(self.viewer) if self.viewer else urllib.request.build_opener()
        with opener.open(self.url + "api/v2/" + path, timeout=30) as r:
            return json.loads(r.read())

    def builds(self, builder: str) -> list[dict[str, Any]]:
        return self.api(f"builders/{builder}/builds?order=number")["builds"]

    def wait_builds(self, builder: str, count: int, timeout: float = 90) -> dict[str, Any]:
        """Wait until ``builder`` has ``count`` complete builds; return the newest."""
        def done() -> Any:
            builds = self.builds(builder)
            complete = [b for b in builds if b["complete"]]
            return complete[-1] if len(complete) >= count and len(complete) == len(builds) else None
        return wait_until(done, timeout, f"{count} complete builds on {builder}")

    def settle(self, timeout: float = 180, quiet: float = 3.0) -> None:
        """Wait until nothing is pending: no build request waits and no build runs for ``quiet`` seconds.

        ``quiet`` is longer than the poll interval (1 s), so a push made just
        before the call has been seen and acted on. Reads as a security user:
        embargoed builds are hidden from everyone else.
        """
        opener = self.session("alice")

        def busy() -> bool:
            for kind in ("buildrequests", "builds"):
                with opener.open(f"{self.url}api/v2/{kind}?complete=false", timeout=30) as r:
                    if json.loads(r.read())[kind]:
                        return True
            return False

        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        while time.monotonic() < deadline:
            if busy():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                return
            time.sleep(0.3)
        raise AssertionError(f"the flow did not settle within {timeout}s")

    # --- starting states: every end-to-end test sets up its own ---------
    # Tests share one master per module for speed, never facts: each test
    # starts from a state it asks for with these helpers, so it runs alone,
    # in any order, and says what it needs.

    def initial_commit(self) -> str:
        """The commit ``create`` pushed to every branch (the root of the history)."""
        return git(f"--git-dir={self.upstream}", "rev-list", "--max-parents=0", "refs/heads/stable")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return subprocess.run(["git", f"--git-dir={self.upstream}", "merge-base", "--is-ancestor", ancestor,
                               descendant], capture_output=True).returncode == 0

    def builds_for(self, builder: str, revision: str) -> list[dict[str, Any]]:
        """The builds of ``builder`` that decided on ``revision`` (its ``lpdeploy_revision``), oldest first."""
        builds = self.api(f"builders/{builder}/builds?order=number&property=lpdeploy_revision")["builds"]
        return [b for b in builds if b["properties"].get("lpdeploy_revision", [None])[0] == revision]

    def build_for(self, builder: str, revision: str) -> dict[str, Any]:
        """The one complete build of ``builder`` that decided on ``revision``."""
        builds = [b for b in self.builds_for(builder, revision) if b["complete"]]
        assert len(builds) == 1, f"{len(builds)} complete {builder} builds for {revision[:12]}"
        return builds[0]

    def commit_file(self, path: str, text: str, message: str, branch: str) -> str:
        """Commit ``path`` (not app.txt, so it merges cleanly anywhere) on ``branch`` (new: from devel); push."""
        base = branch if self.tip(branch) else "devel"
        git("fetch", "--quiet", str(self.upstream), f"refs/heads/{base}", cwd=self.work)
        git("checkout", "--quiet", "-B", branch, "FETCH_HEAD", cwd=self.work)
        (self.work / path).write_text(text)
        git("add", path, cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", str(self.upstream), f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def given_devel_holds_stable(self) -> None:
        """devel contains stable, so the gate can fast-forward stable to the next devel push.

        A test may have pushed straight to stable; devel is then reset to
        stable (a test's starting state, not something lpdeploy does).
        """
        devel, stable = self.tip("devel"), self.tip("stable")
        assert devel and stable, "the flow branches exist"
        if not self.is_ancestor(stable, devel):
            git("push", "--quiet", "--force", str(self.upstream), f"{stable}:refs/heads/devel", cwd=self.work)
            self.settle()

    def given_stable_at(self, message: str) -> str:
        """A new tested commit on devel that the gate moved stable to; its sha."""
        self.settle()
        self.given_devel_holds_stable()
        sha = self.commit("ok", message)
        wait_until(lambda: self.tip("stable") == sha, 120, f"stable to reach {message!r}")
        self.settle()
        return sha

    def given_promoted(self, message: str) -> str:
        """``given_stable_at(message)``, then promoted to both production branches by a losa; its sha."""
        sha = self.given_stable_at(message)
        result = self.cli("promote", user="bob")
        assert result.returncode == 0, result.stdout + result.stderr
        assert self.tip("production-stable") == self.tip("production-devel") == sha
        self.settle()
        return sha

    def given_deployed(self, *servers: str, revision: str | None = None) -> None:
        """``servers`` run ``revision`` (default: the production-stable tip), deployed by a losa."""
        args = [a for s in servers for a in ("--server", s)] + (["--revision", revision] if revision else [])
        result = self.cli("deploy", *args, user="bob")
        assert result.returncode == 0, result.stdout + result.stderr
        self.settle()

    def given_no_cowboys(self) -> None:
        """No active cowboy on any server (each is removed by a losa, with a reason)."""
        listed = self.cli("cowboy", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        for c in json.loads(listed.stdout):
            removed = self.cli("cowboy", "remove", str(c["id"]), "--reason", "test starting state", user="bob")
            assert removed.returncode == 0, removed.stderr

    def status(self) -> dict[str, Any]:
        """``lpdeploy status --json`` (as anonymous)."""
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def given_thawed(self) -> None:
        """No freeze: a losa thaws the flow if it is frozen."""
        if self.status()["freeze"] is not None:
            result = self.cli("thaw", user="bob")
            assert result.returncode == 0, result.stdout + result.stderr

    def steps(self, build: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.api(f"builds/{build['buildid']}/steps")["steps"]}

    def step_log(self, build: dict[str, Any], step: str, log: str) -> str:
        stepid = self.steps(build)[step]["stepid"]
        opener = self.session(self.viewer) if self.viewer else urllib.request.build_opener()
        with opener.open(f"{self.url}api/v2/steps/{stepid}/logs/{log}/raw", timeout=30) as r:
            return r.read().decode()

    def session(self, user: str | None) -> urllib.request.OpenerDirector:
        """An HTTP client logged in as ``user`` (anonymous for None), like a browser."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        if user:
            token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
            req = urllib.request.Request(self.url + "auth/login", headers={"Authorization": f"Basic {token}"})
            opener.open(req, timeout=30).read()
        return opener

    def crawl(self, user: str | None, extra_builds: list[int] = ()) -> Crawl:  # type: ignore[assignment]
        """Everything ``user`` can read through REST, lpdeploy's pages and the Pipeline dashboard.

        Returns the text of every readable answer (403s and 404s read as
        nothing) with the status of every request; see ``Crawler``.
        ``extra_builds``: build ids to try besides those that exist.
        """
        return Crawler(self, user).run(extra_builds)

    def cookie(self, user: str | None) -> str:
        """The ``Cookie`` header of a browser logged in as ``user`` ("" for anonymous)."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        if user:
            token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
            req = urllib.request.Request(self.url + "auth/login", headers={"Authorization": f"Basic {token}"})
            opener.open(req, timeout=30).read()
        return "; ".join(f"{c.name}={c.value}" for c in jar)

    def recording(self, user: str | None) -> EventRecorder:
        """A websocket and an SSE client as ``user``, subscribed to every event; ``with`` records meanwhile."""
        return EventRecorder(self, user)

    def cli(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if user:
            env["LPDEPLOY_USER"] = user
            env["LPDEPLOY_PASSWORD"] = PASSWORDS[user]
        return subprocess.run([str(BIN / "lpdeploy"), *args], env=env, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)


# --- reading as a viewer: the crawl and the event recorders --------------------------------------------
# every routing-key length Buildbot produces (builds/51/new ... buildsets/31/builders/21/buildrequests/41/new),
# and narrower shapes a client may subscribe to besides
ALL_EVENTS = ["/".join(["*"] * n) for n in range(2, 8)]
SOME_EVENTS = ["builds/*/*", "builders/*/builds/*/*", "builds/*/properties/*", "buildsets/*/*"]
PAGES = ["api/latest/builds?property=*", "api/latest/buildrequests?property=*",  # /api/latest is /api/v2
         "plugins/lpdeploy/status.json", "plugins/lpdeploy/cowboys.json?all=1", "plugins/lpdeploy/audit.json",
         "plugins/lpdeploy/flaky.json",
         "plugins/lpdeploy/qa.json",
         "plugins/wsgi_dashboards/pipeline/index.html", "plugins/wsgi_dashboards/pipeline/page",
         "plugins/wsgi_dashboards/pipeline/fragment"]


class Crawl(str):
    """What a crawl read: every readable answer's text, concatenated; ``statuses`` maps "METHOD path" → status."""

    statuses: dict[str, int]


class Inventory:
    """Every id that exists, read as a security user (who is shown everything)."""

    def __init__(self, flow: Flow, extra_builds: list[int]) -> None:
        opener = flow.session("alice")

        def get(path: str) -> list[dict[str, Any]]:
            with opener.open(flow.url + "api/v2" + (f"/{path}" if path else ""), timeout=60) as r:
                answer = json.loads(r.read())
            return next(v for k, v in answer.items() if k != "meta")

        self.collections = [link["name"] for link in get("")]
        self.builders = get("builders")
        self.builds = get("builds")
        self.buildids = sorted({b["buildid"] for b in self.builds} | set(extra_builds))
        self.requests = get("buildrequests")
        self.buildsets = get("buildsets")
        self.workers = get("workers")
        self.masters = get("masters")
        self.changes = get("changes")
        self.sourcestamps = get("sourcestamps")
        self.result_sets = get("test_result_sets")
        self.steps = [s for b in self.builds for s in get(f"builds/{b['buildid']}/steps")]
        self.logs = [lg for s in self.steps for lg in get(f"steps/{s['stepid']}/logs")]
        self.data = [(b["buildid"], d["name"]) for b in self.builds for d in get(f"builds/{b['buildid']}/data")]


class Crawler:
    """Reads, as one viewer, every REST path and query that can reach a build, and lpdeploy's pages.

    Every collection Buildbot lists at ``/api/v2`` (plain and with
    ``?property=*``); every filter that selects builds (``builderid``,
    ``buildid``, ``buildrequestid``, ``workerid``, ``complete``) with every id
    that exists, on builds, build requests, buildsets and test result sets,
    plus ``limit``/``offset``/``order``/``field``; every item and nested
    collection (``workers/N/builds``, ``builders/N/builds``,
    ``builders/N/buildrequests``, ``buildsets/N/properties``,
    ``masters/N/builders``, ``buildrequests/N/builds``, ``builds/N/steps``,
    logs and their text...); ``HEAD`` of every item and collection; lpdeploy's
    JSON pages, the Pipeline dashboard and ``/api/latest``. The ids come from an ``Inventory``
    read as a security user, so a denied item never ends the crawl.
    """

    def __init__(self, flow: Flow, user: str | None) -> None:
        self.flow = flow
        self.opener = flow.session(user)
        self.seen: list[str] = []
        self.statuses: dict[str, int] = {}

    def fetch(self, path: str, method: str = "GET") -> None:
        req = urllib.request.Request(self.flow.url + path, method=method)
        try:
            with self.opener.open(req, timeout=60) as r:
                body, status = r.read().decode("utf-8", "replace"), r.status
        except urllib.error.HTTPError as e:
            self.statuses[f"{method} {path}"] = e.code
            return
        self.statuses[f"{method} {path}"] = status
        self.seen.append(body)

    def run(self, extra_builds: list[int]) -> Crawl:
        inv = Inventory(self.flow, extra_builds)
        for path in self.reads(inv):
            self.fetch("api/v2/" + path)
        for path in self.heads(inv):
            self.fetch("api/v2/" + path, "HEAD")
        for page in PAGES:
            self.fetch(page)
        crawl = Crawl("\n".join(self.seen))
        crawl.statuses = self.statuses
        return crawl

    @staticmethod
    def filtered(inv: Inventory) -> Iterator[str]:
        values = {"builderid": [b["builderid"] for b in inv.builders],
                  "buildid": inv.buildids,
                  "buildrequestid": [r["buildrequestid"] for r in inv.requests],
                  "workerid": [w["workerid"] for w in inv.workers],
                  "complete": ["true", "false"]}
        for name, vals in values.items():
            for v in vals:
                yield f"builds?{name}={v}&property=*"
        for name in ("builderid", "buildrequestid", "complete"):
            for v in values[name]:
                yield f"buildrequests?{name}={v}&property=*"
        for bs in inv.buildsets:
            yield f"buildrequests?buildsetid={bs['bsid']}&property=*"
        for v in values["builderid"]:
            yield f"test_result_sets?builderid={v}"
        for v in values["complete"]:
            yield f"test_result_sets?complete={v}"
            yield f"buildsets?complete={v}"
        yield from ["builds?order=-buildid&limit=1&property=*", "builds?limit=3&offset=1&property=*",
                    "builds?field=buildid&field=properties&field=state_string&property=*",
                    "buildrequests?order=-buildrequestid&limit=2&property=*", "buildsets?order=-bsid&limit=2",
                    "buildsets?field=reason&field=bsid"]

    @staticmethod
    def nested(inv: Inventory) -> Iterator[str]:
        for b in inv.builders:
            for key in (b["builderid"], b["name"]):
                yield from [f"builders/{key}", f"builders/{key}/builds?property=*", f"builders/{key}/test_result_sets"]
            bid = b["builderid"]
            yield from [f"builders/{bid}/buildrequests?property=*", f"builders/{bid}/workers",
                        f"builders/{bid}/masters", f"builders/{bid}/forceschedulers"]
            for m in inv.masters:
                yield from [f"masters/{m['masterid']}/builders/{bid}{sub}" for sub in ("", "/workers")]
        for w in inv.workers:
            yield from [f"workers/{w['workerid']}", f"workers/{w['workerid']}/builds?property=*",
                        f"workers/{w['workerid']}/builders"]
        for m in inv.masters:
            yield from [f"masters/{m['masterid']}{sub}" for sub in ("", "/builders", "/workers", "/schedulers",
                                                                     "/changesources")]
        for bs in inv.buildsets:
            yield from [f"buildsets/{bs['bsid']}{sub}" for sub in ("", "/properties", "/properties_list",
                                                                    "/sourcestamps")]
        for r in inv.requests:
            yield from [f"buildrequests/{r['buildrequestid']}?property=*",
                        f"buildrequests/{r['buildrequestid']}/builds?property=*"]
        for c in inv.changes:
            yield from [f"changes/{c['changeid']}", f"changes/{c['changeid']}/builds?property=*",
                        f"changes/{c['changeid']}/properties_list"]
        for ss in inv.sourcestamps:
            yield from [f"sourcestamps/{ss['ssid']}", f"sourcestamps/{ss['ssid']}/changes"]

    @staticmethod
    def per_build(inv: Inventory) -> Iterator[str]:
        for buildid in inv.buildids:
            yield from [f"builds/{buildid}{sub}" for sub in (
                "?property=*", "/properties", "/property_list", "/changes", "/data", "/test_result_sets",
                "/triggered_builds?property=*", "/steps")]
        for b in inv.builds:
            yield from [f"builders/{b['builderid']}/builds/{b['number']}{sub}" for sub in (
                "", "/steps", "/properties", "/changes", "/data")]
        for buildid, name in inv.data:
            yield from [f"builds/{buildid}/data/{name}", f"builds/{buildid}/data/{name}/value"]
        for s in inv.steps:
            yield from [f"steps/{s['stepid']}", f"steps/{s['stepid']}/logs", f"steps/{s['stepid']}/test_result_sets",
                        f"builds/{s['buildid']}/steps/{s['number']}/logs"]
        for lg in inv.logs:
            yield from [f"logs/{lg['logid']}{sub}" for sub in ("", "/contents", "/raw", "/raw_inline")]
            yield f"steps/{lg['stepid']}/logs/{lg['slug']}/contents"
        for t in inv.result_sets:
            yield from [f"test_result_sets/{t['test_result_setid']}{sub}" for sub in ("", "/results")]

    def reads(self, inv: Inventory) -> list[str]:
        every = [c for name in inv.collections for c in (name, f"{name}?property=*")]
        return [*every, *self.filtered(inv), *self.nested(inv), *self.per_build(inv)]

    @staticmethod
    def heads(inv: Inventory) -> list[str]:
        items = [f"builds/{b}" for b in inv.buildids] + [f"buildsets/{bs['bsid']}" for bs in inv.buildsets]
        items += [f"buildrequests/{r['buildrequestid']}" for r in inv.requests]
        items += [f"logs/{lg['logid']}/contents" for lg in inv.logs]
        return [*inv.collections, "builds?property=*", *items]


class EventRecorder:
    """A websocket client and a server-sent-events client, as one viewer, subscribed to every event.

    ``with flow.recording(user) as rec:`` connects and subscribes both (every
    routing-key length, and a few narrower shapes on top) before the body
    runs, and disconnects after. ``rec.events`` holds ``(door, key, message)``
    for everything received (``door`` is "ws" or "sse"); ``rec.text`` all of
    it as text.
    """

    def __init__(self, flow: Flow, user: str | None) -> None:
        self.flow = flow
        self.user = user
        self.events: list[tuple[str, str, Any]] = []
        self._threads: list[Any] = []

    @property
    def text(self) -> str:
        return json.dumps(self.events)

    def __enter__(self) -> EventRecorder:
        cookie = self.flow.cookie(self.user)
        self._ws = websocket.create_connection(f"ws://127.0.0.1:{self.flow.www_port}/ws", cookie=cookie or None,
                                               timeout=30)
        paths = ALL_EVENTS + SOME_EVENTS
        for n, path in enumerate(paths):
            self._ws.send(json.dumps({"cmd": "startConsuming", "path": path, "_id": n}))
        acks = 0
        while acks < len(paths):
            message = json.loads(self._ws.recv())
            acks += message.get("msg") == "OK"
        self._sse = http.client.HTTPConnection("127.0.0.1", self.flow.www_port, timeout=30)
        self._sse.request("GET", "/sse/listen/" + paths[0], headers={"Cookie": cookie} if cookie else {})
        stream = self._sse.getresponse()
        lines = [stream.readline() for _ in range(3)]  # event: handshake / data: <consumer id> / (blank)
        cid = lines[1].decode().removeprefix("data: ").strip()
        for path in paths[1:]:
            with urllib.request.urlopen(f"{self.flow.url}sse/add/{cid}/{path}", timeout=30) as r:
                r.read()
        self._sse_sock = self._sse.sock
        self._threads = [threading.Thread(target=self._read_ws, daemon=True),
                         threading.Thread(target=self._read_sse, args=(stream,), daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _read_ws(self) -> None:
        self._ws.settimeout(None)
        while True:
            try:
                message = json.loads(self._ws.recv())
            except (websocket.WebSocketException, OSError, ValueError):
                return
            if "k" in message:
                self.events.append(("ws", message["k"], message.get("m")))

    def _read_sse(self, stream: Any) -> None:
        while True:
            try:
                line = stream.readline()
            except (OSError, ValueError, AttributeError, http.client.HTTPException):
                return  # closed by __exit__ (http.client fails in several ways on a socket shut down under it)
            if not line:
                return
            if line.startswith(b"data: "):
                message = json.loads(line[len(b"data: "):])
                self.events.append(("sse", "/".join(message["key"]), message["message"]))

    def __exit__(self, *exc: Any) -> None:
        time.sleep(1)  # let the last events of the body arrive
        self._ws.close()
        try:
            self._sse_sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sse.close()
        for t in self._threads:
            t.join(timeout=30)
