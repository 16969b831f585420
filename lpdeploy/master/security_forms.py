"""The **security-build** and **merge-back** forms: a validated branch becomes a job, never a property.

Buildbot's ``ForceScheduler.force`` copies every form field, the reason and
the ``owner`` (who clicked) into the buildset's properties, where anyone
could read them; for security work both the branch name and who works on it
are secrets. ``SecurityForceScheduler`` replaces ``force``: it validates the
branch (the security pattern, safe characters, at most 200 characters),
answers a bad one with an HTTP 400 naming the rule before anything is
queued, and queues a job (``security_jobs.queue_job``) whose buildset carries
only its token.

Its own module because importing Buildbot's ``forcesched`` pulls in a
deprecated Twisted API: the schedulers and steps do not need it.
"""

from __future__ import annotations

from typing import Any

from buildbot import config
from buildbot.schedulers.forcesched import CollectedValidationError, ForceScheduler
from twisted.internet import defer

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.model import JobKind
from lpdeploy.core.settings import Settings
from lpdeploy.master.security_jobs import BRANCH_FIELD, REASONS, queue_job, security_branch


class SecurityForceScheduler(ForceScheduler):
    """The security-build and merge-back forms: a validated branch becomes a job; the buildset gets its token."""

    def checkConfig(self, builderNames: list[str], settings: Settings, kind: JobKind,  # type: ignore[override]
                    **kwargs: Any) -> None:
        if not isinstance(settings, Settings):
            config.error(f"{type(self).__name__} needs lpdeploy Settings")
        if kind not in REASONS:
            config.error(f"{type(self).__name__}: unknown kind {kind!r}")
        super().checkConfig(builderNames=builderNames, **kwargs)

    @defer.inlineCallbacks
    def reconfigService(self, builderNames: list[str], settings: Settings, kind: JobKind,  # type: ignore[override]
                        **kwargs: Any):
        self.settings = settings
        self.kind = kind
        yield super().reconfigService(builderNames=builderNames, **kwargs)

    def force(self, owner: str | None, builderNames: list[str] | None = None, builderid: int | None = None,
              **kwargs: Any) -> defer.Deferred[Any]:
        """Called by the data API for a form post: validate, record the job, queue its token.

        Every other field (reason, priority, a smuggled ``lpdeploy_job``) is
        ignored: nothing typed in the form reaches the buildset.
        """
        return defer.ensureDeferred(self._force(owner, builderNames, builderid, kwargs))

    async def _force(self, owner: str | None, builder_names: list[str] | None, builderid: int | None,
                     fields: dict[str, Any]) -> Any:
        names = await self.computeBuilderNames(builder_names, builderid)
        if not names:
            raise KeyError("builderNames not specified or not supported")
        value = fields.get(BRANCH_FIELD, "")
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else ""
        try:
            branch = security_branch(value, self.settings)
        except InvalidInput as e:
            raise CollectedValidationError({BRANCH_FIELD: str(e)}) from None
        who = owner if owner and owner not in ("anonymous", "user") else "unknown user"
        return await queue_job(self, self.settings, self.kind, branch, who, names)
