"""DynamoDBDecisionRepository against moto: stored items, GSIs, sync-status rules, stream images."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from botocore.stub import Stubber

from adapters.aws import dynamodb_repository
from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from adapters.aws.dynamodb_repository import SYNC_STATUS_INDEX, DynamoDBDecisionRepository, decision_from_stream_image
from adapters.aws.serialization import decision_to_item, deserialize_item
from domain.entities import extract_entities
from domain.errors import DamagedRecord, DuplicateDecision, RepositoryUnavailable
from domain.models import RoutingDecision, SyncStatus
from tests.aws_resources import StreamTail, read_stream_records
from tests.integration.conftest import NOW, REGION

MakeDecision = Callable[..., RoutingDecision]


@pytest.fixture
def repository(dynamodb: Any, decisions_table: str) -> DynamoDBDecisionRepository:
    return DynamoDBDecisionRepository(decisions_table, client=dynamodb)


def stored_item(dynamodb: Any, table: str, ticket_id: str, timestamp: int) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table, Key={"ticket_id": {"S": ticket_id}, "timestamp": {"N": str(timestamp)}}
    )
    return deserialize_item(response["Item"]) if "Item" in response else None


# --- save / get ---------------------------------------------------------------------------------


def test_saved_decision_is_stored_as_top_level_attributes_and_read_back_unchanged(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a decision with nested models, floats and a Decimal amount
    decision = make_decision()

    # When it is saved and read back
    repository.save(decision)
    loaded = repository.get(decision.ticket_id)

    # Then the stored item has every field at the top level, numbers as N, and no None attributes
    item = stored_item(dynamodb, decisions_table, decision.ticket_id, decision.timestamp)
    assert item is not None
    assert item["customer_id"] == "CUST-1001"
    assert item["assigned_team"] == "network-operations"
    assert item["sync_status"] == "pending"
    assert item["ttl"] == decision.ttl
    assert item["confidence_score"] == Decimal("0.8731")
    assert item["priority"]["factors"] == {"vip": 15, "outage": 20, "age": 7}
    assert item["entities"]["monetary_amounts"] == [{"amount": Decimal("49.99"), "currency": "USD"}]
    assert "sync_error" not in item
    assert "synced_at" not in item and "sync_attempted_at" not in item
    assert set(RoutingDecision.model_fields) - {"sync_error", "synced_at", "sync_attempted_at"} <= set(item)
    # And the decision comes back equal, field for field
    assert loaded == decision


def test_saving_the_same_decision_twice_raises_duplicate_and_keeps_the_first(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a stored decision
    first = make_decision(reasoning="first delivery")
    repository.save(first)

    # When a redelivery tries to store another decision under the same key
    with pytest.raises(DuplicateDecision):
        repository.save(make_decision(reasoning="second delivery"))

    # Then the audited first decision is untouched
    item = stored_item(dynamodb, decisions_table, first.ticket_id, first.timestamp)
    assert item is not None
    assert item["reasoning"] == "first delivery"


def test_get_returns_the_latest_decision_for_a_ticket_or_none(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given two decisions for one ticket at different receipt times
    older = make_decision(timestamp=1_700_000_000, assigned_team="billing")
    newer = make_decision(timestamp=1_700_000_500, assigned_team="network-operations")
    repository.save(newer)
    repository.save(older)

    # When / Then the newest is returned, and an unknown ticket gives None
    assert repository.get("T-1") == newer
    assert repository.get("T-unknown") is None


# --- sync status --------------------------------------------------------------------------------


def test_successful_sync_is_recorded_and_clears_a_previous_error(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a decision whose first sync failed
    decision = make_decision()
    repository.save(decision)
    repository.update_sync_status(decision.ticket_id, decision.timestamp, SyncStatus.FAILED, error="HTTP 503")

    # When a replay succeeds
    synced_at = NOW + timedelta(minutes=5)
    repository.update_sync_status(decision.ticket_id, decision.timestamp, SyncStatus.SUCCESS, synced_at=synced_at)

    # Then the item has the sync time, no error, and no sync_status: it leaves the sparse index
    item = stored_item(dynamodb, decisions_table, decision.ticket_id, decision.timestamp)
    assert item is not None
    assert "sync_status" not in item
    assert item["synced_at"] == synced_at.isoformat()
    assert "sync_error" not in item
    loaded = repository.get(decision.ticket_id)
    assert loaded is not None
    assert loaded.sync_status is SyncStatus.SUCCESS
    assert loaded.synced_at == synced_at
    assert loaded.sync_error is None


def test_a_late_failure_never_overwrites_a_success(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given a decision already synced successfully
    decision = make_decision()
    repository.save(decision)
    repository.update_sync_status(decision.ticket_id, decision.timestamp, SyncStatus.SUCCESS, synced_at=NOW)

    # When a retried stream record reports a failure afterwards
    repository.update_sync_status(decision.ticket_id, decision.timestamp, SyncStatus.FAILED, error="timeout")

    # Then the decision stays synced
    loaded = repository.get(decision.ticket_id)
    assert loaded is not None
    assert loaded.sync_status is SyncStatus.SUCCESS
    assert loaded.sync_error is None
    assert loaded.synced_at == NOW


def test_updating_the_sync_status_of_an_unknown_decision_creates_nothing(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str
) -> None:
    # Given an empty table
    # When a status update arrives for a decision that does not exist
    repository.update_sync_status("T-ghost", 1_700_000_000, SyncStatus.FAILED, error="HTTP 503")

    # Then no half-item is created
    assert stored_item(dynamodb, decisions_table, "T-ghost", 1_700_000_000) is None


def test_find_by_sync_status_returns_matching_decisions_newest_first_up_to_the_limit(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given five pending decisions, one of which has since failed
    for n in range(5):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))
    repository.update_sync_status("T-2", 1_700_000_002, SyncStatus.FAILED, error="HTTP 500")

    # When the pending and failed ones are listed
    pending = repository.find_by_sync_status(SyncStatus.PENDING, limit=3)
    failed = repository.find_by_sync_status(SyncStatus.FAILED)

    # Then each list holds only its status, newest first, capped at the limit
    assert [d.ticket_id for d in pending] == ["T-4", "T-3", "T-1"]
    assert [(d.ticket_id, d.sync_error) for d in failed] == [("T-2", "HTTP 500")]
    assert repository.find_by_sync_status(SyncStatus.SUCCESS) == []


class ThrottledBatchGets:
    """The table's client, but its BatchGetItem answers the first key only, the rest left unprocessed
    (as a throttled table does), the first `times` times it is called."""

    def __init__(self, client: Any, times: int) -> None:
        self.client = client
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        if self.times <= 0:
            return dict(self.client.batch_get_item(RequestItems=RequestItems))
        self.times -= 1
        ((table, request),) = RequestItems.items()
        first, rest = request["Keys"][:1], request["Keys"][1:]
        answer = dict(self.client.batch_get_item(RequestItems={table: {**request, "Keys": first}}))
        answer["UnprocessedKeys"] = {table: {**request, "Keys": rest}} if rest else {}
        return answer


def test_keys_a_throttled_batch_read_left_are_asked_for_again_after_a_growing_pause(
    dynamodb: Any, decisions_table: str, make_decision: MakeDecision, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three failed decisions, and a table whose batch reads answer one key at a time twice
    repository = DynamoDBDecisionRepository(decisions_table, client=ThrottledBatchGets(dynamodb, times=2))
    for n in range(3):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))
        repository.update_sync_status(f"T-{n}", 1_700_000_000 + n, SyncStatus.FAILED, error="HTTP 503")
    pauses: list[float] = []
    monkeypatch.setattr(dynamodb_repository.time, "sleep", pauses.append)

    # When the failed ones are listed
    failed = repository.find_by_sync_status(SyncStatus.FAILED)

    # Then every one is read, the keys left asked for again after a pause that grows each time
    assert sorted(d.ticket_id for d in failed) == ["T-0", "T-1", "T-2"]
    assert len(pauses) == 2 and 0 < pauses[0] < pauses[1]


def test_rejected_decisions_are_listed_apart_from_failed_ones_and_can_still_succeed(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given one decision whose push failed for a moment and two the ticketing system refused
    for n in range(3):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))
    repository.update_sync_status("T-0", 1_700_000_000, SyncStatus.FAILED, error="HTTP 503")
    repository.update_sync_status("T-1", 1_700_000_001, SyncStatus.REJECTED, error="HTTP 422")
    repository.update_sync_status("T-2", 1_700_000_002, SyncStatus.REJECTED, error="HTTP 404")

    # When each status is listed through the sync-status index
    failed = repository.find_by_sync_status(SyncStatus.FAILED)
    rejected = repository.find_by_sync_status(SyncStatus.REJECTED)

    # Then the refused ones have a partition of their own, newest first, with their errors
    assert [d.ticket_id for d in failed] == ["T-0"]
    assert [(d.ticket_id, d.sync_error) for d in rejected] == [("T-2", "HTTP 404"), ("T-1", "HTTP 422")]
    # And one pushed again once its cause is fixed is synced, and no longer listed as rejected
    repository.update_sync_status("T-1", 1_700_000_001, SyncStatus.SUCCESS, synced_at=NOW)
    assert [d.ticket_id for d in repository.find_by_sync_status(SyncStatus.REJECTED)] == ["T-2"]
    # But a late refusal never undoes a success
    repository.update_sync_status("T-1", 1_700_000_001, SyncStatus.REJECTED, error="HTTP 409")
    assert repository.get("T-1").sync_status is SyncStatus.SUCCESS


def test_a_damaged_item_is_left_out_of_listings_and_a_damaged_record_when_read(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given two failed decisions, one of them since damaged (its confidence overwritten by hand)
    for n in range(2):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))
        repository.update_sync_status(f"T-{n}", 1_700_000_000 + n, SyncStatus.FAILED, error="HTTP 500")
    dynamodb.update_item(
        TableName=decisions_table,
        Key={"ticket_id": {"S": "T-1"}, "timestamp": {"N": "1700000001"}},
        UpdateExpression="SET confidence_score = :bad",
        ExpressionAttributeValues={":bad": {"S": "very high"}},
    )
    # When one failed decision is asked for, and the damaged one is read
    failed = repository.find_by_sync_status(SyncStatus.FAILED, limit=1)
    # Then the intact one is found past the damaged, newer one, which is named, and reading it says
    # it needs repair
    assert [d.ticket_id for d in failed] == ["T-0"]
    assert repository.unreadable == {"T-1"}
    with pytest.raises(DamagedRecord, match="ticket 'T-1' is not a valid record"):
        repository.get("T-1")


def test_find_by_sync_status_can_keep_only_tickets_received_before_a_time(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given pending decisions for tickets received at t, t+1 ... t+4
    for n in range(5):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))

    # When those received before t+2 are asked for
    older = repository.find_by_sync_status(SyncStatus.PENDING, received_before=1_700_000_002)

    # Then only those come back, newest first
    assert [d.ticket_id for d in older] == ["T-1", "T-0"]


def test_find_by_sync_status_can_keep_only_decisions_made_before_a_time(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given a decision made an hour ago, and three made just now for tickets received after it
    made_at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    repository.save(make_decision("T-OLD", timestamp=1_700_000_000).model_copy(update={"created_at": made_at}))
    for n in range(1, 4):
        decision = make_decision(f"T-{n}", timestamp=1_700_000_000 + n)
        repository.save(decision.model_copy(update={"created_at": made_at + timedelta(hours=1)}))

    # When one decision made before half an hour later is asked for
    found = repository.find_by_sync_status(SyncStatus.PENDING, limit=1, made_before=made_at + timedelta(minutes=30))

    # Then it is the old one, read past the newer ones that come first by receipt time
    assert [d.ticket_id for d in found] == ["T-OLD"]


def test_recent_for_customer_returns_that_customers_latest_decisions(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given decisions for two customers
    for n in range(4):
        repository.save(make_decision(f"A-{n}", customer_id="CUST-A", timestamp=1_700_000_000 + n))
    repository.save(make_decision("B-0", customer_id="CUST-B", timestamp=1_700_000_100))

    # When customer A's history is asked for
    recent = repository.recent_for_customer("CUST-A", limit=2)

    # Then only A's two newest decisions come back, newest first
    assert [d.ticket_id for d in recent] == ["A-3", "A-2"]
    newest = make_decision("A-3", customer_id="CUST-A", timestamp=1_700_000_003)
    assert (recent[0].issue_category, recent[0].assigned_team, recent[0].priority_level) == (
        newest.issue_category,
        newest.assigned_team,
        newest.priority_level,
    )
    assert (recent[0].requires_manual_review, recent[0].created_at) == (
        newest.requires_manual_review,
        newest.created_at,
    )
    assert repository.recent_for_customer("CUST-nobody") == []


def test_a_damaged_decision_is_left_out_of_its_customers_history_not_a_failed_routing(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given two decisions of one customer, the newer since damaged (its priority overwritten by hand)
    for n in range(2):
        repository.save(make_decision(f"A-{n}", customer_id="CUST-A", timestamp=1_700_000_000 + n))
    dynamodb.update_item(
        TableName=decisions_table,
        Key={"ticket_id": {"S": "A-1"}, "timestamp": {"N": "1700000001"}},
        UpdateExpression="SET priority_level = :bad, issue_classification = :none",
        ExpressionAttributeValues={":bad": {"S": "urgent!!"}, ":none": {"M": {}}},
    )
    # When the customer's history is asked for (as the orchestrator does for each of their tickets)
    recent = repository.recent_for_customer("CUST-A")
    # Then the intact decision is there, and the damaged one is named for repair
    assert [d.ticket_id for d in recent] == ["A-0"]
    assert repository.unreadable == {"A-1"}


def test_queries_follow_pagination_until_the_limit_is_reached(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given more pending decisions than one page holds when pages are tiny
    for n in range(6):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))
    pages: list[int] = []
    small_pages = DynamoDBDecisionRepository(decisions_table, client=_page_size_capped(dynamodb, 2, pages))

    # When more than a page is asked for
    found = small_pages.find_by_sync_status(SyncStatus.PENDING, limit=5)

    # Then three pages of index keys were read, and no more once the limit was reached
    assert [d.ticket_id for d in found] == ["T-5", "T-4", "T-3", "T-2", "T-1"]
    assert pages == [2, 2, 2]


def _page_size_capped(client: Any, page_size: int, pages: list[int]) -> Any:
    # DynamoDB pages by size (1 MB); a client hook that lowers Limit makes pages small enough to
    # exercise LastEvaluatedKey with a handful of items.
    def cap(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = min(params.get("Limit", page_size), page_size)
        pages.append(params["Limit"])

    client.meta.events.register("provide-client-params.dynamodb.Query", cap)
    return client


# --- failures -----------------------------------------------------------------------------------

THROTTLING = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
]


@pytest.mark.parametrize("code", THROTTLING)
def test_throttled_or_failing_dynamodb_raises_repository_unavailable(code: str, make_decision: MakeDecision) -> None:
    # Given a real client whose every call DynamoDB answers with a throttling/server error
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    for operation in ("put_item", "query", "update_item", "query"):
        stubber.add_client_error(operation, service_error_code=code, http_status_code=400)
    repository = DynamoDBDecisionRepository("routing-decisions", client=client)
    decision = make_decision()

    # When each operation is attempted / Then each raises the domain's retry-later error
    with stubber:
        with pytest.raises(RepositoryUnavailable, match=code):
            repository.save(decision)
        with pytest.raises(RepositoryUnavailable):
            repository.get(decision.ticket_id)
        with pytest.raises(RepositoryUnavailable):
            repository.update_sync_status(decision.ticket_id, decision.timestamp, SyncStatus.FAILED, error="x")
        with pytest.raises(RepositoryUnavailable):
            repository.recent_for_customer(decision.customer_id)
    stubber.assert_no_pending_responses()


def test_a_missing_table_raises_repository_unavailable(dynamodb: Any, make_decision: MakeDecision) -> None:
    # Given a repository pointed at a table that does not exist
    repository = DynamoDBDecisionRepository("no-such-table", client=dynamodb)

    # When / Then both writes and reads fail with the domain error, not a botocore one
    with pytest.raises(RepositoryUnavailable, match="ResourceNotFoundException"):
        repository.save(make_decision())
    with pytest.raises(RepositoryUnavailable):
        repository.find_by_sync_status(SyncStatus.PENDING)


def test_without_an_injected_client_a_default_one_is_created_on_first_use(
    decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a repository built from the table name only (as the Lambdas do)
    repository = DynamoDBDecisionRepository(decisions_table)

    # When it is used / Then it works against the (moto) default region
    repository.save(make_decision())
    assert repository.get("T-1") is not None


# --- stream images ------------------------------------------------------------------------------


def test_stream_insert_image_round_trips_to_the_saved_decision(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a saved decision
    decision = make_decision()
    repository.save(decision)

    # When the table's stream is read as the sync Lambda would receive it
    records = read_stream_records(dynamodb, boto3.client("dynamodbstreams", region_name=REGION), decisions_table)

    # Then the INSERT's NewImage rebuilds the decision, from raw DynamoDB JSON ...
    assert [r["eventName"] for r in records] == ["INSERT"]
    record = records[0]
    assert record["eventSourceARN"] == dynamodb.describe_table(TableName=decisions_table)["Table"]["LatestStreamArn"]
    assert decision_from_stream_image(record["dynamodb"]["NewImage"]) == decision
    # ... and from the image Powertools has already deserialised (Decimal numbers)
    powertools_image = DynamoDBRecord(record).dynamodb.new_image  # type: ignore[union-attr]
    assert decision_from_stream_image(powertools_image) == decision


def test_stream_modify_record_carries_old_and_new_sync_status(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a decision whose insert has already been consumed from the stream
    decision = make_decision()
    repository.save(decision)
    tail = StreamTail(dynamodb, boto3.client("dynamodbstreams", region_name=REGION), decisions_table)
    assert [r["eventName"] for r in tail.poll()] == ["INSERT"]

    # When its sync fails
    repository.update_sync_status(decision.ticket_id, decision.timestamp, SyncStatus.FAILED, error="HTTP 503")

    # Then only the MODIFY is new, with both images, and the NewImage still holds the whole decision
    records = tail.poll()
    assert [r["eventName"] for r in records] == ["MODIFY"]
    old = decision_from_stream_image(records[0]["dynamodb"]["OldImage"])
    new = decision_from_stream_image(records[0]["dynamodb"]["NewImage"])
    assert old.sync_status is SyncStatus.PENDING
    assert new == decision.model_copy(update={"sync_status": SyncStatus.FAILED, "sync_error": "HTTP 503"})
    assert records[0]["dynamodb"]["SequenceNumber"]


def test_item_conversion_round_trips_without_touching_aws(make_decision: MakeDecision) -> None:
    # Given a decision that was synced (optional fields set)
    decision = make_decision(sync_status="success", synced_at=NOW, sync_error=None, confidence_score=0.1)

    # When it becomes an item and comes back as a Powertools-style image
    item = decision_to_item(decision)

    # Then floats are exact Decimals, None is absent, and the decision is unchanged
    assert item["confidence_score"] == Decimal("0.1")
    assert "sync_error" not in item
    assert decision_from_stream_image(item) == decision


def test_feedback_is_attached_to_the_latest_decision_and_exported(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    from domain.models import Feedback

    decision = make_decision(ticket_id="T-FB")
    repository.save(decision)
    # When an agent re-routes it, and another agent corrects that
    first = Feedback(
        ticket_id="T-FB", correct_team="Technical Support", agent_id="a-0", recorded_at=decision.created_at
    )
    assert repository.record(first) is None
    replaced = repository.record(
        Feedback(ticket_id="T-FB", correct_team="Billing Support", agent_id="a-1", recorded_at=decision.created_at)
    )
    # Then the second replaced the first (and said so), the latest is exported, and the decision is unchanged
    assert replaced == first
    assert [(f.ticket_id, f.correct_team, f.agent_id) for f in repository.feedback()] == [
        ("T-FB", "Billing Support", "a-1")
    ]
    assert repository.get("T-FB") == decision


def test_feedback_that_could_not_be_stored_before_its_deadline_is_refused_unwritten(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    from domain.models import Feedback

    # Given a routed ticket
    decision = make_decision(ticket_id="T-FB")
    repository.save(decision)
    # When a correction is to be stored with less time left than a call to DynamoDB may take
    correction = Feedback(ticket_id="T-FB", correct_team="Technical Support", recorded_at=decision.created_at)
    with pytest.raises(RepositoryUnavailable, match="too little time"):
        repository.record(correction, deadline=time.monotonic() + AWS_CALL_WORST_CASE_SECONDS / 2)
    # Then nothing was written: the caller's retry stores it as the first correction
    assert repository.feedback() == []
    assert repository.record(correction, deadline=time.monotonic() + 3 * AWS_CALL_WORST_CASE_SECONDS) is None
    assert [f.ticket_id for f in repository.feedback()] == ["T-FB"]


def test_a_decision_from_a_ticket_quoting_a_long_fraction_is_saved(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given a ticket quoting a rate, and a fraction with more digits than DynamoDB keeps
    long_fraction = "0." + "1" * 40
    entities = extract_entities(f"billed $0.015/min, then ${long_fraction}/KB and €0,{'0' * 140}1/s")
    decision = make_decision(entities=entities)
    # When its decision is saved and read back
    repository.save(decision)
    # Then it is stored, with the rate as an amount and the fractions no rate has left out
    loaded = repository.get(decision.ticket_id)
    assert loaded is not None
    assert [m.amount for m in loaded.entities.monetary_amounts] == [Decimal("0.015")]


def test_synced_decisions_leave_the_sync_status_index_and_it_holds_keys_not_items(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given a decision synced and one whose sync failed
    for n in range(2):
        repository.save(make_decision(f"T-{n}", timestamp=1_700_000_000 + n))
    repository.update_sync_status("T-0", 1_700_000_000, SyncStatus.SUCCESS, synced_at=NOW)
    repository.update_sync_status("T-1", 1_700_000_001, SyncStatus.FAILED, error="HTTP 503")

    # When the whole sync-status index is read
    entries = dynamodb.scan(TableName=decisions_table, IndexName=SYNC_STATUS_INDEX)["Items"]

    # Then only the failed decision is in it, by its keys and creation time, not its text
    assert [e["ticket_id"]["S"] for e in entries] == ["T-1"]
    assert set(entries[0]) == {"ticket_id", "timestamp", "sync_status", "created_at"}
    # and the synced one still reads as synced
    assert repository.get("T-0").sync_status is SyncStatus.SUCCESS


def test_decisions_stored_before_the_index_was_sparse_still_read_and_replay(
    repository: DynamoDBDecisionRepository, dynamodb: Any, decisions_table: str, make_decision: MakeDecision
) -> None:
    # Given items written by the earlier release, which kept sync_status = "success" once synced
    for n, status in enumerate(("success", "failed")):
        repository.save(make_decision(f"OLD-{n}", timestamp=1_700_000_000 + n))
        dynamodb.update_item(
            TableName=decisions_table,
            Key={"ticket_id": {"S": f"OLD-{n}"}, "timestamp": {"N": str(1_700_000_000 + n)}},
            UpdateExpression="SET sync_status = :status",
            ExpressionAttributeValues={":status": {"S": status}},
        )

    # When they are read, listed for replay, and a late failure is reported for the synced one
    repository.update_sync_status("OLD-0", 1_700_000_000, SyncStatus.FAILED, error="late")
    failed = repository.find_by_sync_status(SyncStatus.FAILED)

    # Then the synced one stays synced (never listed) and the failed one is found as before
    assert repository.get("OLD-0").sync_status is SyncStatus.SUCCESS
    assert [d.ticket_id for d in failed] == ["OLD-1"]
    # and once the failed one syncs, it leaves the index like a new one
    repository.update_sync_status("OLD-1", 1_700_000_001, SyncStatus.SUCCESS, synced_at=NOW)
    assert repository.find_by_sync_status(SyncStatus.FAILED) == []


def test_failed_decisions_are_listed_least_recently_attempted_first(
    repository: DynamoDBDecisionRepository, make_decision: MakeDecision
) -> None:
    # Given failed decisions attempted at various times, and one failed before attempts were recorded
    attempts = {
        "T-1": NOW + timedelta(minutes=5),
        "T-2": NOW + timedelta(seconds=30.5),
        "T-3": NOW + timedelta(minutes=1),
    }
    for i, ticket_id in enumerate(["T-LEGACY", *attempts]):
        repository.save(make_decision(ticket_id, timestamp=1_700_000_000 + i))
        repository.update_sync_status(
            ticket_id, 1_700_000_000 + i, SyncStatus.FAILED, error="503", attempted_at=attempts.get(ticket_id)
        )
    # When the failed ones are listed, all or the first two
    failed = repository.find_by_sync_status(SyncStatus.FAILED)
    first = repository.find_by_sync_status(SyncStatus.FAILED, limit=2)
    # Then the never-timed one comes first, then the least recently attempted
    assert [d.ticket_id for d in failed] == ["T-LEGACY", "T-2", "T-3", "T-1"]
    assert [d.ticket_id for d in first] == ["T-LEGACY", "T-2"]
    assert failed[1].sync_attempted_at == attempts["T-2"]
