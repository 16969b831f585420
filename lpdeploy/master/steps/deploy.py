"""Build steps of the deploy builder: plan per server, then deploy per server.

``PlanDeploy`` (on the master) checks the freeze, resolves the target on
production-stable (or stable, for ``auto_deploy`` servers), and asks
``policy.server_plan`` for every chosen server: deploy, unchanged, or refused
because of a cowboy whose fix the target lacks. ``RunDeploys`` (on a worker,
in a checkout of the target) runs each server's ``deploy_command`` and only
after it succeeded records the deployed revision, retires the cowboys whose
fix is now deployed, audits overrides and writes a deployment report.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from buildbot.process import buildstep, results

from lpdeploy.core import policy, validators
from lpdeploy.core import properties as prop
from lpdeploy.core.errors import GitError, InvalidInput
from lpdeploy.core.model import (
    EMBARGOED,
    Action,
    AuditAction,
    AuditEntry,
    BuildOutcome,
    CowboyState,
    Deployment,
    EventKind,
    FlowKind,
    ServerStatus,
)
from lpdeploy.core.refs import short, validate_revision
from lpdeploy.core.settings import Settings
from lpdeploy.facts.embargo import embargoed_commits
from lpdeploy.facts.releases import lost_fixes
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import Commit
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.steps.flow import SOURCE, FlowStep
from lpdeploy.stores.registry import Registry, UnknownCowboy


def deploy_needed(step: buildstep.BuildStep) -> bool:
    """``doStepIf`` of the checkout and deploy steps."""
    return bool(step.getProperty(prop.RUN_DEPLOY))


def parse_servers(value: Any, settings: Settings, required: bool = False) -> list[str]:
    """Configured server names from a form field ("app1 app2", "app1,app2") or a list; empty means all."""
    known = [s.name for s in settings.servers]
    return validators.server_names(value, known=known, required=required) or known


class PlanDeploy(FlowStep):
    """Decide, per server, whether the target may be deployed; say why."""

    name = "plan"
    description = ["planning the deploy"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=FlowKind.DEPLOY, **kwargs)

    async def run(self) -> int:
        registry = services(self.master).registry
        automated = bool(self.getProperty(prop.AUTO))
        frozen = policy.frozen_refusal(await registry.freeze(), "deploy")
        if frozen is not None:
            return await self.refuse(frozen.reason)
        try:
            servers = parse_servers(self.getProperty("servers"), self.settings)
            requested = validators.optional_revision(self.getProperty("target_revision"), "target revision") or None
            if not servers:
                return await self.refuse("no servers are configured ([[servers]] in the site file)")
            override_reason = None
            if self.getProperty("override_cowboys"):
                override_reason = validators.reason(self.getProperty("override_reason"), "override reason",
                                                    required=False)
                if not override_reason:
                    return await self.refuse("overriding cowboys needs a reason (--reason TEXT)")
        except InvalidInput as e:
            return await self.refuse(str(e))
        b = self.settings.branches
        branch = b.stable if automated else b.production_stable
        try:
            tips = await self.upstream.fetch()
            tip = tips.get(branch)
            on_branch = bool(requested and tip and await self.upstream.contains(tip, requested))
            target = policy.deploy_target(branch, tip, requested, on_branch)
            if target.refused:
                return await self.refuse(target.reason)
            assert target.revision is not None
            self.say(target.reason)
            lost = policy.lost_fix_refusal(target.revision, await lost_fixes(self.upstream, registry, target.revision),
                                           self.settings.branches.production_stable, verb="deploy")
            if lost is not None:  # a rollback (or a staging deploy) must not take a released fix off servers
                return await self.refuse(lost.reason)
            plans = [await self._plan(registry, name, target.revision, override_reason, automated)
                     for name in servers]
        except GitError as e:
            return await self.refuse(f"git failed: {e}", outcome=BuildOutcome.FAILED)
        for p in plans:
            self.say(f"{p.server}: {p.reason}")
            if p.action is Action.NOTHING and p.retire:
                await retire(registry, p.retire, self.who, f"its fix is deployed ({short(target.revision)})",
                             self.master.reactor.seconds())
        self.setProperty(prop.REVISION, target.revision, SOURCE)
        self.setProperty(prop.CHECKOUT_BRANCH, branch, SOURCE)
        self.setProperty(prop.PLAN, [_plan_json(p) for p in plans], SOURCE)
        to_deploy = [p for p in plans if p.action is Action.MOVE]
        refused = [p for p in plans if p.action is Action.REFUSE]
        self.setProperty(prop.RUN_DEPLOY, bool(to_deploy), SOURCE)
        if not to_deploy:
            if refused:
                return await self.refuse("; ".join(p.reason for p in refused))
            self.outcome(BuildOutcome.NOTHING, f"nothing to do: every server already runs {short(target.revision)}")
            self.descriptionDone = ["nothing to do"]
            await self.flush()
            return results.SUCCESS
        self.descriptionDone = [f"deploy {short(target.revision)} to {', '.join(p.server for p in to_deploy)}"
                                + (f"; refused: {', '.join(p.server for p in refused)}" if refused else "")]
        await self.flush()
        return results.SUCCESS

    async def _plan(self, registry: Registry, name: str, target: str, override_reason: str | None,
                    automated: bool) -> policy.ServerPlan:
        deployed = await registry.deployment(name)
        cowboys = tuple(c for c in await registry.cowboys() if c.server == name)
        fixed = set()
        for c in cowboys:
            if c.fixed_by:
                try:
                    await self.upstream.fetch_revision(c.fixed_by)
                    if await self.upstream.is_ancestor(c.fixed_by, target):
                        fixed.add(c.id)
                except GitError:
                    self.say(f"{name}: the fix {short(c.fixed_by)} of cowboy #{c.id} is not in the upstream")
        facts = policy.ServerFacts(name, deployed.revision if deployed else None, cowboys, frozenset(fixed))
        return policy.server_plan(facts, target, override_reason, automated)


async def retire(registry: Registry, ids: tuple[int, ...] | list[int], who: str, why: str, now: float) -> None:
    for cowboy_id in ids:
        try:
            c = await registry.end_cowboy(cowboy_id, CowboyState.RETIRED, who, why, now)
        except UnknownCowboy:
            continue  # already retired by an earlier or concurrent deploy
        await registry.audit(AuditEntry(now, who, AuditAction.COWBOY_RETIRE, {"cowboy": c.as_json(), "why": why}))


def _plan_json(p: policy.ServerPlan) -> dict[str, Any]:
    d = asdict(p)
    d["action"] = p.action.value
    return d


class RunDeploys(buildstep.ShellMixin, FlowStep):
    """Run each planned server's deploy command; record only what succeeded."""

    name = "deploy"
    description = ["deploying"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(settings=settings, kind=FlowKind.DEPLOY, **kwargs)

    async def run(self) -> int:
        revision = validate_revision(self.getProperty(prop.REVISION))
        got = self.getProperty("got_revision")
        if got != revision:
            return await self.refuse(f"checkout is at {got!r}, not {revision!r}; deploying nothing",
                                     outcome=BuildOutcome.FAILED)
        registry = services(self.master).registry
        outcome: dict[str, dict[str, str]] = {}
        for p in self.getProperty(prop.PLAN) or []:
            if p["action"] != Action.MOVE.value:
                outcome[p["server"]] = {"status": ServerStatus.UNCHANGED if p["action"] == Action.NOTHING.value
                                        else ServerStatus.REFUSED, "reason": p["reason"]}
                continue
            outcome[p["server"]] = await self._deploy(registry, p, revision)
        lines = [f"{name}: {o['status']}: {o['reason']}" for name, o in outcome.items()]
        await self.addCompleteLog("summary", "\n".join(lines) + "\n")
        self.setProperty(prop.SERVERS, outcome, SOURCE)
        bad = [n for n, o in outcome.items() if o["status"] in (ServerStatus.REFUSED, ServerStatus.FAILED)]
        deployed = [n for n, o in outcome.items() if o["status"] == ServerStatus.DEPLOYED]
        summary = "; ".join(lines)
        if bad:
            failed = any(outcome[n]["status"] == ServerStatus.FAILED for n in bad)
            self.outcome(BuildOutcome.FAILED if failed else BuildOutcome.REFUSED, summary)
            self.descriptionDone = [f"deployed: {', '.join(deployed) or 'none'}; not: {', '.join(bad)}"]
            return results.FAILURE
        self.outcome(BuildOutcome.DEPLOYED, summary)
        self.descriptionDone = [f"{short(revision)} deployed to {', '.join(deployed)}"]
        return results.SUCCESS

    async def _changed_since_plan(self, registry: Registry, plan: dict[str, Any]) -> str | None:
        """A freeze or a cowboy recorded while this rollout ran (servers go one by one, for minutes)."""
        freeze = await registry.freeze()
        if freeze is not None:
            return f"frozen during the rollout by {freeze.by}: {freeze.reason}"
        known = set(plan["retire"]) | set(plan["overridden"])
        new = [c for c in await registry.cowboys() if c.server == plan["server"] and c.id not in known]
        if new:
            return ", ".join(f"cowboy #{c.id} ({c.reason}) was recorded during the rollout" for c in new)
        return None

    async def _deploy(self, registry: Registry, plan: dict[str, Any], revision: str) -> dict[str, str]:
        server = self.settings.server(plan["server"])
        assert server is not None
        changed = await self._changed_since_plan(registry, plan)
        if changed:
            return {"status": ServerStatus.REFUSED, "reason": f"{server.name}: {changed}; not deployed"}
        argv = [a.replace("{server}", server.name).replace("{revision}", revision) for a in server.deploy_command]
        previous = await registry.deployment(server.name)
        cmd = await self.makeRemoteShellCommand(command=argv, stdioLogName=f"deploy {server.name}",
                                                timeout=server.timeout, maxTime=server.timeout)
        await self.runCommand(cmd)
        if cmd.results() != results.SUCCESS or cmd.didFail():
            why = f"deploy command failed (exit code {cmd.rc}); {server.name} still runs " + (
                short(previous.revision) if previous else "what it ran before")
            return {"status": ServerStatus.FAILED, "reason": why}
        now = self.master.reactor.seconds()
        await registry.record_deployment(Deployment(server.name, revision, now, self.who, await self.build_url()))
        why = f"its fix is deployed ({short(revision)}, build #{self.build.number})"
        await retire(registry, plan["retire"], self.who, why, now)
        if plan["overridden"]:
            await registry.audit(AuditEntry(now, self.who, AuditAction.COWBOY_OVERRIDE, {
                "server": server.name, "revision": revision, "cowboys": plan["overridden"],
                "reason": self.getProperty("override_reason")}))
        await self.event(EventKind.DEPLOYED, server=server.name, revision=revision,
                         previous=previous.revision if previous else None)
        await registry.audit(AuditEntry(now, self.who, AuditAction.DEPLOY, {
            "server": server.name, "revision": revision,
            "previous": previous.revision if previous else None}))
        try:
            embargoed = await embargoed_commits(self.upstream, registry, self.settings, await self.upstream.fetch())
            report, full = await deployment_report(self.upstream, server.name,
                                                   previous.revision if previous else None, revision, embargoed)
        except GitError as e:  # the deploy happened; only its report is missing
            report, full = f"no deployment report for {server.name}: {e}\n", None
        await self.addCompleteLog(f"report {server.name}", report)
        if full is not None:
            await self.addCompleteLog(f"full report {server.name}", full)
        return {"status": ServerStatus.DEPLOYED, "reason": plan["reason"], "revision": revision}


REPORT_LIMIT = 200  # commits listed in a deployment report; the count is always exact
FIRST_LIMIT = 50  # a first deployment lists only the newest commits of the whole history


async def deployment_report(upstream: Upstream, server: str, before: str | None, after: str,
                            embargoed: set[str] | frozenset[str] = frozenset(),
                            limit: int = REPORT_LIMIT) -> tuple[str, str | None]:
    """The commits between what ``server`` ran and what it runs now (subject, author).

    Returns the report and, when its list had to be shortened, the full report
    (every commit; the step keeps it as a second log, ``full report <server>``).
    The count in the first line is exact (``rev-list --count``) however long the
    list. Build logs are readable by users without the security role, so an
    embargoed commit appears as its short sha and the word "embargoed" only.
    """
    title = f"deployment report for {server}: {short(before) if before else '(nothing)'} → {short(after)}"
    if before is None:
        base, tip, limit = None, after, min(limit, FIRST_LIMIT)
        what = "first deployment by lpdeploy; the history holds {n} commit(s)"
        see_all = f"all: git log {after}"
    elif await upstream.is_ancestor(after, before):
        base, tip, what = after, before, "ROLLBACK: {n} commit(s) removed"
        see_all = f"all: the log 'full report {server}' of this build"
    else:
        base, tip, what = before, after, "{n} new commit(s)"
        see_all = f"all: the log 'full report {server}' of this build"
    total = await upstream.count_between(base, tip)
    commits = await upstream.commits_between(base, tip, limit=limit)
    counted = what.format(n=f"{total:,}")
    shortened = total > len(commits)
    if shortened:
        counted += f"; the newest {len(commits):,} shown ({see_all})"
    report = "\n".join([title, counted + ":", *_lines(commits, embargoed)]) + "\n"
    if not shortened or before is None:
        return report, None
    everything = await upstream.commits_between(base, tip, limit=total)
    full = "\n".join([title, what.format(n=f"{total:,}") + ":",
                      *_lines(everything, embargoed)]) + "\n"
    return report, full


def _lines(commits: list[Commit], embargoed: set[str] | frozenset[str]) -> list[str]:
    return [f"  {short(c.sha)} {EMBARGOED}" if c.sha in embargoed else f"  {short(c.sha)} {c.subject} ({c.author})"
            for c in commits]
