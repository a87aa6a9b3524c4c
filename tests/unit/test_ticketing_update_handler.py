"""The ticketing-update handler (DynamoDB stream -> ticketing system) with fakes behind the ports."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.serialization import decision_from_stream_image
from adapters.clock import FixedClock
from domain.errors import SyncRejected, SyncUnavailable
from domain.models import RoutingDecision, SyncStatus
from handlers import ticketing_update
from handlers.bootstrap import TicketingUpdateDeps
from handlers.local_context import LocalLambdaContext
from tests.builders import NOW, InMemoryRepository

STREAM_EVENT: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "events" / "dynamodb_stream_decision.json").read_text()
)
RECORD: dict[str, Any] = STREAM_EVENT["Records"][0]
SEQUENCE = RECORD["dynamodb"]["SequenceNumber"]


class FakeTicketing:
    """TicketingSystem that records each push, or fails for the tickets told to."""

    def __init__(self, failures: dict[str, Exception] | None = None) -> None:
        self.pushed: list[RoutingDecision] = []
        self.failures = failures or {}

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        error = self.failures.get(decision.ticket_id)
        if error is not None:
            raise error
        self.pushed.append(decision)


def a_record(ticket_id: str = "T-EVT-0001", *, sequence: str = SEQUENCE, **changes: Any) -> dict[str, Any]:
    """The sample INSERT record, for another ticket or with other top-level fields."""
    record = copy.deepcopy(RECORD)
    record.update(changes)
    record["dynamodb"]["SequenceNumber"] = sequence
    for image in ("Keys", "NewImage"):
        record["dynamodb"][image]["ticket_id"] = {"S": ticket_id}
    return record


def stored_decision_of(record: dict[str, Any]) -> RoutingDecision:
    return decision_from_stream_image(record["dynamodb"]["NewImage"])


def wire(*records: dict[str, Any], ticketing: FakeTicketing | None = None) -> tuple[TicketingUpdateDeps, FakeTicketing]:
    """A repository holding the decisions the records were written for (the stream follows the table)."""
    repository = InMemoryRepository()
    for record in records:
        repository.save(stored_decision_of(record))
    fake = ticketing or FakeTicketing()
    return TicketingUpdateDeps(repository=repository, ticketing=fake, clock=FixedClock(NOW)), fake


def invoke(event: dict[str, Any], deps: TicketingUpdateDeps) -> dict[str, Any]:
    return ticketing_update.lambda_handler(event, LocalLambdaContext(function_name="ticketing-update"), deps=deps)


def sync_status(deps: TicketingUpdateDeps, ticket_id: str = "T-EVT-0001") -> SyncStatus:
    decision = deps.repository.get(ticket_id)
    assert decision is not None
    return decision.sync_status


def test_a_new_pending_decision_is_pushed_once_and_marked_synced() -> None:
    # Given the sample stream event for a pending decision stored in the table
    deps, ticketing = wire(RECORD)
    # When the handler processes it
    result = invoke(copy.deepcopy(STREAM_EVENT), deps)
    # Then the decision is pushed once and recorded as synced
    assert result == {"batchItemFailures": []}
    assert [d.ticket_id for d in ticketing.pushed] == ["T-EVT-0001"]
    assert ticketing.pushed[0].assigned_team == "Network Operations"
    stored = deps.repository.get("T-EVT-0001")
    assert stored is not None
    assert stored.sync_status is SyncStatus.SUCCESS
    assert stored.synced_at == NOW


def test_a_modify_record_is_skipped() -> None:
    # Given a MODIFY record (this function's own sync_status write coming back on the stream)
    record = a_record(eventName="MODIFY")
    deps, ticketing = wire(record)
    # When it is processed
    result = invoke({"Records": [record]}, deps)
    # Then nothing is pushed and the decision is left as it was
    assert result == {"batchItemFailures": []}
    assert ticketing.pushed == []
    assert sync_status(deps) is SyncStatus.PENDING


def test_an_insert_of_a_decision_that_is_not_pending_is_skipped() -> None:
    # Given an INSERT whose image is already synced, and one already failed
    synced = a_record("T-SYNCED", sequence="1")
    synced["dynamodb"]["NewImage"]["sync_status"] = {"S": "success"}
    failed = a_record("T-FAILED", sequence="2")
    failed["dynamodb"]["NewImage"]["sync_status"] = {"S": "failed"}
    deps, ticketing = wire(synced, failed)
    # When they are processed
    result = invoke({"Records": [synced, failed]}, deps)
    # Then neither is pushed
    assert result == {"batchItemFailures": []}
    assert ticketing.pushed == []


def test_a_remove_record_without_a_new_image_is_skipped() -> None:
    record = a_record(eventName="REMOVE")
    del record["dynamodb"]["NewImage"]
    deps, ticketing = wire(a_record())
    assert invoke({"Records": [record]}, deps) == {"batchItemFailures": []}
    assert ticketing.pushed == []


def test_an_unavailable_ticketing_system_fails_the_record_and_marks_the_decision_failed() -> None:
    # Given a ticketing system that stays unavailable after every retry
    ticketing = FakeTicketing({"T-EVT-0001": SyncUnavailable("HTTP 503 after 6 attempts")})
    deps, _ = wire(RECORD, ticketing=ticketing)
    # When the record is processed
    result = invoke(copy.deepcopy(STREAM_EVENT), deps)
    # Then the record is reported for retry (then the DLQ) and the decision says failed, with why
    assert result == {"batchItemFailures": [{"itemIdentifier": SEQUENCE}]}
    stored = deps.repository.get("T-EVT-0001")
    assert stored is not None
    assert stored.sync_status is SyncStatus.FAILED
    assert stored.sync_error is not None and "503" in stored.sync_error


def test_only_the_failed_record_of_a_batch_is_reported() -> None:
    # Given a batch of two new decisions, of which only the second cannot be pushed
    good = a_record("T-GOOD", sequence="100")
    bad = a_record("T-BAD", sequence="200")
    ticketing = FakeTicketing({"T-BAD": SyncUnavailable("timeout")})
    deps, _ = wire(good, bad, ticketing=ticketing)
    # When the batch is processed
    result = invoke({"Records": [good, bad]}, deps)
    # Then only the second is reported; the first is synced
    assert result == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert [d.ticket_id for d in ticketing.pushed] == ["T-GOOD"]
    assert sync_status(deps, "T-GOOD") is SyncStatus.SUCCESS
    assert sync_status(deps, "T-BAD") is SyncStatus.FAILED


class HangingTicketing(FakeTicketing):
    """Holds the push of the tickets told to until its deadline, then gives up, as the HTTP adapter
    does when no answer comes; gives up at once on any push whose deadline has passed."""

    def __init__(self, *hanging: str) -> None:
        super().__init__()
        self.hanging = set(hanging)

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        assert deadline is not None
        if decision.ticket_id in self.hanging:
            time.sleep(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            raise SyncUnavailable(f"no time left to push {decision.ticket_id}")
        super().push_routing(decision, deadline=deadline)


def test_a_push_that_hangs_does_not_starve_the_records_after_it_in_the_batch() -> None:
    # Given a batch whose first ticket the ticketing system never answers for, and little time
    hung = a_record("T-HUNG", sequence="100")
    fine = a_record("T-FINE", sequence="200")
    ticketing = HangingTicketing("T-HUNG")
    deps, _ = wire(hung, fine, ticketing=ticketing)
    context = LocalLambdaContext(
        function_name="ticketing-update", timeout_seconds=ticketing_update.DEADLINE_MARGIN_SECONDS + 1.0
    )
    # When the batch is processed
    result = ticketing_update.lambda_handler({"Records": [hung, fine]}, context, deps=deps)
    # Then the hung push gets its share of the time, not all of it: the record after it is pushed,
    # and only the hung one is left to the stream's retry
    assert result == {"batchItemFailures": [{"itemIdentifier": "100"}]}
    assert [d.ticket_id for d in ticketing.pushed] == ["T-FINE"]
    assert sync_status(deps, "T-FINE") is SyncStatus.SUCCESS


class SlowTable(InMemoryRepository):
    """A table that takes `delay` seconds to record a sync, and logs which tickets it is asked about."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.calls: list[str] = []

    def get(self, ticket_id: str) -> RoutingDecision | None:
        self.calls.append(ticket_id)
        return super().get(ticket_id)

    def update_sync_status(self, ticket_id: str, timestamp: int, status: SyncStatus, **fields: Any) -> None:
        self.calls.append(ticket_id)
        time.sleep(self.delay)
        super().update_sync_status(ticket_id, timestamp, status, **fields)


