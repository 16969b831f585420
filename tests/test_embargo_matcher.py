"""Reads of an embargoed builder's builds need the security role (design invariant 6).

``fakemaster.make_master(self, wantData=True)`` gives a master with Buildbot's
real database (SQLite, full schema) behind Buildbot's real data connector, so
``EmbargoMatcher`` resolves ids (log → step → build → builder, build request,
buildset, test result set) with the same queries a running master makes. The
rows are inserted with ``buildbot.test.fakedb``: a security builder and a gate
builder, each with one buildset, request, build, step, log and log chunk.

Paths are what Buildbot's REST resource hands to ``Authz.assertUserAllowed``:
a tuple of the URL's path segments as strings (``request.postpath`` decoded),
e.g. ``('logs', '71', 'contents')``; the action is the HTTP method for reads
(``'GET'``) and the JSON-RPC method name for control calls (``'stop'``,
``'rebuild'``, ``'force'``).
"""

from __future__ import annotations

import os

from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from buildbot.www.authz import Authz, Forbidden
from buildbot.www.authz.endpointmatchers import Match
from support import temp_dir
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.settings import parse_settings
from lpdeploy.web.authz import EmbargoMatcher, make_authz

SECURITY_BUILDER, GATE_BUILDER = "lpdeploy-security", "lpdeploy-gate"
MASTER, WORKER = 1, 13
SEC = {"builder": 21, "buildset": 31, "request": 41, "build": 51, "step": 61, "log": 71, "trs": 81}
GATE = {"builder": 22, "buildset": 32, "request": 42, "build": 52, "step": 62, "log": 72, "trs": 82}
SECRET = "Fix the login bypass CVE-2099-4242"


def rows_for(ids: dict[str, int], name: str, log_text: str) -> list:
    return [
        fakedb.Builder(id=ids["builder"], name=name),
        fakedb.Buildset(id=ids["buildset"], reason=f"{name} build"),
        # every real buildset has a source stamp; Buildbot's /buildrequests collection joins on it
        fakedb.SourceStamp(id=ids["buildset"] + 100, branch=name, revision=f"{ids['buildset']:040d}"),
        fakedb.BuildsetSourceStamp(buildsetid=ids["buildset"], sourcestampid=ids["buildset"] + 100),
        fakedb.BuildRequest(id=ids["request"], buildsetid=ids["buildset"], builderid=ids["builder"]),
        fakedb.Build(id=ids["build"], number=1, buildrequestid=ids["request"], builderid=ids["builder"],
                     workerid=WORKER, masterid=MASTER),
        fakedb.Step(id=ids["step"], buildid=ids["build"], number=0, name="suite"),
        fakedb.Log(id=ids["log"], stepid=ids["step"], name="stdio", slug="stdio", type="s", num_lines=1),
        fakedb.LogChunk(logid=ids["log"], first_line=0, last_line=0, content=log_text),
        fakedb.TestResultSet(id=ids["trs"], builderid=ids["builder"], buildid=ids["build"], stepid=ids["step"],
                             description="suite", category="pass_fail", value_unit="boolean"),
    ]


def paths(ids: dict[str, int], builder_name: str) -> list[tuple[str, ...]]:
    """Every read that reaches one build's content, as Buildbot hands it to authz."""
    s = {k: str(v) for k, v in ids.items()}
    return [
        ("builds", s["build"]),
        ("builds", s["build"], "properties"),
        ("builds", s["build"], "steps"),
        ("builds", s["build"], "steps", "suite", "logs", "stdio", "contents"),
        ("builds", s["build"], "steps", "0", "logs", "stdio", "raw"),
        ("steps", s["step"]),
        ("steps", s["step"], "logs"),
        ("steps", s["step"], "logs", "stdio"),
        ("logs", s["log"]),
        ("logs", s["log"], "contents"),
        ("logs", s["log"], "raw"),
        ("logs", s["log"], "raw_inline"),
        ("builders", s["builder"], "builds"),
        ("builders", s["builder"], "builds", "1"),
        ("builders", s["builder"], "builds", "1", "steps", "suite", "logs", "stdio", "contents"),
        ("builders", builder_name, "builds", "1", "steps", "suite", "logs", "stdio"),
        ("buildrequests", s["request"]),
        ("buildsets", s["buildset"], "properties"),
        ("test_result_sets", s["trs"]),
        ("test_result_sets", s["trs"], "results"),
    ]


