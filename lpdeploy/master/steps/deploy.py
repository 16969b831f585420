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

from lpdeploy.core import fix_history, policy, validators
from lpdeploy.core.errors import GitError, InvalidInput
from lpdeploy.core.model import EMBARGOED, RETIRED, Action, AuditEntry, Deployment, Release
from lpdeploy.core.refs import short, validate_revision
from lpdeploy.core.settings import Settings
from lpdeploy.facts.embargo import embargoed_commits
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.steps import deploy_lease
from lpdeploy.master.steps.flow import DEPLOY, SOURCE, FlowStep
from lpdeploy.stores.registry import DbRegistry, UnknownCowboy


def deploy_needed(step: buildstep.BuildStep) -> bool:
    """``doStepIf`` of the checkout and deploy steps."""
    return bool(step.getProperty("lpdeploy_run_deploy"))


def parse_servers(value: Any, settings: Settings, required: bool = False) -> list[str]:
    """Configured server names from a form field ("app1 app2", "app1,app2") or a list; empty means all."""
    known = [s.name for s in settings.servers]
    return validators.server_names(value, known=known, required=required) or known


class PlanDeploy(FlowStep):
    """Decide, per server, whether the target may be deployed; say why."""

    name = "plan"
    description = ["planning the deploy"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=DEPLOY, **kwargs)

    async def run(self) -> int:
        busy = await deploy_lease.hold(self)  # one deploy at a time across masters, not only on this one
        if busy is not None:
            return await self.refuse(busy)
        registry = DbRegistry(self.master)
        automated = bool(self.getProperty("lpdeploy_auto"))
        frozen = policy.frozen_refusal(await registry.freeze(), "deploy")
        if frozen is not None:
            return await self.refuse(frozen.reason)
        try:
            servers = parse_servers(self.getProperty("servers"), self.settings)
            requested = self.getProperty("target_revision") or None
            if requested is not None:
                requested = validate_revision(str(requested).strip(), "target revision")
        except InvalidInput as e:
            return await self.refuse(str(e))
        if not servers:
            return await self.refuse("no servers are configured ([[servers]] in the site file)")
        override_reason = None
        if self.getProperty("override_cowboys"):
            override_reason = str(self.getProperty("override_reason") or "").strip()
            if not override_reason:
                return await self.refuse("overriding cowboys needs a reason (--reason TEXT)")
        b = self.settings.branches
        branch = b.stable if automated else b.production_stable
        try:
            tips = await self.upstream.fetch()
            tip = tips.get(branch)
            on_branch = bool(requested and tip and (requested == tip or await self._contains(tip, requested)))
            target = policy.deploy_target(branch, tip, requested, on_branch)
            if target.refused:
                return await self.refuse(target.reason)
            assert target.revision is not None
            self.say(target.reason)
            lost = policy.lost_fix_refusal(target.revision, await self._missing_fixes(registry, target.revision),
                                           self.settings.branches.production_stable, verb="deploy")
            if lost is not None:  # a rollback (or a staging deploy) must not take a released fix off servers
                return await self.refuse(lost.reason)
            plans = [await self._plan(registry, name, target.revision, override_reason, automated)
                     for name in servers]
        except GitError as e:
            return await self.refuse(f"git failed: {e}", outcome="failed")
        for p in plans:
            self.say(f"{p.server}: {p.reason}")
            if p.action is Action.NOTHING and p.retire:
                await retire(registry, p.retire, self.who, f"its fix is deployed ({short(target.revision)})",
                             self.master.reactor.seconds())
        self.setProperty("lpdeploy_revision", target.revision, SOURCE)
        self.setProperty("lpdeploy_checkout_branch", branch, SOURCE)
        self.setProperty("lpdeploy_plan", [_plan_json(p) for p in plans], SOURCE)
        to_deploy = [p for p in plans if p.action is Action.MOVE]
        refused = [p for p in plans if p.action is Action.REFUSE]
        self.setProperty("lpdeploy_run_deploy", bool(to_deploy), SOURCE)
        if not to_deploy:
            if refused:
                return await self.refuse("; ".join(p.reason for p in refused))
            self.outcome("nothing", f"nothing to do: every server already runs {short(target.revision)}")
            self.descriptionDone = ["nothing to do"]
            await self.flush()
            return results.SUCCESS
        self.descriptionDone = [f"deploy {short(target.revision)} to {', '.join(p.server for p in to_deploy)}"
                                + (f"; refused: {', '.join(p.server for p in refused)}" if refused else "")]
        await self.flush()
        return results.SUCCESS

    async def _contains(self, tip: str, rev: str) -> bool:
        try:
            return rev == tip or await self.upstream.is_ancestor(rev, tip)
        except GitError:
            return False

    async def _missing_fixes(self, registry: DbRegistry, target: str) -> list[Release]:
        """The released security fixes (the append-only history) that ``target`` lacks."""
        releases = await registry.releases()
        kept = {r.fix_commit for r in releases if await self._contains(target, r.fix_commit)}
        return fix_history.lost_fixes(releases, kept)

    async def _plan(self, registry: DbRegistry, name: str, target: str, override_reason: str | None,
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


async def retire(registry: DbRegistry, ids: tuple[int, ...] | list[int], who: str, why: str, now: float) -> None:
    for cowboy_id in ids:
        try:
            c = await registry.end_cowboy(cowboy_id, RETIRED, who, why, now)
        except UnknownCowboy:
            continue  # already retired by an earlier or concurrent deploy
        await registry.audit(AuditEntry(now, who, "cowboy-retire", {"cowboy": c.as_json(), "why": why}))


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
        super().__init__(settings=settings, kind=DEPLOY, **kwargs)

    async def run(self) -> int:
        revision = validate_revision(self.getProperty("lpdeploy_revision"))
        got = self.getProperty("got_revision")
        if got != revision:
            return await self.refuse(f"checkout is at {got!r}, not {revision!r}; deploying nothing",
                                     outcome="failed")
        busy = await deploy_lease.hold(self)  # held since the plan; taken again if this step runs alone
        if busy is not None:
            return await self.refuse(busy)
        registry = DbRegistry(self.master)
        outcome: dict[str, dict[str, str]] = {}
        for p in self.getProperty("lpdeploy_plan") or []:
            if p["action"] != Action.MOVE.value:
                outcome[p["server"]] = {"status": "unchanged" if p["action"] == Action.NOTHING.value
                                        else "refused", "reason": p["reason"]}
                continue
            outcome[p["server"]] = await self._deploy(registry, p, revision)
        lines = [f"{name}: {o['status']}: {o['reason']}" for name, o in outcome.items()]
        await self.addCompleteLog("summary", "\n".join(lines) + "\n")
        self.setProperty("lpdeploy_servers", outcome, SOURCE)
        bad = [n for n, o in outcome.items() if o["status"] in ("refused", "failed")]
        deployed = [n for n, o in outcome.items() if o["status"] == "deployed"]
        summary = "; ".join(lines)
        if bad:
            self.outcome("failed" if any(outcome[n]["status"] == "failed" for n in bad) else "refused", summary)
            self.descriptionDone = [f"deployed: {', '.join(deployed) or 'none'}; not: {', '.join(bad)}"]
            return results.FAILURE
        self.outcome("deployed", summary)
        self.descriptionDone = [f"{short(revision)} deployed to {', '.join(deployed)}"]
        return results.SUCCESS

    async def _changed_since_plan(self, registry: DbRegistry, plan: dict[str, Any]) -> str | None:
        """A freeze or a cowboy recorded while this rollout ran (servers go one by one, for minutes)."""
        if not await deploy_lease.still_held(self):
            return "the deploy lease expired and was taken by another deploy (database unreachable?)"
        freeze = await registry.freeze()
        if freeze is not None:
            return f"frozen during the rollout by {freeze.by}: {freeze.reason}"
        known = set(plan["retire"]) | set(plan["overridden"])
        new = [c for c in await registry.cowboys() if c.server == plan["server"] and c.id not in known]
        if new:
            return ", ".join(f"cowboy #{c.id} ({c.reason}) was recorded during the rollout" for c in new)
        return None

    async def _deploy(self, registry: DbRegistry, plan: dict[str, Any], revision: str) -> dict[str, str]:
        server = self.settings.server(plan["server"])
        assert server is not None
        changed = await self._changed_since_plan(registry, plan)
        if changed:
            return {"status": "refused", "reason": f"{server.name}: {changed}; not deployed"}
        argv = [a.replace("{server}", server.name).replace("{revision}", revision) for a in server.deploy_command]
        previous = await registry.deployment(server.name)
        cmd = await self.makeRemoteShellCommand(command=argv, stdioLogName=f"deploy {server.name}",
                                                timeout=server.timeout, maxTime=server.timeout)
        await self.runCommand(cmd)
        if cmd.results() != results.SUCCESS or cmd.didFail():
            why = f"deploy command failed (exit code {cmd.rc}); {server.name} still runs " + (
                short(previous.revision) if previous else "what it ran before")
            return {"status": "failed", "reason": why}
        now = self.master.reactor.seconds()
        await registry.record_deployment(Deployment(server.name, revision, now, self.who, await self.build_url()))
        why = f"its fix is deployed ({short(revision)}, build #{self.build.number})"
        await retire(registry, plan["retire"], self.who, why, now)
        if plan["overridden"]:
            await registry.audit(AuditEntry(now, self.who, "cowboy-override", {
                "server": server.name, "revision": revision, "cowboys": plan["overridden"],
                "reason": self.getProperty("override_reason")}))
        await self.event("deployed", server=server.name, revision=revision,
                         previous=previous.revision if previous else None)
        await registry.audit(AuditEntry(now, self.who, "deploy", {
            "server": server.name, "revision": revision,
            "previous": previous.revision if previous else None}))
        try:
            embargoed = await embargoed_commits(self.upstream, registry, self.settings, await self.upstream.fetch())
            report = await deployment_report(self.upstream, server.name,
                                             previous.revision if previous else None, revision, embargoed)
        except GitError as e:  # the deploy happened; only its report is missing
            report = f"no deployment report for {server.name}: {e}\n"
        await self.addCompleteLog(f"report {server.name}", report)
        return {"status": "deployed", "reason": plan["reason"], "revision": revision}


async def deployment_report(upstream: Upstream, server: str, before: str | None, after: str,
                            embargoed: set[str] | frozenset[str] = frozenset()) -> str:
    """The commits between what ``server`` ran and what it runs now (subject, author).

    Build logs are readable by users without the security role, so an
    embargoed commit appears as its short sha and the word "embargoed" only.
    """
    lines = [f"deployment report for {server}: {short(before) if before else '(nothing)'} → {short(after)}"]
    if before is None:
        commits = await upstream.commits_between(None, after, limit=50)
        lines.append(f"first deployment by lpdeploy; the newest {len(commits)} commits:")
    elif await upstream.is_ancestor(after, before):
        commits = await upstream.commits_between(after, before)
        lines.append(f"ROLLBACK: {len(commits)} commit(s) removed:")
    else:
        commits = await upstream.commits_between(before, after)
        lines.append(f"{len(commits)} new commit(s):")
    lines += [f"  {short(c.sha)} {EMBARGOED}" if c.sha in embargoed else f"  {short(c.sha)} {c.subject} ({c.author})"
              for c in commits]
    return "\n".join(lines) + "\n"
