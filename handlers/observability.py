"""Logging that never leaks ticket text or personal data, and the metrics every function emits."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from domain.entities import mask_personal_data
from domain.errors import ConfigurationError

SERVICE_NAME = "ticket-router"
METRICS_NAMESPACE = "TicketRouting"
# Keys whose values are free text written by customers: dropped from logs entirely.
_FREE_TEXT_KEYS = frozenset({"subject", "description", "body", "text", "ticket_text", "reasoning"})
# Logs are masked for every region's national numbers, not the deployment's alone (unknown to a
# logger built at import): North American ones, and those dialled with a trunk 0 (GB, DE, FR, IE, AU).
_LOG_MASKING_REGIONS = ("US", "GB")


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal_data(value, _LOG_MASKING_REGIONS).text
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
    try:
        return Logger(service=service, logger_formatter=RedactingFormatter(), **kwargs)
    except ValueError as exc:  # Powertools' own reading of the level: "Unknown level: 'BOGUS'"
        raise ConfigurationError(
            f"invalid LOG_LEVEL (or POWERTOOLS_LOG_LEVEL): {exc}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        ) from exc


@contextlib.contextmanager
def logs_to(stream: Any, service: str = SERVICE_NAME) -> Iterator[None]:
    """Send the handlers' log lines, and anything they print (EMF metrics), to `stream` meanwhile.

    For the command line, whose stdout carries a result that must stay parseable, and benchmarks.
    Powertools binds its handler to the stdout of the time it was built, so the handler is
    re-pointed, then restored.
    """
    handlers = [h for h in logging.getLogger(service).handlers if isinstance(h, logging.StreamHandler)]
    previous = [(h, _swap_stream(h, stream)) for h in handlers]
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        for handler, original in previous:
            _swap_stream(handler, original)


def logs_to_stderr(service: str = SERVICE_NAME) -> contextlib.AbstractContextManager[None]:
    return logs_to(sys.stderr, service)


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    # Not setStream, which flushes the old stream first: that stream may be closed already (a
    # test's captured stdout), and each record is flushed as it is written anyway.
    with handler.lock or contextlib.nullcontext():
        previous, handler.stream = handler.stream, stream
    return previous
