"""The **cowboy-add** form: the diff of a cowboy's patch becomes an upload, never a property.

Buildbot's ``ForceScheduler.force`` copies every form field into the
buildset's properties, which every viewer of the web UI can read (REST
``builds/N/properties``, ``buildsets/N/properties``, ``builds?property=*``,
the websocket). A hot patch is often the fix of a vulnerability, so
``CowboyForceScheduler`` takes the validated ``patch`` field out before the
buildset is added: the diff is stored in the registry as a ``PatchUpload``
(who forced the build, when) under a random token, and the buildset carries
only the token (``lpdeploy_patch_upload``). The admin step claims it as the
same user (``steps.admin``).

Its own module because importing Buildbot's ``forcesched`` pulls in a
deprecated Twisted API: the schedulers and steps do not need it.
"""

from __future__ import annotations

from typing import Any

from buildbot.process.properties import Properties
from buildbot.schedulers.forcesched import ForceScheduler
from twisted.internet import defer

from lpdeploy.core import properties as prop
from lpdeploy.core.model import AUTOMATIC, PatchUpload
from lpdeploy.facts.services import services
from lpdeploy.stores.registry import new_upload_token

PATCH_FIELD = "patch"  # the form field (and CLI parameter) carrying the diff; it never reaches a buildset


class CowboyForceScheduler(ForceScheduler):
    """The cowboy-add form: a non-empty ``patch`` field is stored as an upload; the buildset gets its token."""

    def addBuildsetForSourceStampsWithDefaults(self, reason: str, sourcestamps: Any = None,  # type: ignore[override]
                                               properties: Properties | None = None, **kwargs: Any) -> Any:
        """Called by ``force`` once every field is validated; also drops a token smuggled in as a field."""
        return defer.ensureDeferred(self._add(reason, sourcestamps, properties or Properties(), kwargs))

    async def _add(self, reason: str, sourcestamps: Any, properties: Properties, kwargs: dict[str, Any]) -> Any:
        kept = Properties()
        for name, (value, source) in properties.asDict().items():
            if name not in (PATCH_FIELD, prop.PATCH_UPLOAD):
                kept.setProperty(name, value, source)
        diff = properties.getProperty(PATCH_FIELD) or ""
        if diff:
            token = new_upload_token()
            owner = properties.getProperty("owner")  # who, as ``FlowStep.who`` reads it back to claim
            owner = str(owner) if owner and owner != "anonymous" else AUTOMATIC
            await services(self.master).registry.save_patch_upload(
                PatchUpload(token, diff, owner, self.master.reactor.seconds()))
            kept.setProperty(prop.PATCH_UPLOAD, token, "lpdeploy")
        return await super().addBuildsetForSourceStampsWithDefaults(reason, sourcestamps, properties=kept,
                                                                    **kwargs)
