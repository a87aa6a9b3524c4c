"""The seven routing tools of the reference design, over the domain's ports.

Engines share them: the pipeline engine calls them in a fixed order, the agent engine exposes them
to a language model. Every call is timed and recorded so the decision shows how it was reached.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from domain.entities import extract_entities
from domain.errors import EvidenceUnavailable
from domain.models import (
    CustomerProfile,
    ExtractedEntities,
    IssueClassification,
    PriorityAssessment,
    ServiceStatus,
    Ticket,
    ToolCall,
)
from domain.ports import (
    Clock,
    CustomerDirectory,
    Evidence,
    HistoricalContext,
    IssueClassifier,
    ServiceStatusProvider,
    TicketHistory,
)
from domain.priority import PriorityInputs, assess_priority
from domain.routing import RoutingProposal, RoutingVerdict, apply_routing_rules
from domain.taxonomy import Taxonomy

T = TypeVar("T")

CUSTOMER_PROFILE = "customer_profile"
SERVICE_STATUS = "service_status"
HISTORY = "history"
# The lookups of other systems every routing makes before any model is asked. One that failed left
# its decision without that evidence; the orchestrator counts those (EvidenceUnavailable), since a
# customer DB that is down otherwise only shows as VIPs quietly routed as everyone else.
EVIDENCE_LOOKUP_TOOLS = ("check_vip_status", "check_service_status", "get_historical_context")
# The detail of a customer lookup the customer DB answered "no such customer" (a 404). Each such
# ticket is routed as an unprivileged consumer's, rightly for a new customer; a customer DB reached
# at the wrong path answers so for every customer, VIPs included, and only their share shows it.
CUSTOMER_NOT_FOUND = "customer not found"


def customer_not_found(calls: Sequence[ToolCall]) -> bool:
    """Whether the routing these tool calls made found no profile for its customer."""
    return any(call.tool == "check_vip_status" and call.ok and call.detail == CUSTOMER_NOT_FOUND for call in calls)


@dataclass
class ToolLog:
    """Collects the tool calls made while routing one ticket."""

    calls: list[ToolCall] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], T], detail: Callable[[T], str] | None = None) -> T:
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            self.calls.append(ToolCall(tool=name, duration_ms=_ms_since(started), ok=False, detail=type(exc).__name__))
            raise
        self.calls.append(ToolCall(tool=name, duration_ms=_ms_since(started), detail=detail(result) if detail else ""))
        return result


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class RoutingToolkit:
    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        classifier: IssueClassifier,
        customers: CustomerDirectory,
        service_status: ServiceStatusProvider,
        history: TicketHistory,
        clock: Clock,
        default_region: str = "US",
        history_limit: int = 5,
    ) -> None:
        self.taxonomy = taxonomy
        self.classifier = classifier
        self.customers = customers
        self.service_status_provider = service_status
        self.history = history
        self.clock = clock
        self.default_region = default_region
        self.history_limit = history_limit

    # --- the seven tools -------------------------------------------------------------------

    def classify_issue(self, text: str) -> IssueClassification:
        return self.classifier.classify(text)

    def extract_entities(self, text: str) -> ExtractedEntities:
        return extract_entities(text, self.default_region)

    def check_vip_status(self, customer_id: str) -> CustomerProfile:
        return self.customers.get_profile(customer_id)

    def check_service_status(self, service_ids: Sequence[str]) -> ServiceStatus:
        return self.service_status_provider.get_status(sorted(set(service_ids)))

    def calculate_priority(
        self,
        ticket: Ticket,
        category: str,
        customer: CustomerProfile,
        service_status: ServiceStatus,
        entities: ExtractedEntities,
    ) -> PriorityAssessment:
        return assess_priority(
            PriorityInputs(
                ticket=ticket,
                category=category,
                customer=customer,
                service_status=service_status,
                mentioned_service_ids=entities.service_ids,
                now=self.clock.now(),
            ),
            self.taxonomy,
        )

    def route_to_team(self, proposal: RoutingProposal, fallback: IssueClassification) -> RoutingVerdict:
        return apply_routing_rules(proposal, self.taxonomy, fallback=fallback)

    def get_historical_context(self, customer_id: str) -> HistoricalContext:
        recent = self.history.recent_for_customer(customer_id, self.history_limit)
        counts = Counter(d.issue_category for d in recent)
        return HistoricalContext(
            recent_tickets=tuple(recent),
            common_issues=tuple(category for category, _ in counts.most_common()),
            escalation_history=any(d.requires_manual_review for d in recent),
        )

    # --- evidence first -------------------------------------------------------------------

    def gather_evidence(self, ticket: Ticket, log: ToolLog) -> Evidence:
        """Run every deterministic tool once, degrading rather than failing when a source is down."""
        missing: list[str] = []
        entities = log.run("extract_entities", lambda: self.extract_entities(ticket.text), _entity_summary)
        try:
            customer = log.run(
                "check_vip_status",
                lambda: self.check_vip_status(ticket.customer_id),
                lambda c: CUSTOMER_NOT_FOUND if not c.found else f"vip={c.is_vip} type={c.account_type.value}",
            )
        except EvidenceUnavailable:
            customer = CustomerProfile.unknown(ticket.customer_id)
            missing.append(CUSTOMER_PROFILE)
        try:
            status = log.run(
                "check_service_status",
                lambda: self.check_service_status([*entities.service_ids, *customer.services]),
                lambda s: f"active_outages={sum(o.is_active for o in s.outages)}",
            )
        except EvidenceUnavailable:
            status = ServiceStatus(overall_health="Unknown")
            missing.append(SERVICE_STATUS)
        try:
            history = log.run(
                "get_historical_context",
                lambda: self.get_historical_context(ticket.customer_id),
                lambda h: f"recent={len(h.recent_tickets)}",
            )
        except EvidenceUnavailable:
            history = HistoricalContext()
            missing.append(HISTORY)
        classification = log.run(
            "classify_issue",
            lambda: self.classify_issue(ticket.text),
            lambda c: f"{c.primary_category} ({c.confidence:.2f})",
        )
        return Evidence(
            ticket=ticket,
            entities=entities,
            customer=customer,
            service_status=status,
            history=history,
            classification=classification,
            missing=tuple(missing),
        )


def _entity_summary(entities: ExtractedEntities) -> str:
    counts = {
        "accounts": len(entities.account_numbers),
        "services": len(entities.service_ids),
        "errors": len(entities.error_codes),
        "phones": len(entities.phone_numbers),
        "amounts": len(entities.monetary_amounts),
    }
    return " ".join(f"{k}={v}" for k, v in counts.items() if v) or "none"
