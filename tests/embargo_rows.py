"""A fake master on Buildbot's real database, holding embargoed and public builds, for the read-door tests.

Not a test module (``tests/`` is on ``sys.path``, as for ``support``)::

    from embargo_rows import DoorsCase, ids_of

Three builders: ``lpdeploy-security`` (id 21) and ``lpdeploy-security-shard``
(23) are embargoed, ``lpdeploy-gate`` (22) is public. Each build comes with
its buildset (with a source stamp and properties), build request, step, log
and log text, build properties, build data, test result set and one test
result. The embargoed ones carry ``SECRET`` in their properties, buildset
properties, log text, build data and test names; the public ones never do.
The shard build's buildset is triggered by the security build. The site's
authz is lpdeploy's (``make_authz``): ``alice`` has the security role,
``bob`` the losa role, ``carol`` none; ``lpdeploy-merge-back`` is embargoed
too but has no row (a builder that is not configured).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from buildbot.mq.simple import SimpleMQ
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from support import temp_dir
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.settings import parse_settings
from lpdeploy.web.authz import make_authz

SECRET = "SECRETxCVE2099x4242"
MASTER, WORKER = 1, 13
USERS: dict[str, dict[str, Any]] = {
    "anonymous": {"anonymous": True},
    "carol": {"username": "carol"},  # a developer: logged in, no role
    "bob": {"username": "bob"},  # losa
    "alice": {"username": "alice"},  # security
}
OUTSIDERS = ("anonymous", "carol", "bob")
EMBARGOED_BUILDERS = ("lpdeploy-security", "lpdeploy-merge-back", "lpdeploy-security-shard")


@dataclass(frozen=True)
class Ids:
    builder: int
    name: str
    buildset: int
    request: int
    build: int
    step: int
    log: int
    trs: int
    result: int
    number: int = 1


def ids_of(k: int, builder: int, name: str, number: int = 1) -> Ids:
    return Ids(builder, name, 30 + k, 40 + k, 50 + k, 60 + k, 70 + k, 80 + k, 90 + k, number)


SEC = ids_of(1, 21, "lpdeploy-security")
SHARD = ids_of(3, 23, "lpdeploy-security-shard")
GATES = [ids_of(2, 22, "lpdeploy-gate", 1), ids_of(4, 22, "lpdeploy-gate", 2), ids_of(5, 22, "lpdeploy-gate", 3)]
EMBARGOED = (SEC, SHARD)


def rows_for(i: Ids, text: str, parent_buildid: int | None = None) -> list[Any]:
    return [
        fakedb.Buildset(id=i.buildset, reason=f"{i.name} {text}", parent_buildid=parent_buildid),
        fakedb.SourceStamp(id=i.buildset + 100, branch="", revision=f"{i.buildset:040d}"),
        fakedb.BuildsetSourceStamp(buildsetid=i.buildset, sourcestampid=i.buildset + 100),
        fakedb.BuildsetProperty(buildsetid=i.buildset, property_name="security_branch",
                                property_value=json.dumps([f"security/{text}", "test"])),
        fakedb.BuildRequest(id=i.request, buildsetid=i.buildset, builderid=i.builder),
        fakedb.Build(id=i.build, number=i.number, buildrequestid=i.request, builderid=i.builder,
                     workerid=WORKER, masterid=MASTER),
        fakedb.BuildProperty(buildid=i.build, name="lpdeploy_shard_ids", value=json.dumps([f"test_{text}"])),
        fakedb.BuildData(id=i.build, buildid=i.build, name="summary", value=text.encode(), source="test"),
        fakedb.Step(id=i.step, buildid=i.build, number=0, name="suite"),
        fakedb.Log(id=i.log, stepid=i.step, name="stdio", slug="stdio", type="s", num_lines=1),
        fakedb.LogChunk(logid=i.log, first_line=0, last_line=0, content=text),
        fakedb.TestResultSet(id=i.trs, builderid=i.builder, buildid=i.build, stepid=i.step,
                             description="suite", category="pass_fail", value_unit="boolean"),
        fakedb.TestName(id=i.result, builderid=i.builder, name=f"test_{text}"),
        fakedb.TestResult(id=i.result, builderid=i.builder, test_result_setid=i.trs, test_nameid=i.result,
                          value="1"),
    ]


class FakeWww:
    """What Buildbot's www service offers resources and matchers: authz, user infos, the site's secret."""

    def __init__(self, authz: Any) -> None:
        self.authz = authz
        self.site = SimpleNamespace(session_secret="lpdeploy-test-session-secret-of-32-bytes-or-more")

    def getUserInfos(self, request: Any) -> dict[str, Any]:
        return request.getSession().user_info

    def assertUserAllowed(self, request: Any, ep: Any, action: str, options: dict[str, Any]) -> Any:
        return self.authz.assertUserAllowed(ep, action, options, self.getUserInfos(request))

    def resourceNeedsReconfigs(self, resource: Any) -> None:
        pass


class DoorsCase(TestReactorMixin, unittest.TestCase):
    """A fake master with Buildbot's real database and data API, lpdeploy's authz and a real SimpleMQ."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self, "lpdeploy-doors-")
        self.master = yield fakemaster.make_master(self, wantData=True, basedir=os.path.join(base, "master"))
        yield self.master.db.insert_test_data([
            fakedb.Master(id=MASTER),
            fakedb.Worker(id=WORKER, name="worker-1"),
            fakedb.Builder(id=21, name="lpdeploy-security"),
            fakedb.Builder(id=22, name="lpdeploy-gate"),
            fakedb.Builder(id=23, name="lpdeploy-security-shard"),
            *rows_for(SEC, SECRET),
            *rows_for(SHARD, SECRET, parent_buildid=SEC.build),
            *[row for gate in GATES for row in rows_for(gate, "all-tests-passed")],
        ])
        settings = parse_settings({"repository": {"url": "file:///srv/upstream.git"},
                                   "auth": {"roles": {"security": ["alice"], "losa": ["bob"]}}})
        self.authz = make_authz(settings, {"lpdeploy-gate": "losa", "lpdeploy-security": "security"},
                                embargoed=EMBARGOED_BUILDERS)
        self.master.www = FakeWww(self.authz)
        self.authz.setMaster(self.master)
        self.master.mq = SimpleMQ()  # the real in-process queue: consumers get what is produced
        # Buildbot's websocket handshake asks authz about the path 'masters' (a string); the real data
        # connector reads it as a path of one-letter segments and finds no endpoint, the fake one refuses it
        endpoint = self.master.data.getEndpoint
        self.patch(self.master.data, "getEndpoint", lambda path: endpoint(tuple(path)))
