"""The decisions table: DecisionRepository and TicketHistory over DynamoDB.

Table: partition key `ticket_id` (S), sort key `timestamp` (N); GSIs customer_id- and
assigned_team-timestamp-index (projection ALL) and the sparse sync_status-unsynced-index (keys,
created_at and sync_attempted_at); TTL on `ttl`; stream NEW_AND_OLD_IMAGES.

`sync_status` is on an item only until its sync succeeds: every decision is synced in the end, and
nothing asks for the synced ones, so keeping them in the index would only grow one hot partition.
An item written before carries `sync_status = success`, read the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS, aws_client_config
from adapters.aws.serialization import (
    decision_from_item,
    decision_from_stream_image,
    decision_to_dynamodb,
    deserialize_item,
    serialize_item,
    to_attribute_value,
)
from domain.errors import DamagedRecord, DuplicateDecision, RepositoryUnavailable
from domain.models import Feedback, PastTicket, RoutingDecision, SyncStatus

__all__ = [
    "CUSTOMER_INDEX",
    "SYNC_STATUS_INDEX",
    "TEAM_INDEX",
    "DynamoDBDecisionRepository",
    "decision_from_stream_image",
]

logger = logging.getLogger(__name__)
# DynamoDB's Limit is a 32-bit count; reading stops well before it, as the caller has enough.
_NO_LIMIT = 2**31 - 1

CUSTOMER_INDEX = "customer_id-timestamp-index"
TEAM_INDEX = "assigned_team-timestamp-index"
SYNC_STATUS_INDEX = "sync_status-unsynced-index"
# Keys (ticket_id, timestamp) in one BatchGetItem: DynamoDB's maximum.
_BATCH_GET_KEYS = 100
# BatchGetItem answers with the keys it left unprocessed when throttled; asked again this often.
_BATCH_GET_ATTEMPTS = 5
# Before asking again for the keys a throttled BatchGetItem left: 0.1 s, doubling (1.5 s in all at
# most), as AWS advises; asked again at once, a throttled table is throttled again.
_BATCH_GET_BACKOFF_SECONDS = 0.1

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
_CONDITION_FAILED = "ConditionalCheckFailedException"


def _made_by(entry: dict[str, Any], moment: datetime) -> bool:
    """Whether an index entry's decision was made at or before `moment`. One whose `created_at`
    does not read as a time is kept, for the item itself to be judged (and named if damaged)."""
    made = _utc(entry.get("created_at"))
    return made is None or made <= moment


def _least_recently_attempted(entry: dict[str, Any]) -> tuple[bool, datetime, int]:
    """Never attempted (or before attempts were recorded) first, then the least recent attempt;
    newest receipt first among equals. An attempt time that does not read as one sorts first."""
    attempted = _utc(entry.get("sync_attempted_at"))
    return (attempted is not None, attempted or datetime.min.replace(tzinfo=UTC), -int(entry.get("timestamp", 0)))


def _utc(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def unavailable(exc: ClientError | BotoCoreError, action: str, table: str) -> RepositoryUnavailable:
    """Every other AWS failure means the store cannot serve us now; the message tells which kind."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        kind = "throttled or failing" if code in THROTTLING_CODES else "refused the request"
        return RepositoryUnavailable(f"DynamoDB {kind} on {action} ({table}): {code}: {exc}")
    return RepositoryUnavailable(f"DynamoDB unreachable on {action} ({table}): {exc}")


