"""A cowboy carrying its patch: recorded with its git patch-id, retired when the same change is deployed.

Same harness as ``test_deploy_steps.py`` (Buildbot's step harness, a real
upstream, the real ``DbRegistry``). The story: app1 runs p1; a losa patches
the mail relay config by hand (the diff of commit ``hand``, which is never
pushed) and records it with the diff; later a developer commits the same
change on production-stable under another commit id (``fix``, on top of an
unrelated commit), so the target contains it although no ``--fixed-by`` was
given.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from buildbot.process.results import FAILURE, SUCCESS
from buildbot.test.steps import ExpectShell
from buildbot.util.twisted import async_to_deferred
from test_deploy_steps import TIMEOUTS, DeployCase, deploy_argv

from lpdeploy.core.model import CowboyPatch, CowboyState, PatchUpload
from lpdeploy.facts.services import services
from lpdeploy.master.steps.admin import AdminAction
from lpdeploy.master.steps.deploy import PlanDeploy, RunDeploys
from lpdeploy.stores.registry import new_upload_token

T0 = 1_700_000_000.0


class PatchCase(DeployCase):
    def story(self):
        """base ← p1 (app1 runs it) ← other ← fix (production-stable); ``hand`` = p1 + the hand edit."""
        self.history()
        r = self.repo
        r.git("checkout", "--quiet", "--detach", self.p1)
        (self._file("mail.cf")).write_text("relay = old.example.org\n")
        r.git("add", "mail.cf")
        r.git("commit", "--quiet", "-m", "Add the mail relay config")
        self.p1m = r.git("rev-parse", "HEAD")
        (self._file("mail.cf")).write_text("relay = new.example.org\n")
        r.git("commit", "--quiet", "-am", "Hand edit of the relay")
        self.hand = r.git("rev-parse", "HEAD")
        self.diff = r.git("diff", self.p1m, self.hand) + "\n"
        self.hand_id = subprocess.run(["git", "patch-id", "--stable"], input=self.diff, capture_output=True,
                                      text=True, check=True).stdout.split()[0]
        r.git("checkout", "--quiet", "--detach", self.p1m)
        self.other = r.commit("Unrelated work", self.p1m, path="other.txt")
        r.git("cherry-pick", self.hand)
        self.fix = r.git("rev-parse", "HEAD")
        for b in ("stable", "production-devel", "production-stable"):
            r.push(b, self.fix)

    def _file(self, name):
        return Path(self.repo.work) / name

    async def upload(self, diff: str, by: str = "bob") -> str:
        """The diff stored as the cowboy-add form stores it (``cowboy_forms``); returns the build's token."""
        token = new_upload_token()
        await self.registry.save_patch_upload(PatchUpload(token, diff, by, self.reactor.seconds()))
        return token

    async def cowboy_with_patch(self):
        await self.deployed("app1", self.p1m)
        c = await self.registry.add_cowboy("app1", "relay changed by hand", None, "bob", T0)
        await self.registry.save_cowboy_patch(CowboyPatch(c.id, self.hand_id, self.p1m, self.diff))
        return c


