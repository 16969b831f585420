"""Unrecorded changes: the inspect builder's step, and what a standing change does to plans and cowboys.

Same harness as ``test_deploy_steps.py`` (Buildbot's step harness, a real
upstream, the real ``DbRegistry`` on Buildbot's database). ``InspectServers``
runs each server's inspect command as a worker command answered by
``ExpectShell``; what it prints is compared with the tree of the revision
lpdeploy deployed there.
"""

from __future__ import annotations

from buildbot.process.results import FAILURE, SKIPPED, SUCCESS, WARNINGS
from buildbot.test.steps import ExpectShell
from buildbot.util.twisted import async_to_deferred
from test_deploy_steps import T0, DeployCase, deploy_argv
from twisted.internet import defer

from lpdeploy.core.model import AUTOMATIC, UnrecordedChange
from lpdeploy.core.settings import parse_settings
from lpdeploy.facts.services import services
from lpdeploy.master.steps.admin import AdminAction
from lpdeploy.master.steps.deploy import PlanDeploy
from lpdeploy.master.steps.deploy_lease import DEPLOY_LEASE
from lpdeploy.master.steps.inspect import InspectServers
from lpdeploy.stores.lease import DbLeases

TIMEOUT = 20


class InspectCase(DeployCase):
    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": name, "deploy_command": deploy_argv("{server}", "{revision}"),
                         "check_timeout": TIMEOUT, "inspect_command": ["./what-runs", "{server}"]}
                        for name in ("app1", "app2")] + [{"name": "app3", "deploy_command": ["./deploy"]}]})

    def tree(self, sha):
        return self.repo.git("rev-parse", f"{sha}^{{tree}}")

    def inspect(self, server, printed, rc=0):
        return ExpectShell(workdir="wkdir", command=["./what-runs", server], timeout=TIMEOUT,
                           max_time=TIMEOUT, log_environ=False).log(f"inspect {server}", stdout=printed).exit(rc)

    def start(self):
        self.setup_flow_step(InspectServers(settings=self.settings))

    async def standing(self):
        return {u.server: u for u in await self.registry.unrecorded_changes()}

    async def audits(self):
        return [(e.details["server"], e.details["outcome"]) for e in reversed(await self.registry.audit_log())
                if e.action == "unrecorded-change"]


