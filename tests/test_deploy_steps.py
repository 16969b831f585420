"""The deploy and admin steps in Buildbot's step harness, on a real upstream and a real database.

``TestBuildStepMixin`` runs each step in a fake build on a fake worker; its
master has Buildbot's real database (SQLite), so ``DbRegistry`` (cowboys,
deployments, the freeze, the audit log) is the real one. ``PlanDeploy`` reads
the tips of a real bare git repository through ``lpdeploy.git.upstream`` and a
mirror in a real temporary master basedir; ``RunDeploys`` runs each server's
deploy command as a worker command, answered by ``ExpectShell``.

Threads: ``TestReactorMixin`` replaces ``threads.deferToThread`` with a
synchronous stand-in and ``upstream.py`` looks it up at call time, so real git
runs synchronously in the test thread.

Workarounds (as in ``test_steps.py``, both from ``support.py``): ``make_master``
defaults to ``basedir='basedir'`` relative to the working directory, so it is
wrapped to give each master a fresh temporary basedir (``RealUpstreamMixin``);
Buildbot's ``FakeBuild`` has no ``getBuilderId``, which the steps need for the
build URL, so the tests give it the builder id the harness inserted, 100
(``FlowStepMixin``).
"""

from __future__ import annotations

import dataclasses

from buildbot.process.results import CANCELLED, FAILURE, RETRY, SUCCESS
from buildbot.steps.master import SetProperty
from buildbot.test import fakedb
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell, TestBuildStepMixin
from buildbot.util.twisted import async_to_deferred
from support import FlowStepMixin, RealUpstreamMixin
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.model import AUTOMATIC, CowboyState, Deployment, Freeze, Release
from lpdeploy.core.qa import QaState
from lpdeploy.core.settings import DeployOptions, parse_settings
from lpdeploy.facts import services
from lpdeploy.git.gitops import checkout_commands
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.steps.admin import AdminAction
from lpdeploy.master.steps.deploy import PlanDeploy, RunDeploys, parse_servers
from lpdeploy.stores.ledger import DbLedger
from lpdeploy.stores.qa import DbQaMarks
from lpdeploy.stores.registry import DbRegistry, InMemoryRegistry

BUILD_NUMBER = 13  # FakeBuild.number
T0 = 1_700_000_000.0
SERVERS = ("app1", "app2", "app3", "app4")
TIMEOUTS = {"app1": 300, "app2": 301, "app3": 302, "app4": 303}


def deploy_argv(server: str, revision: str) -> list[str]:
    return ["./deploy", f"--host={server}", "--rev", revision, "--", "{literal}"]


class DeployCase(RealUpstreamMixin, FlowStepMixin, TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-deploy-")
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": name, "deploy_command": deploy_argv("{server}", "{revision}"),
                         "timeout": TIMEOUTS[name]} for name in SERVERS],
        })
        yield self.setup_test_build_step()
        self.registry = DbRegistry(self.master)

    def log(self, name, index=0):
        return self.get_nth_step(index).logs[name].stdout

    def history(self):
        """base ← p1 ← p2 (production-stable, stable) ← d1 (devel)."""
        self.base = self.repo.commit("Initial release", None)
        self.p1 = self.repo.commit("Add the login form", self.base)
        self.p2 = self.repo.commit("Speed up the front page", self.p1)
        self.d1 = self.repo.commit("Add search", self.p2)
        for b in ("stable", "production-devel", "production-stable"):
            self.repo.push(b, self.p2)
        self.repo.push("devel", self.d1)

    async def deployed(self, server, revision):
        await self.registry.record_deployment(Deployment(server, revision, T0, "earlier"))

    def plans(self):
        return {p["server"]: p for p in self.prop("lpdeploy_plan")}


