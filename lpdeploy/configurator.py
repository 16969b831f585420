"""Settings → a Buildbot configuration: workers, poller, schedulers, builders, web, authz.

``master.cfg`` calls ``configure(c)``; everything the flow needs comes from
the site file. A bad site file becomes one ``config.error`` line naming the
key, which ``buildbot checkconfig`` prints without a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from buildbot import config
from buildbot.config.builder import BuilderConfig
from buildbot.locks import MasterLock, WorkerLock
from buildbot.process.factory import BuildFactory
from buildbot.process.properties import Interpolate, Property
from buildbot.schedulers.forcesched import (
    BooleanParameter,
    CodebaseParameter,
    FixedParameter,
    ForceScheduler,
    IntParameter,
    StringParameter,
    ValidationError,
)
from buildbot.schedulers.triggerable import Triggerable
from buildbot.steps.shell import ShellCommand
from buildbot.steps.transfer import FileUpload
from buildbot.worker import Worker
from buildbot.www.auth import NoAuth

from lpdeploy.core import properties as prop
from lpdeploy.core import validators
from lpdeploy.core.errors import InvalidInput, SettingsError
from lpdeploy.core.model import FlowKind, JobKind, Role
from lpdeploy.core.settings import Settings, load_settings, site_file, site_overlay
from lpdeploy.master import db_outage, lost_worker
from lpdeploy.master.changes import FlowPoller
from lpdeploy.master.cowboy_forms import PATCH_FIELD, CowboyForceScheduler
from lpdeploy.master.failover import FailoverService
from lpdeploy.master.schedulers import (
    AutoDeployScheduler,
    CronPromotion,
    GateScheduler,
    InspectScheduler,
    SecurityScheduler,
)
from lpdeploy.master.security_forms import SecurityForceScheduler
from lpdeploy.master.security_jobs import BRANCH_FIELD, REASONS
from lpdeploy.master.steps.admin import AdminAction
from lpdeploy.master.steps.bisect import Bisect
from lpdeploy.master.steps.deploy import PlanDeploy, RunDeploys, deploy_needed
from lpdeploy.master.steps.deploy_lease import ReleaseDeployLease
from lpdeploy.master.steps.flow import Checkout, Decide, MoveBranches, RunSuite, suite_needed
from lpdeploy.master.steps.inspect import InspectServers
from lpdeploy.master.steps.security import MergeBack, PrepareSecurity, PromoteSecurity
from lpdeploy.master.steps.shards import (
    ID_FILE,
    LIST_OUT,
    LIST_PATH,
    RESULTS_OUT,
    RUN_STEP,
    SECURITY_SHARD_SCHEDULER,
    SHARD_RESULTS_PATH,
    SHARD_SCHEDULER,
    CollectShard,
    RunShards,
    ShardCheckout,
    ShardIds,
    to_file,
)
from lpdeploy.web import eventguard, hook, restguard
from lpdeploy.web.authz import make_authz
from lpdeploy.web.dashboard import make_app
from lpdeploy.web.login import BcryptHtpasswdAuth
from lpdeploy.web.www import SiteService

GATE_BUILDER = "lpdeploy-gate"
PROMOTE_BUILDER = "lpdeploy-promote"
DEPLOY_BUILDER = "lpdeploy-deploy"
ADMIN_BUILDER = "lpdeploy-admin"
SECURITY_BUILDER = "lpdeploy-security"
SHARD_BUILDER = "lpdeploy-shard"
SECURITY_SHARD_BUILDER = "lpdeploy-security-shard"  # shards of security builds: embargoed as a whole
MERGE_BACK_BUILDER = "lpdeploy-merge-back"
INSPECT_BUILDER = "lpdeploy-inspect"
PROMOTE_SCHEDULER = "promote"

# the web server's read doors: REST written from the reactor, embargoed items out of lists and events;
# installed at import, before Buildbot's www service builds its site (see restguard, eventguard)
restguard.install()
eventguard.install()
hook.install()  # the webhook's bodies: at most 1 MiB kept



def configure(c: dict[str, Any], path: Path | None = None) -> Settings | None:
    """Fill the BuildmasterConfig dict ``c`` from the site file; report problems via config.error."""
    try:
        settings = load_settings(path or site_file(), overlay=site_overlay())
    except SettingsError as e:
        config.error(f"lpdeploy site file: {e}")
        return None
    apply(c, settings)
    return settings


def _suite_steps(settings: Settings, kind: FlowKind, doStepIf: Any = True) -> list[Any]:
    """The full suite: one command, or listed, partitioned and run as shards."""
    suite = settings.suite
    if not suite.sharded:
        return [RunSuite(settings=settings, doStepIf=doStepIf, haltOnFailure=True)]
    return [
        ShellCommand(name="list tests", command=to_file(LIST_OUT, suite.list_command), doStepIf=doStepIf,
                     haltOnFailure=True, logEnviron=False, timeout=suite.timeout),
        FileUpload(name="upload test list", workersrc=LIST_OUT, masterdest=Interpolate(LIST_PATH),
                   doStepIf=doStepIf, haltOnFailure=True),
        RunShards(settings=settings, kind=kind, list_path=Interpolate(LIST_PATH), doStepIf=doStepIf,
                  haltOnFailure=True),
    ]


def _suite_parent_locks(settings: Settings) -> list[Any]:
    """With shards, at most one build that may wait for shards (gate, promote, security) per worker.

    A worker has two build slots when the suite is sharded: one for such a
    parent, one for a shard (``lpdeploy-shard``'s lock). Without this lock two
    parents (a devel tip and a bisection probe, or a gate and a promote build)
    could take both slots of a worker, and with every worker so filled their
    shards would never start: each parent would wait for its shards until the
    watch bounds (hours) gave them up and the tree was recorded as failed.
    Buildbot starts a build on a worker only when its locks are free there,
    so a queued parent waits for a worker whose parent slot is free.
    """
    if not settings.suite.sharded:
        return []
    return [WorkerLock("lpdeploy-suite-parent").access("exclusive")]


def _shard_factory(settings: Settings, kind: FlowKind) -> BuildFactory:
    """One shard: its revision and test ids come from the database (see ``shard_steps``), not properties."""
    suite = settings.suite
    run_argv = tuple(a.replace("{id_file}", ID_FILE) for a in suite.run_command)
    subunit = suite.results_format == "subunit"
    f = BuildFactory()
    f.addStep(ShardCheckout(settings=settings, haltOnFailure=True))
    f.addStep(ShardIds(haltOnFailure=True))
    f.addStep(ShellCommand(name=RUN_STEP, command=to_file(RESULTS_OUT, run_argv) if subunit else list(run_argv),
                           logEnviron=False, timeout=suite.timeout, maxTime=suite.max_time))
    f.addStep(FileUpload(name="upload results", workersrc=RESULTS_OUT if subunit else suite.results_file,
                         masterdest=Interpolate(SHARD_RESULTS_PATH), alwaysRun=True))
    f.addStep(CollectShard(settings=settings, kind=kind, results_path=Interpolate(SHARD_RESULTS_PATH)))
    return f


def _flow_factory(settings: Settings, kind: FlowKind, branch: str) -> BuildFactory:
    f = BuildFactory()
    f.addStep(Decide(settings=settings, kind=kind, haltOnFailure=True))
    f.addStep(Checkout(repourl=settings.repository.url, branch=branch, doStepIf=suite_needed,
                       haltOnFailure=True))
    for step in _suite_steps(settings, kind, doStepIf=suite_needed):
        f.addStep(step)
    f.addStep(MoveBranches(settings=settings, kind=kind, haltOnFailure=True))
    if kind is FlowKind.GATE:
        f.addStep(Bisect(settings=settings))
    return f


def _deploy_factory(settings: Settings) -> BuildFactory:
    f = BuildFactory()
    f.addStep(PlanDeploy(settings=settings, haltOnFailure=True))
    f.addStep(Checkout(repourl=settings.repository.url, branch=Property(prop.CHECKOUT_BRANCH),
                       doStepIf=deploy_needed, haltOnFailure=True))
    f.addStep(RunDeploys(settings=settings, doStepIf=deploy_needed))
    f.addStep(ReleaseDeployLease())  # runs always: the next deploy, on any master, may go
    return f


def _inspect_factory(settings: Settings) -> BuildFactory:
    f = BuildFactory()
    f.addStep(InspectServers(settings=settings))
    return f


def _admin_factory(settings: Settings) -> BuildFactory:
    f = BuildFactory()
    f.addStep(AdminAction(settings=settings, haltOnFailure=True))
    return f


def _fixed_codebase(settings: Settings, branch: str) -> CodebaseParameter:
    """A codebase with no free-text field: nothing typed in a form reaches git through it."""
    return CodebaseParameter(
        "",
        branch=FixedParameter(name="branch", default=branch),
        revision=FixedParameter(name="revision", default=""),
        repository=FixedParameter(name="repository", default=settings.repository.public_url),
        project=FixedParameter(name="project", default=""),
    )


def _security_factory(settings: Settings) -> BuildFactory:
    f = BuildFactory()
    f.addStep(PrepareSecurity(settings=settings, haltOnFailure=True))
    f.addStep(Checkout(repourl=settings.repository.url, branch=Property(prop.CHECKOUT_BRANCH),
                       haltOnFailure=True))
    for step in _suite_steps(settings, FlowKind.SECURITY):
        f.addStep(step)
    f.addStep(PromoteSecurity(settings=settings))
    return f


def _merge_back_factory(settings: Settings) -> BuildFactory:
    f = BuildFactory()
    f.addStep(MergeBack(settings=settings, haltOnFailure=True))
    return f


def pattern_regex(pattern: str) -> str:
    """A form regex accepting exactly the branch names the security glob matches."""
    body = "".join("[A-Za-z0-9._+-]+" if c == "*" else re.escape(c) for c in pattern)
    return r"^(?=.{1,200}\Z)" + body + r"\Z"  # bounded: an oversized name is a 400, not a build


def _security_schedulers(settings: Settings) -> list[Any]:
    """The security-build and merge-back forms and the watcher of security branches.

    All three queue jobs (``security_jobs``): their buildsets carry only a
    token, never the branch or who asked. The branch field's regex is what the
    web form shows; ``SecurityForceScheduler.force`` applies the full rule.
    """
    pattern = settings.branches.security
    branch = StringParameter(name=BRANCH_FIELD, label=f"Security branch ({pattern}, must exist)",
                             default="", size=50, regex=pattern_regex(pattern), required=True)
    return [
        SecurityForceScheduler(name="security-build", builderNames=[SECURITY_BUILDER], settings=settings,
                               kind=JobKind.SECURITY_BUILD, label="Security build",
                               buttonName="Test and promote the fix",
                               reason=FixedParameter(name="reason", default=REASONS[JobKind.SECURITY_BUILD]),
                               priority=NoPriority(name="priority"), codebases=[_fixed_codebase(settings, "")],
                               properties=[branch]),
        SecurityForceScheduler(name="merge-back", builderNames=[MERGE_BACK_BUILDER], settings=settings,
                               kind=JobKind.MERGE_BACK, label="Merge a fix back", buttonName="Merge back into devel",
                               reason=FixedParameter(name="reason", default=REASONS[JobKind.MERGE_BACK]),
                               priority=NoPriority(name="priority"), codebases=[_fixed_codebase(settings, "")],
                               properties=[branch]),
        SecurityScheduler(name="lpdeploy-security", builderNames=[SECURITY_BUILDER], settings=settings,
                          merge_back_builder=MERGE_BACK_BUILDER),
    ]


class CheckedText(StringParameter):
    """A one-line form field whose value must pass an lpdeploy rule (``validators``).

    Buildbot calls ``parse_from_arg`` while it validates a force request;
    the ``ValidationError`` raised here is collected and the JSON-RPC API
    answers 400 with ``{"<field>": "<the rule broken>"}``, and nothing is
    scheduled. The rule does all the checking: Buildbot's own ``regex`` and
    ``maxsize`` are not used, because they fail with a 500 on a JSON value
    that is not a string.
    """

    def __init__(self, name: str, label: str, rule: Callable[[object], str], **kwargs: Any) -> None:
        super().__init__(name=name, label=label, **kwargs)
        self.rule = rule

    def parse_from_arg(self, s: object) -> str:
        try:
            return self.rule(s)
        except InvalidInput as e:
            raise ValidationError(str(e)) from None


class NoPriority(IntParameter):
    """The force forms' priority field, fixed at 0: the flow's builds are ordered by their builders."""

    hide = True

    def getFromKwargs(self, kwargs: dict[str, Any]) -> int:
        return 0


def _reason_field(default: str) -> CheckedText:
    """Buildbot's own reason field (the buildset's reason), bounded by the free-text rule."""
    return CheckedText("reason", "Reason", lambda v: validators.reason(v, required=False) or default,
                       default=default, size=60)


def _text(name: str, label: str, rule: Callable[[object], str], required: bool = False,
          size: int = 60) -> CheckedText:
    return CheckedText(name, label, rule, default="", size=size, required=required)


def _reason_text(name: str, label: str, what: str, required: bool = False) -> CheckedText:
    return _text(name, label, lambda v: validators.reason(v, what, required=required), required=required)


def _revision_text(name: str, label: str, what: str) -> CheckedText:
    return _text(name, label, lambda v: validators.optional_revision(v, what), size=40)


def _servers_text(settings: Settings, label: str, required: bool = False) -> CheckedText:
    known = [s.name for s in settings.servers]
    return _text("servers", label, required=required,
                 rule=lambda v: " ".join(validators.server_names(v, known=known, required=required)))


def _force(name: str, builder: str, label: str, codebase: CodebaseParameter, params: list[Any],
           button: str | None = None, cls: type[ForceScheduler] = ForceScheduler) -> ForceScheduler:
    """A force scheduler of the flow: every field it shows is fixed or checked by a rule."""
    return cls(name=name, builderNames=[builder], label=label, buttonName=button or label,
                          reason=_reason_field(f"lpdeploy {name}"), priority=NoPriority(name="priority"),
                          codebases=[codebase], properties=params)


def _admin_scheduler(settings: Settings, action: str, label: str, params: list[Any]) -> ForceScheduler:
    return _force(action, ADMIN_BUILDER, label, _fixed_codebase(settings, settings.branches.production_stable),
                  [FixedParameter(name=prop.ACTION, default=action), *params],
                  cls=CowboyForceScheduler if action == "cowboy-add" else ForceScheduler)


def _deploy_schedulers(settings: Settings) -> list[Any]:
    names = ", ".join(s.name for s in settings.servers) or "none configured"
    b = settings.branches
    scheds: list[Any] = [
        _force("deploy", DEPLOY_BUILDER, f"Deploy {b.production_stable}",
               _fixed_codebase(settings, b.production_stable), button="Deploy", params=[
                   _servers_text(settings, f"Servers (empty: all of {names})"),
                   _revision_text("target_revision", f"Revision on {b.production_stable} (full sha; empty: its tip)",
                                  "target revision"),
                   BooleanParameter(name="override_cowboys", label="Deploy over cowboys", default=False),
                   _reason_text("override_reason", "Why override (required with the box above)",
                                "override reason"),
               ]),
        _admin_scheduler(settings, "cowboy-add", "Record a cowboy", [
            _servers_text(settings, f"Servers ({names})", required=True),
            _reason_text("cowboy_reason", "What was patched by hand, and why", "cowboy reason", required=True),
            _revision_text("fixed_by", "Commit with the real fix (full sha, optional)", "fixed-by revision"),
            _text(PATCH_FIELD, "The patch applied by hand (git diff output, optional; never shown to viewers)",
                  validators.patch),
        ]),
        _admin_scheduler(settings, "cowboy-remove", "Remove a cowboy", [
            _text("cowboy_id", "Cowboy id", lambda v: str(validators.cowboy_id(v)), required=True, size=10),
            _reason_text("remove_reason", "Why", "remove reason"),
        ]),
        _admin_scheduler(settings, "freeze", "Freeze", [
            _reason_text("freeze_reason", "Why promotions and deploys stop", "freeze reason", required=True),
        ]),
        _admin_scheduler(settings, "thaw", "Thaw", []),
    ]
    if settings.deploy.inspect_interval and any(s.inspect_command for s in settings.servers):
        scheds.append(InspectScheduler(name="lpdeploy-inspect", builderNames=[INSPECT_BUILDER], settings=settings))
    if any(s.auto_deploy for s in settings.servers):
        scheds.append(AutoDeployScheduler(name="lpdeploy-auto-deploy", builderNames=[DEPLOY_BUILDER],
                                          settings=settings))
    return scheds


def _message_queue(c: dict[str, Any], settings: Settings) -> None:
    """``[mq]`` set: several masters, one database, Buildbot's events over the WAMP router.

    Without it Buildbot keeps its defaults (the in-process queue, one master).
    ``multiMaster`` only relaxes Buildbot's single-master config checks and
    tells the web UI (which then shows each build's master); that schedulers
    and pollers run on one master at a time Buildbot does in any case.
    """
    if settings.mq.router_url is None:
        return
    c["mq"] = {"type": "wamp", "router_url": settings.mq.router_url, "realm": settings.mq.realm,
               "wamp_debug_level": "error"}
    c["multiMaster"] = True
    # heartbeats and take-over in seconds ([cluster]); Buildbot alone moves a dead master's work after 10-15 min
    c.setdefault("services", []).append(FailoverService(name="lpdeploy-failover", cluster=settings.cluster))


def apply(c: dict[str, Any], settings: Settings) -> None:
    """Build every Buildbot object the flow needs from validated settings."""
    lost_worker.install()  # Buildbot 4.3 wedges a build whose worker is lost while it prepares
    db_outage.install()  # ... and every build that writes while PostgreSQL restarts
    b = settings.branches
    workers = list(settings.workers.names)
    c["title"] = settings.title
    c["buildbotURL"] = settings.www.url
    c["buildbotNetUsageData"] = None
    c["db"] = {"db_url": settings.database_url}
    _message_queue(c, settings)
    c["protocols"] = {"pb": {"port": f"tcp:{settings.workers.port}:interface={settings.workers.interface}"}}
    # sharded: a worker runs its parent build and one shard at once (parents wait for their shards)
    max_builds = 2 if settings.suite.sharded else 1
    parents = _suite_parent_locks(settings)
    c["workers"] = [Worker(name, settings.workers.password, max_builds=max_builds) for name in workers]
    c["change_source"] = [FlowPoller(name="lpdeploy-poller", settings=settings)]
    c.setdefault("services", []).append(SiteService(name="lpdeploy", settings=settings))
    c["builders"] = [
        BuilderConfig(name=GATE_BUILDER, workernames=workers, collapseRequests=False, locks=parents,
                      factory=_flow_factory(settings, FlowKind.GATE, b.devel),
                      description=f"{b.devel} → {b.stable}: full suite, then fast-forward"),
        BuilderConfig(name=PROMOTE_BUILDER, workernames=workers, collapseRequests=False, locks=parents,
                      factory=_flow_factory(settings, FlowKind.PROMOTE, b.stable),
                      description=f"{b.stable} → {' + '.join(b.production)}: no re-test when tested"),
        BuilderConfig(name=DEPLOY_BUILDER, workernames=workers, collapseRequests=False,
                      factory=_deploy_factory(settings),
                      # one deploy at a time: two rollouts must never race on one server; the lock
                      # serialises this master's deploys, the deploy lease (steps/deploy_lease) all masters'
                      locks=[MasterLock("lpdeploy-deploy").access("exclusive")],
                      description=f"{b.production_stable} → servers, never over a cowboy"),
        BuilderConfig(name=ADMIN_BUILDER, workernames=workers, collapseRequests=False,
                      factory=_admin_factory(settings),
                      description="cowboys and freeze: the losa's bookkeeping"),
        BuilderConfig(name=SECURITY_BUILDER, workernames=workers, collapseRequests=False, locks=parents,
                      factory=_security_factory(settings),
                      description="security fixes: full suite, then straight to production (embargoed)"),
        BuilderConfig(name=MERGE_BACK_BUILDER, workernames=workers, collapseRequests=False,
                      factory=_merge_back_factory(settings),
                      description="merge released security fixes back into devel (embargoed)"),
    ]
    if settings.deploy.inspect_interval and any(s.inspect_command for s in settings.servers):
        c["builders"].append(BuilderConfig(
            name=INSPECT_BUILDER, workernames=workers, collapseRequests=False, factory=_inspect_factory(settings),
            description="what the servers really run: unrecorded changes block their rollouts"))
    if settings.suite.sharded:
        one_shard_per_worker = WorkerLock("lpdeploy-shard")
        for name, what, kind in ((SHARD_BUILDER, "a suite run", FlowKind.GATE),
                                 (SECURITY_SHARD_BUILDER, "a security build", FlowKind.SECURITY)):
            c["builders"].append(BuilderConfig(
                name=name, workernames=workers, collapseRequests=False, factory=_shard_factory(settings, kind),
                locks=[one_shard_per_worker.access("exclusive")],
                description=f"one of the {settings.suite.shards} shards of {what}"))
    c["schedulers"] = [
        GateScheduler(name="lpdeploy-gate", builderNames=[GATE_BUILDER], settings=settings),
        _force(PROMOTE_SCHEDULER, PROMOTE_BUILDER, f"Promote {b.stable} to production",
               _fixed_codebase(settings, b.stable), button="Promote", params=[
                   _revision_text("target_revision",
                                  f"Revision on {b.stable} (full 40-hex sha; empty: the {b.stable} tip)",
                                  "target revision"),
               ]),
    ]
    c["schedulers"] += _deploy_schedulers(settings) + _security_schedulers(settings)
    if settings.suite.sharded:
        c["schedulers"] += [Triggerable(name=SHARD_SCHEDULER, builderNames=[SHARD_BUILDER]),
                            Triggerable(name=SECURITY_SHARD_SCHEDULER, builderNames=[SECURITY_SHARD_BUILDER])]
    if settings.promotion.schedule:
        c["schedulers"].append(CronPromotion(name="promotion-schedule", builderNames=[PROMOTE_BUILDER],
                                             cron=settings.promotion.schedule))
    auth = BcryptHtpasswdAuth(settings.auth.htpasswd) if settings.auth.htpasswd else NoAuth()
    c["www"] = {
        "port": f"tcp:{settings.www.port}:interface={settings.www.interface}",
        "plugins": {"lpdeploy": {}, "wsgi_dashboards": [
            {"name": "pipeline", "caption": "Pipeline", "app": make_app(), "order": 1, "icon": "code-branch"}]},
        "auth": auth,
        "authz": make_authz(settings, {PROMOTE_BUILDER: Role.LOSA, GATE_BUILDER: Role.LOSA,
                                       DEPLOY_BUILDER: Role.LOSA, ADMIN_BUILDER: Role.LOSA, INSPECT_BUILDER: Role.LOSA,
                                       SECURITY_BUILDER: Role.SECURITY, MERGE_BACK_BUILDER: Role.SECURITY},
                            embargoed=(SECURITY_BUILDER, MERGE_BACK_BUILDER, SECURITY_SHARD_BUILDER)),
    }
