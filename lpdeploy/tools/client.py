"""A small client for the master's REST API, as the CLI uses it.

Login is Buildbot's: GET ``/auth/login`` with HTTP basic credentials sets a
session cookie; control actions are JSON-RPC POSTs. Errors become
``ApiError`` with a one-line message the CLI can print as is: a login refused
for too many failures (429) says how long to wait, a form field refused (400)
names the field and its rule.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from lpdeploy.core.errors import ApiError

REQUEST_TIMEOUT = 60  # seconds for one HTTP request
# waiting for a build: ask again after a quarter of the time waited so far, at least 50 ms, at most 1 s;
# a decision taken within 0.8 s is seen within 0.2 s, an hours-long build costs one request a second
FIRST_POLL, POLL_SHARE, LAST_POLL = 0.05, 0.25, 1.0
FINAL_RESULTS = {0: "success", 1: "warnings", 2: "failure", 3: "skipped", 4: "exception", 5: "retry",
                 6: "cancelled"}


def next_poll(waited: float) -> float:
    """Seconds to sleep before asking again, having waited ``waited`` seconds: backing off with the wait."""
    return min(LAST_POLL, max(FIRST_POLL, waited * POLL_SHARE))


class Client:
    # the clock and the sleep of ``wait_for_request``; tests replace them with a fake clock
    clock: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, url: str, user: str | None = None, password: str | None = None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.user = user
        self.password = password
        self._jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))
        self._logged_in = False

    def _request(self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        req = urllib.request.Request(urllib.parse.urljoin(self.url, path), data=data, headers=headers or {})
        try:
            with self._opener.open(req, timeout=REQUEST_TIMEOUT) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            detail = _error_text(e)
            raise ApiError(f"HTTP {e.code}: {detail}", e.code, detail) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ApiError(f"cannot reach the master at {self.url}: {reason}") from None
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")

    def login(self) -> None:
        """Log in with HTTP basic credentials; a session cookie carries the login afterwards."""
        if self._logged_in or not self.user:
            return
        token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
        try:
            self._request("auth/login", headers={"Authorization": f"Basic {token}"})
        except ApiError as e:
            if e.status == 401:
                raise ApiError(f"login failed for user {self.user!r}: wrong user name or password", 401) from None
            if e.status in (429, 503):
                raise ApiError(f"login refused: {e.detail}", e.status) from None
            raise
        self._logged_in = True

    def get(self, path: str) -> Any:
        return self._request(path)

    def api(self, path: str) -> Any:
        return self._request("api/v2/" + path)

    def control(self, path: str, method: str, params: dict[str, Any]) -> Any:
        """A JSON-RPC control call; 403 means the user lacks the role."""
        self.login()
        body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1, "params": params}).encode()
        try:
            reply = self._request("api/v2/" + path, data=body, headers={"Content-Type": "application/json"})
        except ApiError as e:
            if e.status == 403:
                who = f"user {self.user!r}" if self.user else "anonymous users"
                raise ApiError(f"not allowed: {who} may not {method} {path.split('/')[-1]} "
                               "(missing role, or not logged in)", 403) from None
            if e.status == 400:
                raise ApiError(f"the master refused: {e.detail}", 400, e.detail) from None
            raise
        if isinstance(reply, dict) and "error" in reply:
            raise ApiError(f"the master refused: {_message(reply['error'].get('message'))}", 400)
        return reply.get("result") if isinstance(reply, dict) else reply

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """A JSON POST to one of lpdeploy's own control paths (``plugins/lpdeploy/...``), logged in."""
        self.login()
        try:
            return self._request(path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        except ApiError as e:
            if e.status == 403:
                raise ApiError(e.detail, 403, e.detail) from None
            if e.status == 400:
                raise ApiError(f"the master refused: {e.detail}", 400, e.detail) from None
            raise

    def wait_for_request(self, brid: int, progress: Callable[[str], None], timeout: float) -> dict[str, Any]:
        """Wait until build request ``brid`` completes; return its last build (with properties).

        Polls the REST API, first after 50 ms and then less often as the wait
        grows (``next_poll``), so a promotion decided in under a second is
        reported within 0.2 s of its decision.
        """
        started = self.clock()
        deadline = started + timeout
        last_state = None
        while True:
            builds = self.api(f"buildrequests/{brid}/builds").get("builds", [])
            if builds:
                build = builds[-1]
                state = build.get("state_string")
                if state != last_state:
                    progress(f"build #{build['number']}: {state}")
                    last_state = state
                if build.get("complete"):
                    props = self.api(f"builds/{build['buildid']}/properties").get("properties", [{}])
                    build["properties"] = {k: v[0] for k, v in (props[0] if props else {}).items()}
                    return build
            else:
                req = self.api(f"buildrequests/{brid}").get("buildrequests", [{}])[0]
                if req.get("complete"):
                    return {"results": req.get("results"), "number": None, "properties": {}}
            now = self.clock()
            if now > deadline:
                raise ApiError(f"gave up waiting after {int(timeout)}s; the build goes on (request {brid})")
            self.sleep(next_poll(now - started))


    def stop_request(self, brid: int, reason: str) -> list[int]:
        """Stop the running build of request ``brid`` (or cancel the request if none started); their numbers."""
        builds = self.api(f"buildrequests/{brid}/builds").get("builds", [])
        running = [b for b in builds if not b.get("complete")]
        for b in running:
            self.control(f"builds/{b['buildid']}", "stop", {"reason": reason})
        if not builds:
            self.control(f"buildrequests/{brid}", "cancel", {"reason": reason})
        return [int(b["number"]) for b in running]

    def step_logs(self, buildid: int, step: str) -> dict[str, str]:
        """The text logs of one step of a build, by log name."""
        steps = self.api(f"builds/{buildid}/steps").get("steps", [])
        found = next((s for s in steps if s["name"] == step), None)
        if found is None:
            return {}
        logs = self.api(f"steps/{found['stepid']}/logs").get("logs", [])
        out = {}
        for log in logs:
            text = self.get(f"api/v2/logs/{log['logid']}/raw")
            out[log["name"]] = text if isinstance(text, str) else json.dumps(text)
        return out


def _error_text(e: urllib.error.HTTPError) -> str:
    """The master's message in an error answer: JSON (``error``, maybe JSON-RPC) or one line of text."""
    raw = e.read() or b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return text.splitlines()[0][:500] if text else str(e.reason)
    msg = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(msg, dict) and "message" in msg:
        msg = msg["message"]
    return _message(msg)


def _message(msg: Any) -> str:
    """A refusal as one line; Buildbot's force API gives ``{field: problem}`` for refused form fields."""
    if isinstance(msg, dict):
        return "; ".join(f"{field}: {problem}" for field, problem in msg.items())
    return str(msg)
