"""Failover between masters: who is silent, who takes over, who steps down (``core.failover``), and its site keys.

The pure decisions are tested here; the adapter (``master.failover``) on two
masters sharing one database in ``test_failover_service.py``, and with a real
``kill -9`` in ``test_e2e_failover.py``.
"""

from __future__ import annotations

import warnings

import pytest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.failover import Action, Peer, heartbeat_name, judge, lost_claims, own_heartbeat
from lpdeploy.core.settings import Cluster, parse_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # see test_forms.py: Twisted 26.10 vs buildbot.util.ssl
    from lpdeploy import configurator
    from lpdeploy.master.failover import FailoverService

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
DEAD_AFTER = 30.0
ME = "host-a:/srv/master"
OTHER = "host-b:/srv/master"


def peer(expires: float | None, active: bool = True, name: str = OTHER, masterid: int = 2) -> Peer:
    return Peer(masterid, name, active, expires)


def test_a_master_whose_heartbeat_is_still_valid_is_left_alone():
    [d] = judge(ME, [peer(NOW + 1)], NOW, DEAD_AFTER)
    assert d.action is Action.WAIT and "alive" in d.reason


def test_a_master_silent_past_its_heartbeat_is_taken_over_with_the_reason():
    [d] = judge(ME, [peer(NOW)], NOW, DEAD_AFTER)  # expired exactly now: dead_after seconds since it renewed
    assert d.action is Action.TAKE_OVER
    assert d.silent_since == NOW - DEAD_AFTER
    assert d.reason == (f"master {OTHER} silent since 2027-01-15 07:59:30 UTC (more than 30 s); "
                        f"{ME} takes over its schedulers, poller and build requests")


def test_a_master_already_marked_stopped_is_not_taken_over_again():
    [d] = judge(ME, [peer(NOW - 100, active=False)], NOW, DEAD_AFTER)
    assert d.action is Action.WAIT and "already marked stopped" in d.reason


def test_a_master_without_heartbeat_is_left_to_buildbots_own_expiry():
    [d] = judge(ME, [peer(None)], NOW, DEAD_AFTER)
    assert d.action is Action.WAIT and "10 minutes" in d.reason


def test_a_master_never_judges_itself_and_judges_each_other_master_once():
    peers = [peer(NOW - 1, name=ME, masterid=1), peer(NOW - 1, name="c", masterid=3), peer(NOW + 5)]
    decisions = judge(ME, peers, NOW, DEAD_AFTER)
    assert [(d.peer.name, d.action) for d in decisions] == [(OTHER, Action.WAIT), ("c", Action.TAKE_OVER)]


def test_a_lost_heartbeat_fences_a_master_that_had_one():
    fenced = own_heartbeat(ME, renewed=False, had_heartbeat=True, now=NOW)
    assert fenced is not None
    assert fenced.reason.startswith(f"master {ME} lost its heartbeat at 2027-01-15 08:00:00 UTC")
    assert "stepping down" in fenced.reason
    assert own_heartbeat(ME, renewed=True, had_heartbeat=True, now=NOW) is None
    assert own_heartbeat(ME, renewed=False, had_heartbeat=False, now=NOW) is None  # first beat after a start


def test_services_claimed_by_another_master_or_by_none_step_down():
    assert lost_claims(1, {"lpdeploy-gate": 1, "lpdeploy-poller": 2, "promote": None}) == \
        ["lpdeploy-poller", "promote"]
    assert lost_claims(1, {"lpdeploy-gate": 1}) == []


def test_heartbeat_leases_are_named_per_master():
    assert heartbeat_name(ME) == f"heartbeat/{ME}" != heartbeat_name(OTHER)


PG = {"url": "postgresql+psycopg://lp@127.0.0.1:5432/lpdeploy"}
MQ = {"router_url": "ws://127.0.0.1:8080/ws"}


def settings(**tables):
    return parse_settings({"repository": {"url": "file:///srv/lp.git"}, **tables})


def test_cluster_defaults_beat_every_10_s_and_take_over_after_30_s():
    assert settings().cluster == Cluster(heartbeat=10, dead_after=30)
    assert settings(cluster={"heartbeat": 2, "dead_after": 4}).cluster == Cluster(heartbeat=2, dead_after=4)


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"heartbeat": 10, "dead_after": 19}, "cluster.dead_after", "at least twice"),
    ({"heartbeat": 0}, "cluster.heartbeat", "out of range"),
    ({"heartbeat": 601, "dead_after": 1300}, "cluster.heartbeat", "out of range"),
    ({"dead_after": 3601}, "cluster.dead_after", "out of range"),
    ({"heartbeat": "10"}, "cluster.heartbeat", "integer"),
    ({"heartbeat_s": 10}, "cluster.heartbeat_s", "unknown key"),
])
def test_a_bad_cluster_table_is_one_error_naming_the_key(table, key, words):
    with pytest.raises(SettingsError) as e:
        settings(cluster=table)
    assert e.value.key == key, e.value
    assert words in str(e.value)


def test_several_masters_run_the_failover_service_and_one_master_does_not():
    c: dict = {}
    configurator.apply(c, settings(database=PG, mq=MQ, cluster={"heartbeat": 3, "dead_after": 9}))
    [failover] = [s for s in c["services"] if isinstance(s, FailoverService)]
    assert failover.name == "lpdeploy-failover"
    single: dict = {}
    configurator.apply(single, settings())
    assert not [s for s in single["services"] if isinstance(s, FailoverService)]
