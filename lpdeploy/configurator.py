"""Settings → a Buildbot configuration: workers, poller, schedulers, builders, web, authz.

``master.cfg`` calls ``configure(c)``; everything the flow needs comes from
the site file. A bad site file becomes one ``config.error`` line naming the
key, which ``buildbot checkconfig`` prints without a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from buildbot import config
from buildbot.config.builder import BuilderConfig
from buildbot.process.factory import BuildFactory
from buildbot.schedulers.forcesched import (
    CodebaseParameter,
    FixedParameter,
    ForceScheduler,
    StringParameter,
)
from buildbot.worker import Worker
from buildbot.www.auth import NoAuth

from lpdeploy.authz import BcryptHtpasswdAuth, make_authz
from lpdeploy.changes import FlowPoller
from lpdeploy.errors import SettingsError
from lpdeploy.schedulers import CronPromotion, GateScheduler
from lpdeploy.settings import Settings, load_settings
from lpdeploy.steps import GATE, PROMOTE, Checkout, Decide, MoveBranches, RunSuite, suite_needed
from lpdeploy.www import SiteService

GATE_BUILDER = "lpdeploy-gate"
PROMOTE_BUILDER = "lpdeploy-promote"
PROMOTE_SCHEDULER = "promote"
FULL_SHA_OR_EMPTY = r"^(?:[0-9a-f]{40})?\Z"
DEMO_SITE = Path(__file__).resolve().parent.parent / "demo" / "site.toml"


def site_file() -> Path:
    """The site file named by ``LPDEPLOY_CONFIG``, or the demo one shipped in the repository."""
    named = os.environ.get("LPDEPLOY_CONFIG")
    return Path(named) if named else DEMO_SITE


def configure(c: dict[str, Any], path: Path | None = None) -> Settings | None:
    """Fill the BuildmasterConfig dict ``c`` from the site file; report problems via config.error."""
    try:
        settings = load_settings(path or site_file())
    except SettingsError as e:
        config.error(f"lpdeploy site file: {e}")
        return None
    apply(c, settings)
    return settings


def _flow_factory(settings: Settings, kind: str, branch: str) -> BuildFactory:
    f = BuildFactory()
    f.addStep(Decide(settings=settings, kind=kind, haltOnFailure=True))
    f.addStep(Checkout(repourl=settings.repository.url, branch=branch, mode="full", method="fresh",
                       doStepIf=suite_needed, haltOnFailure=True, logEnviron=False, name="checkout"))
    f.addStep(RunSuite(settings=settings, doStepIf=suite_needed, haltOnFailure=True))
    f.addStep(MoveBranches(settings=settings, kind=kind, haltOnFailure=True))
    return f


def apply(c: dict[str, Any], settings: Settings) -> None:
    """Build every Buildbot object the flow needs from validated settings."""
    b = settings.branches
    workers = list(settings.workers.names)
    c["title"] = settings.title
    c["buildbotURL"] = settings.www.url
    c["buildbotNetUsageData"] = None
    c["db"] = {"db_url": settings.database_url}
    c["protocols"] = {"pb": {"port": f"tcp:{settings.workers.port}:interface={settings.workers.interface}"}}
    c["workers"] = [Worker(name, settings.workers.password, max_builds=1) for name in workers]
    c["change_source"] = [FlowPoller(name="lpdeploy-poller", settings=settings)]
    c["services"] = [SiteService(name="lpdeploy", settings=settings)]
    c["builders"] = [
        BuilderConfig(name=GATE_BUILDER, workernames=workers, collapseRequests=False,
                      factory=_flow_factory(settings, GATE, b.devel),
                      description=f"{b.devel} → {b.stable}: full suite, then fast-forward"),
        BuilderConfig(name=PROMOTE_BUILDER, workernames=workers, collapseRequests=False,
                      factory=_flow_factory(settings, PROMOTE, b.stable),
                      description=f"{b.stable} → {' + '.join(b.production)}: no re-test when tested"),
    ]
    c["schedulers"] = [
        GateScheduler(name="lpdeploy-gate", builderNames=[GATE_BUILDER], settings=settings),
        ForceScheduler(
            name=PROMOTE_SCHEDULER,
            builderNames=[PROMOTE_BUILDER],
            label=f"Promote {b.stable} to production",
            buttonName="Promote",
            codebases=[CodebaseParameter(
                "",
                branch=FixedParameter(name="branch", default=b.stable),
                revision=FixedParameter(name="revision", default=""),
                repository=FixedParameter(name="repository", default=settings.repository.url),
                project=FixedParameter(name="project", default=""),
            )],
            properties=[StringParameter(
                name="target_revision",
                label=f"Revision on {b.stable} (full 40-hex sha; empty: the {b.stable} tip)",
                default="", size=40, regex=FULL_SHA_OR_EMPTY,
            )],
        ),
    ]
    if settings.promotion.schedule:
        c["schedulers"].append(CronPromotion(name="promotion-schedule", builderNames=[PROMOTE_BUILDER],
                                             cron=settings.promotion.schedule))
    auth = BcryptHtpasswdAuth(settings.auth.htpasswd) if settings.auth.htpasswd else NoAuth()
    c["www"] = {
        "port": f"tcp:{settings.www.port}:interface={settings.www.interface}",
        "plugins": {"lpdeploy": {}},
        "auth": auth,
        "authz": make_authz(settings, {PROMOTE_BUILDER: "losa", GATE_BUILDER: "losa"}),
    }
