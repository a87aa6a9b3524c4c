"""EventPublisher over EventBridge: one PutEvents entry per TicketReceived."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.client_config import aws_client_config
from domain.errors import PublishFailed
from domain.models import TicketReceived

DETAIL_TYPE = "TicketReceived"
DEFAULT_SOURCE = "support.ticketing"


class EventBridgePublisher:
    def __init__(self, bus_name: str, *, client: Any = None, source: str = DEFAULT_SOURCE) -> None:
        self.bus_name = bus_name
        self.source = source
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("events", config=aws_client_config())
        return self._client

    def publish_ticket_received(self, event: TicketReceived) -> None:
        entry = {
            "Source": self.source,
            "DetailType": DETAIL_TYPE,
            # pydantic writes the UTC timestamp as ISO 8601 with "Z", which rules can match on.
            "Detail": event.model_dump_json(),
            "EventBusName": self.bus_name,
        }
        try:
            response = self.client.put_events(Entries=[entry])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise PublishFailed(f"EventBridge refused {event.ticket_id} on {self.bus_name}: {code}: {exc}") from exc
        except BotoCoreError as exc:
            raise PublishFailed(f"EventBridge unreachable for {event.ticket_id}: {exc}") from exc
        # PutEvents reports per-entry failures in a 200 response: they must not pass for success.
        if response.get("FailedEntryCount", 0):
            failed: dict[str, Any] = next((e for e in response.get("Entries", []) if e.get("ErrorCode")), {})
            raise PublishFailed(
                f"EventBridge rejected {event.ticket_id} on {self.bus_name}: "
                f"{failed.get('ErrorCode', 'unknown')}: {failed.get('ErrorMessage', '')}".rstrip(": ")
            )
