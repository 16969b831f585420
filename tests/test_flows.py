"""The table of how the flows differ (lpdeploy/core/flows.py), checked against the flow's story."""

from __future__ import annotations

from lpdeploy.core.flows import FLOWS
from lpdeploy.core.model import FlowKind
from lpdeploy.core.settings import Branches

B = Branches(devel="d", stable="s", production_devel="pd", production_stable="ps")


def test_every_flow_kind_has_a_row() -> None:
    assert set(FLOWS) == set(FlowKind)
    assert all(flow.kind is kind for kind, flow in FLOWS.items())


def test_the_gate_moves_devel_to_stable_and_nothing_else() -> None:
    gate = FLOWS[FlowKind.GATE]
    assert (gate.source_branch(B), gate.targets(B)) == ("d", ("s",))
    assert not (gate.stopped_by_freeze or gate.guards_production or gate.audit_action or gate.embargoed)


def test_a_promotion_moves_stable_to_both_production_branches_guarded_frozen_and_audited() -> None:
    promote = FLOWS[FlowKind.PROMOTE]
    assert (promote.source_branch(B), promote.targets(B)) == ("s", ("pd", "ps"))
    assert promote.stopped_by_freeze and promote.guards_production
    assert promote.audit_action == "promote"
    assert not promote.embargoed


def test_a_security_build_moves_production_and_is_the_only_embargoed_flow() -> None:
    assert FLOWS[FlowKind.SECURITY].targets(B) == ("pd", "ps")
    assert [kind for kind, flow in FLOWS.items() if flow.embargoed] == [FlowKind.SECURITY]
