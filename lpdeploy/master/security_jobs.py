"""Security work as jobs: the branch and who asked stay master-side; builds carry an opaque token.

A security build or merge-back is readable in Buildbot's data API in many
ways (build and buildset properties, build requests, reasons, state strings,
the websocket), and a security branch's name can itself be a secret
(``security/CVE-…-login-bypass``), as is who works on an embargoed fix. So
neither ever enters a buildset: ``queue_job`` stores a ``SecurityJob`` (kind,
branch, who asked, when) in the registry under a random token and adds a
buildset whose only property is ``lpdeploy_job`` = that token, whose reason is
a neutral word, and whose source stamp names no branch. The steps read the job
back (``security_steps.SecurityStep``).

The forms that queue jobs are in ``security_forms``; ``SecurityScheduler``
queues them for pushes and for merge-backs that became due.
"""

from __future__ import annotations

from typing import Any

from buildbot.process.properties import Properties

from lpdeploy.core import properties as prop
from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.model import JobKind, SecurityJob
from lpdeploy.core.refs import branch_matches, validate_branch
from lpdeploy.core.settings import Settings
from lpdeploy.facts.services import services
from lpdeploy.master.sourcestamps import source_stamp
from lpdeploy.stores.registry import new_job_token

BRANCH_FIELD = "security_branch"  # the form field (and CLI parameter) naming the branch
REASONS = {JobKind.SECURITY_BUILD: "security build", JobKind.MERGE_BACK: "merge-back"}  # what a buildset's reason says


def security_branch(value: Any, settings: Settings) -> str:
    """A security branch name from a form, a job or a scheduler: validated, and matching the pattern."""
    name = validate_branch(str(value or "").strip(), "security branch")
    if not branch_matches(name, settings.branches.security):
        raise InvalidInput("security branch", name, f"does not match {settings.branches.security!r}")
    return name


async def queue_job(scheduler: Any, settings: Settings, kind: JobKind, branch: str, requested_by: str,
                    builder_names: list[str], automatic: bool = False, candidate: str | None = None) -> Any:
    """Record a job for ``branch`` and queue a buildset that carries only its token; returns (bsid, brids).

    ``scheduler``: the Buildbot scheduler adding the buildset (its name shows as the
    build's ``scheduler`` property, which says nothing about the fix).
    """
    token = new_job_token()
    job = SecurityJob(token=token, kind=kind, branch=security_branch(branch, settings), requested_by=requested_by,
                      requested_at=scheduler.master.reactor.seconds(), automatic=automatic, candidate=candidate)
    await services(scheduler.master).registry.save_job(job)
    props = Properties()
    props.setProperty(prop.JOB, token, "lpdeploy")
    return await scheduler.addBuildsetForSourceStamps(
        sourcestamps=[source_stamp(settings)],
        reason=REASONS[kind], properties=props, builderNames=builder_names)
