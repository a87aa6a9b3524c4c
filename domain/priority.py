"""Priority scoring: pure arithmetic over trusted evidence, never over model text.

score = customer + severity + age + service impact, then mapped to P0..P3 by thresholds, then
two overrides that only ever raise a level:
- a VIP with an active outage on one of their own services is P0;
- a ticket of an outage category (`outage = true` in the taxonomy, e.g. Network Outage) with an
  active outage on an affected service is at least P1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from domain.models import AccountType, CustomerProfile, Outage, PriorityAssessment, PriorityLevel, ServiceStatus, Ticket
from domain.taxonomy import Taxonomy

_LEVEL_ORDER = (PriorityLevel.P0, PriorityLevel.P1, PriorityLevel.P2, PriorityLevel.P3)


@dataclass(frozen=True, slots=True)
class PriorityInputs:
    ticket: Ticket
    category: str
    customer: CustomerProfile
    service_status: ServiceStatus
    mentioned_service_ids: tuple[str, ...]
    now: datetime


def _more_urgent(a: PriorityLevel, b: PriorityLevel) -> PriorityLevel:
    return a if _LEVEL_ORDER.index(a) <= _LEVEL_ORDER.index(b) else b


def level_for_score(score: int, taxonomy: Taxonomy) -> PriorityLevel:
    for level, floor in sorted(taxonomy.priority.levels.items(), key=lambda kv: -kv[1]):
        if score >= floor:
            return level
    return PriorityLevel.P3


def age_points(ticket_time: datetime, now: datetime, taxonomy: Taxonomy) -> int:
    age_hours = (now - ticket_time).total_seconds() / 3600
    for threshold_hours, points in taxonomy.priority.age.items():
        if age_hours >= threshold_hours:
            return points
    return 0


def assess_priority(inputs: PriorityInputs, taxonomy: Taxonomy) -> PriorityAssessment:
    weights = taxonomy.priority
    customer = inputs.customer
    own_services = frozenset(customer.services)
    affected_services = own_services | frozenset(inputs.mentioned_service_ids)
    outages_on_affected = inputs.service_status.active_outages_on(affected_services)

    account_points = weights.customer[customer.account_type.value]
    factors = {
        # VIP replaces the account type's points, but never lowers them: with "vip" weighted below an
        # account type, a VIP would otherwise score below the same customer without the status.
        "customer": max(weights.customer["vip"], account_points) if customer.is_vip else account_points,
        "severity": taxonomy.severity_of(inputs.category),
        "age": age_points(inputs.ticket.timestamp, inputs.now, taxonomy),
        "service_impact": weights.service_impact if outages_on_affected else 0,
    }
    score = sum(factors.values())
    level = level_for_score(score, taxonomy)

    overrides: list[str] = []
    if customer.is_vip and inputs.service_status.active_outages_on(own_services):
        if level is not PriorityLevel.P0:
            overrides.append("VIP customer with an active outage on one of their services: P0")
        level = PriorityLevel.P0
    if outages_on_affected and taxonomy.is_outage(inputs.category):
        raised = _more_urgent(level, PriorityLevel.P1)
        if raised is not level:
            overrides.append(f"{inputs.category} with an active outage on an affected service: at least P1")
        level = raised

    return PriorityAssessment(level=level, score=score, factors=factors, overrides=tuple(overrides))


def could_missing_evidence_change_level(
    inputs: PriorityInputs,
    taxonomy: Taxonomy,
    *,
    customer_unknown: bool,
    service_status_unknown: bool,
    affected_service_ids: Iterable[str] = (),
) -> bool:
    """Would the level differ if the evidence we could not fetch had been as bad as it can be?

    Used when the customer DB or the status API is down: the ticket is still routed, but flagged
    for review when the gap could hide a higher priority.
    """
    if not (customer_unknown or service_status_unknown):
        return False
    actual = assess_priority(inputs, taxonomy).level
    worst_customer = inputs.customer
    worst_status = inputs.service_status
    if customer_unknown:
        # Anyone may be behind an id we could not look up: a VIP of the most heavily weighted account
        # type, with an outage on a service of their own (their services were never checked), so P0.
        weights = taxonomy.priority.customer
        own = "*their own*"
        worst_customer = inputs.customer.model_copy(
            update={
                "is_vip": True,
                "account_type": max(AccountType, key=lambda account_type: weights[account_type.value]),
                "services": (*inputs.customer.services, own),
            }
        )
        worst_status = worst_status.model_copy(
            update={"outages": (*worst_status.outages, Outage(outage_id=f"assumed-{own}", service_id=own))}
        )
    if service_status_unknown:
        candidates = set(worst_customer.services) | set(inputs.mentioned_service_ids) | set(affected_service_ids)
        candidates = candidates or {"*unknown*"}
        worst_customer = worst_customer.model_copy(update={"services": tuple(sorted(candidates))})
        worst_status = ServiceStatus(
            outages=tuple(Outage(outage_id=f"assumed-{sid}", service_id=sid) for sid in sorted(candidates))
        )
    worst = assess_priority(
        PriorityInputs(
            ticket=inputs.ticket,
            category=inputs.category,
            customer=worst_customer,
            service_status=worst_status,
            mentioned_service_ids=inputs.mentioned_service_ids,
            now=inputs.now,
        ),
        taxonomy,
    ).level
    return worst is not actual
