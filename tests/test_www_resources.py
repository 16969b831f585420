"""lpdeploy's JSON pages (``status.json``, ``audit.json``, ``cowboys.json``) through Buildbot's render helper.

Rendered with Buildbot's ``FakeRequest`` on in-memory stores (``facts.services.in_memory``):
the answers, the role check of the audit trail, and JSON error bodies when a store fails.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from buildbot.test.fake.web import FakeRequest
from twisted.trial import unittest

from lpdeploy.core.model import AuditAction, AuditEntry, CowboyPatch, CowboyState
from lpdeploy.facts import services
from lpdeploy.web.www import AuditResource, CowboysResource, LpDeployApp


class _Master:
    """What the resources read of a master: the stores (installed below) and the web's authz."""

    def __init__(self) -> None:
        self.www = SimpleNamespace(
            authz=SimpleNamespace(getRolesFromUser=lambda info: info.get("roles", [])),
            getUserInfos=lambda request: request.user_info)


class _Broken:
    async def cowboys(self, include_ended: bool = False) -> list[Any]:
        raise OSError("database gone")

    async def audit_log(self, limit: int = 100) -> list[Any]:
        raise OSError("database gone")


class JsonPages(unittest.TestCase):
    def setUp(self) -> None:
        self.master = _Master()
        self.stores = services.in_memory(self.master)
        self.app = LpDeployApp()
        self.app.master = self.master

    async def get(self, page: Any, roles: tuple[str, ...] = (), args: dict[bytes, list[bytes]] | None = None
                  ) -> tuple[int, Any]:
        request = FakeRequest(args=args or {})
        request.user_info = {"roles": list(roles)}
        codes: list[int] = []
        request.setResponseCode = codes.append
        await request.test_render(page)
        assert request.finished
        return (codes[-1] if codes else 200), json.loads(request.written)

    async def test_the_audit_trail_is_refused_without_a_role_with_a_json_reason(self) -> None:
        code, body = await self.get(AuditResource(self.app))
        self.assertEqual(code, 403)
        self.assertEqual(body, {"error": "the audit trail needs the security or losa role"})

    async def test_a_losa_reads_the_flow_but_not_the_security_work(self) -> None:
        await self.stores.registry.audit(AuditEntry(1.0, "bob", AuditAction.FREEZE, {"reason": "release"}))
        await self.stores.registry.audit(AuditEntry(2.0, "alice", AuditAction.SECURITY_BUILD, {"job": "x"}))
        code, body = await self.get(AuditResource(self.app), roles=("losa",))
        self.assertEqual(code, 200)
        self.assertEqual([e["action"] for e in body], ["freeze"])
        code, body = await self.get(AuditResource(self.app), roles=("security",))
        self.assertEqual(sorted(e["action"] for e in body), ["freeze", "security-build"])

    async def test_cowboys_lists_the_active_ones_and_all_of_them_when_asked(self) -> None:
        kept = await self.stores.registry.add_cowboy("app1", "hot patch", None, "bob", 1.0)
        gone = await self.stores.registry.add_cowboy("app2", "old patch", None, "bob", 2.0)
        await self.stores.registry.end_cowboy(gone.id, CowboyState.REMOVED, "bob", "reverted", 3.0)
        code, body = await self.get(CowboysResource(self.app))
        self.assertEqual((code, [c["id"] for c in body]), (200, [kept.id]))
        code, body = await self.get(CowboysResource(self.app), args={b"all": [b"1"]})
        self.assertEqual([c["id"] for c in body], [kept.id, gone.id])

    async def test_a_cowboy_with_a_patch_is_listed_with_its_patch_id_and_size_not_the_diff(self) -> None:
        diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
        plain = await self.stores.registry.add_cowboy("app1", "hot patch", None, "bob", 1.0)
        patched = await self.stores.registry.add_cowboy("app2", "relay", None, "bob", 2.0)
        await self.stores.registry.save_cowboy_patch(CowboyPatch(patched.id, "9" * 40, "a" * 40, diff))
        code, body = await self.get(CowboysResource(self.app))
        self.assertEqual({c["id"]: c["patch"] for c in body},
                         {plain.id: None, patched.id: {"patch_id": "9" * 40, "base": "a" * 40, "size": len(diff)}})

    async def test_a_failing_store_is_a_500_with_a_json_reason_and_no_detail(self) -> None:
        services.install(self.master, registry=_Broken())  # type: ignore[arg-type]
        code, body = await self.get(CowboysResource(self.app))
        self.assertEqual((code, body), (500, {"error": "could not read the cowboys; see the master log"}))
        code, body = await self.get(AuditResource(self.app), roles=("losa",))
        self.assertEqual((code, body), (500, {"error": "could not read the audit trail; see the master log"}))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 2)
