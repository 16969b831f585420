"""Ask servers what they really run: the inspect builder, and the inspection a deploy makes first.

Every server with an ``inspect_command`` prints the git tree sha (or a content
hash) of what it runs. ``InspectServers`` — the one step of the inspect
builder, started by ``InspectScheduler`` every ``[deploy] inspect_interval``
seconds — runs it for each server lpdeploy has deployed to and compares with
the tree of the revision deployed there. A mismatch with no recorded cowboy
is an *unrecorded change*: it is stored in the registry and audited, and the
server's rollouts are refused (``policy.server_plan``) until a cowboy is
recorded for it, a losa deploys over it with a reason, or a later inspection
finds the deployed tree again (``policy.standing_change``).
"""

from __future__ import annotations

import re
from typing import Any

from buildbot.process import buildstep, results

from lpdeploy.core import policy
from lpdeploy.core.errors import GitError
from lpdeploy.core.model import AuditAction, AuditEntry, BuildOutcome, Deployment, FlowKind
from lpdeploy.core.refs import short
from lpdeploy.core.settings import Server, Settings
from lpdeploy.facts.services import services
from lpdeploy.master.steps.deploy_lease import DEPLOY_LEASE
from lpdeploy.master.steps.flow import FlowStep
from lpdeploy.stores.lease import DbLeases
from lpdeploy.stores.registry import Registry

_HASH = re.compile(r"[0-9a-f]{7,64}")  # what an inspect command's last line must be


async def what_runs(step: Any, server: Server) -> tuple[str | None, str]:
    """Run ``server``'s inspect command from ``step`` (a ShellMixin step); (the tree it printed, or None; why not)."""
    cmd = await step.makeRemoteShellCommand(command=server.inspect_argv(), collectStdout=True,
                                            stdioLogName=f"inspect {server.name}",
                                            timeout=server.check_timeout, maxTime=server.check_timeout)
    await step.runCommand(cmd)
    lines = [line.strip() for line in (cmd.stdout or "").splitlines() if line.strip()]
    seen = lines[-1].lower() if lines else ""
    if cmd.results() != results.SUCCESS or cmd.didFail() or not _HASH.fullmatch(seen):
        return None, f"exit code {cmd.rc}" if cmd.didFail() else "it printed no tree sha"
    return seen, ""


async def settle(step: FlowStep, registry: Registry, server: str, previous: Deployment,
                 seen: str) -> tuple[str | None, bool]:
    """Store what an inspection found (the unrecorded change that stands, or none); audit a change of it.

    Returns the tree of the deployed revision (None: no longer upstream) and
    whether the server has a recorded cowboy, for the caller's decision.
    """
    try:
        await step.upstream.fetch_revision(previous.revision)
        deployed_tree: str | None = await step.upstream.tree_of(previous.revision)
    except GitError:
        deployed_tree = None  # no longer upstream: nothing to compare with
    cowboy = any(c.server == server for c in await registry.cowboys())
    standing = next((c for c in await registry.unrecorded_changes() if c.server == server), None)
    now = step.master.reactor.seconds()
    after = policy.standing_change(server, previous.revision, deployed_tree, seen, cowboy, standing, now, step.who)
    if after == standing:
        return deployed_tree, cowboy
    if after is None:
        await registry.clear_unrecorded_change(server)
        why = "a cowboy is recorded for it" if cowboy else f"it runs tree {short(seen)} again, as deployed"
        await registry.audit(AuditEntry(now, step.who, AuditAction.UNRECORDED_CHANGE, {
            "server": server, "outcome": "cleared", "reason": why, "was": standing.as_json() if standing else None}))
    else:
        await registry.record_unrecorded_change(after)
        await registry.audit(AuditEntry(now, step.who, AuditAction.UNRECORDED_CHANGE, {
            "server": server, "outcome": "found", "revision": after.revision, "expected": after.expected,
            "found": after.found, "reason": f"unrecorded change on {server}: it runs tree {short(after.found)}, "
                                            f"lpdeploy deployed tree {short(after.expected)} there"}))
    return deployed_tree, cowboy


class InspectServers(buildstep.ShellMixin, FlowStep):
    """Run every server's inspect command; record or clear its unrecorded change."""

    name = "inspect"
    description = ["inspecting servers"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(settings=settings, kind=FlowKind.ADMIN, **kwargs)

    async def run(self) -> int:
        registry = services(self.master).registry
        lease = await DbLeases(self.master).state(DEPLOY_LEASE)
        if lease is not None and not lease.free_at(self.master.reactor.seconds()):
            # mid-rollout a server runs its new revision before lpdeploy records it (the check, the soak):
            # that is no unrecorded change, so nothing is compared until the deploy is over
            why = f"a deploy is running ({lease.holder}); the next inspection compares"
            self.outcome(BuildOutcome.NOTHING, why)
            self.descriptionDone = ["skipped: a deploy is running"]
            self.say(why)
            await self.flush()
            return results.SKIPPED
        failed, changed = [], []
        for server in self.settings.servers:
            if not server.inspect_command:
                continue
            previous = await registry.deployment(server.name)
            if previous is None:
                self.say(f"{server.name}: nothing deployed by lpdeploy to compare with")
                continue
            seen, why = await what_runs(self, server)
            if seen is None:
                failed.append(server.name)
                self.say(f"{server.name}: its inspect command failed ({why}); what it runs is unknown")
                continue
            await settle(self, registry, server.name, previous, seen)
            standing = [c for c in await registry.unrecorded_changes() if c.server == server.name]
            if standing:
                changed.append(server.name)
                self.say(f"{server.name}: {policy.unrecorded_text(standing[0])}")
            else:
                self.say(f"{server.name}: runs tree {short(seen)}; nothing unrecorded")
        summary = "; ".join(p for p in (
            f"unrecorded changes on {', '.join(changed)}" if changed else "",
            f"inspection failed on {', '.join(failed)}" if failed else "") if p) or "no unrecorded changes"
        self.outcome(BuildOutcome.DONE if not changed else BuildOutcome.REFUSED, summary)
        self.descriptionDone = [summary[:120]]
        await self.flush()
        if changed:
            return results.FAILURE
        return results.WARNINGS if failed else results.SUCCESS
