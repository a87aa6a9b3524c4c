"""The hybrid engine (production default): the pipeline decides, the agent is consulted only
when the pipeline is unsure or the evidence conflicts."""

from __future__ import annotations

from adapters.engines.agent import OTHER_SYSTEMS, AgentEngine, other_systems_injection_markers
from adapters.engines.pipeline import PipelineEngine
from domain.guardrails import ticket_injection_markers
from domain.models import Ticket
from domain.ports import EngineResult, Evidence
from domain.toolkit import ToolLog

# Two categories this close are a coin toss for the classifier: worth a second look.
CONFLICT_MARGIN = 0.15


def escalation_reason(evidence: Evidence, threshold: float) -> str | None:
    classification = evidence.classification
    if classification.confidence < threshold:
        return f"Escalated to the model: classifier confidence {classification.confidence:.2f} < {threshold:.2f}."
    ranked = classification.ranked
    if len(ranked) > 1 and ranked[0].score - ranked[1].score < CONFLICT_MARGIN:
        return f"Escalated to the model: {ranked[0].category} and {ranked[1].category} are too close to call."
    return None


class HybridEngine:
    name = "hybrid"

    def __init__(self, pipeline: PipelineEngine, agent: AgentEngine, *, escalation_threshold: float = 0.70) -> None:
        self.pipeline = pipeline
        self.agent = agent
        self.escalation_threshold = escalation_threshold

    def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
        log = ToolLog()
        evidence = self.pipeline.toolkit.gather_evidence(ticket, log)
        markers = ticket_injection_markers(ticket)
        reason = escalation_reason(evidence, self.escalation_threshold)
        # A ticket that tries to instruct the router is not sent to the model to be obeyed:
        # the classifier decides and a person checks.
        if reason is None or markers:
            result = self.pipeline.propose_from_evidence(evidence, log)
            if not markers:
                return result
            return EngineResult(
                proposal=result.proposal,
                evidence=result.evidence,
                tool_calls=result.tool_calls,
                notes=("The ticket contains instruction-like text; flagged for review.",),
                force_review=True,
            )
        if other_systems_injection_markers(evidence):
            # The prompt quotes that text as trusted evidence: the model is not asked to read it, and
            # the classifier's answer, doubtful enough to be escalated, goes to a person instead.
            result = self.pipeline.propose_from_evidence(evidence, log)
            return EngineResult(
                proposal=result.proposal,
                evidence=result.evidence,
                tool_calls=result.tool_calls,
                notes=(reason, f"{OTHER_SYSTEMS} contains instruction-like text; the model was not asked: review."),
                force_review=True,
            )
        return self.agent.propose_from_evidence(evidence, log, deadline=deadline, why=reason)
