"""DynamoDB stream -> ticketing-update Lambda: push each new decision to the ticketing system.

Only INSERTs of pending decisions are synced, so this function's own sync_status writes (MODIFY
records) never loop. A record whose sync failed after every retry is reported in
batchItemFailures: the event source retries it, then hands it to the on-failure DLQ.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from domain.errors import SyncUnavailable
from domain.models import SyncStatus
from handlers.observability import METRICS_NAMESPACE, SERVICE_NAME, build_logger
from handlers.settings import running_in_lambda
from handlers.validation import describe_validation_error

if TYPE_CHECKING:
    from handlers.bootstrap import TicketingUpdateDeps

logger: Logger = build_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
# Report every failed record, even when the whole batch failed: the event source then retries
# exactly those records and sends them to the DLQ, rather than treating it as a function error.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

# Leave time to record the last push's outcome: one DynamoDB write, retry included.
DEADLINE_MARGIN_SECONDS = AWS_CALL_WORST_CASE_SECONDS


def _default_deps() -> TicketingUpdateDeps:
    from handlers.bootstrap import build_ticketing_update_deps

    return build_ticketing_update_deps()


_deps: TicketingUpdateDeps | None = _default_deps() if running_in_lambda() else None


class NotTried(RuntimeError):
    """The record's time ran out before its push could start (the table slow to answer, say): it is
    left pending for the stream to deliver again, neither marked failed nor counted as a ticketing
    failure, since the ticketing system was never asked. Once the stream's retries are spent its DLQ
    message points at it, and `dlq replay` pushes it as a stale pending decision."""


class InvalidEvent(ValueError):
    """The event is not a DynamoDB stream batch; raising sends it to the on-failure DLQ for a person."""


class _StreamRecordBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    # A failed record is reported by this number: without it the batch processor itself crashes.
    SequenceNumber: str


class _StreamRecord(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    eventName: Literal["INSERT", "MODIFY", "REMOVE"]
    dynamodb: _StreamRecordBody


class _StreamEvent(BaseModel):
    """What the batch processor reads of a record before any record handler runs, typed as the
    stream sends it. The stream never gets it wrong; a hand-made event (`ticket-router invoke`, a
    console test event) can, and the processor would then fail with a bare AttributeError."""

    model_config = ConfigDict(strict=True, extra="allow")

    Records: list[_StreamRecord]


def _check_shape(event: dict[str, Any]) -> None:
    try:
        _StreamEvent.model_validate(event)
    except ValidationError as exc:
        # Field names only: a record's image holds the customer's text.
        problems = "; ".join(f"{field}: {message}" for field, message in describe_validation_error(exc))
        raise InvalidEvent(f"not a DynamoDB stream event: {problems}") from None


def _is_new_pending_decision(record: DynamoDBRecord) -> bool:
    image = record.dynamodb.new_image if record.dynamodb else None
    return (
        record.event_name == DynamoDBRecordEventName.INSERT
        and image is not None
        and image.get("sync_status") == SyncStatus.PENDING.value
    )


def _check_time_left(ticket_id: str, deadline: float) -> None:
    # Pushed with its deadline passed, the adapter would give up before sending anything, yet the
    # record would be marked failed and counted by the metric whose alarm rolls a deployment back.
    if time.monotonic() >= deadline:
        logger.warning("no time left to push the update; the stream delivers it again", extra={"ticket_id": ticket_id})
        raise NotTried(f"no time left to push {ticket_id}")


def sync_record(record: DynamoDBRecord, deps: TicketingUpdateDeps, deadline: float) -> str:
    """Sync one stream record; returns what happened. Raises SyncUnavailable (or NotTried) to fail the record."""
    from adapters.aws.serialization import decision_from_stream_image
    from domain.services import sync_decision

    if not _is_new_pending_decision(record):
        return "skipped"
    assert record.dynamodb is not None
    decision = decision_from_stream_image(record.dynamodb.new_image)
    _check_time_left(decision.ticket_id, deadline)
    repository = deps.repository_for(record.event_source_arn)
    current = repository.get(decision.ticket_id)
    same_decision = current is not None and current.timestamp == decision.timestamp
    if same_decision and current is not None and current.sync_status is SyncStatus.SUCCESS:
        return "already-synced"  # a retried batch: the ticketing system has this update
    # The stream retries a failed record up to 3 times, and with it the records after it in the batch
    # (a rejected one among them): the failure metric counts tickets, not attempts.
    failed_before = (
        same_decision and current is not None and current.sync_status in (SyncStatus.FAILED, SyncStatus.REJECTED)
    )
    _check_time_left(decision.ticket_id, deadline)
    try:
        status = sync_decision(
            decision, ticketing=deps.ticketing, repository=repository, clock=deps.clock, deadline=deadline
        )
    except SyncUnavailable:
        if not failed_before:
            metrics.add_metric(name="TicketingSystemSyncFailures", unit=MetricUnit.Count, value=1)
        logger.error("ticketing update failed after retries", extra={"ticket_id": decision.ticket_id})
        raise
    if status is SyncStatus.REJECTED:
        if not failed_before:
            metrics.add_metric(name="TicketingSystemSyncFailures", unit=MetricUnit.Count, value=1)
        logger.error("ticketing system rejected the update", extra={"ticket_id": decision.ticket_id})
    else:
        metrics.add_metric(name="TicketingSystemSyncs", unit=MetricUnit.Count, value=1)
    return status.value


# The response is left out of the trace: it can carry a ticket's or a decision's text.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: TicketingUpdateDeps | None = None
) -> dict[str, Any]:
    resolved = deps or _deps or _default_deps()
    if not event.get("Records"):
        metrics.add_metric(name="StreamRecordsReceived", unit=MetricUnit.Count, value=0)
        return {"batchItemFailures": []}
    _check_shape(event)
    metrics.add_metric(name="StreamRecordsReceived", unit=MetricUnit.Count, value=len(event["Records"]))
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    records_left = len(event["Records"])

    def sync_in_its_share(record: DynamoDBRecord) -> str:
        # Each record gets an equal share of the time left, what earlier ones did not use included:
        # with the whole of it, a push the ticketing system never answers would run the others out of
        # time on every delivery of the batch (the stream retries from the first failed record), and
        # take them to the DLQ with it. A batch of one still gets all of it.
        nonlocal records_left
        now = time.monotonic()
        share = (deadline - now) / max(records_left, 1)
        records_left -= 1
        return sync_record(record, resolved, now + share)

    return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
        event=event,
        record_handler=sync_in_its_share,
        processor=processor,
        context=context,
    )
