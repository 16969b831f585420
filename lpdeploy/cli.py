"""``lpdeploy``: the command line of the release flow, speaking to the master's REST API.

Exit codes: 0 the requested state holds; 1 refused, failed or not allowed;
2 bad usage or input (nothing was sent).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from lpdeploy import __version__
from lpdeploy.client import FINAL_RESULTS, ApiError, Client
from lpdeploy.errors import InvalidInput
from lpdeploy.refs import short, validate_revision

PROMOTE_SCHEDULER = "promote"  # the ForceScheduler configurator.py creates
DEFAULT_URL = "http://localhost:8010/"
DEFAULT_WAIT = 24 * 3600


class UsageError(Exception):
    pass


def _password(args: argparse.Namespace) -> str | None:
    if not args.user:
        return None
    pw = os.environ.get("LPDEPLOY_PASSWORD")
    if pw is not None:
        return pw
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {args.user} at {args.url}: ")
    raise UsageError("no password: set LPDEPLOY_PASSWORD (or run on a terminal to be asked)")


def _client(args: argparse.Namespace) -> Client:
    return Client(args.url, args.user, _password(args))


def _progress(args: argparse.Namespace) -> Any:
    def show(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)
    return show


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    client.login()
    status = client.get("plugins/lpdeploy/status.json")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"repository {status['repository']}  suite {status['suite']}")
    for b in status["branches"]:
        if b["tip"] is None:
            print(f"  {b['name']:<20} (missing)")
            continue
        if b["tested"]:
            mark = f"tested (build #{b['tested_by']['build_number']})"
        elif b["result"] == "failed":
            mark = "FAILED the suite"
        else:
            mark = "untested"
        print(f"  {b['name']:<20} {short(b['tip'])}  {mark:<20}  {b.get('subject') or ''}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    revision = ""
    if args.revision:
        try:
            revision = validate_revision(args.revision.strip(), "--revision")
        except InvalidInput as e:
            raise UsageError(str(e)) from None
    client = _client(args)
    result = client.control(f"forceschedulers/{PROMOTE_SCHEDULER}", "force",
                            {"target_revision": revision, "reason": args.reason or "lpdeploy promote"})
    bsid, brids = result
    brid = next(iter(brids.values()))
    if args.no_wait:
        print(f"promotion queued: buildset {bsid}, build request {brid}")
        return 0
    return _report(client.wait_for_request(brid, _progress(args), args.timeout))


def _report(build: dict[str, Any]) -> int:
    props = build.get("properties", {})
    outcome = props.get("lpdeploy_outcome")
    reason = props.get("lpdeploy_reason") or build.get("state_string") or "no reason recorded"
    ok = build.get("results") == 0 and outcome in ("moved", "nothing")
    where = f" (build #{build['number']})" if build.get("number") is not None else ""
    if ok:
        print(f"{reason}{where}")
        return 0
    result = FINAL_RESULTS.get(int(build.get("results") or 0), "unknown")
    print(f"lpdeploy: {outcome or result}: {reason}{where}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lpdeploy", description="Drive the lpdeploy release flow on a Buildbot master.",
        epilog="Connection: --url/LPDEPLOY_URL, --user/LPDEPLOY_USER, password from LPDEPLOY_PASSWORD "
               "(asked on a terminal). Exit 0: done; 1: refused, failed or not allowed; 2: bad input.")
    p.add_argument("--version", action="version", version=f"lpdeploy {__version__}")
    p.add_argument("--url", default=os.environ.get("LPDEPLOY_URL", DEFAULT_URL),
                   help="the master's web address (default: $LPDEPLOY_URL or %(default)s)")
    p.add_argument("--user", default=os.environ.get("LPDEPLOY_USER"),
                   help="log in as this user (default: $LPDEPLOY_USER; none: anonymous)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("status", help="tips of the flow branches and whether each tree is tested",
                       description="Show the tip of each flow branch and whether its tree passed the suite.")
    s.add_argument("--json", action="store_true", help="print the full status as JSON")
    s.set_defaults(func=cmd_status)

    pr = sub.add_parser(
        "promote", help="move production-devel and production-stable to a stable revision (role losa)",
        description="Fast-forward production-devel and production-stable to the stable tip (or "
                    "--revision), without running the suite when the tree already passed it. Waits for "
                    "the promote build and exits 0 when production holds the revision.")
    pr.add_argument("--revision", metavar="REV", help="a full 40-hex commit id on stable (default: its tip)")
    pr.add_argument("--reason", help="why (shown in the build)")
    pr.add_argument("--no-wait", action="store_true", help="queue the promotion and return at once")
    pr.add_argument("--timeout", type=int, default=DEFAULT_WAIT, metavar="SECONDS",
                    help="stop waiting after this long (default: %(default)s)")
    pr.set_defaults(func=cmd_promote)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"lpdeploy: {e}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"lpdeploy: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lpdeploy: interrupted (a queued build goes on)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
