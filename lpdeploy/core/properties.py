"""The names of the build properties lpdeploy sets and reads: one home, so a misspelt name is an import error.

Steps set them, later steps, schedulers and the web status read them, and the
CLI reads some off ``/api/v2/builds`` (it imports this module, not the
master's code). Every property is readable through Buildbot's REST API and
event streams, so none carries a secret: a security build knows its work by
the opaque ``JOB`` token only (``master/security_jobs.py``).

Use as ``from lpdeploy.core import properties as prop`` → ``prop.OUTCOME``.
"""

from __future__ import annotations

# how a flow build ended (the CLI prints both)
OUTCOME = "lpdeploy_outcome"  # a core.model.BuildOutcome
REASON = "lpdeploy_reason"  # one line, shown to people

# what a gate, promote or security build decided
REVISION = "lpdeploy_revision"  # the commit the build tests, moves or deploys
TREE = "lpdeploy_tree"  # the tree of REVISION: the ledger's key
SUITE = "lpdeploy_suite"  # the suite's identity the ledger is asked about
RUN_SUITE = "lpdeploy_run_suite"  # bool: the checkout and suite steps run only when set
CHECKOUT_BRANCH = "lpdeploy_checkout_branch"  # the ref the worker checks REVISION out from
CULPRIT = "lpdeploy_culprit"  # set by the gate's Bisect step: the commit it found breaking devel (public)
PROBE = "lpdeploy_probe"  # set on a gate build that tests one commit of a failing batch (a bisection probe)
QA = "lpdeploy_qa"  # a promote build under ``require_qa``: what QA decided (and what it left behind, and why)

# the deploy builder
AUTO = "lpdeploy_auto"  # set by AutoDeployScheduler: an automatic deploy (stable, never overriding)
PLAN = "lpdeploy_plan"  # the per-server plan (policy.ServerPlan as JSON)
RUN_DEPLOY = "lpdeploy_run_deploy"  # bool: the checkout and deploy steps run only when set
SERVERS = "lpdeploy_servers"  # per server: {"status": a core.model.ServerStatus, "reason": ...}

# the admin builder
ACTION = "lpdeploy_action"  # which bookkeeping action the build carries out
COWBOY_IDS = "lpdeploy_cowboy_ids"  # the ids of the cowboys a ``cowboy-add`` recorded
PATCH_UPLOAD = "lpdeploy_patch_upload"  # a ``cowboy-add``'s token for its diff, kept master-side (never the diff)

# security and merge-back builds
JOB = "lpdeploy_job"  # the opaque token of the job kept master-side

# shard builds, set by their parent's trigger
PARENT_BUILDID = "lpdeploy_parent_buildid"
SHARD = "lpdeploy_shard"
ATTEMPT = "lpdeploy_attempt"

# a gate build's change, set by the poller
PREVIOUS_TIP = "lpdeploy_previous_tip"  # devel's tip before the push
