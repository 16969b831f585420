"""Build steps of the deploy builder: plan per server, then deploy per server.

``PlanDeploy`` (on the master) checks the freeze, resolves the target on
production-stable (or stable, for ``auto_deploy`` servers), and asks
``policy.server_plan`` for every chosen server: deploy, unchanged, or refused
because of a cowboy whose fix the target lacks (its ``--fixed-by`` commit,
or a commit making the same change as its patch) or an unrecorded change.
``RunDeploys`` (on a worker, in a checkout of the target) runs each server's ``deploy_command`` and only
after it succeeded — and after the server's ``check_command`` passed, if it
has one — records the deployed revision, retires the cowboys whose fix is
now deployed, audits overrides and writes a deployment report. A failed
check rolls the server back to what it ran before (``policy.
rollback_after_failed_check``: never past a released security fix), stops
the rollout for the servers not yet deployed and fails the build. With
``[deploy] soak``, the first server deployed and checked (the canary) is
watched that long and checked again before any other server is touched.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict
from typing import Any

from buildbot.process import buildstep, results
from twisted.internet import defer, task

from lpdeploy.core import policy, validators
from lpdeploy.core import properties as prop
from lpdeploy.core.errors import GitError, InvalidInput
from lpdeploy.core.freeze_windows import span
from lpdeploy.core.model import (
    AUTOMATIC,
    EMBARGOED,
    Action,
    AuditAction,
    AuditEntry,
    BuildOutcome,
    Cowboy,
    CowboyState,
    Decision,
    Deployment,
    EventKind,
    FlowKind,
    ServerStatus,
)
from lpdeploy.core.qa import QaMark, QaState
from lpdeploy.core.refs import qualified, short, validate_revision
from lpdeploy.core.settings import Server, Settings
from lpdeploy.facts.embargo import embargoed_commits
from lpdeploy.facts.qa import record_mark
from lpdeploy.facts.releases import lost_fixes
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import Commit, checkout_commands
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.crashpoints import crash_point
from lpdeploy.master.steps import deploy_lease
from lpdeploy.master.steps.flow import SOURCE, FlowStep, interrupted_build
from lpdeploy.master.steps.inspect import settle, what_runs
from lpdeploy.stores.registry import Registry, UnknownCowboy

# what a rollout did to one server (``lpdeploy_servers``: {server: {"status": a ServerStatus, "reason": ...}})
NOT_DONE = (ServerStatus.REFUSED, ServerStatus.FAILED, ServerStatus.ROLLED_BACK, ServerStatus.CHECK_FAILED,
            ServerStatus.STOPPED)
FAILED_HERE = (ServerStatus.FAILED, ServerStatus.ROLLED_BACK, ServerStatus.CHECK_FAILED)  # "failed", not "refused"
OUTPUT_SHOWN = 200  # characters of a failed check's last output line kept in its reason
PATCH_SCAN_LIMIT = 10_000  # newest commits of a target compared with a server's cowboy patches


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
        busy = await deploy_lease.hold(self)  # one deploy at a time across masters, not only on this one
        if busy is not None:
            return await self.refuse(busy)
        if self.stopped:
            return await self.refuse("the build was stopped before it planned anything")
        registry = services(self.master).registry
        automated = bool(self.getProperty(prop.AUTO))
        frozen = await self.frozen("deploy")
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
                             self.master.reactor.seconds(), dict(p.patch_matches))
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
        unrecorded = next((u for u in await registry.unrecorded_changes() if u.server == name), None)
        matches = await self._patch_matches(registry, name, deployed, target, [c for c in cowboys if c.id not in fixed])
        facts = policy.ServerFacts(name, deployed.revision if deployed else None, cowboys,
                                   frozenset(fixed) | frozenset(matches), unrecorded, tuple(sorted(matches.items())),
                                   await self.upstream.tree_of(target) if unrecorded else None)
        return policy.server_plan(facts, target, override_reason, automated)

    async def _patch_matches(self, registry: Registry, name: str, deployed: Deployment | None, target: str,
                             cowboys: list[Cowboy]) -> dict[int, str]:
        """The cowboys (not already fixed) whose patch the target holds under another commit id: id → commit.

        Only the commits the target adds to the server (since its deployed
        revision and the cowboy's base) are looked at, at most
        ``PATCH_SCAN_LIMIT`` of them, and each commit's patch id is computed
        once and cached in the registry: a deploy costs git work for the new
        commits only, however long the history.
        """
        patches = {c.id: p for c in cowboys if (p := await registry.cowboy_patch(c.id)) is not None}
        if not patches:
            return {}
        bases = {p.base for p in patches.values() if p.base} | ({deployed.revision} if deployed else set())
        try:
            for b in bases:
                await self.upstream.fetch_revision(b)
            shas = [c.sha for c in await self.upstream.commits_between(sorted(bases), target, limit=PATCH_SCAN_LIMIT)]
            known = await registry.patch_ids(shas)
            computed = await self.upstream.patch_ids([s for s in shas if s not in known])
        except GitError as e:
            self.say(f"{name}: the patches of its cowboys were not compared with {short(target)}: {e}")
            return {}
        await registry.save_patch_ids(computed)
        if len(shas) == PATCH_SCAN_LIMIT:
            self.say(f"{name}: only the newest {PATCH_SCAN_LIMIT:,} commits of {short(target)} were compared with "
                     "the patches of its cowboys")
        ids = {**known, **computed}
        return policy.patch_matches({i: p.patch_id for i, p in patches.items()}, [(s, ids.get(s, "")) for s in shas])


async def retire(registry: Registry, ids: tuple[int, ...] | list[int], who: str, why: str, now: float,
                 matches: dict[int, str] | None = None) -> None:
    """Retire the cowboys ``ids``; a cowboy fixed through its patch says which commit made the same change."""
    for cowboy_id in ids:
        match = (matches or {}).get(cowboy_id)
        try:
            c = await registry.end_cowboy(cowboy_id, CowboyState.RETIRED, who,
                                          why + (f"; {policy.patch_match_text(match)}" if match else ""), now)
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
        self._soaking: defer.Deferred[None] | None = None  # the canary's soak, while it lasts
        self._cancelled = False  # the build was stopped during the soak
        self._interrupted: int | None = None  # the crashed build this one re-runs (0: none), once known

    def interrupt(self, reason: Any) -> defer.Deferred[None]:
        """Called by Buildbot when the build is stopped (the UI's cancel, the CLI's Ctrl-C): end a soak at once."""
        if self._soaking is not None:
            self._soaking.cancel()
        return super().interrupt(reason)

    async def run(self) -> int:
        revision = validate_revision(self.getProperty(prop.REVISION))
        got = self.getProperty("got_revision")
        if got != revision:
            return await self.refuse(f"checkout is at {got!r}, not {revision!r}; deploying nothing",
                                     outcome=BuildOutcome.FAILED)
        busy = await deploy_lease.keep(self)  # still the lease the plan took, never a new one
        if busy is not None:
            return await self.refuse(busy)
        registry = services(self.master).registry
        outcome: dict[str, dict[str, str]] = {}
        stopped: str | None = None  # why the servers not yet deployed are left alone
        plans = self.getProperty(prop.PLAN) or []
        moves = [p["server"] for p in plans if p["action"] == Action.MOVE.value]
        soaked = False  # the canary is the first server deployed while others are still to come
        for p in plans:
            name = p["server"]
            if p["action"] != Action.MOVE.value:
                outcome[name] = {"status": ServerStatus.UNCHANGED if p["action"] == Action.NOTHING.value
                                 else ServerStatus.REFUSED, "reason": p["reason"]}
                continue
            if stopped is None and self.stopped:  # Buildbot's stop (UI cancel, CLI Ctrl-C): no further server
                stopped = "the build was stopped"
            if stopped is not None:  # a broken revision goes no further than the first server it broke
                outcome[name] = {"status": ServerStatus.STOPPED, "reason": f"not deployed: {stopped}"}
                continue
            if name != moves[0]:
                crash_point("deploy.between_servers")
            previous = await registry.deployment(name)
            outcome[name] = await self._deploy(registry, p, revision)
            if outcome[name]["status"] in (ServerStatus.ROLLED_BACK, ServerStatus.CHECK_FAILED):
                stopped = f"the check failed on {name}, so the rollout stopped"
            elif outcome[name]["status"] == ServerStatus.DEPLOYED and not soaked and name != moves[-1]:
                soaked = True
                stopped = await self._soak(registry, name, revision, previous, outcome,
                                           frozenset(p["retire"]) | frozenset(p["overridden"]))
        lines = [f"{name}: {o['status']}: {o['reason']}" for name, o in outcome.items()]
        await self.addCompleteLog("summary", "\n".join(lines) + "\n")
        self.setProperty(prop.SERVERS, outcome, SOURCE)
        bad = [n for n, o in outcome.items() if o["status"] in NOT_DONE]
        deployed = [n for n, o in outcome.items() if o["status"] == ServerStatus.DEPLOYED]
        summary = "; ".join(lines)
        if bad:
            failed = any(outcome[n]["status"] in FAILED_HERE for n in bad) or self._cancelled
            self.outcome(BuildOutcome.FAILED if failed else BuildOutcome.REFUSED, summary)
            self.descriptionDone = [f"deployed: {', '.join(deployed) or 'none'}; not: {', '.join(bad)}"]
            return results.CANCELLED if self._cancelled else results.FAILURE
        self.outcome(BuildOutcome.DEPLOYED, summary)
        self.descriptionDone = [f"{short(revision)} deployed to {', '.join(deployed)}"]
        return results.SUCCESS

    async def _changed_since_plan(self, registry: Registry, plan: dict[str, Any]) -> str | None:
        """A freeze (or window) or a cowboy recorded while this rollout ran (servers go one by one, for minutes)."""
        if not await deploy_lease.still_held(self):
            return "the deploy lease expired and was taken by another deploy (database unreachable?)"
        frozen = await self.frozen("go on")
        if frozen is not None:
            return f"frozen during the rollout ({frozen.reason})"
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
        previous = await registry.deployment(server.name)
        if server.inspect_command:
            drift = await self._drift(registry, server, previous, revision)
            if drift.action is not Action.NOTHING:
                await registry.audit(AuditEntry(self.master.reactor.seconds(), self.who,
                                                AuditAction.UNRECORDED_CHANGE, {
                    "server": server.name, "revision": revision, "outcome": drift.action.value,
                    "reason": drift.reason}))
            if drift.refused:
                return {"status": ServerStatus.REFUSED, "reason": drift.reason}
        found = await self._running_after_a_crash(server, revision)
        if found is None:
            rc = await self._run_deploy_command(server, revision, f"deploy {server.name}")
            if rc is not None:
                why = f"deploy command failed (exit code {rc}); {server.name} still runs " + (
                    short(previous.revision) if previous else "what it ran before")
                return {"status": ServerStatus.FAILED, "reason": why}
            crash_point("deploy.after_command")
            failure = await self._check(server, revision)
            if failure is not None:  # the deploy ran but the server does not work: not recorded as deployed
                return await self._after_failed_check(registry, server, revision, previous, failure,
                                                      frozenset(plan["retire"]) | frozenset(plan["overridden"]))
        else:
            self.say(found)
            plan = {**plan, "reason": f"{plan['reason']}; {found}"}
        now = self.master.reactor.seconds()
        await registry.record_deployment(Deployment(server.name, revision, now, self.who, await self.build_url()))
        over = await registry.clear_unrecorded_change(server.name)  # it runs what lpdeploy deployed now
        if over is not None:
            await registry.audit(AuditEntry(now, self.who, AuditAction.UNRECORDED_CHANGE, {
                "server": server.name, "outcome": "cleared", "revision": revision, "was": over.as_json(),
                "reason": f"deployed over it: {self.getProperty('override_reason')}"}))
        # the deploy's own records first: a crash before the retirement below leaves only that to do, and
        # the re-run's plan does it (the server already runs the target: ``policy.server_plan`` retires)
        if plan["overridden"]:
            await registry.audit(AuditEntry(now, self.who, AuditAction.COWBOY_OVERRIDE, {
                "server": server.name, "revision": revision, "cowboys": plan["overridden"],
                "reason": self.getProperty("override_reason")}))
        await self.event(EventKind.DEPLOYED, server=server.name, revision=revision,
                         previous=previous.revision if previous else None)
        await registry.audit(AuditEntry(now, self.who, AuditAction.DEPLOY, {
            "server": server.name, "revision": revision,
            "previous": previous.revision if previous else None}))
        if plan["retire"]:
            crash_point("deploy.before_retire")
        why = f"its fix is deployed ({short(revision)}, build #{self.build.number})"
        await retire(registry, plan["retire"], self.who, why, now, {i: sha for i, sha in plan.get("patch_matches", [])})
        try:
            embargoed = await embargoed_commits(self.upstream, registry, self.settings, await self.upstream.fetch())
            report, full = await deployment_report(self.upstream, server.name,
                                                   previous.revision if previous else None, revision, embargoed)
        except GitError as e:  # the deploy happened; only its report is missing
            report, full = f"no deployment report for {server.name}: {e}\n", None
        await self.addCompleteLog(f"report {server.name}", report)
        if full is not None:
            await self.addCompleteLog(f"full report {server.name}", full)
        checked = f"; check passed: {shlex.join(server.check_argv(revision))}" if server.check_command else ""
        return {"status": ServerStatus.DEPLOYED, "reason": plan["reason"] + checked, "revision": revision}

    async def _running_after_a_crash(self, server: Server, revision: str) -> str | None:
        """In the re-run of a deploy a master crash interrupted: does ``server`` already run ``revision``?

        The interrupted build may have run the deploy command and died before
        it recorded the deployment. A server with a ``check_command`` is
        checked first: when the check for ``revision`` passes, the server runs
        it, and the deployment is recorded without deploying again (the
        returned reason says so). Without a check nothing tells, and the
        deploy command runs again (deploy commands must be safe to repeat).
        """
        if not server.check_command:
            return None
        if self._interrupted is None:
            found = await interrupted_build(self, revision)
            self._interrupted = found[0] if found else 0
        if not self._interrupted or await self._check(server, revision) is not None:
            return None
        return (f"{server.name} already runs {short(revision)} (its check passed) after the crash of build "
                f"#{self._interrupted}; not deployed again")

    async def _soak(self, registry: Registry, canary: str, revision: str, previous: Deployment | None,
                    outcome: dict[str, dict[str, str]], planned_cowboys: frozenset[int]) -> str | None:
        """Watch the canary for ``[deploy] soak`` seconds, then check it again; why to stop, or None to go on.

        A failure is handled as a failed check (rollback, audit), and the
        canary's record goes back to what it ran before when the rollback
        worked. A cancel during the soak leaves the other servers untouched.
        """
        soak = self.settings.deploy.soak
        server = self.settings.server(canary)
        assert server is not None
        if not soak or not server.check_command:
            return None  # nothing to watch with: no soak configured, or the canary has no check
        if self.stopped:  # a stop that came between two commands, before the soak began
            self._cancelled = True
            return f"the build was stopped before the soak of {canary}"
        self._soaking = task.deferLater(self.master.reactor, soak, lambda: None)
        try:
            await self._soaking
        except defer.CancelledError:
            self._cancelled = True
            return f"the build was cancelled during the {span(soak)} soak of {canary}"
        finally:
            self._soaking = None
        failure = await self._check(server, revision)
        if failure is None:
            outcome[canary]["reason"] += f"; checked again after a {span(soak)} soak"
            return None
        outcome[canary] = await self._after_failed_check(registry, server, revision, previous,
                                                         f"after a {span(soak)} soak: {failure}", planned_cowboys)
        if outcome[canary]["status"] == ServerStatus.ROLLED_BACK and previous is not None:
            await registry.record_deployment(previous)  # the canary runs what it ran before again
        return f"the check failed on {canary} after the soak, so the rollout stopped"

    async def _drift(self, registry: Registry, server: Server, previous: Deployment | None,
                     revision: str) -> Decision:
        """Ask the server what it runs (its ``inspect_command``) and compare with what lpdeploy deployed there."""
        if previous is None:
            return Decision(Action.NOTHING, f"{server.name}: nothing deployed by lpdeploy to compare with")
        seen, why = await what_runs(self, server)
        if seen is None:
            return Decision(Action.REFUSE, f"refusing to deploy to {server.name}: its inspect command failed "
                                           f"({why}), so what it runs is unknown")
        deployed_tree, cowboy = await settle(self, registry, server.name, previous, seen)  # stored, audited
        override = str(self.getProperty("override_reason") or "").strip() \
            if self.getProperty("override_cowboys") else None
        try:
            target_tree: str | None = await self.upstream.tree_of(revision)
        except GitError:
            target_tree = None
        return policy.drift_decision(server.name, previous.revision, deployed_tree, seen,
                                     cowboy, override or None, bool(self.getProperty(prop.AUTO)), target_tree)

    async def _run_deploy_command(self, server: Server, revision: str, log: str) -> int | None:
        """Run ``server``'s deploy command for ``revision``; None when it succeeded, else its exit code."""
        argv = [a.replace("{server}", server.name).replace("{revision}", revision) for a in server.deploy_command]
        cmd = await self.makeRemoteShellCommand(command=argv, stdioLogName=log, timeout=server.timeout,
                                                maxTime=server.timeout)
        await self.runCommand(cmd)
        if cmd.results() != results.SUCCESS or cmd.didFail():
            return cmd.rc if cmd.rc is not None else -1
        return None

    async def _check(self, server: Server, revision: str) -> str | None:
        """Run the server's check (with its retries); None when it passed (or there is none), else why not."""
        if not server.check_command:
            return None
        argv = server.check_argv(revision)
        attempts = server.check_retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1 and server.check_pause:
                await task.deferLater(self.master.reactor, server.check_pause, lambda: None)
            cmd = await self.makeRemoteShellCommand(command=argv, collectStdout=True,
                                                    stdioLogName=f"check {server.name}",
                                                    timeout=server.check_timeout, maxTime=server.check_timeout)
            await self.runCommand(cmd)
            if cmd.results() == results.SUCCESS and not cmd.didFail():
                return None
        output = [line.strip() for line in (cmd.stdout or "").splitlines() if line.strip()]
        last = f": {output[-1][:OUTPUT_SHOWN]}" if output else ""
        tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
        return f"check {shlex.join(argv)} failed on {server.name} (exit code {cmd.rc}, {tries}){last}"

    async def _after_failed_check(self, registry: Registry, server: Server, revision: str,
                                  previous: Deployment | None, failure: str,
                                  planned_cowboys: frozenset[int] = frozenset()) -> dict[str, str]:
        """Roll the server back if that is safe (audited either way); the rollout stops after this server."""
        before = previous.revision if previous else None
        missing = await lost_fixes(self.upstream, registry, before) if before else []
        decision = policy.rollback_after_failed_check(server.name, revision, before, missing)
        patched = [c for c in await registry.cowboys() if c.server == server.name and c.id not in planned_cowboys]
        if decision.action is Action.MOVE and patched:  # a losa patched it by hand meanwhile: never deploy over that
            decision = Decision(Action.REFUSE, "not rolled back: " + ", ".join(
                f"cowboy #{c.id} ({c.reason}) was recorded on {server.name} during the rollout" for c in patched))
        status, what = ServerStatus.CHECK_FAILED, decision.reason
        if decision.action is Action.MOVE:
            assert decision.revision is not None
            problem = await self._roll_back(server, decision.revision)
            if problem is None:
                status, what = ServerStatus.ROLLED_BACK, f"rolled back to {short(decision.revision)}"
            else:
                what = f"rolling {server.name} back to {short(decision.revision)} failed ({problem}); " \
                       f"it may run {short(revision)}, which failed its check"
        now = self.master.reactor.seconds()
        await registry.audit(AuditEntry(now, self.who, AuditAction.DEPLOY_CHECK_FAILED, {
            "server": server.name, "revision": revision, "previous": before,
            "check": server.check_argv(revision), "failure": failure, "outcome": status, "rollback": what}))
        # a revision that failed its check on a server is QA'd: bad, until reverted or marked again
        await record_mark(services(self.master).qa, registry, QaMark(revision, QaState.BAD, AUTOMATIC, now, failure))
        return {"status": status, "reason": f"{failure}; {what}"}

    async def _roll_back(self, server: Server, revision: str) -> str | None:
        """Check ``revision`` out again and run the deploy command for it; None when that worked, else why not."""
        branch = str(self.getProperty(prop.CHECKOUT_BRANCH) or self.settings.branches.production_stable)
        log = f"rollback {server.name}"
        for argv in checkout_commands(self.settings.repository.url, qualified(branch), revision):
            cmd = await self.makeRemoteShellCommand(command=argv, stdioLogName=log, collectStdout=True)
            await self.runCommand(cmd)
            if cmd.didFail():
                return f"checking out {short(revision)} failed"
        if cmd.stdout.strip() != revision:
            return f"the checkout is at {cmd.stdout.strip()!r}, not {short(revision)}"
        rc = await self._run_deploy_command(server, revision, log)
        return None if rc is None else f"deploy command exit code {rc}"


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
