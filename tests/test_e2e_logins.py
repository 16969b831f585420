"""Logins against a real master: a flood of bad logins does not stall it, limits answer 429, timing tells nothing.

The harness writes htpasswd entries at bcrypt cost 4 (fast tests); here the
file is rewritten at cost 10 (``htpasswd -B -C 10``; about 60 ms a check on
the development machine), so that a password check costs what it costs on a
real site and timing means something. The file is re-read on every login.

Clients come from different loopback addresses (127.0.0.0/8 all reaches the
master listening on 127.0.0.1), so that each test meets only the limits it is
about: the master counts failures per client address and per user name.

These are the timing bounds issue 10 demands; each is measured generously
(medians, a 95th percentile) and explained where it is asserted.
"""

from __future__ import annotations

import base64
import http.client
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator

import bcrypt
import pytest

from tests.flow_harness import BIN, PASSWORDS, Flow

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # it measures latency: alone, on a quiet machine

COST = 10
KNOWN = [f"known{i}" for i in range(8)]  # users for the timing test: 3 wrong guesses each, under the limit of 5
FLOODERS = 10  # parallel clients sending bad logins, as in the attack of issue 10
PER_ADDRESS = 20  # LoginLimits().per_address
PER_USER = 5  # LoginLimits().per_user
# A read that takes longer is given up and counted as that slow; the measuring goes on. (Buildbot 4.3 writes
# REST answers from a worker thread; now and then such an answer is only flushed by Twisted's 60 s idle
# timeout — issue 12. One such read must not stop the measuring for a minute.)
READ_TIMEOUT = 2.0


def htpasswd_line(user: str, password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=COST)).decode()
    return f"{user}:$2y${hashed[4:]}\n"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    f = Flow(tmp_path_factory.mktemp("logins"))
    for running in f.running():
        users = {**PASSWORDS, "dave": "dave-pw", **{u: f"{u}-pw" for u in KNOWN}}
        (running.base / "htpasswd").write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
        yield running


def get(flow: Flow, path: str, source: str = "127.0.0.1", auth: tuple[str, str] | None = None,
        timeout: float = 60) -> tuple[int, dict[str, str], str, float]:
    """One GET on a fresh connection from ``source``: status, headers, body, seconds until the body was read."""
    conn = http.client.HTTPConnection("127.0.0.1", flow.www_port, timeout=timeout, source_address=(source, 0))
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        start = time.perf_counter()
        conn.request("GET", "/" + path, headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        took = time.perf_counter() - start
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, took
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def test_a_right_password_still_sets_buildbots_session_cookie(flow: Flow) -> None:
    status, headers, _, _ = get(flow, "auth/login", "127.0.2.1", auth=("bob", PASSWORDS["bob"]))
    assert status == 302 and headers["location"] == flow.url + "#/"
    assert headers["set-cookie"].startswith("TWISTED_SESSION=")
    opener = flow.session("bob")
    with opener.open(flow.url + "plugins/lpdeploy/audit.json", timeout=30) as r:  # losa only
        assert r.status == 200


def test_unrelated_reads_stay_fast_while_ten_clients_flood_bad_logins(flow: Flow) -> None:
    """p95 of ``GET /api/v2/masters`` ≤ 100 ms while 10 clients send bad logins until each gets its 429.

    Each flooder comes from its own address and uses a new unknown user name
    for every try, so it is stopped by the per-address limit after 20
    failures: 200 bcrypt checks at cost 10 in all, several seconds of work
    for the login pool. With the checks on the reactor thread (as in
    Buildbot's CustomAuth) every read waits behind the queued checks and
    this 95th percentile is far above a second.
    """
    for _ in range(5):
        get(flow, "api/v2/masters")  # warm up
    baseline = [get(flow, "api/v2/masters")[3] for _ in range(20)]
    answers: dict[int, list[tuple[int, dict[str, str], str]]] = {i: [] for i in range(FLOODERS)}

    def flood(i: int) -> None:
        deadline = time.monotonic() + 240
        for n in range(PER_ADDRESS + 10):
            status, headers, body, _ = get(flow, "auth/login", f"127.0.3.{i + 1}", auth=(f"flood{i}-{n}", "guess"))
            answers[i].append((status, headers, body))
            if status != 401 or time.monotonic() > deadline:
                return

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(FLOODERS)]
    for t in threads:
        t.start()
    during: list[float] = []
    stuck = 0
    while any(t.is_alive() for t in threads):
        start = time.perf_counter()
        try:
            during.append(get(flow, "api/v2/masters", timeout=READ_TIMEOUT)[3])
        except TimeoutError:  # counted as slow as it was; the measuring goes on
            during.append(time.perf_counter() - start)
            stuck += 1
        time.sleep(0.02)
    for t in threads:
        t.join()

    p95 = percentile(during, 0.95)
    print(f"\nGET /api/v2/masters: baseline p50 {statistics.median(baseline) * 1000:.1f} ms, "
          f"p95 {percentile(baseline, 0.95) * 1000:.1f} ms; during the flood ({len(during)} reads) "
          f"p50 {statistics.median(during) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(during) * 1000:.1f} ms, "
          f"{stuck} gave up after {READ_TIMEOUT} s")
    assert p95 <= 0.100, f"p95 {p95 * 1000:.0f} ms while logins were checked"
    assert len(during) >= 20, "the flood ended too soon to measure anything"
    for i, got in answers.items():
        assert [s for s, _, _ in got] == [401] * PER_ADDRESS + [429], (i, [s for s, _, _ in got])
        _, headers, body = got[-1]
        assert 1 <= int(headers["retry-after"]) <= 300
        assert body.startswith(f"too many failed logins from 127.0.3.{i + 1} (at most {PER_ADDRESS} in 5 minutes)")


