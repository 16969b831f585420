"""The DB-backed registry against a real Buildbot database (design invariant 8).

``fakemaster.make_master(self, wantDb=True)`` gives a master whose ``db`` is
Buildbot's real ``DBConnector`` on a real SQLite database with the full schema,
so ``DbRegistry`` runs its real queries on the real ``object_state`` table.

Every scenario of ``registry_contract.py`` (the same list ``test_registry.py``
runs against ``InMemoryRegistry``) runs here against a fresh ``DbRegistry``.
Then two masters share one SQLite file: cowboy ids claimed concurrently never
collide, and what one master writes, a new registry on the other reads. The
masters and the per-scenario tests come from ``support.py``. Security work (runs,
the history of released fixes, merge-back attempts, jobs) and flow events
survive a restart the same way, and rows an older lpdeploy wrote still load.
"""

from __future__ import annotations

from buildbot.test.reactor import TestReactorMixin
from buildbot.util.twisted import async_to_deferred
from registry_contract import BRANCH, FIX, REV_A, REV_B, SCENARIOS, T0
from support import add_scenario_tests, make_db_master, two_masters_on_one_database
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.model import (
    AuditEntry,
    CowboyState,
    Deployment,
    FixState,
    Freeze,
    JobKind,
    MergeBackAttempt,
    MergeBackOutcome,
    Release,
    SecurityFix,
    SecurityJob,
)
from lpdeploy.stores.registry import REGISTRY_OBJECT, DbRegistry, UnknownCowboy, new_job_token