class DynamoDBDecisionRepository:
    """DecisionRepository + TicketHistory over the decisions table (low-level client, DynamoDB JSON)."""

    def __init__(self, table_name: str, *, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client
        # Tickets whose stored decision could not be read by a listing (left out of it).
        self.unreadable: set[str] = set()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=aws_client_config())
        return self._client

    # --- DecisionRepository -----------------------------------------------------------------

    def save(self, decision: RoutingDecision) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=decision_to_dynamodb(decision),
                # A redelivered event must not overwrite the audited first decision.
                ConditionExpression="attribute_not_exists(ticket_id)",
            )
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                raise DuplicateDecision(f"{decision.ticket_id}@{decision.timestamp}") from exc
            raise unavailable(exc, "save", self.table_name) from exc
        except BotoCoreError as exc:
            raise unavailable(exc, "save", self.table_name) from exc

    def get(self, ticket_id: str) -> RoutingDecision | None:
        items = self._query(
            "get",
            KeyConditionExpression="ticket_id = :ticket_id",
            ExpressionAttributeValues={":ticket_id": {"S": ticket_id}},
            ScanIndexForward=False,
            limit=1,
            # Redelivery detection reads right after a concurrent save: it must see that write.
            ConsistentRead=True,
        )
        first = next(items, None)
        return decision_from_item(first) if first is not None else None

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
        sets: list[str] = []
        removes: list[str] = []
        values: dict[str, Any] = {}
        if status is SyncStatus.SUCCESS:
            removes.append("sync_status")
        else:
            sets.append("sync_status = :status")
            values[":status"] = {"S": status.value}
        if error is None:
            removes.append("sync_error")
        else:
            sets.append("sync_error = :error")
            values[":error"] = {"S": error}
        for name, moment in (("synced_at", synced_at), ("sync_attempted_at", attempted_at)):
            if moment is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": moment.isoformat()}
        expression = " ".join(
            f"{verb} {', '.join(parts)}" for verb, parts in (("SET", sets), ("REMOVE", removes)) if parts
        )
        condition = "attribute_exists(ticket_id)"
        if status is not SyncStatus.SUCCESS:
            # Success is final: a late failure (a retried stream record, a replay racing a sync)
            # must never turn a synced decision back into a failed one. Synced is an item without
            # the attribute, or, written before it was removed on success, with "success".
            condition += " AND attribute_exists(sync_status) AND sync_status <> :success"
            values[":success"] = {"S": SyncStatus.SUCCESS.value}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"ticket_id": {"S": ticket_id}, "timestamp": {"N": str(timestamp)}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != _CONDITION_FAILED:
                raise unavailable(exc, "update_sync_status", self.table_name) from exc
            if "Item" not in exc.response:
                # Nothing to update (e.g. the decision expired); the caller has nothing to undo.
                logger.warning("sync status %s for unknown decision %s@%s ignored", status.value, ticket_id, timestamp)
        except BotoCoreError as exc:
            raise unavailable(exc, "update_sync_status", self.table_name) from exc

    def find_by_sync_status(
        self,
        status: SyncStatus,
        limit: int = 100,
        *,
        received_before: int | None = None,
        made_before: datetime | None = None,
    ) -> list[RoutingDecision]:
        """The index holds keys, `created_at` and `sync_attempted_at` only (what a replay needs to
        choose); the chosen decisions are then read from the table, which also leaves out any the
        index still lists under a status they have since left.

        The index is sorted by receipt time, not by attempt: the failed or rejected are all listed
        (small entries, a few thousand to a 1 MB page) and sorted here. Pending ones, never tried,
        are read newest first as they come, their partition holding every decision in flight."""
        if limit <= 0:
            return []
        decisions: list[RoutingDecision] = []
        condition = "sync_status = :value"
        values: dict[str, Any] = {":value": {"S": status.value}}
        if received_before is not None:
            condition += " AND #timestamp < :before"
            values[":before"] = {"N": str(received_before)}
        entries = self._query(
            "find_by_sync_status",
            IndexName=SYNC_STATUS_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            **({"ExpressionAttributeNames": {"#timestamp": "timestamp"}} if received_before is not None else {}),
            ScanIndexForward=False,
            limit=_NO_LIMIT,
            page_size=lambda: max(limit - len(decisions), 100),
        )
        if status is not SyncStatus.PENDING:
            entries = iter(sorted(entries, key=_least_recently_attempted))
        chosen: list[dict[str, Any]] = []
        for entry in entries:
            if made_before is not None and not _made_by(entry, made_before):
                continue
            chosen.append(entry)
            if len(chosen) >= min(limit - len(decisions), _BATCH_GET_KEYS):
                decisions.extend(self._fetch(chosen, status, made_before))
                chosen = []
                if len(decisions) >= limit:
                    break
        if chosen:
            decisions.extend(self._fetch(chosen, status, made_before))
        return decisions[:limit]

    def _fetch(
        self, entries: list[dict[str, Any]], status: SyncStatus, made_before: datetime | None
    ) -> list[RoutingDecision]:
        """The decisions of these index entries still in `status`, in the entries' order."""
        keys = [{"ticket_id": {"S": e["ticket_id"]}, "timestamp": {"N": str(e["timestamp"])}} for e in entries]
        found: dict[tuple[str, int], dict[str, Any]] = {}
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(_BATCH_GET_ATTEMPTS):
            if attempt:
                time.sleep(_BATCH_GET_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                answer = self.client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                raise unavailable(exc, "find_by_sync_status", self.table_name) from exc
            for raw in answer.get("Responses", {}).get(self.table_name, []):
                got = deserialize_item(raw)
                found[(str(got.get("ticket_id")), int(got.get("timestamp", 0)))] = got
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RepositoryUnavailable(
                f"DynamoDB throttled or failing on find_by_sync_status ({self.table_name}): keys left unprocessed"
            )
        decisions: list[RoutingDecision] = []
        for entry in entries:
            item = found.get((str(entry["ticket_id"]), int(entry["timestamp"])))
            if item is None:
                continue  # expired since the index listed it
            try:
                decision = decision_from_item(item)
            except DamagedRecord as exc:
                # One damaged item must not stop a replay of every other; it is named for repair.
                self.unreadable.add(str(item.get("ticket_id")))
                logger.warning("left out of the find_by_sync_status: %s", exc)
                continue
            if decision.sync_status is status and (made_before is None or decision.created_at <= made_before):
                decisions.append(decision)
        return decisions

    # --- TicketHistory ----------------------------------------------------------------------

    def recent_for_customer(self, customer_id: str, limit: int = 5) -> list[PastTicket]:
        if limit <= 0:
            return []
        # Only the summary fields travel: a decision item is kilobytes, history needs six values.
        items = self._query(
            "recent_for_customer",
            IndexName=CUSTOMER_INDEX,
            KeyConditionExpression="customer_id = :value",
            ExpressionAttributeValues={":value": {"S": customer_id}},
            ProjectionExpression=(
                "ticket_id, issue_classification.primary_category, assigned_team, priority_level,"
                " requires_manual_review, created_at"
            ),
            ScanIndexForward=False,
            limit=limit,
        )
        past: list[PastTicket] = []
        for item in items:
            try:
                past.append(
                    PastTicket(
                        ticket_id=item["ticket_id"],
                        issue_category=item["issue_classification"]["primary_category"],
                        assigned_team=item["assigned_team"],
                        priority_level=item["priority_level"],
                        requires_manual_review=item["requires_manual_review"],
                        created_at=item["created_at"],
                    )
                )
            except (KeyError, TypeError, ValidationError) as exc:
                # Left out, not raised: one damaged decision would otherwise fail the routing of
                # every later ticket of its customer, for as long as the item is kept.
                self.unreadable.add(str(item.get("ticket_id")))
                logger.warning(
                    "history: decision of ticket %r left out, not a valid record (%s)",
                    item.get("ticket_id"),
                    type(exc).__name__,
                )
        return past

    def recent_for_team(self, team: str, limit: int = 20) -> list[RoutingDecision]:
        return self._query_index(TEAM_INDEX, "assigned_team", team, limit, "recent_for_team")

    # --- internals --------------------------------------------------------------------------

    def _call_fits(self, deadline: float | None, action: str) -> None:
        if deadline is not None and time.monotonic() + AWS_CALL_WORST_CASE_SECONDS > deadline:
            raise RepositoryUnavailable(f"too little time left to {action} ({self.table_name}) before the deadline")

    # --- FeedbackStore ----------------------------------------------------------------------

    def record(self, feedback: Feedback, *, deadline: float | None = None) -> Feedback | None:
        """Attach an agent's correction to the latest decision of its ticket, replacing an earlier
        one, which is returned.

        Kept on the decision item itself: the correction is part of that decision's audit trail,
        and the stream consumer ignores the MODIFY record this write causes. Each of its two calls
        is started only while its worst case ends before `deadline`.
        """
        self._call_fits(deadline, "record feedback")
        decision = self.get(feedback.ticket_id)
        if decision is None:
            raise RepositoryUnavailable(f"no decision for ticket {feedback.ticket_id} to attach feedback to")
        item = to_attribute_value(feedback.model_dump(mode="json"))
        # Checked before the write, never during it: a write given up on while under way could
        # still land, and the retry, finding it there, would leave the re-route it made uncounted.
        self._call_fits(deadline, "record feedback")
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"ticket_id": {"S": decision.ticket_id}, "timestamp": {"N": str(decision.timestamp)}},
                UpdateExpression="SET feedback = :feedback",
                ConditionExpression="attribute_exists(ticket_id)",
                ExpressionAttributeValues={":feedback": serialize_item({"v": item})["v"]},
                ReturnValues="UPDATED_OLD",
            )
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "record feedback", self.table_name) from exc
        previous = deserialize_item(response.get("Attributes", {})).get("feedback")
        return Feedback.model_validate(previous) if previous else None

    def feedback(self) -> list[Feedback]:
        """Every recorded correction (a scan: for exports, never on the request path)."""
        found: list[Feedback] = []
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "attribute_exists(feedback)",
            "ProjectionExpression": "feedback",
        }
        try:
            while True:
                page = self.client.scan(**params)
                found.extend(
                    Feedback.model_validate(deserialize_item(item)["feedback"]) for item in page.get("Items", [])
                )
                if "LastEvaluatedKey" not in page:
                    return sorted(found, key=lambda f: f.recorded_at)
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "feedback scan", self.table_name) from exc

    def _query_index(self, index: str, key: str, value: str, limit: int, action: str) -> list[RoutingDecision]:
        """Items of one partition of an index whose sort key is `timestamp`, newest first."""
        if limit <= 0:
            return []
        items = self._query(
            action,
            IndexName=index,
            KeyConditionExpression=f"{key} = :value",
            ExpressionAttributeValues={":value": {"S": value}},
            ScanIndexForward=False,
            # Read on past damaged items, each page asking for the decisions still missing.
            limit=_NO_LIMIT,
            page_size=lambda: limit - len(decisions),
        )
        decisions: list[RoutingDecision] = []
        for item in items:
            try:
                decision = decision_from_item(item)
            except DamagedRecord as exc:
                # One damaged item must not stop a listing of every other; it is named for repair.
                self.unreadable.add(str(item.get("ticket_id")))
                logger.warning("left out of the %s: %s", action, exc)
                continue
            decisions.append(decision)
            if len(decisions) >= limit:  # before asking for another page
                break
        return decisions

    def _query(
        self, action: str, *, limit: int, page_size: Callable[[], int] | None = None, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Up to `limit` python items, following LastEvaluatedKey across pages (1 MB each, or
        `page_size()` items as asked before each page), fetched only as the caller reads on."""
        params = {"TableName": self.table_name, **params}
        remaining = limit
        while remaining > 0:
            try:
                page = self.client.query(
                    **params, Limit=max(1, min(remaining, page_size() if page_size else remaining))
                )
            except (ClientError, BotoCoreError) as exc:
                raise unavailable(exc, action, self.table_name) from exc
            items = page.get("Items", [])[:remaining]
            remaining -= len(items)
            yield from (deserialize_item(item) for item in items)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last
