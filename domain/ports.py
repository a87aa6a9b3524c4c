"""Ports: what the domain needs from the outside world, implemented by adapters.

Each is a Protocol so that tests can pass small fakes without inheriting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.models import (
    CustomerProfile,
    ExtractedEntities,
    Feedback,
    IssueClassification,
    ModelUsage,
    PastTicket,
    RoutingDecision,
    ServiceStatus,
    SyncStatus,
    Ticket,
    TicketReceived,
    ToolCall,
)
from domain.routing import RoutingProposal


class Clock(Protocol):
    def now(self) -> datetime: ...


class DecisionRepository(Protocol):
    def save(self, decision: RoutingDecision) -> None:
        """Store a new decision; raise DuplicateDecision if one exists for the same key."""

    def get(self, ticket_id: str) -> RoutingDecision | None:
        """The latest decision for a ticket."""

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
        """Record a push's outcome (and when it was tried); a success is final."""

    def find_by_sync_status(
        self,
        status: SyncStatus,
        limit: int = 100,
        *,
        received_before: int | None = None,
        made_before: datetime | None = None,
    ) -> list[RoutingDecision]:
        """Least recently attempted first (never attempted, or before attempts were recorded, first),
        then newest first by receipt time; with `received_before`, only tickets received before that
        Unix time; with `made_before`, only decisions made at or before that moment (a ticket's
        receipt time is its sender's to set, so it cannot stand in for the decision's own age).
        For the statuses a replay reads: the DynamoDB store does not index synced (`success`) ones."""


class TicketHistory(Protocol):
    def recent_for_customer(self, customer_id: str, limit: int = 5) -> list[PastTicket]:
        """The customer's latest decisions, newest first, as summaries."""


class EventPublisher(Protocol):
    def publish_ticket_received(self, event: TicketReceived) -> None:
        """Raise PublishFailed when the bus does not accept the event."""


class CustomerDirectory(Protocol):
    def get_profile(self, customer_id: str) -> CustomerProfile:
        """An unknown customer yields CustomerProfile.unknown; an unreachable one EvidenceUnavailable."""


class ServiceStatusProvider(Protocol):
    def get_status(self, service_ids: Sequence[str]) -> ServiceStatus: ...


class TicketingSystem(Protocol):
    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        """Raise SyncRejected for a permanent refusal, SyncUnavailable once retries run out."""


@runtime_checkable
class IssueClassifier(Protocol):
    def classify(self, text: str) -> IssueClassification: ...


class FeedbackStore(Protocol):
    def record(self, feedback: Feedback, *, deadline: float | None = None) -> Feedback | None:
        """Store a correction; returns the ticket's previous one, which it supersedes, if any.

        `deadline` (time.monotonic()): a store that cannot be done by then raises
        RepositoryUnavailable, having written nothing; None for no limit."""

    def feedback(self) -> list[Feedback]: ...


@dataclass(frozen=True, slots=True)
class HistoricalContext:
    recent_tickets: tuple[PastTicket, ...] = ()
    common_issues: tuple[str, ...] = ()
    escalation_history: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the trusted, deterministic tools found out about a ticket before anyone reasons on it."""

    ticket: Ticket
    entities: ExtractedEntities
    customer: CustomerProfile
    service_status: ServiceStatus
    history: HistoricalContext
    classification: IssueClassification
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineResult:
    proposal: RoutingProposal
    evidence: Evidence
    tool_calls: tuple[ToolCall, ...] = ()
    usage: ModelUsage = field(default_factory=ModelUsage)
    cost_usd: float = 0.0
    notes: tuple[str, ...] = ()
    # Set when the engine degraded (e.g. the model failed and the pipeline answer stands).
    force_review: bool = False


class RoutingEngine(Protocol):
    name: str

    def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
        """`deadline` is a time.monotonic() value the engine must answer by."""