class PlanDeployRefusals(DeployCase):
    @async_to_deferred
    async def test_a_frozen_flow_refuses_to_deploy_with_the_freeze_reason(self):
        self.history()
        await self.registry.set_freeze(Freeze("release week, ask alice", "alice", T0))
        self.setup_flow_step(PlanDeploy(settings=self.settings))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_plan")
        self.expect_no_property("lpdeploy_run_deploy")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn("frozen by alice: release week, ask alice", reason)
        self.assertIn("deploy", reason)
        self.assertIn("release week", self.log("decision"))

    @async_to_deferred
    async def test_inside_a_freeze_window_a_deploy_is_refused_saying_when_it_ends(self):
        self.history()
        settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": "app1", "deploy_command": ["./deploy"]}],
            "freeze": {"windows": [{"reason": "year-end close", "start": "2023-11-14T00:00:00+00:00",
                                    "end": "2023-11-16T12:00:00+00:00"}]}})
        self.reactor.advance(T0)  # 2023-11-14T22:13:20Z: inside the window, 1d 13h 46m before its end
        self.setup_flow_step(PlanDeploy(settings=settings))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_plan")
        await self.run_step()
        self.assertEqual(self.prop("lpdeploy_reason"), "refusing to deploy: freeze window until "
                         "2023-11-16T12:00+00:00 (in 1d 13h 46m): year-end close")

    @async_to_deferred
    async def test_an_unknown_server_is_refused_naming_it(self):
        self.history()
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1 app9")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_plan")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn("app9", reason)
        self.assertIn("unknown server", reason)

    @async_to_deferred
    async def test_an_override_without_a_reason_is_refused(self):
        self.history()
        self.setup_flow_step(PlanDeploy(settings=self.settings), override_cowboys=True, override_reason="   ")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_plan")
        await self.run_step()
        self.assertIn("needs a reason", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_requested_revision_not_on_production_stable_is_refused(self):
        self.history()
        self.setup_flow_step(PlanDeploy(settings=self.settings), target_revision=self.d1)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_run_deploy")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn(self.d1[:12], reason)
        self.assertIn("is not on production-stable", reason)

    @async_to_deferred
    async def test_a_requested_revision_that_is_not_a_full_sha_is_refused(self):
        self.history()
        self.setup_flow_step(PlanDeploy(settings=self.settings), target_revision="--upload-pack=evil")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("target revision", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_only_refused_servers_fail_the_plan(self):
        self.history()
        await self.deployed("app3", self.p1)
        await self.registry.add_cowboy("app3", "hand-patched the session cache", None, "bob", T0)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app3")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_property("lpdeploy_run_deploy", False, "lpdeploy")
        await self.run_step()
        self.assertEqual(self.plans()["app3"]["action"], "refuse")
        self.assertIn("cowboy #1 by bob", self.prop("lpdeploy_reason"))
        # one decision log: the per-server plan and the refusal together
        log = self.log("decision")
        self.assertIn("app3: refusing to deploy", log)
        self.assertIn(self.prop("lpdeploy_reason"), log)


class PlanDeployPerServer(DeployCase):
    @async_to_deferred
    async def test_each_server_is_planned_move_nothing_or_refuse(self):
        self.history()
        await self.deployed("app2", self.p2)  # already there
        await self.deployed("app3", self.p1)
        blocker = await self.registry.add_cowboy("app3", "hand-patched the session cache", None, "bob", T0)
        await self.deployed("app4", self.p1)
        fixed = await self.registry.add_cowboy("app4", "hot fix of the login form", self.p2, "carol", T0)
        self.setup_flow_step(PlanDeploy(settings=self.settings), owner="alice")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", self.p2, "lpdeploy")
        self.expect_property("lpdeploy_checkout_branch", "production-stable", "lpdeploy")
        self.expect_property("lpdeploy_run_deploy", True, "lpdeploy")
        self.expect_no_property("lpdeploy_outcome")
        await self.run_step()
        plans = self.plans()
        self.assertEqual(list(plans), list(SERVERS))  # every server, in the configured order
        self.assertEqual({s: p["action"] for s, p in plans.items()},
                         {"app1": "move", "app2": "nothing", "app3": "refuse", "app4": "move"})
        self.assertIn("first deployment", plans["app1"]["reason"])
        self.assertIn("already runs", plans["app2"]["reason"])
        self.assertIn(f"cowboy #{blocker.id}", plans["app3"]["reason"])
        self.assertEqual(list(plans["app4"]["retire"]), [fixed.id])
        self.assertEqual(list(plans["app1"]["retire"]), [])
        self.assertEqual(list(plans["app3"]["overridden"]), [])
        # planning deploys nothing and retires nothing that is still to be deployed
        self.assertEqual(await self.registry.deployment("app1"), None)
        self.assertEqual([c.id for c in await self.registry.cowboys()], [blocker.id, fixed.id])
        log = self.log("decision")
        for server in SERVERS:
            self.assertIn(f"{server}: ", log)

    @async_to_deferred
    async def test_a_comma_separated_selection_plans_only_those_servers(self):
        self.history()
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app2, app1")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(list(self.plans()), ["app2", "app1"])

    @async_to_deferred
    async def test_a_rollback_to_an_older_production_revision_is_planned(self):
        self.history()
        await self.deployed("app1", self.p2)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1", target_revision=self.p1)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", self.p1, "lpdeploy")
        await self.run_step()
        self.assertEqual(self.plans()["app1"]["action"], "move")

    @async_to_deferred
    async def test_a_rollback_past_a_released_security_fix_is_refused_naming_it(self):
        # design invariant 4: production never loses a security fix, not even by a rollback
        self.history()
        fix = self.repo.commit("Close the session fixation hole", self.p2)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, fix)
        await self.registry.record_release(Release("security/cve-77", fix, fix, T0, by="sec-alice"))
        await self.deployed("app1", fix)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1", target_revision=self.p2)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_plan")
        self.expect_no_property("lpdeploy_run_deploy")
        await self.run_step()
        reason = self.prop("lpdeploy_reason")
        self.assertIn(f"would lose the embargoed security fix {fix[:12]}", reason)
        self.assertNotIn("cve-77", reason)  # a branch name can be a secret: builds name fixes by sha

    @async_to_deferred
    async def test_a_rollback_that_keeps_the_released_fix_is_planned(self):
        self.history()
        fix = self.repo.commit("Close the session fixation hole", self.p2)
        later = self.repo.commit("Speed up search", fix)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, later)
        await self.registry.record_release(Release("security/cve-77", fix, fix, T0, by="sec-alice"))
        await self.deployed("app1", later)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1", target_revision=fix)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", fix, "lpdeploy")
        await self.run_step()
        self.assertEqual(self.plans()["app1"]["action"], "move")

    @async_to_deferred
    async def test_an_automated_deploy_targets_stable(self):
        self.history()
        self.repo.push("stable", self.d1)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app1", lpdeploy_auto=True)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_revision", self.d1, "lpdeploy")
        self.expect_property("lpdeploy_checkout_branch", "stable", "lpdeploy")
        await self.run_step()

    @async_to_deferred
    async def test_an_override_with_a_reason_deploys_over_the_cowboy(self):
        self.history()
        await self.deployed("app3", self.p1)
        c = await self.registry.add_cowboy("app3", "hand-patched the session cache", None, "bob", T0)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app3", override_cowboys=True,
                             override_reason="patch is obsolete, checked with bob")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_run_deploy", True, "lpdeploy")
        await self.run_step()
        plan = self.plans()["app3"]
        self.assertEqual(plan["action"], "move")
        self.assertEqual(list(plan["overridden"]), [c.id])
        self.assertIn("patch is obsolete", plan["reason"])

    @async_to_deferred
    async def test_an_automated_deploy_never_overrides_a_cowboy(self):
        self.history()
        await self.deployed("app3", self.p1)
        await self.registry.add_cowboy("app3", "hand-patched the session cache", None, "bob", T0)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app3", lpdeploy_auto=True,
                             override_cowboys=True, override_reason="the schedule says so")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertEqual(self.plans()["app3"]["action"], "refuse")
        self.assertIn("app3: refusing to deploy", self.log("decision"))

    @async_to_deferred
    async def test_nothing_to_do_when_every_server_runs_the_target(self):
        self.history()
        for s in SERVERS:
            await self.deployed(s, self.p2)
        self.setup_flow_step(PlanDeploy(settings=self.settings))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "nothing", "lpdeploy")
        self.expect_property("lpdeploy_run_deploy", False, "lpdeploy")
        await self.run_step()
        self.assertEqual({p["action"] for p in self.prop("lpdeploy_plan")}, {"nothing"})
        self.assertIn(self.p2[:12], self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_a_server_already_at_the_target_retires_a_cowboy_whose_fix_it_runs(self):
        self.history()
        await self.deployed("app4", self.p2)
        c = await self.registry.add_cowboy("app4", "hot fix of the login form", self.p1, "carol", T0)
        self.setup_flow_step(PlanDeploy(settings=self.settings), servers="app4", owner="alice")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "nothing", "lpdeploy")
        await self.run_step()
        self.assertEqual(await self.registry.cowboys(), [])
        (ended,) = await self.registry.cowboys(include_ended=True)
        self.assertEqual((ended.id, ended.state, ended.ended_by), (c.id, CowboyState.RETIRED, "alice"))
        self.assertIn("cowboy-retire", [e.action for e in await self.registry.audit_log()])