def test_a_user_name_is_locked_after_five_failures_from_anywhere_with_retry_after(flow: Flow) -> None:
    for n in range(PER_USER):
        assert get(flow, "auth/login", f"127.0.4.{n + 1}", auth=("dave", "guess"))[0] == 401
    status, headers, body, _ = get(flow, "auth/login", "127.0.4.100", auth=("dave", "dave-pw"))
    assert status == 429, body  # even the right password: the guesser must not learn it
    assert 290 <= int(headers["retry-after"]) <= 300
    assert body == ("too many failed logins for user 'dave' (at most 5 in 5 minutes); "
                    f"retry in {headers['retry-after']} s")
    # the CLI says the same and exits 1
    result = subprocess.run([str(BIN / "lpdeploy"), "--user", "dave", "freeze", "--reason", "x"],
                            env={**flow.env, "LPDEPLOY_PASSWORD": "dave-pw"}, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "login refused: too many failed logins for user 'dave'" in result.stderr
    assert get(flow, "auth/login", "127.0.4.101", auth=("bob", PASSWORDS["bob"]))[0] == 302  # others log in


def test_a_wrong_password_takes_as_long_for_an_unknown_user_as_for_a_real_one(flow: Flow) -> None:
    """Medians of 24 wrong-password logins each, interleaved, differ by at most 20 %.

    Interleaving (known, unknown, known, ...) puts both under the same load
    of the shared machine; medians ignore the odd descheduled request. A
    dummy hash at another cost than the file's entries (cost 12: ~4×, the
    harness's cost 4: ~1/60) is far outside the bound.
    """
    get(flow, "auth/login", "127.0.5.250", auth=("warm-up-unknown", "x"))  # the dummy hash at the file's cost
    known: list[float] = []
    unknown: list[float] = []
    for n in range(24):
        source = f"127.0.5.{n + 1}"  # two failures per address, three per known user: under both limits
        status, _, _, took = get(flow, "auth/login", source, auth=(KNOWN[n % len(KNOWN)], "wrong"))
        assert status == 401
        known.append(took)
        status, _, _, took = get(flow, "auth/login", source, auth=(f"nobody-{n}", "wrong"))
        assert status == 401
        unknown.append(took)
    mk, mu = statistics.median(known), statistics.median(unknown)
    print(f"\nwrong password: known user median {mk * 1000:.1f} ms, unknown user median {mu * 1000:.1f} ms, "
          f"difference {abs(mk - mu) / min(mk, mu) * 100:.1f} %")
    assert min(mk, mu) >= 0.010, "the checks were not at a realistic cost: the comparison would mean nothing"
    assert abs(mk - mu) <= 0.20 * min(mk, mu), (mk, mu)
