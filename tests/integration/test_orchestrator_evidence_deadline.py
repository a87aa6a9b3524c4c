"""The orchestrator's evidence lookups under its deadline, against real 127.0.0.1 servers that hang."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from adapters.clock import FixedClock
from adapters.engines.pipeline import PipelineEngine
from adapters.http.customer_db import HttpCustomerDirectory
from adapters.http.service_status import HttpServiceStatusProvider
from domain.taxonomy import load_taxonomy
from domain.toolkit import RoutingToolkit
from handlers import orchestrator
from handlers.bootstrap import OrchestratorDeps, lookups_by_invocation_deadline
from handlers.local_context import LocalLambdaContext
from tests.builders import NOW, FixedClassifier, InMemoryRepository
from tests.http_servers import FakeCustomerDb, FakeServiceStatusApi

EVENT: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "events" / "eventbridge_ticket_received.json").read_text()
)
TAXONOMY = load_taxonomy()
VIP = {"customer_id": "CUST-1001", "is_vip": True, "account_type": "Enterprise", "services": ["SVC001"]}
OUTAGE = {"outage_id": "O-1", "service_id": "SVC001", "status": "active", "title": "Fibre cut"}


def deps_over(customer_db: FakeCustomerDb, status_api: FakeServiceStatusApi, repository: InMemoryRepository) -> Any:
    """The orchestrator as bootstrap wires it, over the given servers (3 s per wait, as deployed)."""
    clock = FixedClock(NOW)
    customers, service_status, history = lookups_by_invocation_deadline(
        HttpCustomerDirectory(customer_db.url, timeout=3.0),
        HttpServiceStatusProvider(status_api.url, timeout=3.0),
        repository,
    )
    toolkit = RoutingToolkit(
        taxonomy=TAXONOMY,
        classifier=FixedClassifier("Network Outage", 0.92),
        customers=customers,
        service_status=service_status,
        history=history,
        clock=clock,
    )
    return OrchestratorDeps(engine=PipelineEngine(toolkit), repository=repository, taxonomy=TAXONOMY, clock=clock)


def with_seconds_before_deadline(seconds: float) -> LocalLambdaContext:
    """An invocation whose deadline (its time less the margin kept to store the decision) is this near."""
    return LocalLambdaContext(
        function_name="orchestrator", timeout_seconds=orchestrator.DEADLINE_MARGIN_SECONDS + seconds
    )


def test_a_hanging_customer_db_leaves_the_ticket_routed_without_the_lookups_there_was_no_time_for() -> None:
    # Given a customer DB that hangs far past the invocation's deadline, and a status API that answers
    repository = InMemoryRepository()
    with FakeCustomerDb([VIP]) as customer_db, FakeServiceStatusApi([OUTAGE]) as status_api:
        customer_db.hang_next(seconds=30)
        # When the orchestrator routes a ticket with one second left before its deadline
        result = orchestrator.lambda_handler(
            copy.deepcopy(EVENT),
            with_seconds_before_deadline(1.0),
            deps=deps_over(customer_db, status_api, repository),
        )
        status_requests = len(status_api.requests)
    # Then the decision is stored, the customer lookup given up on and the two after it not started
    assert result["created"] is True
    stored = repository.get("T-EVT-0001")
    assert stored is not None
    lookups = {call.tool: call.detail for call in stored.tool_calls if not call.ok}
    assert lookups == {
        "check_vip_status": "EvidenceOutOfTime",
        "check_service_status": "EvidenceOutOfTime",
        "get_historical_context": "EvidenceOutOfTime",
    }
    assert status_requests == 0
    # and it goes to review: the VIP status and the outage it went without could raise its priority
    assert "Missing evidence: customer_profile, service_status, history." in stored.reasoning
    assert stored.requires_manual_review is True


def test_a_hanging_status_api_keeps_the_customer_profile_that_answered_in_time() -> None:
    # Given a customer DB that answers and a status API that hangs past the deadline
    repository = InMemoryRepository()
    with FakeCustomerDb([VIP]) as customer_db, FakeServiceStatusApi([OUTAGE]) as status_api:
        status_api.hang_next(seconds=30)
        # When the orchestrator routes the VIP's ticket with one second left before its deadline
        orchestrator.lambda_handler(
            copy.deepcopy(EVENT),
            with_seconds_before_deadline(1.0),
            deps=deps_over(customer_db, status_api, repository),
        )
    # Then the decision is stored with the VIP's profile, and without the status it had no time for
    stored = repository.get("T-EVT-0001")
    assert stored is not None
    failed = {call.tool: call.detail for call in stored.tool_calls if not call.ok}
    assert failed == {"check_service_status": "EvidenceOutOfTime", "get_historical_context": "EvidenceOutOfTime"}
    assert [call.detail for call in stored.tool_calls if call.tool == "check_vip_status"] == [
        "vip=True type=Enterprise"
    ]
    assert "Missing evidence: service_status, history." in stored.reasoning