class RunDeploysStep(DeployCase):
    def plan(self, server, action="move", retire=(), overridden=(), reason=None):
        return {"server": server, "action": action, "reason": reason or f"deploying to {server}",
                "retire": list(retire), "overridden": list(overridden)}

    def decided(self, revision, *plans, got=None):
        return {"lpdeploy_revision": revision, "got_revision": got if got is not None else revision,
                "lpdeploy_plan": list(plans), "owner": "alice"}

    def expect_deploy(self, server, revision, rc):
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=deploy_argv(server, revision), timeout=TIMEOUTS[server],
                        max_time=TIMEOUTS[server], log_environ=False).exit(rc))

    @async_to_deferred
    async def test_exit_0_records_the_deployment_retires_the_cowboy_and_writes_a_report(self):
        self.history()
        await self.deployed("app1", self.p1)
        c = await self.registry.add_cowboy("app1", "hot fix of the login form", self.p2, "carol", T0)
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1", retire=[c.id])))
        self.expect_deploy("app1", self.p2, 0)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "deployed", "lpdeploy")
        await self.run_step()
        dep = await self.registry.deployment("app1")
        self.assertEqual((dep.server, dep.revision, dep.by), ("app1", self.p2, "alice"))
        self.assertTrue(dep.build_url.endswith(f"#/builders/100/builds/{BUILD_NUMBER}"))
        (ended,) = await self.registry.cowboys(include_ended=True)
        self.assertEqual((ended.state, ended.ended_by), (CowboyState.RETIRED, "alice"))
        self.assertIn(self.p2[:12], ended.end_reason)
        actions = [e.action for e in await self.registry.audit_log()]
        self.assertIn("deploy", actions)
        self.assertIn("cowboy-retire", actions)
        deploy = next(e for e in await self.registry.audit_log() if e.action == "deploy")
        self.assertEqual(deploy.details, {"server": "app1", "revision": self.p2, "previous": self.p1})
        report = self.log("report app1")
        self.assertIn(f"deployment report for app1: {self.p1[:12]} → {self.p2[:12]}", report)
        self.assertIn(f"{self.p2[:12]} Speed up the front page (Test Developer <dev@example.invalid>)", report)
        self.assertNotIn("Add the login form", report)  # already deployed before
        self.assertEqual(self.prop("lpdeploy_servers")["app1"]["status"], "deployed")
        self.assertIn("app1: deployed", self.log("summary"))

    @async_to_deferred
    async def test_a_cowboy_recorded_during_the_rollout_stops_the_deploy_to_its_server(self):
        self.history()
        await self.deployed("app1", self.p1)
        # planned with no cowboy; a sysadmin patches app1 by hand while earlier servers deploy
        await self.registry.add_cowboy("app1", "patched during the rollout", None, "carol", T0)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_outcome(result=FAILURE)  # no command runs: expect_commands lists none
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)
        self.assertEqual(self.prop("lpdeploy_servers")["app1"]["status"], "refused")
        self.assertIn("recorded during the rollout", self.prop("lpdeploy_servers")["app1"]["reason"])

    @async_to_deferred
    async def test_a_freeze_during_the_rollout_stops_the_servers_not_yet_deployed(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.registry.set_freeze(Freeze("incident", "carol", T0))
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)
        self.assertIn("frozen during the rollout", self.prop("lpdeploy_servers")["app1"]["reason"])

    @async_to_deferred
    async def test_exit_1_fails_and_records_nothing(self):
        self.history()
        await self.deployed("app1", self.p1)
        c = await self.registry.add_cowboy("app1", "hot fix of the login form", self.p2, "carol", T0)
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1", retire=[c.id])))
        self.expect_deploy("app1", self.p2, 1)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)
        (still,) = await self.registry.cowboys()
        self.assertEqual((still.id, still.state), (c.id, CowboyState.ACTIVE))
        self.assertNotIn("deploy", [e.action for e in await self.registry.audit_log()])
        outcome = self.prop("lpdeploy_servers")["app1"]
        self.assertEqual(outcome["status"], "failed")
        self.assertIn("exit code 1", outcome["reason"])
        self.assertIn(f"still runs {self.p1[:12]}", outcome["reason"])
        self.assertNotIn("report app1", self.get_nth_step(0).logs)

    @async_to_deferred
    async def test_only_the_servers_whose_command_succeeded_are_recorded(self):
        self.history()
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1"), self.plan("app2")))
        self.expect_deploy("app1", self.p2, 0)
        self.expect_deploy("app2", self.p2, 2)
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)
        self.assertIsNone(await self.registry.deployment("app2"))
        self.assertIn("report app1", self.get_nth_step(0).logs)
        self.assertNotIn("report app2", self.get_nth_step(0).logs)
        self.assertIn("first deployment", self.log("report app1"))

    @async_to_deferred
    async def test_unchanged_and_refused_servers_run_no_command(self):
        self.history()
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(
            self.p2, self.plan("app2", action="nothing", reason="app2 already runs it"),
            self.plan("app3", action="refuse", reason="app3 carries cowboy #1")))
        # no ExpectShell: nothing may run
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        servers = self.prop("lpdeploy_servers")
        self.assertEqual({s: o["status"] for s, o in servers.items()}, {"app2": "unchanged", "app3": "refused"})
        self.assertIsNone(await self.registry.deployment("app2"))

    @async_to_deferred
    async def test_a_checkout_at_another_revision_deploys_nothing(self):
        self.history()
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1"), got=self.p1))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_step()
        self.assertIsNone(await self.registry.deployment("app1"))
        self.assertIn(self.p1, self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_an_override_is_audited_with_its_reason(self):
        self.history()
        c = await self.registry.add_cowboy("app3", "hand-patched the session cache", None, "bob", T0)
        self.setup_flow_step(RunDeploys(settings=self.settings), override_reason="patch is obsolete",
                             **self.decided(self.p2, self.plan("app3", overridden=[c.id])))
        self.expect_deploy("app3", self.p2, 0)
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        override = next(e for e in await self.registry.audit_log() if e.action == "cowboy-override")
        self.assertEqual(override.details["cowboys"], [c.id])
        self.assertEqual(override.details["reason"], "patch is obsolete")
        self.assertEqual(override.who, "alice")

    @async_to_deferred
    async def test_the_report_hides_an_embargoed_fix(self):
        # a security fix reached production-stable and is not merged back into devel yet
        self.history()
        fix = self.repo.commit("Fix the login bypass CVE-2099-4242", self.p2)
        self.repo.push("security/cve-4242", fix)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, fix)
        await self.registry.record_release(Release("security/cve-4242", fix, fix, T0, by="sec-alice"))
        await self.deployed("app1", self.p2)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(fix, self.plan("app1")))
        self.expect_deploy("app1", fix, 0)
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        report = self.log("report app1")
        self.assertIn(f"  {fix[:12]} embargoed\n", report)
        self.assertNotIn("CVE-2099-4242", report)
        self.assertNotIn("login bypass", report)


