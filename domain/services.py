"""Use cases: submit a ticket, route it, sync the decision back to the ticketing system.

The same functions run in the Lambdas, in `ticket-router serve` and in `ticket-router route`; only
the adapters passed in differ.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.errors import DuplicateDecision, EvidenceUnavailable, SyncRejected, SyncUnavailable
from domain.models import (
    CONFIDENCE_DECIMALS,
    CustomerContext,
    CustomerProfile,
    RoutingDecision,
    SyncStatus,
    Ticket,
    TicketReceived,
    retention_deadline,
)
from domain.ports import (
    Clock,
    CustomerDirectory,
    DecisionRepository,
    EngineResult,
    EventPublisher,
    RoutingEngine,
    TicketingSystem,
)
from domain.priority import PriorityInputs, assess_priority, could_missing_evidence_change_level
from domain.routing import apply_routing_rules, overruled_reasoning, suggested_teams
from domain.taxonomy import Taxonomy

# Runner-up categories kept in the stored decision. A model with many labels (77 intents, say) ranks
# every one of them; the long tail says nothing to an auditor, yet it made each decision ~3x larger
# (5.6 KB of JSON instead of 2.0 on banking77), and DynamoDB bills writes per started KB. Review
# suggestions (alternative_teams) are ranked from the full list before it is cut.
RECORDED_ALTERNATIVES = 5
# A priority level as a proposal's reasoning may name one, in either case ("this is p0").
_PRIORITY_LEVEL = re.compile(r"\b(P[0-3])\b", re.IGNORECASE)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def submit_ticket(
    ticket: Ticket,
    *,
    customers: CustomerDirectory,
    publisher: EventPublisher,
    correlation_id: str | None = None,
) -> TicketReceived:
    """Validate, enrich with customer context and publish TicketReceived.

    An unreachable customer DB does not block intake: the orchestrator looks the customer up again.
    """
    try:
        profile = customers.get_profile(ticket.customer_id)
    except EvidenceUnavailable:
        profile = CustomerProfile.unknown(ticket.customer_id)
    event = TicketReceived(
        ticket_id=ticket.ticket_id,
        customer_id=ticket.customer_id,
        subject=ticket.subject,
        description=ticket.description,
        timestamp=ticket.timestamp,
        channel=ticket.channel,
        correlation_id=correlation_id or new_correlation_id(),
        customer_context=CustomerContext(is_vip=profile.is_vip, account_type=profile.account_type),
    )
    publisher.publish_ticket_received(event)
    return event


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    decision: RoutingDecision
    created: bool


def decide(
    ticket: Ticket,
    result: EngineResult,
    *,
    taxonomy: Taxonomy,
    now: datetime,
    correlation_id: str,
    engine_name: str,
    processing_time_ms: float,
) -> RoutingDecision:
    """Combine an engine's proposal with the domain rules into the final, auditable decision."""
    evidence = result.evidence
    verdict = apply_routing_rules(result.proposal, taxonomy, fallback=evidence.classification)
    inputs = PriorityInputs(
        ticket=ticket,
        # Severity comes from the deterministic classifier's reading of the text, never from a
        # model's proposal: a model may move a ticket to another team (and a person then
        # reviews it), but nothing a ticket says to a model can raise its priority.
        category=evidence.classification.primary_category,
        customer=evidence.customer,
        service_status=evidence.service_status,
        mentioned_service_ids=evidence.entities.service_ids,
        now=now,
    )
    priority = assess_priority(inputs, taxonomy)

    notes = [*result.notes, *verdict.notes]
    review = verdict.requires_manual_review or result.force_review
    if evidence.missing:
        notes.append(f"Missing evidence: {', '.join(evidence.missing)}.")
        if could_missing_evidence_change_level(
            inputs,
            taxonomy,
            customer_unknown="customer_profile" in evidence.missing,
            service_status_unknown="service_status" in evidence.missing,
        ):
            notes.append("The missing evidence could raise the priority: manual review.")
            review = True

    alternative_teams = verdict.alternative_teams
    if review and not alternative_teams:
        alternative_teams = suggested_teams(verdict.classification, evidence.classification, taxonomy)

    classification = verdict.classification
    ranked = sorted(classification.alternatives, key=lambda alt: alt.score, reverse=True)[:RECORDED_ALTERNATIVES]
    # Recorded scores are rounded as routing reads them. A model's raw 1e-200 would also be more
    # than a store can hold: DynamoDB numbers stop at 1e-130, and such a decision could never be saved.
    classification = classification.model_copy(
        update={
            "confidence": round(classification.confidence, CONFIDENCE_DECIMALS),
            "alternatives": tuple(
                alt.model_copy(update={"score": round(alt.score, CONFIDENCE_DECIMALS)}) for alt in ranked
            ),
        }
    )

    factors = ", ".join(f"{k} {v}" for k, v in priority.factors.items())
    proposal_reasoning = result.proposal.reasoning.strip()
    # A model told to leave priority to the rules may still write one ("this is P0"): as the
    # explanation, it would contradict the level decided beside it, in the ticketing system too.
    claims_priority = any(
        level.upper() != priority.level.value for level in _PRIORITY_LEVEL.findall(proposal_reasoning)
    )
    reasoning_parts = [
        (not verdict.overruled and not claims_priority and proposal_reasoning)
        or f"Classified as {verdict.category} ({verdict.confidence:.2f}) -> {verdict.team}.",
        f"Priority {priority.level.value} (score {priority.score}: {factors}).",
        *priority.overrides,
        *notes,
        *(overruled_reasoning(proposal_reasoning) if verdict.overruled else ()),
        *(
            (f"The model's reasoning names a priority, which only the rules set: {proposal_reasoning}",)
            if claims_priority and not verdict.overruled
            else ()
        ),
    ]
    return RoutingDecision(
        ticket_id=ticket.ticket_id,
        timestamp=int(ticket.timestamp.timestamp()),
        customer_id=ticket.customer_id,
        assigned_team=verdict.team,
        priority_level=priority.level,
        priority=priority,
        confidence_score=round(verdict.confidence, CONFIDENCE_DECIMALS),
        issue_classification=classification,
        reasoning=" ".join(part for part in reasoning_parts if part),
        requires_manual_review=review,
        processing_time_ms=round(processing_time_ms, 3),
        tool_calls=result.tool_calls,
        correlation_id=correlation_id,
        sync_status=SyncStatus.PENDING,
        created_at=now,
        ttl=retention_deadline(now),
        entities=evidence.entities,
        alternative_teams=alternative_teams,
        engine=engine_name,
        cost_usd=round(result.cost_usd, 6),
        usage=result.usage,
        subject=ticket.subject,
        description=ticket.description,
    )