class DbRegistryContract(TestReactorMixin, unittest.TestCase):
    """The registry contract on a fresh, real database; one test per scenario (added below)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.registry = DbRegistry(self.master)

    def test_the_database_is_a_real_sqlite_database(self):
        self.assertEqual(self.master.db.pool.engine.dialect.name, "sqlite")
        self.assertIn("object_state", self.master.db.model.metadata.tables)

    @async_to_deferred
    async def test_cowboys_live_in_object_state_under_the_registry_object(self):
        await self.registry.add_cowboy("app1", "hot patch", FIX, "bob", T0)
        oid = await self.master.db.state.getObjectId(*REGISTRY_OBJECT)
        stored = await self.master.db.state.getState(oid, "cowboy/00000001", None)
        self.assertEqual((stored["id"], stored["server"], stored["fixed_by"]), (1, "app1", FIX))


add_scenario_tests(DbRegistryContract, SCENARIOS, store="registry", kind="contract", label="registry contract")


class TwoMastersShareOneDatabase(TestReactorMixin, unittest.TestCase):
    """Two masters, each with its own basedir and DbRegistry, on one SQLite file."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master_a, self.master_b = yield two_masters_on_one_database(self)
        self.a = DbRegistry(self.master_a)
        self.b = DbRegistry(self.master_b)

    def test_the_masters_have_separate_connections_to_one_file(self):
        self.assertIsNot(self.master_a.db, self.master_b.db)
        self.assertEqual(str(self.master_a.db.pool.engine.url), str(self.master_b.db.pool.engine.url))

    def delay_queries(self, master) -> list[str]:
        """Start every query of ``master`` on a later reactor turn, so concurrent callers interleave.

        The test reactor runs the database pool inline: without this, one
        ``add_cowboy`` would finish before the next began and nothing would race.
        Returns the cowboy rows the master tries to claim, in order.
        """
        pool, real_do = master.db.pool, master.db.pool.do
        state, real_create = master.db.state, master.db.state.atomicCreateState
        claims: list[str] = []

        def do(fn, *args, **kwargs):
            d = defer.Deferred()
            self.reactor.callLater(0, lambda: real_do(fn, *args, **kwargs).chainDeferred(d))
            return d

        def create(oid, name, make):
            claims.append(name)
            return real_create(oid, name, make)

        pool.do, state.atomicCreateState = do, create
        self.addCleanup(setattr, pool, "do", real_do)
        self.addCleanup(setattr, state, "atomicCreateState", real_create)
        return claims

    def test_cowboys_added_concurrently_on_two_masters_get_distinct_ids(self):
        claims_a, claims_b = self.delay_queries(self.master_a), self.delay_queries(self.master_b)
        pending = [
            defer.ensureDeferred(reg.add_cowboy(f"app{i}", f"patch {i}", None, who, T0 + i))
            for i, (reg, who) in enumerate([(self.a, "alice"), (self.b, "bob")] * 3)
        ]
        added = [self.settle(d) for d in pending]
        # they really raced: some claims hit an id another adder had just taken
        self.assertGreater(len(claims_a) + len(claims_b), 6)
        self.assertEqual(sorted(c.id for c in added), [1, 2, 3, 4, 5, 6])
        listed = self.settle(defer.ensureDeferred(self.a.cowboys()))
        # every adder got back exactly the row it stored, not another master's
        self.assertEqual(listed, sorted(added, key=lambda c: c.id))
        self.assertEqual(self.settle(defer.ensureDeferred(self.b.cowboys())), listed)

    def settle(self, d: defer.Deferred):
        for _ in range(200):
            if d.called:
                break
            self.reactor.advance(0)
        return self.successResultOf(d)

    @async_to_deferred
    async def test_a_master_that_loses_the_race_for_an_id_takes_the_next_one(self):
        # master b picks id 1 from an empty table; before it claims the id, master a adds cowboy 1
        state_b = self.master_b.db.state
        real_create = state_b.atomicCreateState
        raced = []

        async def create_after_a_won(oid, name, make):
            if not raced:
                raced.append(await self.a.add_cowboy("app1", "alice's patch", None, "alice", T0))
            return await real_create(oid, name, make)

        state_b.atomicCreateState = create_after_a_won
        try:
            mine = await self.b.add_cowboy("app2", "bob's patch", FIX, "bob", T0 + 1)
        finally:
            state_b.atomicCreateState = real_create
        (theirs,) = raced
        self.assertEqual((theirs.id, mine.id), (1, 2))
        listed = await self.a.cowboys()
        self.assertEqual(listed, [theirs, mine])
        # the loser did not overwrite the winner's row
        self.assertEqual((listed[0].created_by, listed[0].reason), ("alice", "alice's patch"))

    @async_to_deferred
    async def test_an_end_on_one_master_is_seen_on_the_other(self):
        c = await self.a.add_cowboy("app1", "hot patch", None, "alice", T0)
        ended = await self.b.end_cowboy(c.id, CowboyState.RETIRED, "deployer", "fix deployed", T0 + 5)
        self.assertEqual(await self.a.cowboys(), [])
        self.assertEqual(await self.a.cowboys(include_ended=True), [ended])
        with self.assertRaises(UnknownCowboy):
            await self.a.end_cowboy(c.id, CowboyState.REMOVED, "alice", "again", T0 + 6)

    @async_to_deferred
    async def test_state_persists_across_a_new_registry_instance(self):
        # a restart: a fresh DbRegistry (fresh objectid lookup) on the other master
        c1 = await self.a.add_cowboy("app1", "hot patch", None, "alice", T0)
        c2 = await self.a.add_cowboy("app2", "cache tweak", FIX, "bob", T0 + 1)
        ended = await self.a.end_cowboy(c1.id, CowboyState.REMOVED, "alice", "reverted", T0 + 2)
        dep = Deployment("app2", REV_A, T0 + 3, "carol", "http://localhost:8010/#/builders/3/builds/7")
        await self.a.record_deployment(dep)
        freeze = Freeze("release week", "alice", T0 + 4)
        await self.a.set_freeze(freeze)
        entry = AuditEntry(T0 + 4, "alice", "freeze", {"reason": "release week"})
        await self.a.audit(entry)

        restarted = DbRegistry(self.master_b)
        self.assertEqual(await restarted.cowboys(), [c2])
        self.assertEqual(await restarted.cowboys(include_ended=True), [ended, c2])
        self.assertEqual(await restarted.deployment("app2"), dep)
        self.assertEqual(await restarted.freeze(), freeze)
        self.assertEqual(await restarted.audit_log(), [entry])
        # and it goes on numbering after what it found
        self.assertEqual((await restarted.add_cowboy("app3", "x", None, "bob", T0 + 5)).id, 3)

    @async_to_deferred
    async def test_security_work_and_flow_events_survive_a_restart(self):
        # everything the security flow decides on, written by one master, read by a fresh registry on the
        # other: nothing of it lives in process memory
        run = SecurityFix(BRANCH, REV_B, FixState.FAILED, "alice", T0 + 10, candidate=None, note="does not merge")
        released = Release(BRANCH, REV_A, REV_A, T0, by="alice", job="0" * 32)
        attempt = MergeBackAttempt(T0 + 20, "1" * 32, "lpdeploy", REV_A, MergeBackOutcome.CONFLICT, (REV_A,),
                                   devel_tip=REV_B)
        job = SecurityJob(new_job_token(), JobKind.SECURITY_BUILD, BRANCH, "alice", T0, fix_commit=REV_A,
                          candidate=REV_A)
        event = AuditEntry(T0 + 30, "lpdeploy (automatic)", "moved", {"revision": REV_A, "branches": ["stable"]})
        await self.a.record_release(released)
        await self.a.save_fix(run)
        await self.a.record_merge_back(attempt)
        await self.a.save_job(job)
        await self.a.record_event(event)

        restarted = DbRegistry(self.master_b)
        self.assertEqual(await restarted.fixes(), [run])
        self.assertEqual(await restarted.fix(BRANCH), run)
        self.assertEqual(await restarted.releases(), [released])
        self.assertEqual(await restarted.merge_backs(), [attempt])
        self.assertEqual(await restarted.job(job.token), job)
        self.assertEqual(await restarted.events(), [event])

    @async_to_deferred
    async def test_the_same_release_recorded_by_two_masters_is_kept_once(self):
        first = Release(BRANCH, REV_A, REV_A, T0, by="alice")
        await self.a.record_release(first)
        await self.b.record_release(Release(BRANCH, REV_A, REV_A, T0 + 5, by="a retried build"))
        self.assertEqual(await self.a.releases(), [first])


class OlderRows(TestReactorMixin, unittest.TestCase):
    """Rows an earlier lpdeploy wrote still load, and nothing they held is lost."""

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        self.master = yield make_db_master(self)
        self.registry = DbRegistry(self.master)

    @async_to_deferred
    async def test_a_branch_row_that_held_its_release_still_counts_as_released(self):
        # before the history, the branch row kept the newest release in released / released_candidate
        oid = await self.master.db.state.getObjectId(*REGISTRY_OBJECT)
        await self.master.db.state.setState(oid, f"fix/{BRANCH}", {
            "branch": BRANCH, "fix_commit": REV_B, "state": "merging", "by": "alice", "updated_at": T0,
            "candidate": REV_B, "build_url": "", "merged_back": None, "note": "",
            "released": REV_A, "released_candidate": REV_A})
        (run,) = await self.registry.fixes()
        self.assertEqual((run.branch, run.fix_commit, run.state), (BRANCH, REV_B, "merging"))
        self.assertEqual(await self.registry.releases(), [Release(BRANCH, REV_A, REV_A, T0, by="alice")])
        # recorded in the history too, it is not listed twice
        await self.registry.record_release(Release(BRANCH, REV_A, REV_A, T0 + 1))
        self.assertEqual(len(await self.registry.releases()), 1)