def sync_failures_emitted(out: str) -> list[Any]:
    return [
        value
        for line in out.splitlines()
        if line.startswith("{") and '"_aws"' in line
        for value in [json.loads(line).get("TicketingSystemSyncFailures")]
        if value is not None
    ]


def test_a_record_left_no_time_by_the_table_is_redelivered_without_counting_as_a_sync_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch of two whose table takes longer to record the first push than the batch has left
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    ticketing_update.metrics.clear_metrics()
    first = a_record("T-FIRST", sequence="100")
    second = a_record("T-SECOND", sequence="200")
    table = SlowTable(delay=0.6)
    for record in (first, second):
        table.save(stored_decision_of(record))
    ticketing = HangingTicketing()
    deps = TicketingUpdateDeps(repository=table, ticketing=ticketing, clock=FixedClock(NOW))
    short = LocalLambdaContext(
        function_name="ticketing-update", timeout_seconds=ticketing_update.DEADLINE_MARGIN_SECONDS + 0.5
    )
    capsys.readouterr()
    # When the batch is processed
    result = ticketing_update.lambda_handler({"Records": [first, second]}, short, deps=deps)
    # Then the record never tried is left to the stream, pending, without a call to the table or the
    # ticketing system, and the alarm's metric does not count it
    assert result == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert "T-SECOND" not in table.calls
    assert [d.ticket_id for d in ticketing.pushed] == ["T-FIRST"]
    assert sync_status(deps, "T-SECOND") is SyncStatus.PENDING
    assert sync_failures_emitted(capsys.readouterr().out) == []
    # When the stream delivers it again, with time to push it
    table.delay = 0.0
    assert invoke({"Records": [second]}, deps) == {"batchItemFailures": []}
    # Then it is pushed once and recorded as synced
    assert [d.ticket_id for d in ticketing.pushed] == ["T-FIRST", "T-SECOND"]
    assert sync_status(deps, "T-SECOND") is SyncStatus.SUCCESS


