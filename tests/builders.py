"""Small builders and fakes shared by the tests: fakes over mocks, state over interactions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from domain.errors import DuplicateDecision, EvidenceUnavailable, ModelUnavailable
from domain.models import (
    AccountType,
    CategoryScore,
    CustomerProfile,
    Feedback,
    IssueClassification,
    Outage,
    PastTicket,
    RoutingDecision,
    ServiceStatus,
    SyncStatus,
    Ticket,
)
from domain.ports import EngineResult

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def a_ticket(
    ticket_id: str = "T-1",
    *,
    customer_id: str = "C-1",
    subject: str = "Internet down",
    description: str = "No internet since this morning.",
    age_hours: float = 1.0,
    channel: str = "web",
) -> Ticket:
    return Ticket(
        ticket_id=ticket_id,
        customer_id=customer_id,
        subject=subject,
        description=description,
        timestamp=NOW - timedelta(hours=age_hours),
        channel=channel,
    )


def a_customer(
    customer_id: str = "C-1",
    *,
    vip: bool = False,
    account_type: AccountType = AccountType.CONSUMER,
    services: Sequence[str] = (),
) -> CustomerProfile:
    return CustomerProfile(customer_id=customer_id, is_vip=vip, account_type=account_type, services=tuple(services))


def outages_on(*service_ids: str, active: bool = True) -> ServiceStatus:
    return ServiceStatus(
        outages=tuple(
            Outage(outage_id=f"O-{sid}", service_id=sid, status="active" if active else "resolved")
            for sid in service_ids
        )
    )


class FixedClassifier:
    def __init__(self, category: str, confidence: float = 0.9, runner_up: str | None = None) -> None:
        self.category = category
        self.confidence = confidence
        self.runner_up = runner_up

    def classify(self, text: str) -> IssueClassification:
        alternatives = ()
        if self.runner_up:
            alternatives = (CategoryScore(category=self.runner_up, score=round(1 - self.confidence, 4)),)
        return IssueClassification(
            primary_category=self.category, confidence=self.confidence, alternatives=alternatives
        )


class FakeCustomers:
    def __init__(self, *profiles: CustomerProfile, down: bool = False) -> None:
        self.profiles = {p.customer_id: p for p in profiles}
        self.down = down
        self.lookups = 0

    def get_profile(self, customer_id: str) -> CustomerProfile:
        self.lookups += 1
        if self.down:
            raise EvidenceUnavailable("customer DB unreachable")
        return self.profiles.get(customer_id) or CustomerProfile.unknown(customer_id)


class FakeServiceStatus:
    def __init__(self, status: ServiceStatus | None = None, *, down: bool = False) -> None:
        self.status = status or ServiceStatus()
        self.down = down
        self.asked: list[list[str]] = []

    def get_status(self, service_ids: Sequence[str]) -> ServiceStatus:
        self.asked.append(list(service_ids))
        if self.down:
            raise EvidenceUnavailable("status API unreachable")
        return self.status


def _least_recently_attempted(decision: RoutingDecision) -> tuple[bool, datetime | None, int]:
    attempted = decision.sync_attempted_at
    return (attempted is not None, attempted, -decision.timestamp)


class InMemoryRepository:
    """DecisionRepository + TicketHistory + FeedbackStore in a dict."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, int], RoutingDecision] = {}
        self.feedback_items: list[Feedback] = []

    def save(self, decision: RoutingDecision) -> None:
        key = (decision.ticket_id, decision.timestamp)
        if key in self.decisions:
            raise DuplicateDecision(decision.ticket_id)
        self.decisions[key] = decision

    def get(self, ticket_id: str) -> RoutingDecision | None:
        found = [d for (tid, _), d in self.decisions.items() if tid == ticket_id]
        return max(found, key=lambda d: d.timestamp) if found else None

    def update_sync_status(
        self,
        ticket_id: str,
        timestamp: int,
        status: SyncStatus,
        *,
        error: str | None = None,
        synced_at: datetime | None = None,
        attempted_at: datetime | None = None,
    ) -> None:
        key = (ticket_id, timestamp)
        current = self.decisions[key]
        if current.sync_status is SyncStatus.SUCCESS and status is not SyncStatus.SUCCESS:
            return
        self.decisions[key] = current.model_copy(
            update={
                "sync_status": status,
                "sync_error": error,
                "synced_at": synced_at,
                "sync_attempted_at": attempted_at,
            }
        )

    def find_by_sync_status(
        self,
        status: SyncStatus,
        limit: int = 100,
        *,
        received_before: int | None = None,
        made_before: datetime | None = None,
    ) -> list[RoutingDecision]:
        found = [
            d
            for d in self.decisions.values()
            if d.sync_status is status
            and (received_before is None or d.timestamp < received_before)
            and (made_before is None or d.created_at <= made_before)
        ]
        return sorted(found, key=_least_recently_attempted)[:limit]

    def recent_for_customer(self, customer_id: str, limit: int = 5) -> list[PastTicket]:
        mine = sorted((d for d in self.decisions.values() if d.customer_id == customer_id), key=lambda d: -d.timestamp)
        return [PastTicket.of(d) for d in mine[:limit]]

    def record(self, feedback: Feedback, *, deadline: float | None = None) -> Feedback | None:
        previous = [f for f in self.feedback_items if f.ticket_id == feedback.ticket_id]
        self.feedback_items.append(feedback)
        return previous[-1] if previous else None

    def feedback(self) -> list[Feedback]:
        return list(self.feedback_items)


class ModelDown:
    """An engine whose model never answers: routing fails, as with Bedrock throttled for good."""

    name = "agent"

    def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
        raise ModelUnavailable("bedrock: ThrottlingException")