def route_ticket(
    ticket: Ticket,
    *,
    correlation_id: str,
    engine: RoutingEngine,
    repository: DecisionRepository,
    taxonomy: Taxonomy,
    clock: Clock,
    deadline: float | None = None,
) -> RouteOutcome:
    """Engine proposes, domain disposes, repository stores. Redeliveries return the stored decision."""
    existing = repository.get(ticket.ticket_id)
    if existing is not None:
        return RouteOutcome(existing, created=False)
    started = time.perf_counter()
    result = engine.propose(ticket, deadline=deadline)
    decision = decide(
        ticket,
        result,
        taxonomy=taxonomy,
        now=clock.now(),
        correlation_id=correlation_id,
        engine_name=engine.name,
        processing_time_ms=(time.perf_counter() - started) * 1000,
    )
    try:
        repository.save(decision)
    except DuplicateDecision:
        # Lost a race with a concurrent delivery of the same event: theirs is the decision.
        stored = repository.get(ticket.ticket_id)
        return RouteOutcome(stored or decision, created=False)
    return RouteOutcome(decision, created=True)


def sync_decision(
    decision: RoutingDecision,
    *,
    ticketing: TicketingSystem,
    repository: DecisionRepository,
    clock: Clock,
    deadline: float | None = None,
) -> SyncStatus:
    """Push one decision to the ticketing system and record the outcome on the decision.

    Raises SyncUnavailable after recording `failed` when the failure is transient, so that the
    caller can hand the update to its dead-letter path for a later replay. A refusal is recorded
    and returned as `rejected`: sending it again unchanged would only be refused again.
    """
    key = (decision.ticket_id, decision.timestamp)
    try:
        ticketing.push_routing(decision, deadline=deadline)
    except SyncRejected as exc:
        repository.update_sync_status(*key, SyncStatus.REJECTED, error=str(exc), attempted_at=clock.now())
        return SyncStatus.REJECTED
    except SyncUnavailable as exc:
        repository.update_sync_status(*key, SyncStatus.FAILED, error=str(exc), attempted_at=clock.now())
        raise
    now = clock.now()
    repository.update_sync_status(*key, SyncStatus.SUCCESS, synced_at=now, attempted_at=now)
    return SyncStatus.SUCCESS
