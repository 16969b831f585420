"""The CLI refuses bad input with exit 2 and the rule, before it sends anything.

The master here is a small HTTP server on 127.0.0.1 that records every
request and answers like Buildbot (login, force); a refused command must
leave it untouched, and the control cases show that an accepted command does
reach it. The CLI runs in-process through ``lpdeploy.tools.cli.main``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lpdeploy.tools import cli

SHA = "0123456789abcdef0123456789abcdef01234567"


class Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict]] = []

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.requests.append(("GET", self.path, {}))
        if self.path == "/auth/login" and self.headers.get("Authorization", "").endswith("Ym9iOndyb25n"):
            data = b"too many failed logins for user 'bob' (at most 5 in 5 minutes); retry in 42 s"
            self.send_response(429)
            self.send_header("Retry-After", "42")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if self.path.startswith("/api/v2/buildrequests/"):  # a command that waits sees its build done at once
            self._answer(200, {"builds": []} if self.path.endswith("/builds") else
                         {"buildrequests": [{"complete": True, "results": 0}]})
            return
        self._answer(200, {})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path, body["params"]))
        if body["params"].get("servers") == "app9":
            self._answer(400, {"jsonrpc": "2.0", "id": 1, "error": {
                "code": -32602, "message": {"servers": "invalid server 'app9': unknown server (known: app1)"}}})
            return
        self._answer(200, {"jsonrpc": "2.0", "id": 1, "result": [1, {"1": 1}]})


@pytest.fixture
def master(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("LPDEPLOY_PASSWORD", "pw")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run(master: str, *args: str) -> int:
    return cli.main(["--url", master, "--user", "bob", "-q", *args])


BAD = [
    (["promote", "--reason", "two\nlines"], "invalid --reason", "more than one line"),
    (["promote", "--reason", "x" * 201], "invalid --reason", "201 characters"),
    (["promote", "--reason", "esc\x1b[2J"], "invalid --reason", "U+001B"),
    (["promote", "--reason=--force"], "invalid --reason", "starts with '-'"),
    (["promote", "--revision", "HEAD~1"], "invalid --revision", "full 40-character hex commit id"),
    (["promote", "--revision", SHA + "\n"], "invalid --revision", "full 40-character hex commit id"),
    (["deploy", "--server=-all"], "invalid server name", "starting with a letter or digit"),
    (["deploy", "--server", "app1\napp2"], "invalid server name", "starting with a letter or digit"),
    (["deploy", "--server", "a" * 64], "invalid server name", "at most 63"),
    (["deploy", "--revision", SHA[:39] + "\x00"], "invalid --revision", "full 40-character hex commit id"),
    (["deploy", "--override-cowboys"], "invalid --reason", "must not be empty"),
    (["deploy", "--override-cowboys", "--reason", "why\x07"], "invalid --reason", "U+0007"),
    (["deploy", "--reason", "y" * 300], "invalid --reason", "300 characters"),
    (["cowboy", "add", "--reason", "hot patch"], "invalid --server", "name at least one server"),
    (["cowboy", "add", "--server", "app1", "--reason", "  "], "invalid --reason", "must not be empty"),
    (["cowboy", "add", "--server", "app1", "--reason", "a\rb"], "invalid --reason", "more than one line"),
    (["cowboy", "add", "--server", "app1", "--reason", "ok", "--fixed-by=--all"], "invalid --fixed-by",
     "full 40-character hex commit id"),
    (["cowboy", "remove", "1; rm -rf /"], "invalid cowboy id", "must be a number"),
    (["cowboy", "remove", "1" * 10], "invalid cowboy id", "must be a number"),
    (["cowboy", "remove", "7", "--reason", "\u202eevil"], "invalid --reason", "U+202E"),
    (["freeze", "--reason", "z" * 10_000], "invalid --reason", "10000 characters"),
    (["freeze", "--reason=-x"], "invalid --reason", "starts with '-'"),
    (["security-build", "security/../x"], "invalid security branch", "not a valid git branch name"),
]


@pytest.mark.parametrize(("args", "what", "rule"), BAD, ids=[" ".join(a)[:60] for a, _, _ in BAD])
def test_bad_input_exits_2_with_the_rule_and_sends_nothing(master, capsys, args, what, rule):
    assert run(master, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lpdeploy: {what} "), err
    assert rule in err, err
    assert len(err.splitlines()) == 1
    assert Recorder.requests == []


@pytest.mark.parametrize("args", [["freeze", "--reason", "-x"],
                                  ["cowboy", "add", "--server", "app1", "--reason", "ok", "--fixed-by", "--all"]])
def test_an_option_given_where_a_value_belongs_is_refused_by_argparse_with_exit_2(master, capsys, args):
    with pytest.raises(SystemExit) as e:
        run(master, *args)
    assert e.value.code == 2
    assert "expected one argument" in capsys.readouterr().err
    assert Recorder.requests == []


def test_good_input_is_sent_as_validated(master, capsys):
    assert run(master, "cowboy", "add", "--server", "app1", "--server", "app2", "--reason", "  hot patch  ",
               "--fixed-by", SHA, "--no-wait") == 0
    assert run(master, "cowboy", "remove", "#7", "--no-wait") == 0
    assert run(master, "deploy", "--reason", "weekly", "--no-wait") == 0
    posts = [r for r in Recorder.requests if r[0] == "POST"]
    assert [p[1] for p in posts] == ["/api/v2/forceschedulers/cowboy-add", "/api/v2/forceschedulers/cowboy-remove",
                                     "/api/v2/forceschedulers/deploy"]
    assert posts[0][2] == {"servers": "app1 app2", "cowboy_reason": "hot patch", "fixed_by": SHA,
                           "reason": "lpdeploy cowboy add"}
    assert posts[1][2]["cowboy_id"] == "7"
    assert posts[2][2]["reason"] == "weekly" and posts[2][2]["override_reason"] == ""


def test_a_field_the_master_refuses_is_shown_by_name_and_exits_1(master, capsys):
    assert run(master, "deploy", "--server", "app9", "--no-wait") == 1
    assert capsys.readouterr().err == ("lpdeploy: the master refused: servers: invalid server 'app9': "
                                       "unknown server (known: app1)\n")


def test_a_login_over_the_limit_says_how_long_to_wait_and_exits_1(master, capsys, monkeypatch):
    monkeypatch.setenv("LPDEPLOY_PASSWORD", "wrong")
    assert run(master, "freeze", "--reason", "x") == 1
    assert capsys.readouterr().err == ("lpdeploy: login refused: too many failed logins for user 'bob' "
                                       "(at most 5 in 5 minutes); retry in 42 s\n")
