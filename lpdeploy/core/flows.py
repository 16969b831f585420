"""How the flows differ, as data: one row per flow kind, read by the steps instead of comparing kinds.

The gate, promote and security builds share their steps (``Decide``,
``RunSuite`` or ``RunShards``, ``MoveBranches``); what differs between them is
written here once, so a new flow (or a change to one) is a new row, not a new
``if kind == ...`` in several steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpdeploy.core.model import AuditAction, FlowKind
from lpdeploy.core.settings import Branches


@dataclass(frozen=True)
class Flow:
    kind: FlowKind
    # where the revision comes from: the devel tip (the gate, pushes batched into it) or a revision
    # on stable (a promotion: the stable tip, or the one asked for); the worker fetches it from there
    source: str  # "devel" or "stable"
    # what the build moves: stable (the gate) or both production branches (promote, security)
    to_production: bool
    # refused while a freeze holds (the security build checks the freeze itself, after its suite)
    stopped_by_freeze: bool
    # Decide refuses a target that lacks a released security fix, and has nothing to do when
    # production already holds the target (the security build promotes the candidate it tested)
    guards_production: bool
    # MoveBranches writes an audit entry of this action (who, which revision and tree, the outcome), or none
    audit_action: AuditAction | None
    # an embargoed flow: its test names and shard results stay out of summaries, test results
    # and the public shard builder
    embargoed: bool

    def targets(self, branches: Branches) -> tuple[str, ...]:
        """The gated branches this flow's build moves."""
        return branches.production if self.to_production else (branches.stable,)

    def source_branch(self, branches: Branches) -> str:
        return branches.devel if self.source == "devel" else branches.stable


FLOWS: dict[FlowKind, Flow] = {
    FlowKind.GATE: Flow(FlowKind.GATE, source="devel", to_production=False, stopped_by_freeze=False,
                        guards_production=False, audit_action=None, embargoed=False),
    FlowKind.PROMOTE: Flow(FlowKind.PROMOTE, source="stable", to_production=True, stopped_by_freeze=True,
                           guards_production=True, audit_action=AuditAction.PROMOTE, embargoed=False),
    FlowKind.SECURITY: Flow(FlowKind.SECURITY, source="stable", to_production=True, stopped_by_freeze=False,
                            guards_production=False, audit_action=None, embargoed=True),
    # deploy and admin builds move no branch; their steps share FlowStep's logging and outcome only
    FlowKind.DEPLOY: Flow(FlowKind.DEPLOY, source="stable", to_production=True, stopped_by_freeze=True,
                          guards_production=True, audit_action=None, embargoed=False),
    FlowKind.ADMIN: Flow(FlowKind.ADMIN, source="stable", to_production=False, stopped_by_freeze=False,
                         guards_production=False, audit_action=None, embargoed=False),
}
