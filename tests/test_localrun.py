"""The pieces of ``make run`` (lpdeploy/tools/localrun.py) that run without starting a master.

Real ``buildbot create-master`` / ``buildbot-worker create-worker`` runs in
temporary directories, real sockets, real child processes; the whole of
``make run`` on a fresh clone is ``tests/test_e2e_make_run.py``.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lpdeploy.core.settings import DEMO_SITE, Settings, load_settings, parse_settings
from lpdeploy.tools import localrun
from lpdeploy.tools.localrun import RunError, cause, prepare, site_home, sqlite_file, taken_port

CREATE_MASTER_FAILED = """Traceback (most recent call last):
  File ".../buildbot/scripts/create_master.py", line 88, in createDB
    yield db.model.upgrade()
sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) unable to open database file
(Background on this error at: https://sqlalche.me/e/21/e3q8)
"""


def site(tmp_path: Path, **tables: str) -> Settings:
    """Settings of a site file in ``tmp_path`` with extra TOML per table (``www="port = 1"``)."""
    text = '[repository]\nurl = "upstream.git"\n' + "".join(f"[{t}]\n{body}\n" for t, body in tables.items())
    (tmp_path / "site.toml").write_text(text)
    return load_settings(tmp_path / "site.toml")


# --- one line naming the cause ------------------------------------------------
def test_cause_is_the_error_line_not_the_trailer_after_it() -> None:
    assert cause(CREATE_MASTER_FAILED) == (
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) unable to open database file")


def test_cause_of_a_worker_failure_and_of_plain_output() -> None:
    assert cause("error creating directory /x/w\nfailed to configure worker in /x/w\n") == \
        "error creating directory /x/w"
    assert cause("invalid buildmaster directory '/x'\n\n") == "invalid buildmaster directory '/x'"
    assert cause("  \n") == "no output"


# --- where a site lives ---------------------------------------------------------
def test_each_site_file_has_its_own_directory_and_the_demo_is_named(tmp_path: Path) -> None:
    run = tmp_path / ".run"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, other = tmp_path / "a" / "site.toml", tmp_path / "b" / "site.toml"
    assert site_home(run, DEMO_SITE) == run / "demo"
    assert site_home(run, one).parent == run and site_home(run, one).name.startswith("site-")
    assert site_home(run, one) != site_home(run, other)  # same name, other file: another database
    assert site_home(run, tmp_path / "a" / ".." / "a" / "site.toml") == site_home(run, one)  # stable across runs


@pytest.mark.parametrize("named", [None, "/srv/lpdeploy/site.toml"])
def test_make_run_reads_the_site_file_the_master_reads(named: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from lpdeploy import configurator  # imports Buildbot: only here, at run time, never in make run itself

    if named:
        monkeypatch.setenv("LPDEPLOY_CONFIG", named)
    else:
        monkeypatch.delenv("LPDEPLOY_CONFIG", raising=False)
    assert configurator.site_file is localrun.site_file  # one rule, one home (core.settings)
    assert localrun.site_file() == (Path(named) if named else DEMO_SITE)
    assert DEMO_SITE.is_file()


def test_make_run_does_not_load_buildbot() -> None:
    code = "import sys, lpdeploy.tools.localrun; print(sorted(m for m in sys.modules if m.startswith('buildbot')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_sqlite_file_a_database_url_names(tmp_path: Path) -> None:
    assert sqlite_file("sqlite:///state.sqlite", tmp_path) == tmp_path / "state.sqlite"
    assert sqlite_file("sqlite:////srv/db/state.sqlite", tmp_path) == Path("/srv/db/state.sqlite")
    assert sqlite_file("sqlite://", tmp_path) is None
    assert sqlite_file("postgresql://lp@db/lpdeploy", tmp_path) is None


# --- ports ------------------------------------------------------------------------
def test_local_processes_reach_a_wildcard_interface_on_loopback() -> None:
    assert [localrun.local_host(i) for i in ("", "0.0.0.0", "::", "10.1.2.3")] == \
        ["127.0.0.1", "127.0.0.1", "::1", "10.1.2.3"]


def _listening() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("key", ["www", "workers"])
def test_a_taken_port_is_named_by_its_site_key(tmp_path: Path, key: str) -> None:
    with _listening() as busy:
        port = busy.getsockname()[1]
        other = "workers" if key == "www" else "www"
        settings = site(tmp_path, **{key: f"port = {port}", other: f"port = {_free_port()}"})
        reason = taken_port(settings)
    assert reason is not None and reason.startswith(f"{key}.port {port} on 127.0.0.1 is not free"), reason


def test_free_ports_pass(tmp_path: Path) -> None:
    assert taken_port(site(tmp_path, www=f"port = {_free_port()}", workers=f"port = {_free_port()}")) is None


# --- creating the directories with Buildbot's own commands --------------------------
def test_prepare_creates_master_database_and_workers_where_nothing_existed(tmp_path: Path) -> None:
    settings = site(tmp_path, workers="local = 2\nport = 19999")
    home = tmp_path / "fresh clone" / ".run" / "site-1234"  # .run/ does not exist yet
    master, workers = prepare(home, settings, tmp_path / "site.toml")
    assert (master / "buildbot.tac").exists() and (master / "state.sqlite").exists()
    assert workers == [home / "workers" / "worker-1", home / "workers" / "worker-2"]
    assert all("port = 19999" in (w / "buildbot.tac").read_text() for w in workers)
    assert all("buildmaster_host = '127.0.0.1'" in (w / "buildbot.tac").read_text() for w in workers)
    assert (home / "site-file").read_text().strip() == str(tmp_path / "site.toml")


def test_a_rerun_keeps_the_database_and_follows_a_changed_worker_port(tmp_path: Path) -> None:
    home = tmp_path / "home"
    master, _ = prepare(home, site(tmp_path, workers="port = 19998"), tmp_path / "site.toml")
    with sqlite3.connect(master / "state.sqlite") as db:
        db.execute("INSERT INTO objects (name, class_name) VALUES ('kept', 'Test')")
    master, (worker,) = prepare(home, site(tmp_path, workers="port = 19997"), tmp_path / "site.toml")
    with sqlite3.connect(master / "state.sqlite") as db:
        assert db.execute("SELECT name FROM objects WHERE class_name = 'Test'").fetchall() == [("kept",)]
    assert "port = 19997" in (worker / "buildbot.tac").read_text()


def test_a_create_master_that_fails_but_exits_0_is_reported_with_its_cause(tmp_path: Path) -> None:
    settings = site(tmp_path, database='url = "sqlite:////nonexistent/lpdeploy/state.sqlite"')
    with pytest.raises(RunError) as e:
        prepare(tmp_path / "home", settings, tmp_path / "site.toml")
    assert e.value.what.startswith("buildbot create-master")
    assert e.value.cause.endswith("unable to open database file")
    assert "\n" not in str(e.value)


def test_prepare_checks_what_create_master_made_not_its_status(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the real create-master prints a traceback whenever it fails; a stand-in that makes nothing and
    # says nothing shows that the files decide, not the exit status
    monkeypatch.setattr(localrun, "_bin", lambda name: "true")
    with pytest.raises(RunError, match=r"create-master .* failed: .*buildbot.tac was not created"):
        prepare(tmp_path / "home", site(tmp_path), tmp_path / "site.toml")


def test_a_command_that_made_nothing_fails_even_with_status_0(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="buildbot.tac was not created"):
        localrun._create(["true"], [tmp_path / "buildbot.tac"], "create")
    with pytest.raises(RunError, match="BoomError: no"):
        localrun._create(["sh", "-c", "echo 'Traceback (most recent call last):'; echo 'x.BoomError: no'"], [],
                         "create")
    with pytest.raises(RunError, match="error creating directory"):
        localrun._create(["sh", "-c", "echo error creating directory; exit 1"], [], "create")


# --- the demo ------------------------------------------------------------------------
def test_the_demo_upstream_and_users_go_where_the_demo_site_file_says(tmp_path: Path) -> None:
    raw = {"repository": {"url": "run/demo-upstream.git"}, "auth": {"htpasswd": "run/htpasswd"}}
    settings = parse_settings(raw, base=tmp_path)
    localrun.create_demo(settings)
    assert (tmp_path / "run" / "demo-upstream.git" / "refs" / "heads" / "stable").exists()
    assert (tmp_path / "run" / "htpasswd").exists() and (tmp_path / "run" / "demo-passwords.txt").exists()


# --- main: one line and a non-zero exit ------------------------------------------------
def test_main_refuses_a_taken_port_before_creating_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with _listening() as busy:
        site(tmp_path, www=f"port = {busy.getsockname()[1]}", workers=f"port = {_free_port()}")
        monkeypatch.setenv("LPDEPLOY_CONFIG", str(tmp_path / "site.toml"))
        assert localrun.main(["--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "www.port" in err and "is not free" in err, err
    assert not (tmp_path / "run").exists()


def test_main_names_the_bad_key_of_a_site_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.toml").write_text('[repository]\nurl = "x.git"\n[www]\nport = "eighty"\n')
    monkeypatch.setenv("LPDEPLOY_CONFIG", str(tmp_path / "site.toml"))
    assert localrun.main(["--run-dir", str(tmp_path / "run")]) == 2
    assert "www.port" in capsys.readouterr().err


# --- stopping ----------------------------------------------------------------------------
def test_stop_returns_only_when_every_child_is_gone_killing_the_stubborn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localrun, "STOP_TIMEOUT", 1)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
               "time.sleep(60)"
    procs = [(name, subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE))
             for name, code in (("polite", "import time; print('ready', flush=True); time.sleep(60)"),
                                ("stubborn", stubborn))]
    for _, p in procs:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    localrun.stop(procs)
    assert all(p.poll() is not None for _, p in procs)
    assert procs[0][1].returncode == -signal.SIGTERM and procs[1][1].returncode == -signal.SIGKILL