CHECK_TIMEOUT = 45
CHECK_PAUSE = 20


def check_argv(server: str, revision: str) -> list[str]:
    return ["./check", "--server", server, "--revision", revision, "{literal}"]


class CheckedCase(DeployCase):
    """Every server has a check (2 retries, CHECK_PAUSE apart); helpers to expect its commands."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": name, "deploy_command": deploy_argv("{server}", "{revision}"),
                         "timeout": TIMEOUTS[name], "check_timeout": CHECK_TIMEOUT, "check_retries": 2,
                         "check_pause": CHECK_PAUSE,
                         "check_command": ["./check", "--server", "{server}", "--revision", "{revision}",
                                           "{literal}"]}
                        for name in SERVERS]})

    def plan(self, server, action="move", retire=()):
        return {"server": server, "action": action, "reason": f"deploying to {server}", "retire": list(retire),
                "overridden": []}

    def decided(self, revision, *plans):
        return {"lpdeploy_revision": revision, "got_revision": revision, "lpdeploy_plan": list(plans),
                "owner": "alice", "lpdeploy_checkout_branch": "production-stable"}

    def deploy(self, server, revision, rc=0):
        return ExpectShell(workdir="wkdir", command=deploy_argv(server, revision), timeout=TIMEOUTS[server],
                           max_time=TIMEOUTS[server], log_environ=False).exit(rc)

    def check(self, server, revision, rc, output=""):
        return ExpectShell(workdir="wkdir", command=check_argv(server, revision), timeout=CHECK_TIMEOUT,
                           max_time=CHECK_TIMEOUT, log_environ=False).log(f"check {server}", stdout=output).exit(rc)

    def checkout(self, server, revision):
        argvs = checkout_commands(self.repo.url, "refs/heads/production-stable", revision)
        expected = [ExpectShell(workdir="wkdir", command=argv, log_environ=False).exit(0) for argv in argvs[:-1]]
        return [*expected, ExpectShell(workdir="wkdir", command=argvs[-1], log_environ=False)
                .log(f"rollback {server}", stdout=revision + "\n").exit(0)]

    async def run_with_pauses(self, pauses):
        """Run the step, letting the fake clock pass each pause between check attempts."""
        d = self.run_step()
        for _ in range(pauses):
            self.reactor.advance(0)  # the step runs up to the next pause
            self.reactor.advance(CHECK_PAUSE)
        self.reactor.advance(0)
        await d



class CheckedDeploys(CheckedCase):
    """A deploy counts only once its check passes; a failure rolls back and stops the rollout."""

    @async_to_deferred
    async def test_a_passing_check_records_the_deployment(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_commands(self.deploy("app1", self.p2), self.check("app1", self.p2, 0, "ok\n"))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "deployed", "lpdeploy")
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)
        self.assertIn("check passed", self.prop("lpdeploy_servers")["app1"]["reason"])

    async def rerun_after_a_crash(self, revision: str) -> None:
        """This build (Buildbot's fake build, id 92) re-runs the request of build 91, which a master crash
        ended (RETRY) after it decided ``revision``."""
        this = await self.master.db.builds.getBuild(92)
        await self.master.db.insert_test_data([
            fakedb.Build(id=91, number=12, buildrequestid=this.buildrequestid, builderid=this.builderid,
                         workerid=this.workerid, masterid=this.masterid, results=RETRY, complete_at=12345999),
            fakedb.BuildProperty(buildid=91, name="lpdeploy_revision", value=revision, source="lpdeploy"),
        ])

    @async_to_deferred
    async def test_after_a_crash_a_server_whose_check_passes_is_recorded_without_deploying_again(self):
        # the killed build ran app1's deploy command and died before recording it: the re-run checks
        # app1 first, finds it running the target, and records it (deploying again would be a second rollout)
        self.history()
        await self.deployed("app1", self.p1)
        await self.rerun_after_a_crash(self.p2)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_commands(self.check("app1", self.p2, 0, "ok\n"))  # no deploy command
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "deployed", "lpdeploy")
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)
        self.assertIn(f"app1 already runs {self.p2[:12]} (its check passed) after the crash of build #12; "
                      "not deployed again", self.prop("lpdeploy_servers")["app1"]["reason"])

    @async_to_deferred
    async def test_a_check_that_passes_on_a_retry_after_the_pause_counts(self):
        self.history()
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_commands(self.deploy("app1", self.p2), self.check("app1", self.p2, 1, "warming up\n"),
                             self.check("app1", self.p2, 0))
        self.expect_outcome(result=SUCCESS)
        d = self.run_step()
        self.reactor.advance(0)  # the step runs up to the pause
        self.reactor.advance(CHECK_PAUSE - 1)
        self.assertFalse(d.called)  # still pausing before the second attempt
        self.reactor.advance(1)
        self.reactor.advance(0)
        await d
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)

    @async_to_deferred
    async def test_a_cowboy_recorded_while_the_check_fails_is_never_rolled_back_over(self):
        # a losa hand-patches the broken server between two check attempts and records it: the rollback
        # would deploy the old revision over that patch, so it is refused and says why (invariant 5)
        self.history()
        await self.deployed("app1", self.p1)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_commands(self.deploy("app1", self.p2),
                             *[self.check("app1", self.p2, 1, "GET /+health: 500\n") for _ in range(3)])
        self.expect_outcome(result=FAILURE)
        d = self.run_step()
        self.reactor.advance(0)  # the first attempt failed; the step pauses before the next
        c = await self.registry.add_cowboy("app1", "hand fix of the health page", None, "carol", T0)
        for _ in range(2):
            self.reactor.advance(CHECK_PAUSE)
            self.reactor.advance(0)
        await d
        server = self.prop("lpdeploy_servers")["app1"]
        self.assertEqual(server["status"], "check-failed")
        self.assertIn(f"not rolled back: cowboy #{c.id} (hand fix of the health page) was recorded on app1",
                      server["reason"])
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)  # nothing recorded

    @async_to_deferred
    async def test_a_failing_check_rolls_back_stops_the_rollout_and_fails_naming_server_and_check(self):
        self.history()
        await self.deployed("app1", self.p1)
        await self.deployed("app2", self.p1)
        c = await self.registry.add_cowboy("app1", "hot fix of the login form", self.p2, "carol", T0)
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1", retire=[c.id]), self.plan("app2")))
        self.expect_commands(
            self.deploy("app1", self.p2),
            *[self.check("app1", self.p2, 1, "GET /+health: 500\n") for _ in range(3)],
            *self.checkout("app1", self.p1), self.deploy("app1", self.p1))  # and nothing for app2
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_with_pauses(2)
        dep = await self.registry.deployment("app1")
        self.assertEqual((dep.revision, dep.by), (self.p1, "earlier"))  # the failed revision is not recorded
        self.assertEqual((await self.registry.deployment("app2")).revision, self.p1)
        (still,) = await self.registry.cowboys()
        self.assertEqual(still.state, CowboyState.ACTIVE)  # nothing retires on a deploy that did not count
        servers = self.prop("lpdeploy_servers")
        self.assertEqual({n: o["status"] for n, o in servers.items()}, {"app1": "rolled-back", "app2": "stopped"})
        reason = self.prop("lpdeploy_reason")
        self.assertIn(f"check ./check --server app1 --revision {self.p2} '{{literal}}' failed on app1 "
                      "(exit code 1, 3 attempts): GET /+health: 500", reason)
        self.assertIn(f"rolled back to {self.p1[:12]}", reason)
        self.assertIn("app2: stopped: not deployed: the check failed on app1", reason)
        (audit,) = [e for e in await self.registry.audit_log() if e.action == "deploy-check-failed"]
        self.assertEqual((audit.who, audit.details["server"], audit.details["revision"], audit.details["previous"],
                          audit.details["outcome"]), ("alice", "app1", self.p2, self.p1, "rolled-back"))
        self.assertNotIn("deploy", [e.action for e in await self.registry.audit_log()])

    @async_to_deferred
    async def test_a_failing_check_marks_the_revision_qa_bad_with_the_checks_output(self):
        """Issue 14: the revision that failed its check is bad for QA (it holds promotion under require_qa)."""
        self.history()
        await self.deployed("app1", self.p1)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_commands(
            self.deploy("app1", self.p2),
            *[self.check("app1", self.p2, 1, "GET /+health: 500\n") for _ in range(3)],
            *self.checkout("app1", self.p1), self.deploy("app1", self.p1))
        self.expect_outcome(result=FAILURE)
        await self.run_with_pauses(2)
        marks = await DbQaMarks(self.master).marks()
        self.assertEqual(set(marks), {self.p2})
        self.assertEqual((marks[self.p2].state, marks[self.p2].by), (QaState.BAD, AUTOMATIC))
        self.assertIn("failed on app1 (exit code 1, 3 attempts): GET /+health: 500", marks[self.p2].reason)
        (audit,) = [e for e in await self.registry.audit_log() if e.action == "qa-mark"]
        self.assertEqual((audit.who, audit.details["revision"], audit.details["state"]), (AUTOMATIC, self.p2, "bad"))

    @async_to_deferred
    async def test_a_failing_check_never_rolls_back_past_a_released_security_fix(self):
        self.history()
        fix = self.repo.commit("Close the session fixation hole", self.p2)
        for b in ("production-devel", "production-stable"):
            self.repo.push(b, fix)
        await self.registry.record_release(Release("security/cve-77", fix, fix, T0, by="sec-alice"))
        await self.deployed("app1", self.p2)  # deployed before the fix was released
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(fix, self.plan("app1")))
        self.expect_commands(self.deploy("app1", fix), *[self.check("app1", fix, 1) for _ in range(3)])
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        await self.run_with_pauses(2)
        outcome = self.prop("lpdeploy_servers")["app1"]
        self.assertEqual(outcome["status"], "check-failed")
        self.assertIn(f"not rolling app1 back to {self.p2[:12]}: that would take the released security fix "
                      f"{fix[:12]} off it", outcome["reason"])
        self.assertNotIn("cve-77", outcome["reason"])
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)

    @async_to_deferred
    async def test_a_failing_check_on_a_first_deployment_has_nothing_to_roll_back_to(self):
        self.history()
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1"), self.plan("app2")))
        self.expect_commands(self.deploy("app1", self.p2), *[self.check("app1", self.p2, 7) for _ in range(3)])
        self.expect_outcome(result=FAILURE)
        await self.run_with_pauses(2)
        servers = self.prop("lpdeploy_servers")
        self.assertEqual({n: o["status"] for n, o in servers.items()}, {"app1": "check-failed", "app2": "stopped"})
        self.assertIn("not rolling app1 back: lpdeploy never deployed it before", servers["app1"]["reason"])
        self.assertIsNone(await self.registry.deployment("app1"))

    @async_to_deferred
    async def test_a_failing_rollback_says_the_server_may_run_the_failed_revision(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.setup_flow_step(RunDeploys(settings=self.settings), **self.decided(self.p2, self.plan("app1")))
        self.expect_commands(self.deploy("app1", self.p2), *[self.check("app1", self.p2, 1) for _ in range(3)],
                             *self.checkout("app1", self.p1), self.deploy("app1", self.p1, rc=4))
        self.expect_outcome(result=FAILURE)
        await self.run_with_pauses(2)
        outcome = self.prop("lpdeploy_servers")["app1"]
        self.assertEqual(outcome["status"], "check-failed")
        self.assertIn(f"rolling app1 back to {self.p1[:12]} failed (deploy command exit code 4)", outcome["reason"])
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)


SOAK = 600


class SoakedDeploys(CheckedCase):
    """``[deploy] soak``: the canary (the first server) is watched and checked again before the others."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.settings = dataclasses.replace(self.settings, deploy=DeployOptions(soak=SOAK))

    def start(self):
        self.history()
        self.setup_flow_step(RunDeploys(settings=self.settings),
                             **self.decided(self.p2, self.plan("app1"), self.plan("app2")))

    @async_to_deferred
    async def test_a_stop_that_came_before_the_soak_began_ends_it_at_once(self):
        # Buildbot's stop can land between two commands (the canary's bookkeeping), when no soak is running yet
        self.start()
        step = self.get_nth_step(0)
        step.stopped = True
        outcome = {"app1": {"status": "deployed", "reason": "planned"}}
        why = await step._soak(self.registry, "app1", self.p2, None, outcome, frozenset())
        self.assertEqual(why, "the build was stopped before the soak of app1")
        self.assertTrue(step._cancelled)
        self.assertEqual(outcome["app1"]["status"], "deployed")  # the canary keeps its record: it passed its check

    @async_to_deferred
    async def test_the_others_wait_for_the_canarys_soak_and_second_check(self):
        self.start()
        await self.deployed("app1", self.p1)
        self.expect_commands(self.deploy("app1", self.p2), self.check("app1", self.p2, 0),
                             self.check("app1", self.p2, 0), self.deploy("app2", self.p2),
                             self.check("app2", self.p2, 0))
        self.expect_outcome(result=SUCCESS)
        d = self.run_step()
        self.reactor.advance(0)
        self.reactor.advance(SOAK - 1)
        self.assertFalse(d.called)
        self.assertIsNone(await self.registry.deployment("app2"))  # untouched while the canary soaks
        self.reactor.advance(1)
        self.reactor.advance(0)
        await d
        self.assertEqual((await self.registry.deployment("app2")).revision, self.p2)
        self.assertIn("checked again after a 10m soak", self.prop("lpdeploy_servers")["app1"]["reason"])

    @async_to_deferred
    async def test_a_canary_failing_after_the_soak_is_rolled_back_and_the_others_are_untouched(self):
        self.start()
        await self.deployed("app1", self.p1)
        self.expect_commands(self.deploy("app1", self.p2), self.check("app1", self.p2, 0),
                             *[self.check("app1", self.p2, 1, "memory leak\n") for _ in range(3)],
                             *self.checkout("app1", self.p1), self.deploy("app1", self.p1))
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "failed", "lpdeploy")
        d = self.run_step()
        self.reactor.advance(0)
        self.reactor.advance(SOAK)
        await self.run_with_pauses_after(d, 2)
        servers = self.prop("lpdeploy_servers")
        self.assertEqual({n: o["status"] for n, o in servers.items()}, {"app1": "rolled-back", "app2": "stopped"})
        self.assertIn("after a 10m soak: check", servers["app1"]["reason"])
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)  # recorded as before
        self.assertIsNone(await self.registry.deployment("app2"))

    @async_to_deferred
    async def test_a_cancel_during_the_soak_leaves_the_others_untouched(self):
        self.start()
        self.expect_commands(self.deploy("app1", self.p2), self.check("app1", self.p2, 0))
        self.expect_outcome(result=CANCELLED)
        d = self.run_step()
        self.reactor.advance(0)
        self.reactor.advance(60)
        self.get_nth_step(0).interrupt("stopped by bob")
        self.reactor.advance(0)
        await d
        servers = self.prop("lpdeploy_servers")
        self.assertEqual(servers["app1"]["status"], "deployed")
        self.assertEqual(servers["app2"]["status"], "stopped")
        self.assertIn("cancelled during the 10m soak of app1", servers["app2"]["reason"])
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)  # its check passed
        self.assertIsNone(await self.registry.deployment("app2"))

    async def run_with_pauses_after(self, d, pauses):
        for _ in range(pauses):
            self.reactor.advance(0)
            self.reactor.advance(CHECK_PAUSE)
        self.reactor.advance(0)
        await d


