"""The cowboy-add form in Buildbot's scheduler harness: a cowboy's diff never enters a buildset.

Build and buildset properties are readable by every viewer of the web UI; a
hot patch is often a vulnerability's fix. ``CowboyForceScheduler`` (the
scheduler ``configurator`` makes for ``cowboy-add``) stores the validated
``patch`` field as an upload of who forced the build and queues only its
token. Same harness as ``test_security_scheduler.py``: Buildbot's real
database and data API, the real ``DbRegistry``.
"""

from __future__ import annotations

import importlib
import warnings

from buildbot.util.twisted import async_to_deferred
from test_security_scheduler import QueueCase

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.properties import PATCH_UPLOAD

MARKER = "SECRET-HOTFIX-7f3a-login-bypass"
DIFF = f"diff --git a/login.py b/login.py\n--- a/login.py\n+++ b/login.py\n@@ -1 +1 @@\n-old\n+{MARKER}\n"


def cowboy_add_scheduler(settings):
    """The ``cowboy-add`` scheduler exactly as the configurator builds it (its module imports ``forcesched``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        configurator = importlib.import_module("lpdeploy.configurator")
    return next(s for s in configurator._deploy_schedulers(settings) if s.name == "cowboy-add")


class CowboyAddForm(QueueCase):
    async def start_form(self):
        sched = cowboy_add_scheduler(self.settings)
        await self.attachScheduler(sched, 91, 92, createBuilderDB=True)
        await sched.configureService()
        self.master.allSchedulers = lambda: [sched]
        return sched

    async def post_as(self, owner: str, **fields):
        return await self.master.data.control(
            "force", {"owner": owner, "servers": "app1", "cowboy_reason": "login fixed by hand", **fields},
            ("forceschedulers", "cowboy-add"))

    @async_to_deferred
    async def test_the_diff_is_stored_as_an_upload_of_who_forced_and_the_buildset_gets_only_its_token(self):
        await self.start_form()
        await self.post_as("bob", patch=DIFF)
        (bs,) = await self.buildsets()
        self.assertNotIn(MARKER, repr(bs))
        self.assertNotIn("patch", bs["properties"])
        token = bs["properties"][PATCH_UPLOAD]
        now = self.master.reactor.seconds()
        with self.assertRaisesRegex(InvalidInput, "uploaded by another user"):
            await self.registry.claim_patch_upload(token, "carol", now)
        self.assertEqual(await self.registry.claim_patch_upload(token, "bob", now), DIFF)

    @async_to_deferred
    async def test_without_a_patch_no_token_is_queued_and_a_smuggled_token_is_dropped(self):
        await self.start_form()
        await self.post_as("bob", lpdeploy_patch_upload="A" * 32)
        (bs,) = await self.buildsets()
        self.assertNotIn(PATCH_UPLOAD, bs["properties"])

    @async_to_deferred
    async def test_a_patch_that_is_no_diff_is_refused_before_anything_is_stored_or_queued(self):
        from buildbot.www.rest import BadJsonRpc2  # the data API's "400 Bad Request"

        await self.start_form()
        with self.assertRaises(BadJsonRpc2) as e:
            await self.post_as("bob", patch=f"I edited login.py\n{MARKER}\n")
        self.assertIn("is not a unified diff", str(e.exception.message))
        self.assertEqual(await self.buildsets(), [])
        self.assertEqual(await self.registry._rows("upload/"), [])