def test_a_permanent_refusal_marks_the_decision_rejected_without_a_retry() -> None:
    # Given a ticketing system that refuses the update for good (a 4xx)
    ticketing = FakeTicketing({"T-EVT-0001": SyncRejected("HTTP 400: unknown ticket")})
    deps, _ = wire(RECORD, ticketing=ticketing)
    # When the record is processed
    result = invoke(copy.deepcopy(STREAM_EVENT), deps)
    # Then retrying would not help: the record is not reported, the decision is rejected, out of
    # the transient failures a replay retries
    assert result == {"batchItemFailures": []}
    assert sync_status(deps) is SyncStatus.REJECTED


def test_a_redelivered_record_of_a_synced_decision_is_not_pushed_again() -> None:
    # Given a record that was already synced successfully
    deps, ticketing = wire(RECORD)
    invoke(copy.deepcopy(STREAM_EVENT), deps)
    assert sync_status(deps) is SyncStatus.SUCCESS
    # When the stream delivers the same batch again
    result = invoke(copy.deepcopy(STREAM_EVENT), deps)
    # Then the ticketing system is not called a second time and the decision stays synced
    assert result == {"batchItemFailures": []}
    assert len(ticketing.pushed) == 1
    assert sync_status(deps) is SyncStatus.SUCCESS


def test_a_retried_record_after_a_failure_is_pushed_once_the_system_is_back() -> None:
    # Given a record whose push failed
    ticketing = FakeTicketing({"T-EVT-0001": SyncUnavailable("down")})
    deps, _ = wire(RECORD, ticketing=ticketing)
    invoke(copy.deepcopy(STREAM_EVENT), deps)
    # When the event source retries it after the ticketing system recovered
    ticketing.failures.clear()
    result = invoke(copy.deepcopy(STREAM_EVENT), deps)
    # Then it is pushed and the decision ends synced
    assert result == {"batchItemFailures": []}
    assert len(ticketing.pushed) == 1
    assert sync_status(deps) is SyncStatus.SUCCESS


