"""Corrections from support agents: retraining rows and the RoutingAccuracy figure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.models import Feedback, RoutingDecision
from domain.taxonomy import Taxonomy


def _latest_per_ticket(feedback: list[Feedback]) -> dict[str, Feedback]:
    latest: dict[str, Feedback] = {}
    for item in sorted(feedback, key=lambda f: f.recorded_at):
        latest[item.ticket_id] = item
    return latest


def correction_rows(
    feedback: list[Feedback],
    decision_of: Callable[[str], RoutingDecision | None],
    taxonomy: Taxonomy,
    *,
    include_confirmations: bool = False,
) -> list[dict[str, Any]]:
    """One training row per ticket whose team or label an agent corrected (the latest word wins)."""
    rows = []
    for ticket_id, item in _latest_per_ticket(feedback).items():
        decision = decision_of(ticket_id)
        if decision is None:
            continue
        rerouted = item.correct_team != decision.assigned_team
        # A new label within the same team (two of a label-team map's labels on one queue) corrects
        # the classification as much as a re-route does: the model is trained on labels.
        relabelled = item.correct_category is not None and item.correct_category != decision.issue_category
        if not (rerouted or relabelled or include_confirmations):
            continue
        category = item.correct_category
        if category is None and not rerouted:
            # A confirmation confirms the label the model gave.
            category = decision.issue_category
        elif category is None:
            # With no category given, the team's only category (if it has exactly one) is the label;
            # a team with several (fine-grained labels mapped onto it) leaves it unknown.
            candidates = [c.name for c in taxonomy.categories if c.team == item.correct_team]
            category = candidates[0] if len(candidates) == 1 else ""
        rows.append(
            {
                "ticket_id": ticket_id,
                "subject": decision.subject,
                "description": decision.description,
                "category": category,
                "team": item.correct_team,
                "original_category": decision.issue_category,
                "original_team": decision.assigned_team,
                "agent_id": item.agent_id or "",
                "recorded_at": item.recorded_at.isoformat(),
            }
        )
    return rows


def routing_accuracy(
    decisions_total: int, feedback: list[Feedback], decision_of: Callable[[str], RoutingDecision | None]
) -> dict[str, Any]:
    """Share of decisions that were not re-routed by an agent."""
    rerouted = 0
    for ticket_id, item in _latest_per_ticket(feedback).items():
        decision = decision_of(ticket_id)
        if decision is not None and item.correct_team != decision.assigned_team:
            rerouted += 1
    # With no decision there is nothing to be right about: unknown, not 100%.
    accuracy = round(1 - rerouted / decisions_total, 4) if decisions_total else None
    return {"decisions": decisions_total, "rerouted": rerouted, "routing_accuracy": accuracy}
