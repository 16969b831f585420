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
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lpdeploy import __version__
from lpdeploy.core import properties as prop
from lpdeploy.core import validators
from lpdeploy.core.errors import Interrupted, InvalidInput, UsageError
from lpdeploy.core.model import OK_OUTCOMES, Result
from lpdeploy.core.refs import short, validate_branch, validate_revision
from lpdeploy.tools.client import FINAL_RESULTS, ApiError, Client

DEFAULT_URL = "http://localhost:8010/"
DEFAULT_WAIT = 24 * 3600
T = TypeVar("T")


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


# How a command reaches the master: called only once its input passed every rule (so a refused input
# never asks for a password). ``main`` connects with ``Client``; tests hand in a client of their own.
Connect = Callable[[], Client]


def _checked(rule: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Apply an input rule (``validators``) before anything is sent; a violation is a usage error (exit 2)."""
    try:
        return rule(*args, **kwargs)
    except InvalidInput as e:
        raise UsageError(str(e)) from None


def _revision(value: str | None, option: str) -> str:
    return _checked(validators.optional_revision, value, option)


def _servers(names: list[str] | None, required: bool = False) -> str:
    return " ".join(_checked(validators.server_names, names or [], "--server", required=required))


def _reason(value: str | None, option: str = "--reason", required: bool = True) -> str:
    return _checked(validators.reason, value, option, required=required)


def _force(args: argparse.Namespace, connect: Connect, scheduler: str, params: dict[str, Any],
           stop_on_interrupt: bool = False) -> tuple[Client, dict[str, Any] | None]:
    """Force ``scheduler`` and, unless --no-wait, wait for its build; return the finished build.

    With ``stop_on_interrupt``, Ctrl-C while waiting stops the build (a deploy
    then leaves the servers it has not reached untouched); otherwise the build
    goes on.
    """
    client = connect()
    bsid, brids = client.control(f"forceschedulers/{scheduler}", "force", params)
    brid = next(iter(brids.values()))
    if getattr(args, "no_wait", False):
        print(f"queued: buildset {bsid}, build request {brid}")
        return client, None

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        return client, client.wait_for_request(brid, progress, getattr(args, "timeout", DEFAULT_WAIT))
    except KeyboardInterrupt:
        if not stop_on_interrupt:
            raise
        numbers = client.stop_request(brid, f"interrupted by {args.user or 'the lpdeploy CLI'} (Ctrl-C)")
        what = f"stopped build #{', #'.join(map(str, numbers))}" if numbers else "cancelled the queued deploy"
        raise Interrupted(f"interrupted: {what}; servers not yet deployed are left untouched") from None


def _report(build: dict[str, Any] | None, quiet_success: bool = False) -> int:
    if build is None:
        return 0
    props = build.get("properties", {})
    outcome = props.get(prop.OUTCOME)
    reason = props.get(prop.REASON) or build.get("state_string") or "no reason recorded"
    where = f" (build #{build['number']})" if build.get("number") is not None else ""
    if build.get("results") == 0 and outcome in OK_OUTCOMES:
        if not quiet_success:
            print(f"{reason}{where}")
        return 0
    result = FINAL_RESULTS.get(int(build.get("results") or 0), "unknown")
    print(f"lpdeploy: {outcome or result}: {reason}{where}", file=sys.stderr)
    return 1


# --- commands ------------------------------------------------------------


def cmd_status(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    client.login()
    status = client.get("plugins/lpdeploy/status.json")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"repository {status['repository']}  suite {status['suite']}")
    upstream = status.get("upstream") or {}
    if upstream.get("line"):  # the tips below are the last known ones
        print(f"{upstream['line']}: {upstream.get('error', '')}; the tips below are its last known ones")
    if status.get("freeze"):
        f = status["freeze"]
        print(f"FROZEN by {f['by']} since {_when(f['at'])}: {f['reason']}")
    _print_windows(status.get("freeze_windows"))
    for b in status["branches"]:
        if b["tip"] is None:
            print(f"  {b['name']:<20} (missing)")
            continue
        if b["tested"]:  # an embargoed tip's security build is not named to viewers without the role
            number = b["tested_by"]["build_number"]
            mark = f"tested (build #{number})" if number is not None else "tested"
        elif b["result"] == Result.FAILED:
            mark = "FAILED the suite"
        else:
            mark = "untested"
        print(f"  {b['name']:<20} {short(b['tip'])}  {mark:<20}  {b.get('subject') or ''}")
        culprit = b.get("culprit")
        if culprit:
            print(f"    broken by {short(culprit['revision'])} ({culprit['author']}): {culprit['subject']}"
                  f"  {culprit['build_url']}")
    security = status.get("security")
    if security:
        for f in security["fixes"]:
            where = "on production, not yet on stable" if f["branch"] in security["on_production_not_on_stable"] \
                else ""
            note = f" ({f['note']})" if f["note"] else ""
            print(f"  security {f['branch']:<20} {f['state']:<12} {short(f['fix_commit'])}  {where}{note}")
            for r in f.get("releases", []):  # what reached production, whatever the branch holds now
                print(f"    released {short(r['fix_commit'])} as {short(r['candidate'])}: {r['state']}")
    for s in status.get("servers", []):
        deployed = short(s["deployed"]) if s["deployed"] else "(never deployed)"
        behind = "" if s["behind"] is None else f"  {s['behind']} behind production-stable"
        print(f"  server {s['name']:<13} {deployed}{behind}")
        for c in s["cowboys"]:
            fix = f", fixed by {short(c['fixed_by'])}" if c["fixed_by"] else ""
            print(f"    cowboy #{c['id']} by {c['created_by']} since {_when(c['created_at'])}: {c['reason']}{fix}")
        u = s.get("unrecorded_change")
        if u:  # rollouts to it are refused until a cowboy is recorded or a losa deploys over it
            print(f"    UNRECORDED CHANGE since {_when(u['at'])}: runs tree {short(u['found'])}, lpdeploy deployed "
                  f"tree {short(u['expected'])} ({short(u['revision'])}); rollouts refused")
    return 0


def _print_windows(windows: dict[str, Any] | None) -> None:
    """The open freeze windows (and when the freeze they make ends), then the next one."""
    if not windows:
        return
    if windows["active"]:
        until = windows["until_at"] if windows["until_bounded"] else f"at least {windows['until_at']}"
        reasons = "; ".join(dict.fromkeys(w["reason"] for w in windows["active"]))
        print(f"FREEZE WINDOW until {until}: {reasons}")
    nxt = windows.get("next")
    if nxt:
        print(f"next freeze window {nxt['start_at']} to {nxt['end_at']}: {nxt['reason']}")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def cmd_promote(args: argparse.Namespace, connect: Connect) -> int:
    params = {"target_revision": _revision(args.revision, "--revision"),
              "reason": _reason(args.reason, required=False) or "lpdeploy promote"}
    build = _force(args, connect, "promote", params)[1]
    props = (build or {}).get("properties", {})
    if props.get(prop.QA) and props[prop.QA] != props.get(prop.REASON):
        print(f"qa: {props[prop.QA]}")  # [promotion] require_qa: what it promoted, left behind, and why
    return _report(build)


def cmd_deploy(args: argparse.Namespace, connect: Connect) -> int:
    reason = _reason(args.reason, required=bool(args.override_cowboys))
    params: dict[str, Any] = {
        "servers": _servers(args.server), "target_revision": _revision(args.revision, "--revision"),
        "override_cowboys": bool(args.override_cowboys), "override_reason": reason if args.override_cowboys else "",
        "reason": reason or "lpdeploy deploy"}
    client, build = _force(args, connect, "deploy", params, stop_on_interrupt=True)
    if build is None:
        return 0
    servers = build.get("properties", {}).get(prop.SERVERS) or {}
    for name, o in servers.items():
        print(f"{name}: {o['status']}: {o['reason']}")
    if build.get("buildid"):
        for text in _reports(client.step_logs(build["buildid"], "deploy"), everything=args.all):
            print(text.rstrip())
    return _report(build, quiet_success=bool(servers))


def _reports(logs: dict[str, str], everything: bool) -> list[str]:
    """The deployment report of each server; with ``everything``, its full list where the build kept one."""
    out = []
    for name, text in logs.items():
        if name.startswith("report "):
            server = name[len("report "):]
            out.append(logs.get(f"full report {server}", text) if everything else text)
    return out


def cmd_cowboy_add(args: argparse.Namespace, connect: Connect) -> int:
    params = {"servers": _servers(args.server, required=True), "cowboy_reason": _reason(args.reason),
              "fixed_by": _revision(args.fixed_by, "--fixed-by"), "reason": "lpdeploy cowboy add"}
    if args.patch is not None:
        params["patch"] = _patch_file(args.patch)
    _, build = _force(args, connect, "cowboy-add", params)
    code = _report(build, quiet_success=True)
    if code == 0 and build is not None:
        for cowboy_id in build["properties"].get(prop.COWBOY_IDS, []):
            print(cowboy_id)
    return code


def _patch_file(path: str) -> str:
    """The diff in ``path`` (``-``: standard input), checked as the master will check it; at most 1 MiB read."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(validators.MAX_PATCH + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(validators.MAX_PATCH + 1)
    except OSError as e:
        raise UsageError(f"--patch {path}: {e.strerror}") from None
    if len(data) > validators.MAX_PATCH:
        raise UsageError(f"--patch {path}: larger than the {validators.MAX_PATCH // (1024 * 1024)} MiB a cowboy's "
                         "patch may have")
    return _checked(validators.patch, data.decode("utf-8", "surrogateescape"), f"--patch {path}")


def cmd_cowboy_list(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    client.login()
    cowboys = client.get("plugins/lpdeploy/cowboys.json" + ("?all=1" if args.all else ""))
    if args.json:
        print(json.dumps(cowboys, indent=2))
        return 0
    if not cowboys:
        print("no active cowboys" if not args.all else "no cowboys recorded")
    for c in cowboys:
        fix = f" fixed-by {short(c['fixed_by'])}" if c["fixed_by"] else ""
        fix += f" patch-id {short(c['patch']['patch_id'])}" if c.get("patch") else ""
        line = (f"#{c['id']} {c['server']} {c['state']} by {c['created_by']} "
                f"{_when(c['created_at'])}{fix}: {c['reason']}")
        if not c["active"]:
            line += f" [{c['state']} {_when(c['ended_at'])} by {c['ended_by']}: {c['end_reason']}]"
        print(line)
    return 0


def cmd_cowboy_remove(args: argparse.Namespace, connect: Connect) -> int:
    params = {"cowboy_id": str(_checked(validators.cowboy_id, args.id)),
              "remove_reason": _reason(args.reason, required=False),
              "reason": "lpdeploy cowboy remove"}
    return _report(_force(args, connect, "cowboy-remove", params)[1])


def cmd_freeze(args: argparse.Namespace, connect: Connect) -> int:
    params = {"freeze_reason": _reason(args.reason), "reason": "lpdeploy freeze"}
    return _report(_force(args, connect, "freeze", params)[1])


def cmd_thaw(args: argparse.Namespace, connect: Connect) -> int:
    return _report(_force(args, connect, "thaw", {"reason": "lpdeploy thaw"})[1])


def _security_branch(name: str) -> str:
    return _checked(validate_branch, name, "security branch")


def cmd_security_build(args: argparse.Namespace, connect: Connect) -> int:
    params = {"security_branch": _security_branch(args.branch)}
    return _report(_force(args, connect, "security-build", params)[1])


def cmd_merge_back(args: argparse.Namespace, connect: Connect) -> int:
    params = {"security_branch": _security_branch(args.branch)}
    return _report(_force(args, connect, "merge-back", params)[1])


def cmd_audit(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    client.login()
    entries = client.get("plugins/lpdeploy/audit.json")
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    shown = entries if args.all else entries[: args.limit]
    for e in shown:
        details = " ".join(f"{k}={v}" for k, v in e["details"].items() if not isinstance(v, dict))
        print(f"{_when(e['at'])} {e['who']} {e['action']} {details}")
    if len(shown) < len(entries):  # a shortened list says so
        print(f"(the newest {len(shown):,} of {len(entries):,} entries shown; --all or --limit N for more)")
    return 0


def cmd_flaky(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    client.login()
    report = client.get("plugins/lpdeploy/flaky.json")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    days = report["window_days"]
    tests = report["tests"]
    if not tests:
        print(f"no flaky tests and no quarantined failures in the last {days} days")
    for t in tests:
        word = "flaky" if t["kind"] == "flaky" else "failed in quarantine"
        print(f"{t['count']:>4}x {word:<20} {t['test']}  last: {short(t['last_revision'])} "
              f"{_when(t['last_at'])} {t['last_build_url']}")
    quarantine = report["quarantine"]
    print(f"quarantined ([suite] quarantine): {', '.join(quarantine) if quarantine else 'none'}")
    if not report["rerun_failures"]:
        print("failures are not re-run ([suite] rerun_failures = 0): no test is found flaky")
    return 0


def cmd_qa_mark(args: argparse.Namespace, connect: Connect) -> int:
    revisions = [_checked(validate_revision, r, "REV") for r in args.revisions]
    reason = _reason(args.reason, required=False)
    client = connect()
    answer = client.post("plugins/lpdeploy/qa-mark", {"state": args.state, "revisions": revisions, "reason": reason})
    for rev in answer["marked"]:
        print(f"{short(rev)} marked {answer['state']} by {answer['by']}" + (f": {reason}" if reason else ""))
    return 0


def cmd_qa_list(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    client.login()
    report = client.get("plugins/lpdeploy/qa.json")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for line in qa_lines(report):
        print(line)
    return 0


def qa_lines(report: dict[str, Any]) -> list[str]:
    """``lpdeploy qa list``: the deployable line first, then every undeployed commit, oldest first."""
    commits = report["commits"]
    if not commits:
        return ["nothing to QA: production-stable holds every commit on stable"]
    lines = []
    deployable = report["deployable"]
    behind = len(report["left_behind"])
    if deployable == report["base"]:
        lines.append(f"deployable: nothing beyond production-stable ({behind} commits waiting)")
    else:
        lines.append(f"deployable: {short(deployable)} ({len(commits) - behind} of {len(commits)} commits)")
    if report.get("blocker"):
        b = report["blocker"]
        lines.append(f"blocked by {short(b['revision'])}: {b['why']}; waiting for {b['who']}")
    for c in commits:
        state = "security fix (exempt)" if c["security"] else c["qa"]
        if c.get("reverted_by"):
            state += f", reverted by {short(c['reverted_by'])}"
        who = f" by {c['marked_by']}" + (f" {_when(c['marked_at'])}" if c.get("marked_at") else "") \
            if c.get("marked_by") else ""
        bugs = " ".join(f"#{b['bug']}" for b in c["bugs"])
        staging = f"  on {', '.join(c['staging'])}" if c["staging"] else ""
        line = f"  {short(c['revision'])}  {state:<14}{who}  {c['subject']}  ({c['author']})"
        lines.append(line + (f"  bugs: {bugs}" if bugs else "") + staging)
        if c.get("reason") and c["qa"] != "needs-testing":
            lines.append(f"      {c['reason']}")
        if c["revision"] == deployable:
            lines.append("  ---- deployable ----")
    return lines


# --- the parser ----------------------------------------------------------


def _waiting(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-wait", action="store_true", help="queue the action and return at once")
    p.add_argument("--timeout", type=int, default=DEFAULT_WAIT, metavar="SECONDS",
                   help="stop waiting after this long (default: %(default)s)")


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

    s = sub.add_parser("status", help="flow branches, servers, cowboys and the freeze",
                       description="Show the tip of each flow branch and whether its tree passed the suite, "
                                   "each server's deployed revision and cowboys, and the freeze.")
    s.add_argument("--json", action="store_true", help="print the full status as JSON")
    s.set_defaults(func=cmd_status)

    pr = sub.add_parser(
        "promote", help="move production-devel and production-stable to a stable revision (role losa)",
        description="Fast-forward production-devel and production-stable to the stable tip (or "
                    "--revision), without running the suite when the tree already passed it. Waits for "
                    "the promote build and exits 0 when production holds the revision.")
    pr.add_argument("--revision", metavar="REV", help="a full 40-hex commit id on stable (default: its tip)")
    pr.add_argument("--reason", help="why (shown in the build)")
    _waiting(pr)
    pr.set_defaults(func=cmd_promote)

    d = sub.add_parser(
        "deploy", help="deploy production-stable to servers (role losa)",
        description="Deploy the production-stable tip (or --revision, which must be on production-stable: "
                    "an earlier one rolls back) to the named servers (default: all). A server with an "
                    "active cowboy is refused unless the revision contains the cowboy's fix. Prints per "
                    "server deployed / unchanged / refused and why, and a deployment report; exits 1 if "
                    "any server was refused or failed.")
    d.add_argument("--server", action="append", metavar="NAME", help="a server to deploy (repeatable)")
    d.add_argument("--revision", metavar="REV", help="a full 40-hex commit id on production-stable")
    d.add_argument("--override-cowboys", action="store_true",
                   help="deploy over active cowboys anyway (needs --reason; audited)")
    d.add_argument("--reason", help="why (shown in the build); required with --override-cowboys, as its reason")
    d.add_argument("--all", action="store_true",
                   help="print every commit of each deployment report (by default a long one lists "
                        "the newest 200 and says how many there are)")
    _waiting(d)
    d.set_defaults(func=cmd_deploy)

    cb = sub.add_parser("cowboy", help="record, list and remove hand-applied patches (role losa)",
                        description="The cowboy registry: hand-applied patches that no rollout may overwrite.")
    cbs = cb.add_subparsers(dest="cowboy_command", required=True, metavar="ACTION")
    add = cbs.add_parser("add", help="record a cowboy on one or more servers; prints the new ids",
                         description="Record a cowboy (one per server); prints the new ids, one per line.")
    add.add_argument("--server", action="append", metavar="NAME", help="a patched server (repeatable)")
    add.add_argument("--reason", required=True, help="what was patched by hand, and why")
    add.add_argument("--fixed-by", metavar="REV",
                     help="full 40-hex commit id of the real fix (any upstream ref); a deploy containing "
                          "it retires the cowboy")
    add.add_argument("--patch", metavar="FILE",
                     help="the diff applied by hand (git diff output, at most 1 MiB; - reads standard input): a "
                          "deploy whose new commits make the same change (same git patch-id) retires the cowboy")
    _waiting(add)
    add.set_defaults(func=cmd_cowboy_add)
    ls = cbs.add_parser("list", help="list active cowboys", description="List active cowboys.")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--all", action="store_true", help="include retired and removed cowboys")
    ls.set_defaults(func=cmd_cowboy_list)
    rm = cbs.add_parser("remove", help="remove a cowboy by id", description="Remove a cowboy by id (audited).")
    rm.add_argument("id", help="the cowboy's id")
    rm.add_argument("--reason", help="why it is removed")
    _waiting(rm)
    rm.set_defaults(func=cmd_cowboy_remove)

    fr = sub.add_parser("freeze", help="stop promotions and deploys (role losa)",
                        description="Freeze: promotions and deploys are refused with the reason until "
                                    "`lpdeploy thaw`. The devel gate keeps running.")
    fr.add_argument("--reason", required=True, help="why (shown to everyone refused)")
    _waiting(fr)
    fr.set_defaults(func=cmd_freeze)
    th = sub.add_parser("thaw", help="end a freeze (role losa)", description="End the freeze.")
    _waiting(th)
    th.set_defaults(func=cmd_thaw)

    sb = sub.add_parser(
        "security-build", help="test a security branch and promote it to production (role security)",
        description="Run the full suite on BRANCH (merged onto production-stable when it is not based on it) "
                    "and, on a pass, fast-forward both production branches to exactly the tested commit.")
    sb.add_argument("branch", metavar="BRANCH", help="an existing branch matching the security pattern")
    _waiting(sb)
    sb.set_defaults(func=cmd_security_build)
    mb = sub.add_parser(
        "merge-back", help="merge a released security fix back into devel now (role security)",
        description="Merge what reached production for BRANCH into devel and push the merge; it then "
                    "goes through the normal gate. A conflict pushes nothing and leaves the fix pending.")
    mb.add_argument("branch", metavar="BRANCH", help="the security branch")
    _waiting(mb)
    mb.set_defaults(func=cmd_merge_back)
    q = sub.add_parser("qa", help="QA state of the commits not yet on production (marking: role qa or losa)",
                       description="QA marks: what was tested on staging. Only revisions deployable as tip "
                                   "(everything from production-stable up to them ok or untestable) are promoted "
                                   "when the site sets [promotion] require_qa.")
    qs = q.add_subparsers(dest="qa_command", required=True, metavar="ACTION")
    for state, what in (("ok", "it works on staging"), ("bad", "it is broken: holds promotion until reverted "
                                                                 "on stable or marked again"),
                        ("untestable", "it cannot be tested on staging; it does not hold promotion")):
        m = qs.add_parser(state, help=f"mark revisions {state}: {what}",
                          description=f"Mark each REV (a full 40-hex commit id on stable) {state}: {what}. "
                                      "Replaces an earlier mark; audited.")
        m.add_argument("revisions", nargs="+", metavar="REV", help="a full 40-hex commit id on stable")
        m.add_argument("--reason", help="why (shown in qa list, the dashboard and the audit trail)")
        m.set_defaults(func=cmd_qa_mark, state=state)
    ql = qs.add_parser("list", help="the commits on stable not on production-stable, oldest first",
                       description="Each commit on stable that production-stable lacks, oldest first: its QA "
                                   "state, who marked it, its bugs, whether the staging servers run it; and the "
                                   "deployable revision, with what blocks beyond it and who must act.")
    ql.add_argument("--json", action="store_true", help="print JSON")
    ql.set_defaults(func=cmd_qa_list)

    au = sub.add_parser("audit", help="who did what, when (role security or losa)",
                        description="The audit trail: forced security builds, promotions, merge-backs, "
                                    "deploys, overrides, cowboys, freezes; newest first.")
    au.add_argument("--json", action="store_true", help="print JSON")
    au.add_argument("--limit", type=int, default=50, help="at most this many entries (default: %(default)s)")
    au.add_argument("--all", action="store_true", help="every entry the master returns (its newest 500)")
    au.set_defaults(func=cmd_audit)

    fl = sub.add_parser("flaky", help="flaky tests over the last 30 days, and the quarantined ones",
                        description="Per test: how often it failed and then passed when run alone (flaky), "
                                    "or failed while quarantined, in the last 30 days, with the last revision "
                                    "and build; then the tests in [suite] quarantine. Read-only; a security "
                                    "build's records only for the security role.")
    fl.add_argument("--json", action="store_true", help="print JSON")
    fl.set_defaults(func=cmd_flaky)
    return p


def main(argv: list[str] | None = None, connect: Callable[[argparse.Namespace], Client] = _client) -> int:
    """The ``lpdeploy`` command; ``connect`` makes the client a command talks to the master with."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args, lambda: connect(args)))
    except UsageError as e:
        print(f"lpdeploy: {e}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"lpdeploy: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"lpdeploy: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("lpdeploy: interrupted (a queued build goes on)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
