"""The orchestrator handler (EventBridge TicketReceived -> decision) with fakes behind the ports."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from strands.types.exceptions import ModelThrottledException

from adapters.clock import FixedClock
from adapters.engines.agent import AgentEngine
from adapters.engines.pipeline import PipelineEngine
from domain.models import AccountType, PriorityLevel, SyncStatus
from domain.taxonomy import load_taxonomy
from domain.toolkit import RoutingToolkit
from handlers import orchestrator
from handlers.bootstrap import OrchestratorDeps
from handlers.local_context import LocalLambdaContext
from tests.builders import (
    NOW,
    FakeCustomers,
    FakeServiceStatus,
    FixedClassifier,
    InMemoryRepository,
    a_customer,
    outages_on,
)
from tests.strands_fakes import ScriptedModel, tool_use
from tests.unit.test_ingestion_handler import emitted_metrics

EVENT: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "events" / "eventbridge_ticket_received.json").read_text()
)
TAXONOMY = load_taxonomy()
# The handler flushes its metrics even when it rejects an event before recording any.
NO_METRICS = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def deps_for(repository: InMemoryRepository, *, customer_db_down: bool = False) -> OrchestratorDeps:
    """The event's customer: a VIP enterprise whose fibre service SVC001 has an active outage."""
    clock = FixedClock(NOW)
    customers = FakeCustomers(
        a_customer("CUST-1001", vip=True, account_type=AccountType.ENTERPRISE, services=["SVC001"]),
        # Known, with a profile of defaults only, as a customer created moments ago has
        a_customer("CUST-NEW"),
        down=customer_db_down,
    )
    toolkit = RoutingToolkit(
        taxonomy=TAXONOMY,
        classifier=FixedClassifier("Network Outage", 0.92),
        customers=customers,
        service_status=FakeServiceStatus(outages_on("SVC001")),
        history=repository,
        clock=clock,
    )
    return OrchestratorDeps(engine=PipelineEngine(toolkit), repository=repository, taxonomy=TAXONOMY, clock=clock)


def invoke(event: dict[str, Any], deps: OrchestratorDeps) -> dict[str, Any]:
    return orchestrator.lambda_handler(event, LocalLambdaContext(function_name="orchestrator"), deps=deps)


