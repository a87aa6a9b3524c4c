"""The deterministic pipeline engine: the seven tools in a fixed order, no model calls.

Fast (well under a millisecond of routing logic), free, and the fallback every other engine
degrades to.
"""

from __future__ import annotations

from domain.models import Ticket
from domain.ports import EngineResult, Evidence
from domain.routing import RoutingProposal
from domain.toolkit import RoutingToolkit, ToolLog


class PipelineEngine:
    name = "pipeline"

    def __init__(self, toolkit: RoutingToolkit) -> None:
        self.toolkit = toolkit

    def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
        log = ToolLog()
        evidence = self.toolkit.gather_evidence(ticket, log)
        return self.propose_from_evidence(evidence, log)

    def propose_from_evidence(self, evidence: Evidence, log: ToolLog) -> EngineResult:
        proposal = RoutingProposal.from_classification(evidence.classification)
        # Priority and team are computed here for the audit trail (tool_calls); the use case
        # recomputes both from the same evidence, so the domain stays the only authority.
        log.run(
            "calculate_priority",
            lambda: self.toolkit.calculate_priority(
                evidence.ticket,
                proposal.category,
                evidence.customer,
                evidence.service_status,
                evidence.entities,
            ),
            lambda p: f"{p.level.value} ({p.score})",
        )
        log.run(
            "route_to_team",
            lambda: self.toolkit.route_to_team(proposal, evidence.classification),
            lambda v: v.team,
        )
        return EngineResult(proposal=proposal, evidence=evidence, tool_calls=tuple(log.calls))
