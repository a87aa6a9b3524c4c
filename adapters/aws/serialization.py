"""RoutingDecision <-> DynamoDB item, shared by the repository and the stream consumer.

Every decision field is a top-level attribute so that the stream's NewImage carries the whole
decision and the GSIs can index customer_id, assigned_team and sync_status directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import ValidationError

from domain.errors import DamagedRecord
from domain.models import RoutingDecision, SyncStatus

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_attribute_value(value: Any) -> Any:
    """A python value as DynamoDB accepts it: floats as Decimal, None dropped, tuples as lists.

    Returns None for a value that must be left out (DynamoDB has NULL, but an absent attribute
    keeps items smaller and lets `attribute_not_exists` mean "never set").
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        if not math.isfinite(value):
            # DynamoDB has no NaN/Infinity; an absent attribute falls back to the model default.
            return None
        # repr() is the shortest string that round-trips the float, so no binary noise is stored.
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): v for k, v in ((k, to_attribute_value(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list | tuple):
        return [v for v in (to_attribute_value(item) for item in value) if v is not None]
    return value


def decision_to_item(decision: RoutingDecision) -> dict[str, Any]:
    """The decision as a python item (Decimal numbers), ready for TypeSerializer."""
    item = to_attribute_value(decision.model_dump(mode="python"))
    if not isinstance(item, dict):  # pragma: no cover - model_dump always gives a dict
        raise TypeError("a decision must serialise to a map")
    if decision.sync_status is SyncStatus.SUCCESS:
        # Absent once synced, so that the sync-status index holds only the decisions replay wants.
        del item["sync_status"]
    return item


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """python item -> DynamoDB JSON ({"S": ...}) for the low-level client."""
    return {key: _SERIALIZER.serialize(value) for key, value in item.items()}


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON -> python item (numbers as Decimal)."""
    return {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}


def decision_to_dynamodb(decision: RoutingDecision) -> dict[str, Any]:
    return serialize_item(decision_to_item(decision))


def decision_from_item(item: Mapping[str, Any]) -> RoutingDecision:
    """python item (as the repository or Powertools' DynamoDBRecord.new_image give it) -> decision.

    An item that no longer reads as one (edited by hand, written by an incompatible release) is a
    DamagedRecord naming the ticket, without the pydantic cause, which would quote customer text.
    """
    values = _from_decimals(item)
    if isinstance(values, dict) and "sync_status" not in values:
        # Removed on success (see decision_to_item); an item written before that keeps "success".
        values["sync_status"] = SyncStatus.SUCCESS.value
    try:
        return RoutingDecision.model_validate(values)
    except ValidationError as exc:
        raise DamagedRecord(
            f"the stored decision for ticket {item.get('ticket_id')!r} is not a valid record"
            f" ({exc.error_count()} error(s), first: {exc.errors()[0]['msg']})"
        ) from None


def decision_from_stream_image(image: Mapping[str, Any]) -> RoutingDecision:
    """A stream image -> the decision it holds.

    Accepts the raw DynamoDB JSON of a Lambda event record ({"ticket_id": {"S": ...}}) as well as
    an image Powertools has already deserialised (plain values, numbers as Decimal).
    """
    if _is_dynamodb_json(image):
        return decision_from_item(deserialize_item(image))
    return decision_from_item(image)


def _is_dynamodb_json(image: Mapping[str, Any]) -> bool:
    # ticket_id is a string in every decision, so a dict there can only be a type descriptor.
    # Looking at the key rather than at every value avoids mistaking a nested model for one.
    return isinstance(image.get("ticket_id"), Mapping)


def _from_decimals(value: Any) -> Any:
    # Integral numbers go back to int so that int fields (timestamp, ttl, factors) validate in
    # strict-looking form; other numbers stay Decimal, which keeps Money.amount exact and is
    # accepted by pydantic for float fields.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, Mapping):
        return {k: _from_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_from_decimals(v) for v in value]
    return value
