"""submit_ticket, route_ticket and sync_decision with fakes: the flow every runtime shares."""

from __future__ import annotations

import pytest

from adapters.clock import FixedClock
from adapters.engines.pipeline import PipelineEngine
from domain.errors import SyncRejected, SyncUnavailable
from domain.models import (
    AccountType,
    CategoryScore,
    IssueClassification,
    PriorityLevel,
    RoutingDecision,
    SyncStatus,
    TicketReceived,
)
from domain.ports import IssueClassifier
from domain.services import route_ticket, submit_ticket, sync_decision
from domain.taxonomy import Taxonomy, load_taxonomy
from domain.toolkit import RoutingToolkit
from tests.builders import (
    NOW,
    FakeCustomers,
    FakeServiceStatus,
    FixedClassifier,
    InMemoryRepository,
    a_customer,
    a_ticket,
    outages_on,
)

TAXONOMY = load_taxonomy()
CLOCK = FixedClock(NOW)


class RecordingBus:
    def __init__(self) -> None:
        self.events: list[TicketReceived] = []

    def publish_ticket_received(self, event: TicketReceived) -> None:
        self.events.append(event)


class RecordingTicketing:
    def __init__(self, error: Exception | None = None) -> None:
        self.pushed: list[RoutingDecision] = []
        self.error = error

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        if self.error:
            raise self.error
        self.pushed.append(decision)


def engine_for(
    classifier: FixedClassifier, customers: FakeCustomers, status: FakeServiceStatus, repo: InMemoryRepository
) -> PipelineEngine:
    return PipelineEngine(
        RoutingToolkit(
            taxonomy=TAXONOMY,
            classifier=classifier,
            customers=customers,
            service_status=status,
            history=repo,
            clock=CLOCK,
        )
    )


def test_submit_enriches_with_customer_context_and_publishes() -> None:
    bus = RecordingBus()
    customers = FakeCustomers(a_customer("C-1", vip=True, account_type=AccountType.BUSINESS))
    event = submit_ticket(a_ticket(customer_id="C-1"), customers=customers, publisher=bus)
    assert bus.events == [event]
    assert (event.customer_context.is_vip, event.customer_context.account_type) == (True, AccountType.BUSINESS)
    assert event.correlation_id


def test_submit_still_publishes_when_the_customer_db_is_down() -> None:
    bus = RecordingBus()
    event = submit_ticket(a_ticket(), customers=FakeCustomers(down=True), publisher=bus)
    assert bus.events == [event]
    assert not event.customer_context.is_vip


class ManyLabelClassifier:
    """A fine-grained model: one weak favourite and a long tail of runner-ups."""

    def classify(self, text: str) -> IssueClassification:
        tail = [CategoryScore(category=f"intent_{i}", score=0.03) for i in range(2, 12)]
        return IssueClassification(
            primary_category="intent_0",
            confidence=0.5,
            alternatives=(CategoryScore(category="intent_1", score=0.2), *tail),
        )


def pipeline_over(classifier: IssueClassifier, taxonomy: Taxonomy, repo: InMemoryRepository) -> PipelineEngine:
    """The pipeline engine with `classifier` and the fakes, its history in `repo`."""
    return PipelineEngine(
        RoutingToolkit(
            taxonomy=taxonomy,
            classifier=classifier,
            customers=FakeCustomers(),
            service_status=FakeServiceStatus(),
            history=repo,
            clock=CLOCK,
        )
    )


class RawScoreClassifier:
    """A model that reports raw probabilities, down to ones no store can hold."""

    def classify(self, text: str) -> IssueClassification:
        return IssueClassification(
            primary_category="Billing Dispute",
            confidence=0.912345678,
            alternatives=(
                CategoryScore(category="Network Outage", score=0.087654321),
                CategoryScore(category="Account Access", score=1e-200),
            ),
        )


def test_the_stored_decision_records_scores_as_routing_reads_them() -> None:
    # Given a classifier whose scores carry every digit, one of them 1e-200 (DynamoDB stops at 1e-130)
    repo = InMemoryRepository()
    engine = pipeline_over(RawScoreClassifier(), TAXONOMY, repo)
    # When a ticket is routed
    route_ticket(a_ticket(), correlation_id="c", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK)
    # Then every recorded score is rounded to the confidence decimals, the tiny one to zero
    stored = repo.get("T-1")
    assert stored is not None
    assert stored.issue_classification.confidence == 0.9123
    assert [(a.category, a.score) for a in stored.issue_classification.alternatives] == [
        ("Network Outage", 0.0877),
        ("Account Access", 0.0),
    ]


def test_the_stored_decision_keeps_the_best_runner_ups_and_reviews_with_the_whole_ranking() -> None:
    # Given intents mapped to teams, where many small runner-ups together outweigh the best one
    taxonomy = TAXONOMY.with_label_teams(
        {"intent_0": "Network Operations", "intent_1": "Billing Support"}
        | {f"intent_{i}": "Technical Support" for i in range(2, 12)}
    )
    repo = InMemoryRepository()
    engine = pipeline_over(ManyLabelClassifier(), taxonomy, repo)
    # When a ticket is routed
    route_ticket(a_ticket(), correlation_id="c", engine=engine, repository=repo, taxonomy=taxonomy, clock=CLOCK)
    # Then the record keeps the five best runner-ups only
    stored = repo.get("T-1")
    assert stored is not None and stored.requires_manual_review
    assert [a.category for a in stored.issue_classification.alternatives] == [
        "intent_1",
        "intent_2",
        "intent_3",
        "intent_4",
        "intent_5",
    ]
    # And the suggested teams still count the whole tail: Technical Support's ten 0.03s beat 0.2
    assert [(t.team, t.score) for t in stored.alternative_teams] == [
        ("Network Operations", 0.5),
        ("Technical Support", 0.3),
    ]


