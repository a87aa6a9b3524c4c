"""Domain models: what a ticket is, what we know about it, and the decision we take.

Everything here is plain data validated by pydantic; no I/O happens in this package.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
)

from domain.errors import InvalidField

MAX_SUBJECT_CHARS = 500
MAX_DESCRIPTION_CHARS = 20_000
DECISION_RETENTION_DAYS = 90
# A ticket's age earns priority points, so its timestamp is bounded where it enters: nothing of a
# support desk dates from before this, and a number under ~9.5e8 (a count, 0, an empty cell's
# default) read as Unix seconds lands in 1970, the most age points there are.
EARLIEST_TICKET_TIME = datetime(2000, 1, 1, tzinfo=UTC)
# How far a sender's clock may run ahead of ours: a later timestamp would make a ticket newer than
# it is (no age points) for as long as it waits.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)


def _as_utc(value: datetime) -> datetime:
    # Tickets arrive from many systems; a naive timestamp is read as UTC so that age is never
    # computed across mixed offsets.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is in year 0 once in UTC
        # A ValueError makes pydantic report it as a validation error naming the field.
        raise ValueError("is out of the supported range once converted to UTC") from exc


def _stripped(value: Any) -> Any:
    # A spreadsheet's cell often keeps a space after the value; pydantic's own message for it
    # ("invalid character in year") points nowhere near the cause.
    return value.strip() if isinstance(value, str) else value


UtcDatetime = Annotated[datetime, BeforeValidator(_stripped), AfterValidator(_as_utc)]


def _blank_if_invisible(value: Any) -> Any:
    # Zero-width spaces, bidi marks and control characters are not stripped as whitespace is: a text of
    # nothing else is empty, and refused as such, not routed as a ticket with nothing to read.
    if isinstance(value, str) and all(char.isspace() or unicodedata.category(char) in {"Cc", "Cf"} for char in value):
        return ""
    return value


# The validator wraps the constrained string, so it runs first: a text it blanks is "too short".
Description = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_DESCRIPTION_CHARS),
    BeforeValidator(_blank_if_invisible),
]
# At least one letter or digit: ids end up as URL path segments, where "." and ".." name other resources.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9._:@+-]*[A-Za-z0-9][A-Za-z0-9._:@+-]*$"
IDENTIFIER_MAX_LENGTH = 128
Identifier = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=IDENTIFIER_MAX_LENGTH,
        pattern=IDENTIFIER_PATTERN,
    ),
]


class AccountType(StrEnum):
    ENTERPRISE = "Enterprise"
    BUSINESS = "Business"
    CONSUMER = "Consumer"


class PriorityLevel(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class SyncStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    # Transient: the ticketing system could not be reached; a replay retries it.
    FAILED = "failed"
    # Permanent: the ticketing system refused the update (4xx). Kept apart from FAILED so that a
    # replay's limit is not used up, run after run, on updates that will be refused again.
    REJECTED = "rejected"


class OutageStatus(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"


class _Frozen(BaseModel):
    # defer_build: a validator is built on first use, so a function that never touches a model
    # (the ingestion Lambda never builds a RoutingDecision on POST) does not pay for it at start-up.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class Ticket(_Frozen):
    """A support ticket as the customer's ticketing system hands it to us."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, defer_build=True)

    ticket_id: Identifier
    customer_id: Identifier
    subject: Annotated[str, StringConstraints(max_length=MAX_SUBJECT_CHARS)] = ""
    description: Description
    timestamp: UtcDatetime
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "web"

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.description}" if self.subject else self.description


