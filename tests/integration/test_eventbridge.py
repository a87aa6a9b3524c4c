"""EventBridgePublisher against moto: the TicketReceived rule delivers what was published."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from adapters.aws.eventbridge import EventBridgePublisher
from domain.errors import PublishFailed
from domain.models import AccountType, CustomerContext, TicketReceived
from tests.aws_resources import create_bus_with_queue_target, receive_events
from tests.integration.conftest import NOW, REGION

BUS = "support-tickets"


def ticket_received(ticket_id: str = "T-1") -> TicketReceived:
    return TicketReceived(
        ticket_id=ticket_id,
        customer_id="CUST-1001",
        subject="Fibre down",
        description="No connectivity at HQ since 08:00.",
        # Given in another offset on purpose: the event must carry it as UTC.
        timestamp=NOW.astimezone(timezone(timedelta(hours=2))),
        correlation_id="corr-1",
        customer_context=CustomerContext(is_vip=True, account_type=AccountType.ENTERPRISE),
    )


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def events(aws: None) -> Any:
    return boto3.client("events", region_name=REGION)


def test_published_event_reaches_the_ticket_received_rule_target(events: Any, sqs: Any) -> None:
    # Given the bus with its TicketReceived rule targeting a queue
    queue_url = create_bus_with_queue_target(events, sqs, BUS)
    publisher = EventBridgePublisher(BUS, client=events)
    event = ticket_received()

    # When the event is published
    publisher.publish_ticket_received(event)

    # Then the rule delivered exactly that event, with the contract's source and detail-type
    delivered = receive_events(sqs, queue_url)
    assert len(delivered) == 1
    envelope = delivered[0]
    assert envelope["source"] == "support.ticketing"
    assert envelope["detail-type"] == "TicketReceived"
    assert TicketReceived.model_validate(envelope["detail"]) == event
    # And the timestamp is ISO 8601 UTC with a Z suffix
    assert envelope["detail"]["timestamp"] == "2026-11-24T12:00:00Z"
    assert envelope["detail"]["customer_context"] == {"is_vip": True, "account_type": "Enterprise"}


def test_an_event_from_another_source_does_not_match_the_rule(events: Any, sqs: Any) -> None:
    # Given the rule, and a publisher misconfigured with another source
    queue_url = create_bus_with_queue_target(events, sqs, BUS)
    publisher = EventBridgePublisher(BUS, client=events, source="somewhere.else")

    # When it publishes
    publisher.publish_ticket_received(ticket_received())

    # Then the orchestrator's queue receives nothing
    assert receive_events(sqs, queue_url) == []


def test_publishing_to_a_missing_bus_raises_publish_failed(events: Any) -> None:
    # Given no bus at all
    publisher = EventBridgePublisher("no-such-bus", client=events)

    # When / Then the ClientError surfaces as the domain error
    with pytest.raises(PublishFailed, match="ResourceNotFoundException"):
        publisher.publish_ticket_received(ticket_received())


def test_a_rejected_entry_in_a_successful_response_raises_publish_failed() -> None:
    # Given EventBridge accepting the call but failing the entry (as it does under throttling)
    client = boto3.client("events", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}],
        },
        {"Entries": ANY},
    )
    publisher = EventBridgePublisher(BUS, client=client)

    # When / Then the failure is not mistaken for success, and names the code and message
    with stubber, pytest.raises(PublishFailed, match="ThrottlingException: Rate exceeded"):
        publisher.publish_ticket_received(ticket_received())


def test_an_access_denied_call_raises_publish_failed() -> None:
    # Given a role that may not put events
    client = boto3.client("events", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("put_events", service_error_code="AccessDeniedException", http_status_code=403)
    publisher = EventBridgePublisher(BUS, client=client)

    # When / Then
    with stubber, pytest.raises(PublishFailed, match="AccessDeniedException"):
        publisher.publish_ticket_received(ticket_received())


def test_without_an_injected_client_a_default_one_is_created(events: Any, sqs: Any) -> None:
    # Given the bus, and a publisher built from its name only (as the ingestion Lambda does)
    queue_url = create_bus_with_queue_target(events, sqs, BUS)

    # When it publishes
    EventBridgePublisher(BUS).publish_ticket_received(ticket_received("T-default"))

    # Then the event arrives
    assert [e["detail"]["ticket_id"] for e in receive_events(sqs, queue_url)] == ["T-default"]
