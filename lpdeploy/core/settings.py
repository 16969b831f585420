"""The site file: TOML in, validated and frozen settings out.

This module imports nothing from Buildbot, so the CLI, the tests and the
benchmarks read a site file exactly as the master does. Every problem is
reported as a ``SettingsError`` naming the key (``suite.command``) and what is
wrong with it; ``master.cfg`` turns that into a ``config.error`` so that
``buildbot checkconfig`` prints one line instead of a traceback.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lpdeploy.core.errors import InvalidInput, SettingsError
from lpdeploy.core.freeze_windows import FreezeWindow
from lpdeploy.core.model import Role
from lpdeploy.core.qa import DEFAULT_BUG_PATTERN
from lpdeploy.core.refs import validate_branch, validate_branch_pattern
from lpdeploy.core.validators import server_name, user_name

KNOWN_ROLES = tuple(Role)
_REPO_SCHEMES = ("file", "ssh", "https", "http", "git")


@dataclass(frozen=True)
class Repository:
    url: str  # what git uses; never carries a password (refused when the site file is read)
    poll_interval: int = 60
    timeout: int = 120  # seconds one git call to the upstream (ls-remote, fetch, push) may take

    @property
    def public_url(self) -> str:
        """The URL as shown to everyone (status, change records, forms): without any user name."""
        return public_url(self.url)


def public_url(url: str) -> str:
    """``url`` without its user info (``ssh://git@host/x`` → ``ssh://host/x``); other URLs unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@dataclass(frozen=True)
class Branches:
    devel: str = "devel"
    stable: str = "stable"
    production_devel: str = "production-devel"
    production_stable: str = "production-stable"
    security: str = "security/*"

    @property
    def flow(self) -> tuple[str, ...]:
        """The fixed branches of the flow, in the order revisions travel."""
        return (self.devel, self.stable, self.production_devel, self.production_stable)

    @property
    def production(self) -> tuple[str, str]:
        return (self.production_devel, self.production_stable)


@dataclass(frozen=True)
class Suite:
    command: tuple[str, ...] = ("make", "check")
    timeout: int = 1200  # seconds without output before the suite is killed
    max_time: int = 6 * 3600  # seconds a whole run may take
    shards: int = 1  # 1: run `command`; N > 1: list, partition and run N shards in parallel
    list_command: tuple[str, ...] = ()  # prints the test ids (lines, or a subunit v2 stream)
    run_command: tuple[str, ...] = ()  # runs the ids listed in {id_file}
    results: str = "auto"  # "subunit" (v2 on stdout), "junit" (results_file) or "auto"
    results_file: str | None = None  # JUnit XML written by run_command, relative to the checkout
    rerun_failures: int = 0  # 1: a failing test runs once more, alone; a pass then is flaky, not a failure
    quarantine: tuple[str, ...] = ()  # test ids that run but never fail the gate (reported)

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    @property
    def results_format(self) -> str:
        if self.results != "auto":
            return self.results
        return "junit" if self.results_file else "subunit"

    @property
    def identity(self) -> str:
        """A stable id of "this suite": a tree tested by another command is not tested."""
        what: list[object] = list(self.command)
        if self.sharded:
            what = [list(self.list_command), list(self.run_command), self.results_format]
        digest = hashlib.sha256(json.dumps(what).encode()).hexdigest()
        return "suite-" + digest[:12]


@dataclass(frozen=True)
class Www:
    port: int = 8010
    url: str = "http://localhost:8010/"
    interface: str = "127.0.0.1"


@dataclass(frozen=True)
class Workers:
    port: int = 9989
    interface: str = "127.0.0.1"
    local: int = 1
    password: str = field(default="lpdeploy-local-worker", repr=False)  # never in logs

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"worker-{i}" for i in range(1, self.local + 1))


@dataclass(frozen=True)
class Auth:
    htpasswd: str | None = None
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def users_with(self, role: str) -> tuple[str, ...]:
        return self.roles.get(role, ())