class NewTicket(BaseModel):
    """A ticket as submitted: the id and timestamp may be left for us to assign."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    ticket_id: Identifier | None = None
    customer_id: Identifier
    subject: Annotated[str, StringConstraints(max_length=MAX_SUBJECT_CHARS)] = ""
    description: Description
    timestamp: UtcDatetime | None = None
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "web"

    def to_ticket(
        self, now: datetime, new_id: Callable[[], str] | None = None, *, latest: datetime | None = None
    ) -> Ticket:
        """The ticket, arrived at `now` unless it says when; InvalidField if its timestamp is before
        EARLIEST_TICKET_TIME or after `latest` (`now` unless given) by more than the clock skew.

        Checked here, not on Ticket: every stored event is validated again as a Ticket (the
        orchestrator, a replay), later and by another clock, and must still read."""
        if self.timestamp is not None:
            _check_arrival(self.timestamp, latest or now)
        return Ticket(
            ticket_id=self.ticket_id or (new_id or _new_ticket_id)(),
            customer_id=self.customer_id,
            subject=self.subject,
            description=self.description,
            timestamp=self.timestamp or now,
            channel=self.channel,
        )


def _check_arrival(timestamp: datetime, latest: datetime) -> None:
    if timestamp < EARLIEST_TICKET_TIME:
        raise InvalidField(
            "timestamp",
            f"is before {EARLIEST_TICKET_TIME:%Y-%m-%d}, which no ticket is; "
            "a number is read as Unix time (seconds, or milliseconds past 2e10)",
        )
    if timestamp > latest + CLOCK_SKEW_ALLOWANCE:
        limit = int(CLOCK_SKEW_ALLOWANCE.total_seconds() // 60)
        raise InvalidField(
            "timestamp", f"is after now ({latest.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}) by more than {limit} minutes"
        )


def _new_ticket_id() -> str:
    return f"TKT-{uuid.uuid4().hex[:12].upper()}"


class CustomerProfile(_Frozen):
    customer_id: str
    is_vip: bool = False
    account_type: AccountType = AccountType.CONSUMER
    lifetime_value: float = Field(default=0.0, ge=0)
    account_standing: str = "good"
    service_plan: str = ""
    services: tuple[str, ...] = ()
    # Not a field: a customer the DB knows may have a profile of defaults only (one created moments
    # ago), and must not be told from one it does not know by its values.
    _found: bool = PrivateAttr(default=True)

    @property
    def found(self) -> bool:
        """False for `unknown`: no profile was found for this customer."""
        return self._found

    @classmethod
    def unknown(cls, customer_id: str) -> CustomerProfile:
        """An unknown customer is treated as a non-VIP consumer: the safe, unprivileged default."""
        profile = cls(customer_id=customer_id)
        profile._found = False
        return profile


class Outage(_Frozen):
    outage_id: str
    service_id: str
    title: str = ""
    status: OutageStatus = OutageStatus.ACTIVE
    started_at: UtcDatetime | None = None
    region: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _normalise_status(cls, value: Any) -> Any:
        # Status pages speak many dialects; anything not explicitly over is treated as active.
        # Statuspage moves a resolved incident on to "postmortem", and calls off maintenance as "cancelled".
        if isinstance(value, str):
            lowered = value.strip().lower()
            return (
                OutageStatus.RESOLVED
                if lowered in {"resolved", "closed", "completed", "ended", "postmortem", "cancelled", "canceled"}
                else OutageStatus.ACTIVE
            )
        return value

    @property
    def is_active(self) -> bool:
        return self.status is OutageStatus.ACTIVE


class ServiceStatus(_Frozen):
    outages: tuple[Outage, ...] = ()
    known_issues: tuple[str, ...] = ()
    overall_health: str = "Healthy"

    def active_outages_on(self, service_ids: set[str] | frozenset[str]) -> list[Outage]:
        # Without case: the ticket's text, the customer DB and the status API may each spell one
        # service's id their own way (svc004, SVC004), and an outage missed is priority lost.
        wanted = {service_id.casefold() for service_id in service_ids}
        return [o for o in self.outages if o.is_active and o.service_id.casefold() in wanted]


class Money(_Frozen):
    amount: Decimal
    currency: str


class ExtractedEntities(_Frozen):
    account_numbers: tuple[str, ...] = ()
    service_ids: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    phone_numbers: tuple[str, ...] = ()
    monetary_amounts: tuple[Money, ...] = ()
    emails: tuple[str, ...] = ()


class CategoryScore(_Frozen):
    category: str
    score: float = Field(ge=0.0, le=1.0)


class TeamScore(_Frozen):
    team: str
    score: float = Field(ge=0.0, le=1.0)


# Classifiers report confidences to this many decimals, and routing compares what they report:
# anything that predicts routing from raw probabilities (evaluation) rounds the same way.
CONFIDENCE_DECIMALS = 4


class IssueClassification(_Frozen):
    primary_category: str
    confidence: float = Field(ge=0.0, le=1.0)
    alternatives: tuple[CategoryScore, ...] = ()
    keywords: tuple[str, ...] = ()

    @property
    def ranked(self) -> list[CategoryScore]:
        """Every category with its score, best first, the primary one included."""
        return [CategoryScore(category=self.primary_category, score=self.confidence), *self.alternatives]


class PriorityAssessment(_Frozen):
    level: PriorityLevel
    score: int
    factors: dict[str, int]
    overrides: tuple[str, ...] = ()


MODEL_TOOL = "model"


class ToolCall(_Frozen):
    tool: str
    duration_ms: float
    ok: bool = True
    detail: str = ""

    @property
    def is_model_call(self) -> bool:
        """A call to a language model: the main one ("model") or another ("model:<role>")."""
        return self.tool == MODEL_TOOL or self.tool.startswith(f"{MODEL_TOOL}:")


class ModelUsage(_Frozen):
    """What the model calls of one decision used. `model_calls` counts the calls made, a failed or
    throttled one included: the load put on the model's quota, as the call budget counts it. The
    tokens are those of the calls answered, which alone are billed, so cost comes from them only."""

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            model_calls=self.model_calls + other.model_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class CustomerContext(_Frozen):
    is_vip: bool
    account_type: AccountType


class TicketReceived(_Frozen):
    """The `detail` of the TicketReceived event as the reference design specifies it, plus the
    ticket's channel: the API accepts it, and it reaches the model. An event without one (published
    by an earlier version) is a web ticket, as a submission without one is."""

    ticket_id: str
    customer_id: str
    subject: str
    description: str
    timestamp: UtcDatetime
    correlation_id: str
    customer_context: CustomerContext
    channel: str = "web"

    def to_ticket(self) -> Ticket:
        return Ticket(
            ticket_id=self.ticket_id,
            customer_id=self.customer_id,
            subject=self.subject,
            description=self.description,
            timestamp=self.timestamp,
            channel=self.channel,
        )


class RoutingDecision(_Frozen):
    """The audited outcome for one ticket: every field of the reference design's decisions table."""

    ticket_id: str
    # Sort key: the ticket's receipt time in Unix seconds. Deriving it from the ticket rather than
    # the wall clock makes a redelivered event collide with the first decision instead of adding one.
    timestamp: int
    customer_id: str
    assigned_team: str
    priority_level: PriorityLevel
    priority: PriorityAssessment
    confidence_score: float = Field(ge=0.0, le=1.0)
    issue_classification: IssueClassification
    reasoning: str
    requires_manual_review: bool
    processing_time_ms: float
    tool_calls: tuple[ToolCall, ...] = ()
    correlation_id: str
    sync_status: SyncStatus = SyncStatus.PENDING
    created_at: UtcDatetime
    ttl: int
    entities: ExtractedEntities = ExtractedEntities()
    alternative_teams: tuple[TeamScore, ...] = ()
    engine: str
    cost_usd: float = 0.0
    usage: ModelUsage = ModelUsage()
    sync_error: str | None = None
    synced_at: UtcDatetime | None = None
    # When a push was last tried and its outcome recorded: a replay tries the least recent first, so
    # that updates failing every time cannot take the whole limit, run after run, from the others.
    sync_attempted_at: UtcDatetime | None = None
    # The routed text, kept with the decision for audit and so corrections can become training data.
    subject: str = ""
    description: str = ""

    @property
    def issue_category(self) -> str:
        return self.issue_classification.primary_category

    @property
    def idempotency_key(self) -> str:
        return f"{self.ticket_id}:{self.timestamp}"