class InspectServersStep(InspectCase):
    @async_to_deferred
    async def test_a_mismatch_without_a_cowboy_is_recorded_with_both_trees_and_audited(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.deployed("app2", self.p2)
        self.reactor.advance(T0)
        self.start()
        self.expect_commands(self.inspect("app1", self.tree(self.p2) + "\n"),
                             self.inspect("app2", f"docroot:\n{self.tree(self.p2)}\n"))
        self.expect_outcome(result=FAILURE)  # app3 has no inspect command: never asked
        await self.run_step()
        self.assertEqual(await self.standing(), {"app1": UnrecordedChange(
            "app1", self.p1, self.tree(self.p1), self.tree(self.p2), T0, AUTOMATIC)})
        self.assertEqual(await self.audits(), [("app1", "found")])
        self.assertIn("unrecorded changes on app1", self.prop("lpdeploy_reason"))
        self.assertIn(f"it runs tree {self.tree(self.p2)[:12]}, lpdeploy deployed tree {self.tree(self.p1)[:12]}",
                      self.log("decision"))

    @async_to_deferred
    async def test_found_again_it_keeps_when_it_was_first_found_and_is_audited_once(self):
        self.history()
        await self.deployed("app1", self.p1)
        first = UnrecordedChange("app1", self.p1, self.tree(self.p1), self.tree(self.p2), T0 - 900, "lpdeploy")
        await self.registry.record_unrecorded_change(first)
        self.reactor.advance(T0)
        self.start()
        self.expect_commands(self.inspect("app1", self.tree(self.p2) + "\n"))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(await self.standing(), {"app1": first})
        self.assertEqual(await self.audits(), [])

    @async_to_deferred
    async def test_a_later_inspection_that_matches_clears_it(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.registry.record_unrecorded_change(
            UnrecordedChange("app1", self.p1, self.tree(self.p1), self.tree(self.p2), T0, "lpdeploy"))
        self.start()
        self.expect_commands(self.inspect("app1", self.tree(self.p1) + "\n"))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.standing(), {})
        self.assertEqual(await self.audits(), [("app1", "cleared")])

    @async_to_deferred
    async def test_a_mismatch_on_a_server_with_a_recorded_cowboy_is_that_cowboy(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.registry.add_cowboy("app1", "patched the login form", None, "bob", T0)
        self.start()
        self.expect_commands(self.inspect("app1", self.tree(self.p2) + "\n"))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.standing(), {})

    @async_to_deferred
    async def test_a_failed_inspection_warns_and_changes_nothing(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.deployed("app2", self.p1)
        self.start()
        self.expect_commands(self.inspect("app1", "ssh: connection refused\n", rc=255),
                             self.inspect("app2", "no sha here\n"))
        self.expect_outcome(result=WARNINGS)
        await self.run_step()
        self.assertEqual(await self.standing(), {})
        self.assertIn("inspection failed on app1, app2", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_server_lpdeploy_never_deployed_is_not_inspected(self):
        self.history()
        self.start()
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertIn("app1: nothing deployed by lpdeploy to compare with", self.log("decision"))


    @async_to_deferred
    async def test_while_a_deploy_holds_the_lease_nothing_is_compared(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.reactor.advance(T0)
        await DbLeases(self.master).take(DEPLOY_LEASE, "master 1 build 7", T0, 60)
        self.start()  # no inspect command runs: app1 may run the new revision before it is recorded
        self.expect_outcome(result=SKIPPED)
        await self.run_step()
        self.assertEqual(await self.standing(), {})
        self.assertIn("a deploy is running (master 1 build 7)", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_an_expired_deploy_lease_does_not_stop_the_inspection(self):
        self.history()
        await self.deployed("app1", self.p1)
        await DbLeases(self.master).take(DEPLOY_LEASE, "a dead master", 0, 60)
        self.reactor.advance(T0)
        self.start()
        self.expect_commands(self.inspect("app1", self.tree(self.p2) + "\n"))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual(list(await self.standing()), ["app1"])


class StandingChangeBlocksRollouts(InspectCase):
    async def drifted(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.registry.record_unrecorded_change(
            UnrecordedChange("app1", self.p1, self.tree(self.p1), "ab" * 20, T0, "lpdeploy"))

    @async_to_deferred
    async def test_the_plan_refuses_the_server_naming_both_trees(self):
        await self.drifted()
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_run_deploy", False, "lpdeploy")
        await self.run_step()
        (plan,) = self.prop("lpdeploy_plan")
        self.assertEqual(plan["action"], "refuse")
        self.assertIn(f"it runs tree {'ab' * 6}, lpdeploy deployed tree {self.tree(self.p1)[:12]}", plan["reason"])

    @async_to_deferred
    async def test_a_losas_override_plans_the_deploy_over_it(self):
        await self.drifted()
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1", owner="alice",
                             override_cowboys=True, override_reason="the hand edit was a test")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        (plan,) = self.prop("lpdeploy_plan")
        self.assertEqual((plan["action"], plan["over_unrecorded"]), ("move", True))
        self.assertIn("OVER an unrecorded change", plan["reason"])

    @async_to_deferred
    async def test_recording_a_cowboy_for_the_server_clears_it(self):
        await self.drifted()
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="the hand edit of the login form")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.standing(), {})
        self.assertEqual(await self.audits(), [("app1", "cleared")])


class StatusAndDashboardShowIt(InspectCase):
    @async_to_deferred
    async def test_status_json_and_the_pipeline_dashboard_show_the_standing_change(self):
        from flask import render_template

        from lpdeploy.web.dashboard import make_app
        from lpdeploy.web.pipeline import pipeline_view
        from lpdeploy.web.status import flow_status

        self.history()
        await self.deployed("app1", self.p1)
        change = UnrecordedChange("app1", self.p1, self.tree(self.p1), "ab" * 20, T0, AUTOMATIC)
        await self.registry.record_unrecorded_change(change)
        stores = services(self.master)
        upstream, ledger = stores.upstream(self.settings.repository.url), stores.ledger
        status = await flow_status(upstream, ledger, self.registry, self.settings)
        servers = {s["name"]: s for s in status["servers"]}
        self.assertEqual(servers["app1"]["unrecorded_change"], change.as_json())
        self.assertIsNone(servers["app2"]["unrecorded_change"])
        view = await pipeline_view(upstream, ledger, self.registry, self.settings, may_see_security=False, now=T0)
        with make_app().test_request_context("/fragment"):
            html = render_template("pipeline_content.html", v=view, user=None, roles=set(),
                                   settings=self.settings, api="/api/v2/", refresh=5)
        self.assertEqual(html.count('class="bad unrecorded"'), 1)
        self.assertIn(f'unrecorded change: runs tree <span class="sha">{"ab" * 6}</span>, deployed tree '
                      f'<span class="sha">{self.tree(self.p1)[:12]}</span>', html)
