"""With a sharded suite, one build that waits for shards per worker (the configurator's locks).

A worker has two slots when the suite is sharded (a parent and a shard).
Buildbot runs one build per builder on a worker, so the risk is two parents
of *different* builders (gate, promote, security) filling a worker: their
shards would never start. ``tests/test_e2e_shard_slots.py`` shows it on a real
master with one worker; here, the configuration that prevents it.
"""

from __future__ import annotations

import warnings

from lpdeploy.core.settings import parse_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # see test_forms.py: Twisted 26.10 vs buildbot.util.ssl
    from buildbot.config.master import MasterConfig

    from lpdeploy import configurator

PARENTS = {"lpdeploy-gate", "lpdeploy-promote", "lpdeploy-security"}
SHARDS = {"lpdeploy-shard", "lpdeploy-security-shard"}


def loaded(**suite):
    c: dict = {}
    configurator.apply(c, parse_settings({"repository": {"url": "file:///srv/lp.git"}, "suite": suite}))
    return MasterConfig.loadFromDict(c, "master.cfg")


def locks(config) -> dict[str, set[tuple[str, str, int]]]:
    return {b.name: {(a.lockid.name, a.mode, a.lockid.maxCount) for a in b.locks} for b in config.builders}


def test_sharded_every_worker_runs_one_parent_and_one_shard_at_a_time():
    config = loaded(shards=2, list_command=["t"], run_command=["t", "{id_file}"])
    assert {w.max_builds for w in config.workers} == {2}
    found = locks(config)
    for name in PARENTS:
        assert found[name] == {("lpdeploy-suite-parent", "exclusive", 1)}, name
    for name in SHARDS:
        assert found[name] == {("lpdeploy-shard", "exclusive", 1)}, name
    # the builds that never wait for shards take no parent slot
    assert all("lpdeploy-suite-parent" not in {n for n, _, _ in v} for k, v in found.items() if k not in PARENTS)


def test_a_plain_suite_needs_no_slot_lock():
    config = loaded()
    assert {w.max_builds for w in config.workers} == {1}
    assert all(n not in ("lpdeploy-suite-parent", "lpdeploy-shard") for v in locks(config).values() for n, _, _ in v)
