"""``[mq]``: several masters share Buildbot's events over a WAMP router; without it, one master.

The site key is read in ``core/settings.py``; ``configurator`` turns it into
Buildbot's ``c['mq']`` and ``c['multiMaster']``, which Buildbot's own config
loader must accept (it refuses unknown ``mq`` keys). The site overlay is how
``make cluster`` runs two masters from one site file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.settings import Mq, load_settings, parse_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # see test_forms.py: Twisted 26.10 vs buildbot.util.ssl
    from buildbot.config.master import MasterConfig

    from lpdeploy import configurator

REPO = {"url": "file:///srv/lp.git"}
PG = {"url": "postgresql+psycopg://lp@127.0.0.1:5432/lpdeploy"}


def settings(**tables):
    return parse_settings({"repository": REPO, **tables})


def test_without_mq_one_master_keeps_buildbots_simple_queue_and_sqlite():
    s = settings()
    assert s.mq == Mq() and not s.mq.shared
    assert s.database_url.startswith("sqlite:")
    c: dict = {}
    configurator.apply(c, s)
    assert "mq" not in c and "multiMaster" not in c
    loaded = MasterConfig.loadFromDict(c, "master.cfg")
    assert loaded.mq["type"] == "simple" and loaded.multiMaster is False


def test_mq_names_the_router_and_the_realm_defaults_to_buildbot():
    s = settings(database=PG, mq={"router_url": "ws://127.0.0.1:8080/ws"})
    assert s.mq == Mq(router_url="ws://127.0.0.1:8080/ws", realm="buildbot")
    assert s.mq.shared
    assert settings(database=PG, mq={"router_url": "wss://mq.example.org/ws", "realm": "lp.deploy"}).mq.realm \
        == "lp.deploy"


def test_mq_makes_buildbot_use_the_wamp_queue_on_several_masters():
    s = settings(database=PG, mq={"router_url": "ws://127.0.0.1:8080/ws", "realm": "lp"})
    c: dict = {}
    configurator.apply(c, s)
    assert c["mq"] == {"type": "wamp", "router_url": "ws://127.0.0.1:8080/ws", "realm": "lp",
                       "wamp_debug_level": "error"}
    assert c["multiMaster"] is True
    # Buildbot's loader accepts exactly these keys (it refuses unknown ones)
    loaded = MasterConfig.loadFromDict(c, "master.cfg")
    assert loaded.mq["type"] == "wamp" and loaded.mq["router_url"] == "ws://127.0.0.1:8080/ws"
    assert loaded.mq["realm"] == "lp" and loaded.multiMaster is True
    assert loaded.db.db_url == PG["url"]


@pytest.mark.parametrize(("mq", "key", "words"), [
    ({}, "mq.router_url", "missing"),
    ({"realm": "x"}, "mq.router_url", "missing"),
    ({"router_url": "http://127.0.0.1:8080/ws"}, "mq.router_url", "ws://"),
    ({"router_url": "ws:///ws"}, "mq.router_url", "ws://"),
    ({"router_url": "ws://user:pw@127.0.0.1:8080/ws"}, "mq.router_url", "no user"),
    ({"router_url": "ws://127.0.0.1:99999/ws"}, "mq.router_url", "not a valid URL"),
    ({"router_url": "ws://127.0.0.1:8080/ws x"}, "mq.router_url", "ws://"),
    ({"router_url": 8080}, "mq.router_url", "non-empty string"),
    ({"router_url": "ws://h:1/ws", "realm": "a b"}, "mq.realm", "letters"),
    ({"router_url": "ws://h:1/ws", "realm": "-x"}, "mq.realm", "letters"),
    ({"router_url": "ws://h:1/ws", "routr": "x"}, "mq.routr", "unknown key"),
])
def test_a_bad_mq_table_is_one_error_naming_the_key(mq, key, words):
    with pytest.raises(SettingsError) as e:
        settings(database=PG, mq=mq)
    assert e.value.key == key, e.value
    assert words in str(e.value)


def test_several_masters_on_a_sqlite_file_are_refused():
    with pytest.raises(SettingsError) as e:
        settings(mq={"router_url": "ws://127.0.0.1:8080/ws"})
    assert e.value.key == "database.url" and "postgresql" in str(e.value)


def test_an_overlay_replaces_only_the_keys_it_names_and_paths_stay_relative_to_the_site(tmp_path: Path):
    site = tmp_path / "site" / "site.toml"
    site.parent.mkdir()
    site.write_text('[repository]\nurl = "upstream.git"\n[www]\nport = 8020\nurl = "http://h:8020/"\n'
                    '[workers]\nport = 9990\nlocal = 2\n')
    overlay = tmp_path / "overlay.toml"
    overlay.write_text('[www]\nport = 8021\nurl = "http://h:8021/"\n[workers]\nport = 9991\n'
                       f'[database]\nurl = "{PG["url"]}"\n[mq]\nrouter_url = "ws://127.0.0.1:8080/ws"\n')
    s = load_settings(site, overlay=overlay)
    assert (s.www.port, s.www.url, s.workers.port, s.workers.local) == (8021, "http://h:8021/", 9991, 2)
    assert s.database_url == PG["url"] and s.mq.shared
    assert s.repository.url == (site.parent / "upstream.git").resolve().as_uri()
    plain = load_settings(site)
    assert (plain.www.port, plain.workers.port, plain.mq.shared) == (8020, 9990, False)


def test_an_overlay_must_hold_tables_and_exist(tmp_path: Path):
    site = tmp_path / "site.toml"
    site.write_text('[repository]\nurl = "https://git.example.org/lp.git"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('www = 3\n')
    with pytest.raises(SettingsError, match="tables only"):
        load_settings(site, overlay=bad)
    with pytest.raises(SettingsError, match="site overlay not found"):
        load_settings(site, overlay=tmp_path / "missing.toml")