@pytest.mark.parametrize("customer_db_down", [False, True])
def test_a_routing_without_the_customer_profile_is_counted_as_evidence_unavailable(
    customer_db_down: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics on, and a customer DB that is up or down
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    orchestrator.metrics.clear_metrics()  # what earlier tests added while metrics were off
    repository = InMemoryRepository()
    # When the orchestrator routes the event's ticket
    invoke(copy.deepcopy(EVENT), deps_for(repository, customer_db_down=customer_db_down))
    # Then the ticket is routed either way, and counted only when it went without the profile
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted["TicketsProcessed"] == [1.0]
    assert emitted.get("EvidenceUnavailable") == ([1.0] if customer_db_down else None)
    assert len(repository.decisions) == 1


@pytest.mark.parametrize(
    ("customer_id", "counted"), [("CUST-1001", None), ("CUST-NEW", None), ("CUST-NOT-IN-DB", [1.0])]
)
def test_a_routing_for_a_customer_the_db_does_not_know_is_counted(
    customer_id: str, counted: list[float] | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics on, and a ticket from a customer the customer DB knows, or answers it has not
    # (as every customer is answered when CUSTOMER_DB_URL points at the wrong path)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    orchestrator.metrics.clear_metrics()  # what earlier tests added while metrics were off
    repository = InMemoryRepository()
    event = copy.deepcopy(EVENT)
    event["detail"]["customer_id"] = customer_id
    # When the orchestrator routes it
    invoke(event, deps_for(repository))
    # Then it is routed either way, and counted among unknown customers only when the DB did not know
    # it: the share of those is what tells a misconfigured customer DB from a few new customers
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted["TicketsProcessed"] == [1.0]
    assert emitted.get("UnknownCustomers") == counted
    assert emitted.get("EvidenceUnavailable") is None
    assert len(repository.decisions) == 1


def test_a_ticket_received_event_is_routed_and_one_decision_stored() -> None:
    # Given the sample TicketReceived event and an empty decision store
    repository = InMemoryRepository()
    # When the orchestrator handles it
    result = invoke(EVENT, deps_for(repository))
    # Then one pending decision is stored, carrying the event's correlation id
    assert result == {
        "ticket_id": "T-EVT-0001",
        "created": True,
        "assigned_team": "Network Operations",
        "priority_level": "P0",
        "requires_manual_review": False,
    }
    assert len(repository.decisions) == 1
    stored = repository.get("T-EVT-0001")
    assert stored is not None
    assert stored.priority_level is PriorityLevel.P0
    assert stored.correlation_id == EVENT["detail"]["correlation_id"]
    assert stored.sync_status is SyncStatus.PENDING
    assert stored.timestamp == 1795508400  # the ticket's receipt time, so a redelivery collides with it


def test_the_same_event_delivered_twice_stores_one_decision() -> None:
    # Given an event that was already handled
    repository = InMemoryRepository()
    deps = deps_for(repository)
    first = invoke(EVENT, deps)
    stored_first = repository.get("T-EVT-0001")
    # When EventBridge delivers it again
    second = invoke(copy.deepcopy(EVENT), deps)
    # Then the stored decision is reported, not a new one
    assert first["created"] is True
    assert second["created"] is False
    assert {k: v for k, v in second.items() if k != "created"} == {k: v for k, v in first.items() if k != "created"}
    assert len(repository.decisions) == 1
    assert repository.get("T-EVT-0001") == stored_first


def test_a_redelivery_with_another_correlation_id_keeps_the_first_decision() -> None:
    repository = InMemoryRepository()
    deps = deps_for(repository)
    invoke(EVENT, deps)
    replay = copy.deepcopy(EVENT)
    replay["detail"]["correlation_id"] = "another-correlation"
    assert invoke(replay, deps)["created"] is False
    stored = repository.get("T-EVT-0001")
    assert stored is not None and stored.correlation_id == EVENT["detail"]["correlation_id"]


def _without(detail: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k not in keys}


@NO_METRICS
@pytest.mark.parametrize(
    ("make_detail", "fields"),
    [
        pytest.param(lambda d: _without(d, "customer_id"), ["customer_id"], id="missing-customer_id"),
        pytest.param(lambda d: _without(d, "ticket_id", "correlation_id"), ["ticket_id", "correlation_id"], id="two"),
        pytest.param(lambda d: {**d, "timestamp": "yesterday"}, ["timestamp"], id="bad-timestamp"),
        pytest.param(
            lambda d: {**d, "timestamp": "0001-01-01T00:00:00+01:00"}, ["timestamp"], id="timestamp-overflows-utc"
        ),
        pytest.param(
            lambda d: {**d, "customer_context": {"is_vip": "maybe", "account_type": "Enterprise"}},
            ["customer_context.is_vip"],
            id="nested-field",
        ),
        pytest.param(lambda d: {**d, "customer_context": None}, ["customer_context"], id="null-context"),
        pytest.param(lambda d: None, ["detail"], id="no-detail"),
        pytest.param(lambda d: ["not", "an", "object"], ["detail"], id="detail-is-a-list"),
        # The envelope passes, the ticket inside it does not: still an InvalidEvent, not retried
        pytest.param(lambda d: {**d, "ticket_id": "a/b"}, ["ticket_id"], id="ticket-id-with-a-slash"),
        pytest.param(lambda d: {**d, "description": ""}, ["description"], id="empty-description"),
        pytest.param(lambda d: {**d, "description": "x" * 30_000}, ["description"], id="description-too-long"),
    ],
)
def test_an_invalid_detail_raises_invalid_event_naming_the_field(make_detail: Any, fields: list[str]) -> None:
    # Given an event whose detail is wrong exactly at `fields`
    event = copy.deepcopy(EVENT)
    event["detail"] = make_detail(event["detail"])
    repository = InMemoryRepository()
    # When the orchestrator handles it
    with pytest.raises(orchestrator.InvalidEvent) as raised:
        invoke(event, deps_for(repository))
    # Then the error names each field at fault, and nothing is stored
    message = str(raised.value)
    for field in fields:
        assert field in message
    assert repository.decisions == {}


@NO_METRICS
def test_an_event_of_another_type_raises_invalid_event() -> None:
    event = {**copy.deepcopy(EVENT), "detail-type": "TicketClosed"}
    repository = InMemoryRepository()
    with pytest.raises(orchestrator.InvalidEvent, match="TicketClosed"):
        invoke(event, deps_for(repository))
    assert repository.decisions == {}


@NO_METRICS
def test_an_invalid_ticket_is_reported_without_quoting_the_customers_text() -> None:
    # Given a ticket whose private text is too long to route
    event = copy.deepcopy(EVENT)
    event["detail"]["description"] = "my PIN is 4821 " * 2_000
    # When the orchestrator refuses it
    with pytest.raises(orchestrator.InvalidEvent) as raised:
        invoke(event, deps_for(InMemoryRepository()))
    # Then neither the message nor a chained error carries the text into logs
    assert "4821" not in str(raised.value)
    assert raised.value.__cause__ is None


@NO_METRICS
def test_the_pretraffic_hook_check_event_is_answered_without_routing_anything() -> None:
    from handlers.codedeploy_hook import START_EVENTS

    # Given the event the CodeDeploy PreTraffic hook sends a new orchestrator version
    repository = InMemoryRepository()
    # When the orchestrator handles it
    result = invoke(copy.deepcopy(START_EVENTS["ORCHESTRATOR_VERSION_ARN"]), deps_for(repository))
    # Then it answers that it started, and nothing was routed or stored
    assert result == {"status": "started"}
    assert repository.decisions == {}


@pytest.mark.parametrize(
    ("turns", "counted"),
    [
        # a model that keeps asking for tools until the engine's call budget stops it
        ([tool_use("get_historical_context", {}, use_id=f"t{n}") for n in range(3)], False),
        # a model that answers only in prose, even when the answer tool is forced
        ([{"content": [{"text": "A network outage, P0."}]}] * 2, False),
        # a model whose answer runs past its output limit
        ([{"content": [{"text": "Let me think..."}], "stop_reason": "max_tokens"}], False),
        ([{"raise": ModelThrottledException("Too many requests")}], True),
    ],
)
def test_only_a_failure_at_the_model_provider_counts_as_a_bedrock_api_error(
    turns: list[dict[str, Any]], counted: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics on, and the agent engine with a model stopped by its budget (or throttled)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    orchestrator.metrics.clear_metrics()
    repository = InMemoryRepository()
    deps = deps_for(repository)
    pipeline = deps.engine
    assert isinstance(pipeline, PipelineEngine)
    agent = AgentEngine(toolkit=pipeline.toolkit, pipeline=pipeline, model=ScriptedModel(turns), model_id="claude")
    # When the orchestrator routes the event's ticket
    invoke(copy.deepcopy(EVENT), dataclasses.replace(deps, engine=agent))
    # Then the ticket is routed from the pipeline either way, and only the throttle is a Bedrock error
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted["TicketsProcessed"] == [1.0]
    assert emitted.get("BedrockAPIErrors") == ([1.0] if counted else None)
    assert len(repository.decisions) == 1


@pytest.mark.parametrize(
    ("turns", "without_routing"),
    [
        ([{"content": [{"text": "A network outage, P0."}]}] * 2, [1.0]),
        ([{"content": [{"text": "Let me think..."}], "stop_reason": "max_tokens"}], [1.0]),
        ([tool_use("get_historical_context", {}, use_id=f"t{n}") for n in range(3)], None),
        ([{"raise": ModelThrottledException("Too many requests")}], None),
    ],
)
def test_a_model_that_answered_without_a_routing_is_counted_among_the_tickets_it_was_asked_about(
    turns: list[dict[str, Any]],
    without_routing: list[float] | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given metrics on, and the agent engine with a model that answers in prose or past its token
    # limit (a broken prompt), loops on tools until its budget stops it, or is throttled
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    orchestrator.metrics.clear_metrics()
    repository = InMemoryRepository()
    deps = deps_for(repository)
    pipeline = deps.engine
    assert isinstance(pipeline, PipelineEngine)
    agent = AgentEngine(toolkit=pipeline.toolkit, pipeline=pipeline, model=ScriptedModel(turns), model_id="claude")
    # When the orchestrator routes the event's ticket
    invoke(copy.deepcopy(EVENT), dataclasses.replace(deps, engine=agent))
    # Then the ticket counts among those the model was asked about, and among those it answered
    # without a routing only when it did: the share of those is what tells a broken prompt
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted["ModelConsulted"] == [1.0]
    assert emitted.get("ModelAnswersWithoutRouting") == without_routing


def test_a_ticket_the_model_was_not_asked_about_is_not_counted_as_consulted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics on and the pipeline engine
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    orchestrator.metrics.clear_metrics()
    # When the orchestrator routes the event's ticket
    invoke(copy.deepcopy(EVENT), deps_for(InMemoryRepository()))
    # Then neither model metric is emitted
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted.get("ModelConsulted") is None and emitted.get("ModelAnswersWithoutRouting") is None
