"""The losa's bookkeeping actions, run as builds of the admin builder.

Cowboys and the freeze change through force schedulers (``cowboy-add``,
``cowboy-remove``, ``freeze``, ``thaw``) so that the web UI's forms, the CLI
and Buildbot's authz all meet in one place, and every change is a build
that shows who did what, when — besides the audit entry in the database.
"""

from __future__ import annotations

from typing import Any

from buildbot.process import results

from lpdeploy.core import properties as prop
from lpdeploy.core import validators
from lpdeploy.core.errors import GitError, InvalidInput, UnknownRevision
from lpdeploy.core.model import AuditAction, AuditEntry, BuildOutcome, CowboyPatch, CowboyState, FlowKind, Freeze
from lpdeploy.core.refs import short
from lpdeploy.core.settings import Settings
from lpdeploy.facts.services import services
from lpdeploy.master.steps.deploy import parse_servers
from lpdeploy.master.steps.flow import SOURCE, FlowStep
from lpdeploy.stores.registry import Registry, UnknownCowboy

ACTIONS = ("cowboy-add", "cowboy-remove", "freeze", "thaw")


class AdminAction(FlowStep):
    """Carry out one bookkeeping action named by the ``lpdeploy_action`` property."""

    name = "action"
    description = ["recording"]

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings=settings, kind=FlowKind.ADMIN, **kwargs)

    async def run(self) -> int:
        action = self.getProperty(prop.ACTION)
        if action not in ACTIONS:
            return await self.refuse(f"unknown action {action!r}")
        registry = services(self.master).registry
        now = self.master.reactor.seconds()
        try:
            handler = getattr(self, "_" + action.replace("-", "_"))
            reason: str = await handler(registry, now)
        except (InvalidInput, UnknownCowboy, UnknownRevision) as e:
            return await self.refuse(str(e))
        except GitError as e:
            return await self.refuse(f"git failed: {e}", outcome=BuildOutcome.FAILED)
        self.say(reason)
        self.outcome(BuildOutcome.DONE, reason)
        self.descriptionDone = [reason[:120]]
        await self.flush()
        return results.SUCCESS

    async def _cowboy_add(self, registry: Registry, now: float) -> str:
        names = parse_servers(self.getProperty("servers"), self.settings, required=True)
        reason = validators.reason(self.getProperty("cowboy_reason"), "cowboy reason")
        fixed_by = validators.optional_revision(self.getProperty("fixed_by"), "fixed-by revision") or None
        if fixed_by is not None:
            await self.upstream.fetch_revision(fixed_by)  # must exist upstream, on any ref
        diff = await self._patch(registry, now)
        patch_id = await self.upstream.patch_id(diff) if diff else None
        if diff and patch_id is None:  # the refusal is readable by all: it names no line of the diff
            raise InvalidInput("patch", f"{len(diff.encode('utf-8', 'surrogateescape')):,} bytes",
                               "git patch-id finds no single change in it; give the output of git diff for "
                               "the files patched by hand")
        ids = []
        for name in names:
            c = await registry.add_cowboy(name, reason, fixed_by, self.who, now)
            patched = {}
            if patch_id is not None:
                deployed = await registry.deployment(name)
                patch = CowboyPatch(c.id, patch_id, deployed.revision if deployed else None, diff)
                await registry.save_cowboy_patch(patch)
                patched = {"patch": patch.summary()}
            await registry.audit(AuditEntry(now, self.who, AuditAction.COWBOY_ADD, {"cowboy": c.as_json(),
                                                                                   **patched}))
            ids.append(c.id)
            was = await registry.clear_unrecorded_change(name)  # the change is recorded now: the cowboy
            if was is not None:
                await registry.audit(AuditEntry(now, self.who, AuditAction.UNRECORDED_CHANGE, {
                    "server": name, "outcome": "cleared", "reason": f"recorded as cowboy #{c.id}",
                    "was": was.as_json()}))
        self.setProperty(prop.COWBOY_IDS, ids, SOURCE)
        fix = f", fixed by {short(fixed_by)}" if fixed_by else ""
        fix += f", with its patch (patch-id {short(patch_id)})" if patch_id else ""
        return f"recorded cowboy {', '.join(f'#{i}' for i in ids)} on {', '.join(names)}: {reason}{fix}"

    async def _patch(self, registry: Registry, now: float) -> str:
        """The diff the form uploaded (``cowboy_forms``), claimed once and only by who forced this build.

        The build carries only the upload's token: its properties are readable
        by every viewer, and a hot patch is often a vulnerability's fix.
        """
        token = self.getProperty(prop.PATCH_UPLOAD)
        if not token:
            return ""
        return validators.patch(await registry.claim_patch_upload(token, self.who, now))

    async def _cowboy_remove(self, registry: Registry, now: float) -> str:
        cowboy = validators.cowboy_id(self.getProperty("cowboy_id"))
        why = validators.reason(self.getProperty("remove_reason"), "remove reason", required=False) or "removed by hand"
        c = await registry.end_cowboy(cowboy, CowboyState.REMOVED, self.who, why, now)
        await registry.audit(AuditEntry(now, self.who, AuditAction.COWBOY_REMOVE, {"cowboy": c.as_json()}))
        return f"removed cowboy #{c.id} on {c.server}: {why}"

    async def _freeze(self, registry: Registry, now: float) -> str:
        reason = validators.reason(self.getProperty("freeze_reason"), "freeze reason")
        await registry.set_freeze(Freeze(reason, self.who, now))
        await registry.audit(AuditEntry(now, self.who, AuditAction.FREEZE, {"reason": reason}))
        return f"frozen by {self.who}: {reason}"

    async def _thaw(self, registry: Registry, now: float) -> str:
        previous = await registry.freeze()
        await registry.set_freeze(None)
        await registry.audit(AuditEntry(now, self.who, AuditAction.THAW, {
            "was": previous.reason if previous else None}))
        return "thawed" + (f" (was frozen by {previous.by}: {previous.reason})" if previous else " (was not frozen)")