def test_an_empty_batch_does_nothing() -> None:
    deps, ticketing = wire()
    assert invoke({"Records": []}, deps) == {"batchItemFailures": []}
    assert ticketing.pushed == []


def _record_with(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(RECORD)
    record.update(changes)
    return record


def _record_without_sequence_number() -> dict[str, Any]:
    record = copy.deepcopy(RECORD)
    del record["dynamodb"]["SequenceNumber"]
    return record


# Refused before any record is counted, so the handler has no metric to flush.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize(
    ("record", "problem"),
    [
        pytest.param(None, "Records.1: must be an object", id="null"),
        pytest.param("INSERT", "Records.1: must be an object", id="text"),
        pytest.param(_record_with(dynamodb=5), "Records.1.dynamodb: must be an object", id="dynamodb-a-number"),
        pytest.param({"eventName": "INSERT"}, "Records.1.dynamodb: is required", id="no-dynamodb"),
        pytest.param(_record_with(eventName=5), "Records.1.eventName: Input should be 'INSERT'", id="event-name-5"),
        pytest.param(
            _record_without_sequence_number(), "Records.1.dynamodb.SequenceNumber: is required", id="no-sequence"
        ),
    ],
)
def test_a_record_the_stream_would_never_send_fails_the_batch_naming_the_field(record: Any, problem: str) -> None:
    # Given a batch whose second record is not shaped like a DynamoDB stream record
    deps, ticketing = wire(RECORD)
    event = {"Records": [copy.deepcopy(RECORD), record]}
    # When the handler gets it, then it raises the one error naming the field at fault (the event
    # source then hands the batch to the DLQ) instead of an AttributeError from the batch processor
    with pytest.raises(ticketing_update.InvalidEvent, match=f"not a DynamoDB stream event: .*{problem}"):
        invoke(event, deps)
    # And nothing was pushed: the batch is refused before any record is synced
    assert ticketing.pushed == []
    assert sync_status(deps) is SyncStatus.PENDING


@pytest.mark.parametrize(
    ("failure", "deliveries", "left"),
    [
        # Unavailable: the stream delivers the record, then retries it three times
        (SyncUnavailable("HTTP 503 after 6 attempts"), 4, SyncStatus.FAILED),
        # Refused for good: the stream retries a batch from its first failed record on
        (SyncRejected("HTTP 422: ticket is closed"), 2, SyncStatus.REJECTED),
    ],
)
def test_a_ticket_whose_deliveries_keep_failing_counts_as_one_sync_failure(
    failure: Exception,
    deliveries: int,
    left: SyncStatus,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a ticketing system that fails the update every time, and metrics on
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    ticketing_update.metrics.clear_metrics()  # what earlier tests added while metrics were off
    deps, _ = wire(RECORD, ticketing=FakeTicketing({"T-EVT-0001": failure}))
    capsys.readouterr()
    # When the stream delivers the record again and again
    for _ in range(deliveries):
        invoke(copy.deepcopy(STREAM_EVENT), deps)
    # Then the alarm's metric counted the ticket once, not once per delivery, and its status stays
    counted = [
        value
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and '"_aws"' in line
        for value in [json.loads(line).get("TicketingSystemSyncFailures")]
        if value is not None
    ]
    assert counted == [[1.0]]
    assert sync_status(deps) is left


def test_the_pretraffic_hook_check_event_is_answered_without_pushing_anything() -> None:
    from handlers.codedeploy_hook import START_EVENTS

    # Given the event the CodeDeploy PreTraffic hook sends a new ticketing-update version
    deps, fake = wire()
    # When the function handles it
    result = invoke(copy.deepcopy(START_EVENTS["TICKETING_UPDATE_VERSION_ARN"]), deps)
    # Then it answers without a failure, and nothing reached the ticketing system
    assert result == {"batchItemFailures": []}
    assert fake.pushed == []
