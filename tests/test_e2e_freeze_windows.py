"""Freeze windows end to end: a planned freeze refuses promotions and deploys and says when it ends.

Real master, real worker, real git, the real CLI. The site file holds a
one-shot window around the moment the master starts (an hour before to three
hours after, written with a +02:00 offset) and a recurring one; the gate keeps
running inside the window.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from tests.flow_harness import Flow

pytestmark = pytest.mark.e2e
EAST = dt.timezone(dt.timedelta(hours=2))


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("windows")
    now = dt.datetime.now(EAST).replace(second=0, microsecond=0)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=3)
    servers = base / "servers"
    servers.mkdir()
    write = ["sh", "-c", f'echo "$1" > {servers}/"$0"', "{server}", "{revision}"]
    f = Flow(base, extra_site=f"""
[[servers]]
name = "app1"
deploy_command = {json.dumps(write)}

[[freeze.windows]]
reason = "data centre move"
start = "{start.isoformat()}"
end = "{end.isoformat()}"

[[freeze.windows]]
reason = "the yearly audit"
cron = "0 0 1 1 *"
duration = "1d"
""")
    f.window_end = end.isoformat(timespec="minutes")  # type: ignore[attr-defined]
    yield from f.running()


def test_a_window_refuses_a_promotion_saying_why_and_when_it_ends_while_the_gate_runs(flow: Flow) -> None:
    production = flow.tip("production-stable")
    sha = flow.given_stable_at("Pushed inside the window")  # the gate keeps running
    result = flow.cli("promote", user="bob")
    assert result.returncode == 1
    assert "refusing to promote: freeze window until " + flow.window_end in result.stderr  # type: ignore[attr-defined]
    assert "data centre move" in result.stderr
    assert flow.tip("production-stable") == production != sha
    deploy = flow.cli("deploy", "--server", "app1", user="bob")
    assert deploy.returncode == 1 and "refusing to deploy: freeze window" in deploy.stderr
    assert not (flow.base / "servers" / "app1").exists()


def test_status_shows_the_open_window_and_the_next(flow: Flow) -> None:
    windows = flow.status()["freeze_windows"]
    assert [w["reason"] for w in windows["active"]] == ["data centre move"]
    assert windows["until_at"] == flow.window_end  # type: ignore[attr-defined]
    assert windows["next"]["reason"] == "the yearly audit"
    assert windows["next"]["start_at"].endswith("-01-01T00:00+00:00")
    text = flow.cli("status").stdout
    assert f"FREEZE WINDOW until {flow.window_end}: data centre move" in text  # type: ignore[attr-defined]
    assert "next freeze window" in text and "the yearly audit" in text


def test_the_dashboard_shows_the_open_window_and_the_next(flow: Flow) -> None:
    page = flow.session(None).open(flow.url + "plugins/wsgi_dashboards/pipeline/fragment", timeout=60).read().decode()
    assert f"until {flow.window_end}: data centre move" in page  # type: ignore[attr-defined]
    assert 'id="next-freeze-window"' in page and "the yearly audit" in page