@dataclass(frozen=True)
class Promotion:
    schedule: str | None = None  # cron syntax, local time of the master
    require_qa: bool = False  # promote only the QA'd line: the ``deployable`` revision (``core/qa.py``)


@dataclass(frozen=True)
class QaSettings:
    """``[qa]``: how bug references are found in commit messages, and where they link to."""

    bug_pattern: str = DEFAULT_BUG_PATTERN  # a regular expression; its one group (if any) is the bug number
    bug_url: str | None = None  # e.g. "https://bugs.launchpad.net/bugs/{bug}"


@dataclass(frozen=True)
class Gate:
    # run on the master when a bisection names a new culprit; {revision} {author} {build_url} substituted
    notify_command: tuple[str, ...] = ()


NOTIFY_FIELDS = ("revision", "author", "build_url")


@dataclass(frozen=True)
class DeployOptions:
    soak: int = 0  # seconds to watch the first server (the canary) of a rollout before the others
    inspect_interval: int = 900  # seconds between inspections of the servers' inspect_command; 0: off


@dataclass(frozen=True)
class FreezeSettings:
    windows: tuple[FreezeWindow, ...] = ()  # planned freezes, besides the losa's manual one


@dataclass(frozen=True)
class Mq:
    """The message bus between masters: Buildbot's in-process queue unless ``[mq]`` names a WAMP router.

    With a router (Crossbar), every master sharing the database also shares
    Buildbot's events: a build request made on one master is seen by the one
    holding a free worker. ``realm`` must be the router's realm for Buildbot.
    """

    router_url: str | None = None  # ws://host:port/ws; None: one master, the simple in-process queue
    realm: str = "buildbot"

    @property
    def shared(self) -> bool:
        return self.router_url is not None


@dataclass(frozen=True)
class Cluster:
    """Failover between masters (``[cluster]``; used only with ``[mq]``, i.e. several masters).

    Every master renews a heartbeat in the shared database every ``heartbeat``
    seconds; one silent for ``dead_after`` seconds is taken over by another
    (``lpdeploy.core.failover``): its gate, poller and build requests move
    within about ``dead_after + heartbeat`` seconds of its death.
    """

    heartbeat: int = 10
    dead_after: int = 30


@dataclass(frozen=True)
class Server:
    name: str
    deploy_command: tuple[str, ...]
    auto_deploy: str | None = None
    timeout: int = 600  # seconds a deploy may take before it is killed and reported failed
    check_command: tuple[str, ...] = ()  # run after each deploy; exit 0 = the server works
    check_timeout: int = 300  # seconds one check may take before it is killed and counted failed
    check_retries: int = 0  # further attempts after a failed check, ...
    check_pause: int = 10  # ... each this many seconds after the one before
    inspect_command: tuple[str, ...] = ()  # prints the git tree sha the server really runs (last line)

    def check_argv(self, revision: str) -> list[str]:
        """The check command with ``{server}`` and ``{revision}`` substituted, as whole argv items only."""
        values = {"{server}": self.name, "{revision}": revision}
        return [values.get(a, a) for a in self.check_command]

    def inspect_argv(self) -> list[str]:
        """The inspect command with ``{server}`` substituted, as whole argv items only."""
        return [self.name if a == "{server}" else a for a in self.inspect_command]


@dataclass(frozen=True)
class Webhook:
    """``[webhook]``: the push receiver at ``/plugins/lpdeploy/hook`` (see ``core/webhook.py``)."""

    secret_file: str
    secret: str = field(repr=False)  # the shared HMAC secret, read from secret_file; never in logs


MIN_SECRET = 16  # characters of a webhook secret