class MatcherCase(TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-authz-")
        self.master = yield fakemaster.make_master(self, wantData=True, basedir=os.path.join(base, "master"))
        yield self.master.db.insert_test_data([
            fakedb.Master(id=MASTER),
            fakedb.Worker(id=WORKER, name="worker-1"),
            *rows_for(SEC, SECURITY_BUILDER, SECRET),
            *rows_for(GATE, GATE_BUILDER, "all tests passed"),
        ])
        self.matcher = EmbargoMatcher([SECURITY_BUILDER], role="security")
        Authz(allowRules=[self.matcher]).setMaster(self.master)

    async def match(self, path: tuple[str, ...], action: str = "get") -> Match | None:
        return await self.matcher.match(path, action)


class HarnessAssumptions(MatcherCase):
    @async_to_deferred
    async def test_the_rows_are_real_and_reachable_through_the_data_api(self):
        build = await self.master.data.get(("builds", SEC["build"]))
        self.assertEqual(build["builderid"], SEC["builder"])
        log = await self.master.data.get(("logs", SEC["log"]))
        self.assertEqual(log["stepid"], SEC["step"])
        builder = await self.master.data.get(("builders", SECURITY_BUILDER))
        self.assertEqual(builder["builderid"], SEC["builder"])
        chunks = await self.master.data.get(("logs", SEC["log"], "contents"))
        self.assertIn(SECRET, chunks["content"])
        reqs = await self.master.data.get(("buildrequests",))
        self.assertEqual({(r["buildsetid"], r["builderid"]) for r in reqs},
                         {(SEC["buildset"], SEC["builder"]), (GATE["buildset"], GATE["builder"])})

    @async_to_deferred
    async def test_every_path_resolves_to_an_endpoint(self):
        # a typo in a path would make the matcher answer None for the wrong reason
        for path in paths(SEC, SECURITY_BUILDER) + paths(GATE, GATE_BUILDER):
            self.master.data.getEndpoint(path)


class EmbargoMatcherReads(MatcherCase):
    @async_to_deferred
    async def test_reads_named_in_the_design_of_a_security_build_match(self):
        s = {k: str(v) for k, v in SEC.items()}
        for path in [
            ("builds", s["build"]),
            ("builds", s["build"], "properties"),
            ("steps", s["step"], "logs"),
            ("logs", s["log"], "contents"),
            ("logs", s["log"], "raw"),
            ("builders", s["builder"], "builds"),
            ("buildrequests", s["request"]),
            ("logchunks",),
        ]:
            m = await self.match(path)
            self.assertIsInstance(m, Match, f"{path} is readable without the security role")

    @async_to_deferred
    async def test_every_read_reaching_a_security_build_matches(self):
        for path in paths(SEC, SECURITY_BUILDER):
            self.assertIsInstance(await self.match(path), Match, f"{path} is not embargoed")

    @async_to_deferred
    async def test_the_same_reads_of_a_gate_build_do_not_match(self):
        for path in paths(GATE, GATE_BUILDER):
            self.assertIsNone(await self.match(path), f"{path} of the gate builder is embargoed")

    @async_to_deferred
    async def test_the_security_builder_itself_does_not_match(self):
        # its name and description are public; what its builds hold is not
        self.assertIsNone(await self.match(("builders", str(SEC["builder"]))))
        self.assertIsNone(await self.match(("builders", SECURITY_BUILDER)))

    @async_to_deferred
    async def test_the_action_is_compared_without_case(self):
        # Buildbot's REST resource passes the HTTP method as it came: 'GET'
        path = ("logs", str(SEC["log"]), "contents")
        self.assertIsInstance(await self.match(path, "GET"), Match)
        self.assertIsInstance(await self.match(path, b"GET"), Match)

    @async_to_deferred
    async def test_no_control_action_matches(self):
        for path in [("builds", str(SEC["build"])), ("buildrequests", str(SEC["request"])),
                     ("logs", str(SEC["log"]), "contents"), ("logchunks",)]:
            for action in ("stop", "rebuild", "force", "cancel", "POST", "put"):
                self.assertIsNone(await self.match(path, action), f"{action} {path} matched")

    @async_to_deferred
    async def test_unknown_paths_and_ids_do_not_match(self):
        self.assertIsNone(await self.match(("no", "such", "endpoint")))
        self.assertIsNone(await self.match(("builds", "9999")))
        self.assertIsNone(await self.match(("logs", "9999", "contents")))

    @async_to_deferred
    async def test_every_embargoed_builder_is_matched(self):
        matcher = EmbargoMatcher([SECURITY_BUILDER, GATE_BUILDER], role="security")
        Authz(allowRules=[matcher]).setMaster(self.master)
        for ids in (SEC, GATE):
            self.assertIsInstance(await matcher.match(("logs", str(ids["log"]), "contents"), "get"), Match)

    @async_to_deferred
    async def test_a_matcher_for_no_existing_builder_matches_no_build(self):
        matcher = EmbargoMatcher(["lpdeploy-merge-back"], role="security")
        Authz(allowRules=[matcher]).setMaster(self.master)
        self.assertIsNone(await matcher.match(("builds", str(SEC["build"])), "get"))
        self.assertIsNone(await matcher.match(("builds", str(GATE["build"])), "get"))


class FullAuthz(MatcherCase):
    """The Authz lpdeploy configures: security-role users read security builds, nobody else does."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        settings = parse_settings({
            "repository": {"url": "file:///srv/upstream.git"},
            "auth": {"roles": {"security": ["sec-alice"], "losa": ["bob"]}},
        })
        self.authz = make_authz(settings, {"lpdeploy-promote": "losa", GATE_BUILDER: "losa",
                                           SECURITY_BUILDER: "security"},
                                embargoed=(SECURITY_BUILDER,))
        self.authz.setMaster(self.master)

    async def allowed(self, path: tuple[str, ...], user: str | None, action: str = "GET") -> bool:
        details = {"username": user} if user else {}
        try:
            await self.authz.assertUserAllowed(path, action, {}, details)
        except Forbidden:
            return False
        return True

    @async_to_deferred
    async def test_a_user_without_the_role_may_not_read_the_security_build_log(self):
        path = ("logs", str(SEC["log"]), "contents")
        with self.assertRaises(Forbidden):
            await self.authz.assertUserAllowed(path, "GET", {}, {"username": "bob"})
        self.assertFalse(await self.allowed(path, None))  # anonymous

    @async_to_deferred
    async def test_a_user_with_the_security_role_may_read_the_security_build_log(self):
        path = ("logs", str(SEC["log"]), "contents")
        await self.authz.assertUserAllowed(path, "GET", {}, {"username": "sec-alice"})
        self.assertTrue(await self.allowed(path, "sec-alice"))

    @async_to_deferred
    async def test_no_read_reaching_a_security_build_is_allowed_without_the_role(self):
        for path in paths(SEC, SECURITY_BUILDER) + [("logchunks",)]:
            for user in ("bob", None):
                self.assertFalse(await self.allowed(path, user), f"{user or 'anonymous'} may read {path}")
            self.assertTrue(await self.allowed(path, "sec-alice"), f"sec-alice may not read {path}")

    @async_to_deferred
    async def test_gate_builds_stay_readable_by_everyone(self):
        for path in paths(GATE, GATE_BUILDER):
            for user in ("bob", "sec-alice", None):
                self.assertTrue(await self.allowed(path, user), f"{user or 'anonymous'} may not read {path}")

    @async_to_deferred
    async def test_the_security_builder_and_the_build_list_stay_readable(self):
        for path in [("builders", str(SEC["builder"])), ("builders",), ("builds",)]:
            self.assertTrue(await self.allowed(path, "bob"), f"bob may not read {path}")

    @async_to_deferred
    async def test_control_actions_are_left_to_the_control_rules(self):
        # stopping a security build is the security role's, not denied as a "read" of it
        path = ("builds", str(SEC["build"]))
        self.assertTrue(await self.allowed(path, "sec-alice", "stop"))
        self.assertFalse(await self.allowed(path, "bob", "stop"))
        # and the deny-all rule still covers every other control action
        self.assertFalse(await self.allowed(("builds", str(GATE["build"])), "sec-alice", "stop"))
        self.assertTrue(await self.allowed(("builds", str(GATE["build"])), "bob", "stop"))