class PastTicket(_Frozen):
    """What history needs of an earlier decision: a summary, not the whole audit record."""

    ticket_id: str
    issue_category: str
    assigned_team: str
    priority_level: PriorityLevel
    requires_manual_review: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, decision: RoutingDecision) -> PastTicket:
        return cls(
            ticket_id=decision.ticket_id,
            issue_category=decision.issue_category,
            assigned_team=decision.assigned_team,
            priority_level=decision.priority_level,
            requires_manual_review=decision.requires_manual_review,
            created_at=decision.created_at,
        )


class Feedback(_Frozen):
    """An agent's correction of a routing decision: the raw material for retraining."""

    ticket_id: str
    correct_team: str
    correct_category: str | None = None
    agent_id: str | None = None
    recorded_at: UtcDatetime


class FeedbackSubmission(BaseModel):
    """A correction as an agent submits it: the ticket comes from the URL, the time from our clock."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    correct_team: str = Field(min_length=1, max_length=100)
    correct_category: str | None = Field(default=None, min_length=1, max_length=100)
    agent_id: Identifier | None = None

    def to_feedback(self, ticket_id: str, recorded_at: datetime) -> Feedback:
        return Feedback(ticket_id=ticket_id, recorded_at=recorded_at, **self.model_dump())


def submitted_content(item: Ticket | TicketReceived | RoutingDecision) -> tuple[str, str, str]:
    """What tells two tickets under one ticket_id apart: what POST /tickets compares when an id is
    used again (its idempotency payload), and `route` and the local API compare with the store."""
    return item.customer_id, item.subject, item.description


def retention_deadline(created_at: datetime) -> int:
    return int(created_at.timestamp()) + DECISION_RETENTION_DAYS * 86_400