class DriftCheckedDeploys(DeployCase):
    """``inspect_command``: before a deploy the server says which tree it runs; a change nobody recorded blocks."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.settings = parse_settings({
            "repository": {"url": self.repo.url},
            "servers": [{"name": "app1", "deploy_command": deploy_argv("{server}", "{revision}"),
                         "timeout": TIMEOUTS["app1"], "check_timeout": CHECK_TIMEOUT,
                         "inspect_command": ["./what-runs", "{server}"]}]})

    def tree(self, sha):
        return self.repo.git("rev-parse", f"{sha}^{{tree}}")

    def start(self, retire=(), **props):
        self.setup_flow_step(RunDeploys(settings=self.settings), lpdeploy_revision=self.p2, got_revision=self.p2,
                             owner="alice", lpdeploy_plan=[{"server": "app1", "action": "move",
                                                            "reason": "deploying to app1", "retire": list(retire),
                                                            "overridden": []}], **props)

    def inspect(self, printed, rc=0):
        return ExpectShell(workdir="wkdir", command=["./what-runs", "app1"], timeout=CHECK_TIMEOUT,
                           max_time=CHECK_TIMEOUT, log_environ=False).log("inspect app1", stdout=printed).exit(rc)

    def deploy(self):
        return ExpectShell(workdir="wkdir", command=deploy_argv("app1", self.p2), timeout=TIMEOUTS["app1"],
                           max_time=TIMEOUTS["app1"], log_environ=False).exit(0)

    @async_to_deferred
    async def test_a_server_running_what_was_deployed_is_deployed_to(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.start()
        self.expect_commands(self.inspect(f"tree of the docroot:\n{self.tree(self.p1)}\n"), self.deploy())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)

    @async_to_deferred
    async def test_an_unrecorded_change_refuses_the_deploy_naming_both_trees(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.start()
        self.expect_commands(self.inspect(self.tree(self.d1) + "\n"))  # not what lpdeploy deployed; no deploy
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        reason = self.prop("lpdeploy_servers")["app1"]["reason"]
        self.assertIn(f"unrecorded change on app1: it runs tree {self.tree(self.d1)[:12]}, lpdeploy deployed tree "
                      f"{self.tree(self.p1)[:12]} ({self.p1[:12]})", reason)
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p1)
        outcomes = [e.details["outcome"] for e in await self.registry.audit_log() if e.action == "unrecorded-change"]
        self.assertEqual(outcomes, ["refuse", "found"])  # newest first: found (it now stands), then refused
        (standing,) = await self.registry.unrecorded_changes()  # it stands: later plans refuse app1 too
        self.assertEqual((standing.server, standing.revision, standing.expected, standing.found),
                         ("app1", self.p1, self.tree(self.p1), self.tree(self.d1)))

    @async_to_deferred
    async def test_a_recorded_cowboy_accounts_for_the_change(self):
        self.history()
        await self.deployed("app1", self.p1)
        c = await self.registry.add_cowboy("app1", "patched by hand", self.p2, "carol", T0)  # fixed by the target
        self.start(retire=[c.id])
        self.expect_commands(self.inspect(self.tree(self.d1) + "\n"), self.deploy())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)

    @async_to_deferred
    async def test_a_losas_override_deploys_over_the_change_and_is_audited(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.start(override_cowboys=True, override_reason="the change was a test")
        self.expect_commands(self.inspect(self.tree(self.d1) + "\n"), self.deploy())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        audits = [e for e in await self.registry.audit_log() if e.action == "unrecorded-change"]
        self.assertEqual([e.details["outcome"] for e in audits], ["cleared", "move", "found"])  # newest first
        self.assertIn("override: the change was a test", audits[1].details["reason"])
        self.assertIn("deployed over it: the change was a test", audits[0].details["reason"])
        self.assertEqual(await self.registry.unrecorded_changes(), [])  # app1 runs what lpdeploy deployed now

    @async_to_deferred
    async def test_a_server_already_running_the_targets_tree_is_deployed_to_and_cleared(self):
        # a deploy that ran but was never recorded (the master died before it could): nothing to undo
        self.history()
        await self.deployed("app1", self.p1)
        await services.services(self.master).upstream(self.repo.url).fetch()  # as the plan did
        self.start()
        self.expect_commands(self.inspect(self.tree(self.p2) + "\n"), self.deploy())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual((await self.registry.deployment("app1")).revision, self.p2)
        self.assertEqual(await self.registry.unrecorded_changes(), [])

    @async_to_deferred
    async def test_a_first_deployment_has_nothing_to_compare_and_is_not_inspected(self):
        self.history()
        self.start()
        self.expect_commands(self.deploy())
        self.expect_outcome(result=SUCCESS)
        await self.run_step()

    @async_to_deferred
    async def test_a_failing_inspect_command_refuses_the_deploy(self):
        self.history()
        await self.deployed("app1", self.p1)
        self.start()
        self.expect_commands(self.inspect("ssh: connect to host app1: Connection refused\n", rc=255))
        self.expect_outcome(result=FAILURE)
        await self.run_step()
        self.assertIn("its inspect command failed (exit code 255)", self.prop("lpdeploy_servers")["app1"]["reason"])


class ParseServers(DeployCase):
    def test_a_comma_and_space_separated_list_names_those_servers(self):
        self.assertEqual(parse_servers("app1, app2", self.settings), ["app1", "app2"])
        self.assertEqual(parse_servers("app3 app1", self.settings), ["app3", "app1"])
        self.assertEqual(parse_servers(["app2", "app4"], self.settings), ["app2", "app4"])

    def test_empty_means_every_configured_server(self):
        for empty in ("", None, [], " ", " , "):
            self.assertEqual(parse_servers(empty, self.settings), list(SERVERS), repr(empty))

    def test_a_server_named_twice_is_deployed_once(self):
        self.assertEqual(parse_servers("app1 app1,app2", self.settings), ["app1", "app2"])

    def test_an_unknown_server_is_invalid_input(self):
        with self.assertRaises(InvalidInput) as e:
            parse_servers("app1, app9", self.settings)
        self.assertEqual(e.exception.value, "app9")
        with self.assertRaises(InvalidInput):
            parse_servers("--all", self.settings)


class AdminActions(DeployCase):
    @async_to_deferred
    async def test_cowboy_add_records_a_cowboy_per_server_with_an_audit_entry(self):
        self.history()
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1, app3", cowboy_reason=" hand-patched the session cache ",
                             fixed_by=self.p2)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_cowboy_ids", [1, 2], "lpdeploy")
        self.expect_property("lpdeploy_outcome", "done", "lpdeploy")
        await self.run_step()
        cowboys = await self.registry.cowboys()
        self.assertEqual([(c.id, c.server, c.created_by, c.fixed_by) for c in cowboys],
                         [(1, "app1", "bob", self.p2), (2, "app3", "bob", self.p2)])
        self.assertEqual({c.reason for c in cowboys}, {"hand-patched the session cache"})
        audit = [e for e in await self.registry.audit_log() if e.action == "cowboy-add"]
        self.assertEqual(sorted(e.details["cowboy"]["id"] for e in audit), [1, 2])
        self.assertEqual({e.who for e in audit}, {"bob"})
        self.assertIn("#1, #2", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_cowboy_add_with_a_two_line_reason_is_refused_by_the_step_too(self):
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="hand-patched\nFAKE second line")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("more than one line", self.prop("lpdeploy_reason"))
        self.assertEqual(await self.registry.cowboys(), [])

    @async_to_deferred
    async def test_cowboy_add_without_a_server_is_refused(self):
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="", cowboy_reason="hot patch")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        self.expect_no_property("lpdeploy_cowboy_ids")
        await self.run_step()
        self.assertEqual(await self.registry.cowboys(), [])

    @async_to_deferred
    async def test_cowboy_add_with_a_fix_unknown_upstream_records_nothing(self):
        self.history()
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-add", owner="bob",
                             servers="app1", cowboy_reason="hot patch", fixed_by="d" * 40)
        self.expect_outcome(result=FAILURE)
        self.expect_no_property("lpdeploy_cowboy_ids")
        await self.run_step()
        self.assertEqual(await self.registry.cowboys(), [])
        self.assertEqual(await self.registry.audit_log(), [])

    @async_to_deferred
    async def test_cowboy_remove_ends_the_cowboy_with_an_audit_entry(self):
        c = await self.registry.add_cowboy("app1", "hot patch", None, "bob", T0)
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-remove", owner="bob",
                             cowboy_id=f"#{c.id}", remove_reason="reverted by hand")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("lpdeploy_outcome", "done", "lpdeploy")
        await self.run_step()
        (ended,) = await self.registry.cowboys(include_ended=True)
        self.assertEqual((ended.state, ended.ended_by, ended.end_reason),
                         (CowboyState.REMOVED, "bob", "reverted by hand"))
        (entry,) = await self.registry.audit_log()
        self.assertEqual((entry.action, entry.details["cowboy"]["id"]), ("cowboy-remove", c.id))

    @async_to_deferred
    async def test_cowboy_remove_of_an_unknown_id_is_refused(self):
        c = await self.registry.add_cowboy("app1", "hot patch", None, "bob", T0)
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-remove", owner="bob",
                             cowboy_id="7")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("cowboy 7", self.prop("lpdeploy_reason"))
        self.assertEqual(await self.registry.cowboys(), [c])
        self.assertEqual(await self.registry.audit_log(), [])

    @async_to_deferred
    async def test_cowboy_remove_of_a_non_number_is_refused(self):
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="cowboy-remove", owner="bob",
                             cowboy_id="1; rm -rf /")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("must be a number", self.prop("lpdeploy_reason"))

    @async_to_deferred
    async def test_freeze_with_an_empty_reason_is_refused(self):
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="freeze", owner="alice",
                             freeze_reason="   ")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("must not be empty", self.prop("lpdeploy_reason"))
        self.assertIsNone(await self.registry.freeze())
        self.assertEqual(await self.registry.audit_log(), [])

    @async_to_deferred
    async def test_freeze_then_thaw(self):
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="freeze", owner="alice",
                             freeze_reason="release week")
        self.setup_step(SetProperty(property="lpdeploy_action", value="thaw"))
        self.setup_step(AdminAction(settings=self.settings))
        for _ in range(3):
            self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertIsNone(await self.registry.freeze())
        thaw, freeze = await self.registry.audit_log()
        self.assertEqual((freeze.action, freeze.who, freeze.details), ("freeze", "alice", {"reason": "release week"}))
        self.assertEqual((thaw.action, thaw.who, thaw.details), ("thaw", "alice", {"was": "release week"}))
        self.assertIn("frozen by alice: release week", self.log("decision", index=0))
        self.assertIn("thawed (was frozen by alice: release week)", self.log("decision", index=2))

    @async_to_deferred
    async def test_a_freeze_is_recorded_with_who_and_why(self):
        self.reactor.advance(T0)
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="freeze", owner="alice",
                             freeze_reason="incident 42")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        self.assertEqual(await self.registry.freeze(), Freeze("incident 42", "alice", T0))

    @async_to_deferred
    async def test_an_unknown_action_is_refused(self):
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="drop-tables", owner="alice")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("unknown action", self.prop("lpdeploy_reason"))


class InstalledTwins(DeployCase):
    """``facts.services.install``: one call swaps the stores every step of a master reaches."""

    @async_to_deferred
    async def test_a_step_writes_to_the_installed_twin_and_not_the_database(self):
        twins = services.in_memory(self.master)
        self.setup_flow_step(AdminAction(settings=self.settings), lpdeploy_action="freeze", owner="alice",
                             freeze_reason="release week")
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        frozen = await twins.registry.freeze()
        self.assertEqual((frozen.reason, frozen.by), ("release week", "alice"))
        self.assertEqual([e.action for e in await twins.registry.audit_log()], ["freeze"])
        self.assertIsNone(await self.registry.freeze())  # the database store saw nothing
        self.assertEqual(await self.registry.audit_log(), [])

    @async_to_deferred
    async def test_a_step_reads_the_installed_twin(self):
        self.history()
        twins = services.in_memory(self.master)
        await twins.registry.set_freeze(Freeze("incident 7", "bob", T0))
        self.setup_flow_step(PlanDeploy(settings=self.settings), owner="alice")
        self.expect_outcome(result=FAILURE)
        self.expect_property("lpdeploy_outcome", "refused", "lpdeploy")
        await self.run_step()
        self.assertIn("incident 7", self.prop("lpdeploy_reason"))

    def test_by_default_a_master_reaches_its_database_and_install_keeps_what_it_is_not_given(self):
        default = services.services(self.master)
        self.assertIsInstance(default.registry, DbRegistry)
        self.assertIs(default.upstream(self.repo.url), Upstream.of(self.master, self.repo.url))
        registry = InMemoryRegistry()
        mine = services.install(self.master, registry=registry)
        self.assertIs(services.services(self.master).registry, registry)
        self.assertIsInstance(mine.ledger, DbLedger)