class RecordingAPatch(PatchCase):
    @async_to_deferred
    async def test_cowboy_add_keeps_the_diff_with_its_patch_id_and_the_servers_deployed_revision(self):
        self.story()
        await self.deployed("app1", self.p1m)
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1 app2", cowboy_reason="relay changed by hand",
                             lpdeploy_patch_upload=await self.upload(self.diff))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.registry.cowboy_patch(1), CowboyPatch(1, self.hand_id, self.p1m, self.diff))
        self.assertEqual((await self.registry.cowboy_patch(2)).base, None)  # app2: nothing deployed yet
        self.assertIn(f"with its patch (patch-id {self.hand_id[:12]})", self.prop("lpdeploy_reason"))
        audit = [e for e in await self.registry.audit_log() if e.action == "cowboy-add"]
        self.assertEqual({e.details["patch"]["patch_id"] for e in audit}, {self.hand_id})

    @async_to_deferred
    async def test_a_diff_of_several_commits_is_refused_and_nothing_is_recorded(self):
        self.story()
        series = self.repo.git("log", "-p", "--format=commit %H", f"{self.p1}..{self.hand}") + "\n"
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="relay changed by hand",
                             lpdeploy_patch_upload=await self.upload(series))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn("git patch-id finds no single change in it", self.prop("lpdeploy_reason"))
        self.assertNotIn(series.split("\n")[0], self.prop("lpdeploy_reason"))  # readable by all: no line of it
        self.assertEqual(await self.registry.cowboys(), [])

    @async_to_deferred
    async def test_text_that_is_no_diff_is_refused(self):
        self.story()
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="relay changed by hand",
                             lpdeploy_patch_upload=await self.upload("I edited mail.cf\n"))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn("is not a unified diff", self.prop("lpdeploy_reason"))
        self.assertEqual(await self.registry.cowboys(), [])


    @async_to_deferred
    async def test_an_upload_of_another_user_is_refused_and_nothing_is_recorded(self):
        self.story()
        token = await self.upload(self.diff, by="carol")
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="relay changed by hand", lpdeploy_patch_upload=token)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn("uploaded by another user", self.prop("lpdeploy_reason"))
        self.assertEqual(await self.registry.cowboys(), [])
        self.assertEqual(await self.registry.claim_patch_upload(token, "carol", self.reactor.seconds()), self.diff)

    @async_to_deferred
    async def test_a_used_upload_cannot_record_a_second_cowboy(self):
        self.story()
        token = await self.upload(self.diff)
        await self.registry.claim_patch_upload(token, "bob", self.reactor.seconds())  # the first build claimed it
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="relay changed by hand", lpdeploy_patch_upload=token)
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn("already used", self.prop("lpdeploy_reason"))
        self.assertEqual(await self.registry.cowboys(), [])

    @async_to_deferred
    async def test_a_diff_given_as_a_build_property_is_not_read(self):
        """Only the upload counts: a ``patch`` property (how the diff once travelled) records no patch."""
        self.story()
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="relay changed by hand", patch=self.diff)
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertIsNone(await self.registry.cowboy_patch(1))


class PlanningOverAPatch(PatchCase):
    @async_to_deferred
    async def test_a_target_holding_the_same_change_under_another_id_retires_the_cowboy(self):
        self.story()
        c = await self.cowboy_with_patch()
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1", owner="alice")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        (plan,) = self.prop("lpdeploy_plan")
        self.assertEqual((plan["action"], list(plan["retire"])), ("move", [c.id]))
        self.assertEqual([list(m) for m in plan["patch_matches"]], [[c.id, self.fix]])
        self.assertIn(f"commit {self.fix[:12]} makes the same change as its patch", plan["reason"])
        # the commits new to app1 had their patch ids computed once, and are cached
        self.assertEqual(set(await self.registry.patch_ids([self.other, self.fix, self.p1m])), {self.other, self.fix})

    @async_to_deferred
    async def test_a_target_without_the_change_is_refused(self):
        self.story()
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.other)
        await self.cowboy_with_patch()
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        (plan,) = self.prop("lpdeploy_plan")
        self.assertEqual(plan["action"], "refuse")

    @async_to_deferred
    async def test_cached_patch_ids_are_not_computed_again(self):
        self.story()
        await self.cowboy_with_patch()
        asked = []
        upstream = services(self.master).upstream(self.settings.repository.url)
        real = upstream.patch_ids

        async def counting(shas):
            asked.append(list(shas))
            return await real(shas)

        upstream.patch_ids = counting
        await self.registry.save_patch_ids({self.other: "0" * 40})  # cached earlier (a made-up id: never recomputed)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(asked, [[self.fix]])


class RetiringByPatch(PatchCase):
    @async_to_deferred
    async def test_the_retirement_reason_names_the_commit_that_made_the_same_change(self):
        self.story()
        c = await self.cowboy_with_patch()
        plan = {"server": "app1", "action": "move", "reason": "deploying to app1", "retire": [c.id],
                "overridden": [], "patch_matches": [[c.id, self.fix]]}
        self.setup_flow_step(RunDeploys(settings=self.settings), lpdeploy_revision=self.fix, got_revision=self.fix,
                             lpdeploy_plan=[plan], owner="alice")
        self.expect_commands(ExpectShell(workdir="wkdir", command=deploy_argv("app1", self.fix),
                                         timeout=TIMEOUTS["app1"], max_time=TIMEOUTS["app1"],
                                         log_environ=False).exit(0))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        (ended,) = await self.registry.cowboys(include_ended=True)
        self.assertEqual(ended.state, CowboyState.RETIRED)
        self.assertIn(f"commit {self.fix[:12]} makes the same change as its patch (same git patch-id)",
                      ended.end_reason)
