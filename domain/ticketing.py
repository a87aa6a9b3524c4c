"""The routing update sent back to the customer's ticketing system."""

from __future__ import annotations

from typing import Any

from domain.models import RoutingDecision


def routing_update_payload(decision: RoutingDecision) -> dict[str, Any]:
    return {
        "assigned_team": decision.assigned_team,
        "priority_level": decision.priority_level.value,
        "issue_category": decision.issue_category,
        "confidence_score": decision.confidence_score,
        "reasoning": decision.reasoning,
        "requires_manual_review": decision.requires_manual_review,
        "alternative_teams": [t.model_dump() for t in decision.alternative_teams],
        "correlation_id": decision.correlation_id,
    }
