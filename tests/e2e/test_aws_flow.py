"""The three Lambdas chained in-process over moto, wired by the real AWS composition root.

API event -> ingestion -> EventBridge (rule -> SQS queue) -> orchestrator -> DynamoDB (stream) ->
ticketing update -> the ticketing system's REST API. AWS is moto; the customer DB, the service
status API and the ticketing system are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.models import SyncStatus
from handlers.bootstrap import build_ingestion_deps, build_ticketing_update_deps
from tests.http_servers import FakeTicketingSystem
from tests.in_process_stack import STACK, InProcessStack, in_process_stack
from tests.integration.conftest import REGION

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "adapters" / "local" / "sample_data"
DECISIONS_TABLE = STACK.decisions_table
IDEMPOTENCY_TABLE = STACK.idempotency_table
API_KEY = "tk-live-0123456789abcdef"
Flow = InProcessStack[FakeTicketingSystem]

# An hour old, so that no ticket earns age points and every priority below is exact.
RECEIVED = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
# (ticket, expected team, expected priority); customers and outages are the sample data's.
TICKETS: list[tuple[dict[str, str], str, str]] = [
    (
        # VIP enterprise customer; an active outage on their own fibre service SVC001: P0.
        {
            "ticket_id": "T-0001",
            "customer_id": "CUST-1001",
            "subject": "Fibre link down at HQ",
            "description": "Our primary fibre circuit SVC001 at headquarters went down at 08:05. "
            "300 staff have no connectivity, router shows NET-500 on the uplink.",
        },
        "Network Operations",
        "P0",
    ),
    (
        {
            "ticket_id": "T-0002",
            "customer_id": "CUST-1005",
            "subject": "no internet",
            "description": "Internet is completely dead since this morning, my neighbours say theirs is out too. "
            "Service SVC004.",
        },
        "Network Operations",
        "P1",
    ),
    (
        {
            "ticket_id": "T-0003",
            "customer_id": "CUST-1006",
            "subject": "Double charged",
            "description": "I was charged $49.99 twice on my November invoice for account ACC-48213. "
            "Please refund the duplicate.",
        },
        "Billing Support",
        "P3",
    ),
    (
        {
            "ticket_id": "T-0004",
            "customer_id": "CUST-1003",
            "subject": "Router keeps rebooting",
            "description": "Our office router reboots every hour and shows error code DSL-651. Wifi drops for "
            "everyone when it happens. Other businesses on the street are fine.",
        },
        "Technical Support",
        "P2",
    ),
    (
        {
            "ticket_id": "T-0005",
            "customer_id": "CUST-1007",
            "subject": "Locked out of my account",
            "description": "I can't log in to the app, it says my account is locked after too many attempts and "
            "the password reset email never arrives.",
        },
        "Account Management",
        "P1",
    ),
]
TICKETS = [({**ticket, "timestamp": RECEIVED}, team, priority) for ticket, team, priority in TICKETS]
TICKET_IDS = [ticket["ticket_id"] for ticket, _, _ in TICKETS]


@pytest.fixture
def flow(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flow]:
    # Given the stack's AWS resources as the SAM template declares them, the three external HTTP
    # services, and the environment the functions' settings read
    with in_process_stack(
        FakeTicketingSystem(api_key=API_KEY),
        customers=json.loads((SAMPLES / "customers.json").read_text()),
        outages=json.loads((SAMPLES / "services.json").read_text())["outages"],
        set_env=monkeypatch.setenv,
        region=REGION,
        api_key=API_KEY,
        retry_delay_base="0.01",
    ) as stack:
        yield stack


def test_tickets_flow_from_the_api_to_the_ticketing_system(flow: Flow) -> None:
    # When each ticket is posted to the API
    accepted = {}
    for ticket, _, _ in TICKETS:
        status, body = flow.post(ticket)
        assert status == 202, body
        accepted[ticket["ticket_id"]] = body["correlation_id"]
    # Then the bus delivered one TicketReceived per ticket, the VIP's marked as such
    events = flow.delivered_events()
    assert sorted(e["detail"]["ticket_id"] for e in events) == TICKET_IDS
    by_id = {e["detail"]["ticket_id"]: e for e in events}
    assert by_id["T-0001"]["detail"]["customer_context"] == {"is_vip": True, "account_type": "Enterprise"}
    assert {t: e["detail"]["correlation_id"] for t, e in by_id.items()} == accepted

    # When the orchestrator handles each delivered event
    routed = {e["detail"]["ticket_id"]: flow.route(e) for e in events}
    # Then one decision per ticket is created with the expected team and priority
    assert all(r["created"] for r in routed.values())
    assert {t: (r["assigned_team"], r["priority_level"]) for t, r in routed.items()} == {
        ticket["ticket_id"]: (team, priority) for ticket, team, priority in TICKETS
    }

    # When the ticketing-update function receives the table's stream
    inserts = flow.stream.poll()
    assert sorted(r["dynamodb"]["NewImage"]["ticket_id"]["S"] for r in inserts) == TICKET_IDS
    assert {r["eventName"] for r in inserts} == {"INSERT"}
    assert flow.sync(inserts) == {"batchItemFailures": []}
    # And then its own sync_status writes coming back on the stream
    modifies = flow.stream.poll()
    assert {r["eventName"] for r in modifies} == {"MODIFY"}
    assert flow.sync(modifies) == {"batchItemFailures": []}

    # Then the ticketing system got exactly one authenticated, idempotent PUT per ticket
    for ticket_id in TICKET_IDS:
        puts = flow.puts_for(ticket_id)
        assert len(puts) == 1, ticket_id
        assert puts[0].header("Authorization") == f"Bearer {API_KEY}"
        assert (puts[0].header("Idempotency-Key") or "").startswith(f"{ticket_id}:")
        assert puts[0].json["correlation_id"] == accepted[ticket_id]
    assert flow.ticketing_api.routing["T-0001"]["priority_level"] == "P0"
    assert flow.ticketing_api.routing["T-0001"]["assigned_team"] == "Network Operations"
    # And the API shows every decision as synced
    for ticket, team, priority in TICKETS:
        status, decision = flow.get(ticket["ticket_id"])
        assert status == 200
        assert (decision["assigned_team"], decision["priority_level"]) == (team, priority)
        assert decision["sync_status"] == "success"
        assert decision["correlation_id"] == accepted[ticket["ticket_id"]]
    # And the customer cache table spared the orchestrator a second customer DB lookup
    for ticket, _, _ in TICKETS:
        assert flow.customer_db.lookups_of(ticket["customer_id"]) == 1


def test_every_message_delivered_twice_still_yields_one_decision_and_one_put(flow: Flow) -> None:
    # When each ticket is posted twice (a client retry)
    for ticket, _, _ in TICKETS:
        (_, first), (status, second) = flow.post(ticket), flow.post(ticket)
        assert status == 202
        # Then the retry gets the first answer back
        assert second["correlation_id"] == first["correlation_id"]
    # And the idempotency table remembers one submission per ticket; the bus carried one event each
    assert flow.dynamodb.scan(TableName=IDEMPOTENCY_TABLE, Select="COUNT")["Count"] == len(TICKETS)
    events = flow.delivered_events()
    assert sorted(e["detail"]["ticket_id"] for e in events) == TICKET_IDS

    # When EventBridge delivers every event twice (at-least-once)
    created = [flow.route(event)["created"] for event in events for _ in range(2)]
    # Then only the first delivery of each created a decision
    assert created == [True, False] * len(TICKETS)

    # When the stream batch is delivered twice too
    inserts = flow.stream.poll()
    assert len(inserts) == len(TICKETS)
    assert flow.sync(inserts) == {"batchItemFailures": []}
    assert flow.sync(copy.deepcopy(inserts)) == {"batchItemFailures": []}

    # Then there is still one decision and one PUT per ticket, each synced
    for ticket_id in TICKET_IDS:
        assert len(flow.puts_for(ticket_id)) == 1, ticket_id
        status, decision = flow.get(ticket_id)
        assert status == 200 and decision["sync_status"] == "success"
    assert flow.dynamodb.scan(TableName=DECISIONS_TABLE, Select="COUNT")["Count"] == len(TICKETS)
    assert flow.ticketing_update.repository.find_by_sync_status(SyncStatus.PENDING) == []
    # And the stream saw one INSERT per ticket, no second decision
    assert {r["eventName"] for r in flow.stream.poll()} == {"MODIFY"}


def test_an_unavailable_ticketing_system_leaves_failed_decisions_findable(flow: Flow) -> None:
    # Given a ticketing system that answers 503 to everything
    flow.ticketing_api.fail_next(None, status=503)
    # When the tickets go through the whole flow
    for ticket, _, _ in TICKETS[:2]:
        assert flow.post(ticket)[0] == 202
    for event in flow.delivered_events():
        flow.route(event)
    inserts = flow.stream.poll()
    result = flow.sync(inserts)

    # Then every record is reported back to the event source for a retry, by its sequence number
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        r["dynamodb"]["SequenceNumber"] for r in inserts
    )
    # And each push was tried 1 + MAX_RETRIES times with the same idempotency key
    for ticket_id in TICKET_IDS[:2]:
        puts = flow.puts_for(ticket_id)
        assert len(puts) == 3
        assert len({p.header("Idempotency-Key") for p in puts}) == 1
    assert flow.ticketing_api.routing == {}
    # And the decisions say failed, with the reason, and are found through the sync_status index
    for ticket_id in TICKET_IDS[:2]:
        status, decision = flow.get(ticket_id)
        assert status == 200
        assert decision["sync_status"] == "failed"
        assert "503" in decision["sync_error"]
    failed = flow.ticketing_update.repository.find_by_sync_status(SyncStatus.FAILED)
    assert sorted(d.ticket_id for d in failed) == TICKET_IDS[:2]
    assert flow.ticketing_update.repository.find_by_sync_status(SyncStatus.PENDING) == []


def test_functions_configured_with_only_the_reference_designs_variables_still_flow(flow: Flow) -> None:
    from handlers.settings import IngestionSettings, TicketingUpdateSettings

    # Given ingestion without IDEMPOTENCY_TABLE or ROUTING_DECISIONS_TABLE, and the update function
    # without ROUTING_DECISIONS_TABLE (the reference design lists neither for them)
    flow.ingestion = build_ingestion_deps(IngestionSettings(idempotency_table=None, routing_decisions_table=None))
    flow.ticketing_update = build_ticketing_update_deps(TicketingUpdateSettings(routing_decisions_table=None))
    ticket, team, priority = TICKETS[0]
    # When the same ticket is posted twice in one container
    (_, first), (status, second) = flow.post(ticket), flow.post(ticket)
    # Then the duplicate is still caught, and decision lookups say why they are unavailable
    assert (status, second["correlation_id"]) == (202, first["correlation_id"])
    events = flow.delivered_events()
    assert len(events) == 1
    assert flow.get(ticket["ticket_id"])[0] == 501
    # And the update function finds the decisions table from the stream record's source ARN
    flow.route(events[0])
    assert flow.sync(flow.stream.poll()) == {"batchItemFailures": []}
    assert len(flow.puts_for(ticket["ticket_id"])) == 1
    assert flow.ticketing_update.repository is not None
    stored = flow.ticketing_update.repository.get(ticket["ticket_id"])
    assert stored is not None
    assert (stored.assigned_team, stored.priority_level.value, stored.sync_status) == (
        team,
        priority,
        SyncStatus.SUCCESS,
    )