@dataclass(frozen=True)
class Settings:
    repository: Repository
    branches: Branches = Branches()
    suite: Suite = Suite()
    www: Www = Www()
    workers: Workers = Workers()
    auth: Auth = Auth()
    promotion: Promotion = Promotion()
    qa: QaSettings = QaSettings()
    gate: Gate = Gate()
    freeze: FreezeSettings = FreezeSettings()
    deploy: DeployOptions = DeployOptions()
    servers: tuple[Server, ...] = ()
    webhook: Webhook | None = None  # None: no [webhook] table, the hook answers 404
    database_url: str = field(default="sqlite:///state.sqlite", repr=False)  # may hold a password
    title: str = "lpdeploy"
    mq: Mq = Mq()
    cluster: Cluster = Cluster()

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    def __repr__(self) -> str:
        # Buildbot logs step arguments; keep the settings' part of that short and secret-free
        return f"Settings({self.repository.public_url!r}, suite={self.suite.identity})"


# the demo's site file, shipped in the repository (``make run`` without LPDEPLOY_CONFIG)
DEMO_SITE = Path(__file__).resolve().parents[2] / "demo" / "site.toml"


def site_file() -> Path:
    """The site file named by ``LPDEPLOY_CONFIG``, or the demo's: what master.cfg and ``make run`` both read."""
    named = os.environ.get("LPDEPLOY_CONFIG")
    return Path(named) if named else DEMO_SITE


def site_overlay() -> Path | None:
    """The overlay named by ``LPDEPLOY_SITE_OVERLAY`` (``make cluster`` sets it per master), or None."""
    named = os.environ.get("LPDEPLOY_SITE_OVERLAY")
    return Path(named) if named else None