def test_route_stores_one_decision_with_all_seven_tools_recorded() -> None:
    repo = InMemoryRepository()
    customers = FakeCustomers(a_customer("C-1", vip=True, services=["SVC004"]))
    engine = engine_for(
        FixedClassifier("Network Outage", 0.93), customers, FakeServiceStatus(outages_on("SVC004")), repo
    )
    # When a ticket is routed
    outcome = route_ticket(
        a_ticket(), correlation_id="corr-1", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK
    )
    # Then one decision is stored with the domain's priority and the full audit trail
    stored = repo.get("T-1")
    assert outcome.created and stored == outcome.decision
    assert stored.assigned_team == "Network Operations"
    assert stored.priority_level is PriorityLevel.P0
    assert stored.sync_status is SyncStatus.PENDING
    assert stored.correlation_id == "corr-1"
    assert [c.tool for c in stored.tool_calls] == [
        "extract_entities",
        "check_vip_status",
        "check_service_status",
        "get_historical_context",
        "classify_issue",
        "calculate_priority",
        "route_to_team",
    ]
    assert stored.ttl - int(stored.created_at.timestamp()) == 90 * 86_400


def test_redelivered_ticket_returns_the_first_decision_and_stores_nothing_new() -> None:
    repo = InMemoryRepository()
    engine = engine_for(FixedClassifier("Billing Dispute"), FakeCustomers(), FakeServiceStatus(), repo)
    first = route_ticket(a_ticket(), correlation_id="a", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK)
    again = route_ticket(a_ticket(), correlation_id="b", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK)
    assert not again.created
    assert again.decision == first.decision
    assert len(repo.decisions) == 1


def test_customer_db_down_routes_anyway_and_flags_review_when_a_vip_could_be_hidden() -> None:
    repo = InMemoryRepository()
    engine = engine_for(FixedClassifier("Network Outage"), FakeCustomers(down=True), FakeServiceStatus(), repo)
    outcome = route_ticket(
        a_ticket(), correlation_id="c", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK
    )
    decision = outcome.decision
    assert decision.assigned_team == "Network Operations"
    assert decision.requires_manual_review
    assert "customer_profile" in decision.reasoning
    assert len(decision.alternative_teams) >= 1


def test_status_api_down_is_noted_in_the_reasoning() -> None:
    repo = InMemoryRepository()
    engine = engine_for(FixedClassifier("Billing Dispute"), FakeCustomers(), FakeServiceStatus(down=True), repo)
    decision = route_ticket(
        a_ticket(), correlation_id="c", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK
    ).decision
    assert "service_status" in decision.reasoning
    # 0 + 10 = 10 (P3); even +10 for an outage stays P3, so no review is needed
    assert not decision.requires_manual_review


def stored_decision(repo: InMemoryRepository) -> RoutingDecision:
    engine = engine_for(FixedClassifier("Billing Dispute"), FakeCustomers(), FakeServiceStatus(), repo)
    return route_ticket(
        a_ticket(), correlation_id="c", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=CLOCK
    ).decision


def test_sync_success_is_recorded() -> None:
    repo = InMemoryRepository()
    decision = stored_decision(repo)
    ticketing = RecordingTicketing()
    assert sync_decision(decision, ticketing=ticketing, repository=repo, clock=CLOCK) is SyncStatus.SUCCESS
    assert ticketing.pushed == [decision]
    assert repo.get("T-1").sync_status is SyncStatus.SUCCESS


def test_sync_rejected_is_recorded_as_rejected_without_raising() -> None:
    repo = InMemoryRepository()
    decision = stored_decision(repo)
    status = sync_decision(
        decision, ticketing=RecordingTicketing(SyncRejected("400 bad")), repository=repo, clock=CLOCK
    )
    assert status is SyncStatus.REJECTED
    assert (repo.get("T-1").sync_status, repo.get("T-1").sync_error) == (SyncStatus.REJECTED, "400 bad")


def test_sync_unavailable_is_recorded_and_raised_for_the_dead_letter_path() -> None:
    repo = InMemoryRepository()
    decision = stored_decision(repo)
    with pytest.raises(SyncUnavailable):
        sync_decision(decision, ticketing=RecordingTicketing(SyncUnavailable("503")), repository=repo, clock=CLOCK)
    assert repo.get("T-1").sync_status is SyncStatus.FAILED
    assert repo.find_by_sync_status(SyncStatus.FAILED) == [repo.get("T-1")]


def test_a_late_failure_never_overwrites_success() -> None:
    repo = InMemoryRepository()
    decision = stored_decision(repo)
    sync_decision(decision, ticketing=RecordingTicketing(), repository=repo, clock=CLOCK)
    repo.update_sync_status("T-1", decision.timestamp, SyncStatus.FAILED, error="late")
    assert repo.get("T-1").sync_status is SyncStatus.SUCCESS
