"""The inspect builder and its timer exist exactly when there is something to inspect, on a timer."""

from __future__ import annotations

import warnings

from lpdeploy.core.settings import DeployOptions, parse_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # see test_forms.py: Twisted 26.10 vs buildbot.util.ssl
    from buildbot.config.master import MasterConfig

    from lpdeploy import configurator

SERVER = {"name": "app1", "deploy_command": ["deploy"]}
INSPECTED = {**SERVER, "inspect_command": ["what-runs", "{server}"]}


def configured(deploy: dict, server: dict) -> tuple[list[str], list[str]]:
    c: dict = {}
    configurator.apply(c, parse_settings({"repository": {"url": "file:///srv/lp.git"}, "deploy": deploy,
                                          "servers": [server]}))
    MasterConfig.loadFromDict(c, "master.cfg")  # Buildbot accepts it
    return [b.name for b in c["builders"]], [s.name for s in c["schedulers"]]


def test_the_default_interval_is_fifteen_minutes():
    assert DeployOptions().inspect_interval == 900
    assert parse_settings({"repository": {"url": "file:///srv/lp.git"}}).deploy.inspect_interval == 900


def test_servers_with_an_inspect_command_get_the_inspect_builder_and_its_timer():
    builders, schedulers = configured({}, INSPECTED)
    assert "lpdeploy-inspect" in builders and "lpdeploy-inspect" in schedulers


def test_no_inspect_command_or_an_interval_of_zero_means_no_timer():
    for deploy, server in (({}, SERVER), ({"inspect_interval": 0}, INSPECTED)):
        builders, schedulers = configured(deploy, server)
        assert "lpdeploy-inspect" not in builders and "lpdeploy-inspect" not in schedulers