def _read_toml(p: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(str(p), f"{what} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(str(p), f"cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(str(p), f"not valid TOML: {e}") from None


def load_settings(path: str | Path, overlay: Path | None = None) -> Settings:
    """Read and validate a site file; raise SettingsError on any problem.

    ``overlay`` (a TOML file of tables) replaces, key by key, the keys it
    names in the site file's tables: ``make cluster`` runs two masters from
    one site file this way, each with its own ports, both on one database and
    router. Relative paths still resolve against the site file.
    """
    p = Path(path)
    raw = _read_toml(p, "site file")
    if overlay is not None:
        for name, table in _read_toml(overlay, "site overlay").items():
            if not isinstance(table, dict) or not isinstance(raw.get(name, {}), dict):
                raise SettingsError(f"{overlay}: {name}", "an overlay holds tables only")
            raw[name] = {**raw.get(name, {}), **table}
    return parse_settings(raw, base=p.parent)


def parse_settings(raw: dict[str, Any], base: Path | None = None) -> Settings:
    """Validate an already-parsed site file (relative paths resolve against ``base``)."""
    r = _Reader(raw, "")
    r.only("repository", "branches", "suite", "www", "workers", "auth", "promotion", "gate", "freeze", "deploy",
           "servers", "database", "mq", "cluster", "title", "webhook", "qa")
    repo = r.table("repository", required=True)
    repo.only("url", "poll_interval", "timeout")
    repository = Repository(
        url=_repo_url(repo.string("url", required=True), base),
        poll_interval=repo.integer("poll_interval", 60, low=1, high=86400),
        timeout=repo.integer("timeout", 120, low=1, high=3600),
    )
    br = r.table("branches")
    br.only("devel", "stable", "production_devel", "production_stable", "security")
    d = Branches()
    branches = Branches(
        devel=br.branch("devel", d.devel),
        stable=br.branch("stable", d.stable),
        production_devel=br.branch("production_devel", d.production_devel),
        production_stable=br.branch("production_stable", d.production_stable),
        security=br.pattern("security", d.security),
    )
    if len(set(branches.flow)) != len(branches.flow):
        raise SettingsError("branches", "devel, stable and the production branches must all differ")
    st = r.table("suite")
    st.only("command", "timeout", "max_time", "shards", "list_command", "run_command", "results",
            "results_file", "rerun_failures", "quarantine")
    suite = Suite(
        command=st.argv("command", Suite.command),
        timeout=st.integer("timeout", Suite.timeout, low=1),
        max_time=st.integer("max_time", Suite.max_time, low=1),
        shards=st.integer("shards", Suite.shards, low=1, high=256),
        list_command=st.argv("list_command", ()),
        run_command=st.argv("run_command", ()),
        results=st.string("results", Suite.results),
        results_file=st.string("results_file", None),
        rerun_failures=st.integer("rerun_failures", Suite.rerun_failures, low=0, high=1),
        quarantine=st.string_list("quarantine"),
    )
    _check_suite(suite)
    w = r.table("www")
    w.only("port", "url", "interface")
    www = Www(
        port=w.integer("port", Www.port, low=1, high=65535),
        url=_www_url(w.string("url", Www.url)),
        interface=w.string("interface", Www.interface),
    )
    wk = r.table("workers")
    wk.only("port", "interface", "local", "password")
    workers = Workers(
        port=wk.integer("port", Workers.port, low=1, high=65535),
        interface=wk.string("interface", Workers.interface),
        local=wk.integer("local", Workers.local, low=1, high=64),
        password=wk.string("password", Workers.password),
    )
    if workers.port == www.port:
        raise SettingsError("workers.port", f"must differ from www.port ({www.port})")
    a = r.table("auth")
    a.only("htpasswd", "roles")
    htpasswd = a.string("htpasswd", None)
    if htpasswd is not None and base is not None:
        htpasswd = str((base / htpasswd).resolve())
    roles_t = a.table("roles")
    roles: dict[str, tuple[str, ...]] = {}
    for role in roles_t.keys():
        if role not in KNOWN_ROLES:
            raise SettingsError(f"auth.roles.{role}", f"unknown role (known: {', '.join(KNOWN_ROLES)})")
        users = roles_t.string_list(role)
        for u in users:
            try:
                user_name(u)
            except InvalidInput:
                raise SettingsError(f"auth.roles.{role}", f"{u!r} is not a valid user name") from None
        roles[role] = users
    pr = r.table("promotion")
    pr.only("schedule", "require_qa")
    require_qa = pr.raw.get("require_qa", False)
    if not isinstance(require_qa, bool):
        raise SettingsError("promotion.require_qa", f"must be true or false, not {require_qa!r}")
    schedule = pr.string("schedule", None)
    if schedule is not None:
        _check_cron("promotion.schedule", schedule)
    g = r.table("gate")
    g.only("notify_command")
    notify = g.argv("notify_command", ())
    for arg in notify:
        for name in re.findall(r"{([^{}]*)}", arg):
            if name not in NOTIFY_FIELDS:
                raise SettingsError("gate.notify_command",
                                    f"unknown placeholder {{{name}}} (known: {', '.join(NOTIFY_FIELDS)})")
    dp = r.table("deploy")
    dp.only("soak", "inspect_interval")
    db = r.table("database")
    db.only("url")
    database_url = db.string("url", Settings.database_url)
    mq = _mq(r.table("mq"), "mq" in r.raw)
    if mq.shared and database_url.startswith("sqlite:"):
        raise SettingsError("database.url", "[mq] is for several masters: they need one shared database "
                                            "server (postgresql://...), not a SQLite file")
    return Settings(
        repository=repository,
        branches=branches,
        suite=suite,
        www=www,
        workers=workers,
        auth=Auth(htpasswd=htpasswd, roles=roles),
        promotion=Promotion(schedule=schedule, require_qa=require_qa),
        qa=_qa(r.table("qa")),
        gate=Gate(notify_command=notify),
        freeze=_freeze(r),
        deploy=DeployOptions(soak=dp.integer("soak", DeployOptions.soak, low=0, high=86400),
                             inspect_interval=dp.integer("inspect_interval", DeployOptions.inspect_interval,
                                                         low=0, high=7 * 86400)),
        servers=_servers(r),
        webhook=_webhook(r, base),
        database_url=database_url,
        title=r.string("title", Settings.title),
        mq=mq,
        cluster=_cluster(r.table("cluster")),
    )


def _cluster(t: _Reader) -> Cluster:
    """``[cluster]``: the heartbeat period and the silence after which another master takes over."""
    t.only("heartbeat", "dead_after")
    heartbeat = t.integer("heartbeat", Cluster.heartbeat, low=1, high=600)
    dead_after = t.integer("dead_after", Cluster.dead_after, low=2, high=3600)
    if dead_after < 2 * heartbeat:
        # one late renewal (a slow database, a busy reactor) must not get a live master taken over
        raise SettingsError("cluster.dead_after", f"{dead_after} must be at least twice cluster.heartbeat "
                                                  f"({heartbeat}): one late heartbeat is not a death")
    return Cluster(heartbeat=heartbeat, dead_after=dead_after)


_REALM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _mq(t: _Reader, given: bool) -> Mq:
    """``[mq]``: absent means one master and Buildbot's simple queue; present, it must name the router."""
    t.only("router_url", "realm")
    if not given:
        return Mq()
    url = t.string("router_url", required=True)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise SettingsError("mq.router_url", f"{url!r} is not a valid URL") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or "@" in parts.netloc or any(
            c.isspace() for c in url):
        raise SettingsError("mq.router_url", f"{url!r}: a ws:// or wss:// URL of the router, e.g. "
                                             "\"ws://127.0.0.1:8080/ws\" (no user or password)")
    realm = t.string("realm", Mq.realm)
    if not _REALM.fullmatch(realm):
        raise SettingsError("mq.realm", f"{realm!r}: letters, digits, '_', '.', '-' (at most 100)")
    return Mq(router_url=url, realm=realm)


def _check_suite(suite: Suite) -> None:
    if suite.results not in ("auto", "subunit", "junit"):
        raise SettingsError("suite.results", f"{suite.results!r}: use \"subunit\", \"junit\" or \"auto\"")
    if suite.results_format == "junit" and not suite.results_file:
        raise SettingsError("suite.results_file", "junit results need the file the run command writes")
    if suite.results_file and (suite.results_file.startswith(("/", "-")) or ".." in suite.results_file.split("/")):
        raise SettingsError("suite.results_file", f"{suite.results_file!r}: a path inside the checkout")
    if len(set(suite.quarantine)) != len(suite.quarantine):
        raise SettingsError("suite.quarantine", "a test id is listed twice")
    if not suite.sharded:
        # test ids exist only in a sharded run: one command's exit status names no test
        if suite.rerun_failures:
            raise SettingsError("suite.rerun_failures", "needs a sharded suite (shards > 1): it re-runs test ids")
        if suite.quarantine:
            raise SettingsError("suite.quarantine", "needs a sharded suite (shards > 1): it names test ids")
        return
    if not suite.list_command:
        raise SettingsError("suite.list_command", f"needed when shards = {suite.shards}")
    if not suite.run_command:
        raise SettingsError("suite.run_command", f"needed when shards = {suite.shards}")
    if not any("{id_file}" in a for a in suite.run_command):
        raise SettingsError("suite.run_command", "must contain {id_file} (the file listing the ids to run)")


def _servers(r: _Reader) -> tuple[Server, ...]:
    raw = r.raw.get("servers", [])
    if not isinstance(raw, list):
        raise SettingsError("servers", "must be an array of tables ([[servers]])")
    servers = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        key = f"servers[{i}]"
        if not isinstance(item, dict):
            raise SettingsError(key, "must be a table")
        s = _Reader(item, key)
        s.only("name", "deploy_command", "auto_deploy", "timeout", "check_command", "check_timeout",
               "check_retries", "check_pause", "inspect_command")
        name = s.string("name", required=True)
        try:
            server_name(name)
        except InvalidInput as e:
            raise SettingsError(f"{key}.name", f"{name!r}: {e.problem}") from None
        if name in seen:
            raise SettingsError(f"{key}.name", f"server {name!r} is defined twice")
        seen.add(name)
        auto = s.string("auto_deploy", None)
        if auto not in (None, "stable"):
            raise SettingsError(f"{key}.auto_deploy", "the only supported value is \"stable\"")
        check = s.argv("check_command", ())
        _whole_items(f"{key}.check_command", check, _PLACEHOLDERS)
        inspect = s.argv("inspect_command", ())
        if any("{revision}" in a for a in inspect):
            raise SettingsError(f"{key}.inspect_command", "takes {server} only: it says what the server runs")
        _whole_items(f"{key}.inspect_command", inspect, ("{server}",))
        needs = {"check_retries": bool(check), "check_pause": bool(check), "check_timeout": bool(check or inspect)}
        for option, usable in needs.items():
            if option in s.raw and not usable:
                raise SettingsError(f"{key}.{option}", "only with a check_command"
                                    + (" or an inspect_command" if option == "check_timeout" else ""))
        servers.append(Server(name=name, deploy_command=s.argv("deploy_command", required=True),
                              auto_deploy=auto, timeout=s.integer("timeout", Server.timeout, low=1),
                              check_command=check,
                              check_timeout=s.integer("check_timeout", Server.check_timeout, low=1, high=86400),
                              check_retries=s.integer("check_retries", Server.check_retries, low=0, high=100),
                              check_pause=s.integer("check_pause", Server.check_pause, low=0, high=3600),
                              inspect_command=inspect))
    return tuple(servers)


def _qa(t: _Reader) -> QaSettings:
    """``[qa]``: a bug pattern that compiles and has at most one group; a bug URL with ``{bug}``."""
    t.only("bug_pattern", "bug_url")
    pattern = t.string("bug_pattern", DEFAULT_BUG_PATTERN)
    try:
        groups = re.compile(pattern).groups
    except re.error as e:
        raise SettingsError("qa.bug_pattern", f"{pattern!r} is not a regular expression: {e}") from None
    if groups > 1:
        raise SettingsError("qa.bug_pattern", f"{pattern!r} has {groups} groups: use one, around the bug number "
                                              "(other groups as (?:...))")
    url = t.string("bug_url", None)
    if url is not None and ("{bug}" not in url or urlsplit(url).scheme not in ("http", "https")):
        raise SettingsError("qa.bug_url", f"{url!r}: an http(s) URL containing {{bug}}, e.g. "
                                          "\"https://bugs.launchpad.net/bugs/{bug}\"")
    return QaSettings(bug_pattern=pattern, bug_url=url)


def _webhook(r: _Reader, base: Path | None) -> Webhook | None:
    """``[webhook]``: read its secret now, so checkconfig reports a missing or weak one."""
    if "webhook" not in r.raw:
        return None
    t = r.table("webhook")
    t.only("secret_file")
    path = Path(t.string("secret_file", required=True))
    if base is not None:
        path = (base / path).resolve()
    key = "webhook.secret_file"
    try:
        mode = path.stat().st_mode
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SettingsError(key, f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(key, f"{path}: cannot read: {e}") from None
    if mode & 0o077:
        # like ssh with a private key: a secret others may read is no secret
        raise SettingsError(key, f"{path}: readable or writable by others (mode {mode & 0o777:o}); chmod 600 it")
    if len(secret) < MIN_SECRET or not secret.isprintable() or any(c.isspace() for c in secret):
        raise SettingsError(key, f"{path}: the secret must be one line of at least {MIN_SECRET} printable "
                                 "characters without spaces")
    return Webhook(secret_file=str(path), secret=secret)


_PLACEHOLDERS = ("{server}", "{revision}")


def _whole_items(key: str, argv: tuple[str, ...], placeholders: tuple[str, ...]) -> None:
    """"--rev={revision}" would reach the command as written: say so when the site file is read."""
    for arg in argv:
        if arg not in placeholders and any(p in arg for p in _PLACEHOLDERS):
            raise SettingsError(key, f"{arg!r}: {', '.join(placeholders)} substituted only as whole items; "
                                     "make them items of their own")


def _freeze(r: _Reader) -> FreezeSettings:
    fr = r.table("freeze")
    fr.only("windows")
    raw = fr.raw.get("windows", [])
    if not isinstance(raw, list):
        raise SettingsError("freeze.windows", "must be an array of tables ([[freeze.windows]])")
    windows = []
    for i, item in enumerate(raw):
        key = f"freeze.windows[{i}]"
        if not isinstance(item, dict):
            raise SettingsError(key, "must be a table")
        windows.append(_window(_Reader(item, key)))
    return FreezeSettings(windows=tuple(windows))


def _window(w: _Reader) -> FreezeWindow:
    """A recurring window (cron + duration [+ timezone]) or a one-shot one (start + end), with a reason."""
    w.only("reason", "cron", "duration", "timezone", "start", "end")
    reason = w.string("reason", required=True)
    if "cron" in w.raw:
        for one_shot in ("start", "end"):
            if one_shot in w.raw:
                raise SettingsError(w.key(one_shot), "a window has either cron + duration or start + end, not both")
        cron = w.string("cron")
        _check_cron(w.key("cron"), cron)
        if "duration" not in w.raw:
            raise SettingsError(w.key("duration"), "missing: how long each window lasts (e.g. \"4h\" or 14400)")
        timezone = w.string("timezone", "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(w.key("timezone"), f"{timezone!r} is not a known time zone (e.g. \"Europe/London\")"
                                ) from None
        return FreezeWindow(reason, cron=cron, duration=_duration(w.key("duration"), w.raw["duration"]),
                            timezone=timezone)
    for recurring in ("duration", "timezone"):
        if recurring in w.raw:
            raise SettingsError(w.key(recurring), "only for a recurring window (with cron)")
    if "start" not in w.raw:
        raise SettingsError(w.key("start"), "missing: a window needs cron + duration or start + end")
    start = _instant(w.key("start"), w.raw["start"])
    if "end" not in w.raw:
        raise SettingsError(w.key("end"), "missing: when the window starting at start ends")
    end = _instant(w.key("end"), w.raw["end"])
    if end <= start:
        raise SettingsError(w.key("end"), f"{end.isoformat()} is not after start ({start.isoformat()})")
    return FreezeWindow(reason, start=start, end=end)


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
MAX_WINDOW = 31 * 86400


def _duration(key: str, value: Any) -> int:
    """Seconds, from an integer (seconds) or a string such as "4h", "1h30m", "2d"."""
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value and (m := _DURATION.fullmatch(value.strip())) and any(m.groups()):
        d, h, mi, s = (int(g or 0) for g in m.groups())
        seconds = ((d * 24 + h) * 60 + mi) * 60 + s
    if seconds is None:
        raise SettingsError(key, f"{value!r}: give seconds (14400) or a span such as \"4h\" or \"1h30m\"")
    if not 0 < seconds <= MAX_WINDOW:
        raise SettingsError(key, f"{value!r}: must be more than 0 and at most 31 days")
    return seconds


def _instant(key: str, value: Any) -> dt.datetime:
    """An ISO 8601 date-time with a UTC offset (a TOML date-time or a string); a naive time is refused."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise SettingsError(key, f"{value!r} is not an ISO 8601 date-time (e.g. 2026-12-24T00:00:00+01:00)"
                                ) from None
    if not isinstance(value, dt.datetime):
        raise SettingsError(key, "must be an ISO 8601 date-time with an offset (e.g. 2026-12-24T00:00:00+01:00)")
    if value.tzinfo is None or value.utcoffset() is None:
        raise SettingsError(key, f"{value.isoformat()} has no UTC offset: write it as "
                                 f"{value.isoformat()}+00:00 or with your own offset")
    return value


def _repo_url(url: str, base: Path | None) -> str:
    if "://" not in url and not url.startswith("-"):
        # a local path, absolute or relative to the site file, means a file:// URL
        path = Path(url) if base is None else base / url
        return path.resolve().as_uri()
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        raise SettingsError("repository.url", "not a valid URL") from None
    if password is not None or (user is not None and parts.scheme != "ssh"):
        # the URL is shown to everyone (status, change records, forms): never echo it here either
        raise SettingsError("repository.url", "must not carry a password or token (user info is only allowed as "
                                              "the user of an ssh:// URL); give git its credentials with a "
                                              "credential helper or an SSH key, see README")
    if parts.scheme not in _REPO_SCHEMES:
        raise SettingsError("repository.url", f"{url!r}: use a file://, ssh:// or https:// URL")
    if url.startswith("-") or any(c.isspace() for c in url):
        raise SettingsError("repository.url", f"{url!r}: must not start with '-' or contain spaces")
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise SettingsError("repository.url", f"{url!r}: a file:// URL takes no host; use file:///absolute/path")
    if parts.scheme == "file" and not parts.path.startswith("/"):
        raise SettingsError("repository.url", f"{url!r}: a file:// URL needs an absolute path")
    return url


def _www_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise SettingsError("www.url", f"{url!r}: must be an http:// or https:// URL")
    return url if url.endswith("/") else url + "/"


def _check_cron(key: str, expr: str) -> None:
    import croniter  # a Buildbot dependency; imported here so settings stay light

    if len(expr.split()) != 5 or not croniter.croniter.is_valid(expr):
        raise SettingsError(key, f"{expr!r} is not a 5-field cron expression (e.g. \"0 6 * * 1-5\")")


class _Reader:
    """Typed access to one TOML table, reporting problems by dotted key."""

    def __init__(self, raw: dict[str, Any], prefix: str) -> None:
        self.raw = raw
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def keys(self) -> list[str]:
        return list(self.raw)

    def only(self, *allowed: str) -> None:
        for k in self.raw:
            if k not in allowed:
                raise SettingsError(self.key(k), f"unknown key (known here: {', '.join(allowed)})")

    def table(self, name: str, required: bool = False) -> _Reader:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise SettingsError(self.key(name), "missing table")
            return _Reader({}, self.key(name))
        if not isinstance(value, dict):
            raise SettingsError(self.key(name), "must be a table")
        return _Reader(value, self.key(name))

    def string(self, name: str, default: Any = None, required: bool = False) -> Any:
        if name not in self.raw:
            if required:
                raise SettingsError(self.key(name), "missing")
            return default
        value = self.raw[name]
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(self.key(name), "must be a non-empty string")
        return value

    def integer(self, name: str, default: int, low: int | None = None, high: int | None = None) -> int:
        value = self.raw.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise SettingsError(self.key(name), f"must be an integer, not {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise SettingsError(self.key(name), f"{value} is out of range [{low}, {high}]")
        return value

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise SettingsError(self.key(name), "must be a list of non-empty strings")
        return tuple(value)

    def argv(self, name: str, default: tuple[str, ...] = (), required: bool = False) -> tuple[str, ...]:
        if name not in self.raw:
            if required:
                raise SettingsError(self.key(name), "missing")
            return default
        value = self.raw[name]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise SettingsError(self.key(name), "must be a non-empty list of strings (an argv, not a shell line)")
        if not value[0]:
            raise SettingsError(self.key(name), "the program name must not be empty")
        return tuple(value)

    def branch(self, name: str, default: str) -> str:
        value = self.string(name, default)
        try:
            return validate_branch(value)
        except InvalidInput as e:
            raise SettingsError(self.key(name), e.problem) from None

    def pattern(self, name: str, default: str) -> str:
        value = self.string(name, default)
        try:
            return validate_branch_pattern(value)
        except InvalidInput as e:
            raise SettingsError(self.key(name), e.problem) from None
