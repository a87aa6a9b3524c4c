"""Logging that never leaks ticket text or personal data, and the metrics every function emits."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from domain.entities import mask_personal_data

SERVICE_NAME = "ticket-router"
METRICS_NAMESPACE = "TicketRouting"
# Keys whose values are free text written by customers: dropped from logs entirely.
_FREE_TEXT_KEYS = frozenset({"subject", "description", "body", "text", "ticket_text", "reasoning"})


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal_data(value).text
    if isinstance(value, dict):
        return {
            key: "[redacted]" if str(key).lower() in _FREE_TEXT_KEYS else redact(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Masks emails, phone and account numbers in every field, and drops free-text fields."""

    def serialize(self, log: dict[str, Any] | Any) -> str:
        # Serialise first so that values Powertools renders late (stack traces, objects) are
        # redacted in their final, textual form too.
        return self.json_serializer(redact(json.loads(self.json_serializer(log))))


def build_logger(service: str = SERVICE_NAME, **kwargs: Any) -> Logger:
    return Logger(service=service, logger_formatter=RedactingFormatter(), **kwargs)
