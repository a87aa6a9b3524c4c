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
        logger = Logger(service=service, logger_formatter=RedactingFormatter(), **kwargs)
    except ValueError as exc:  # Powertools' own reading of the level: "Unknown level: 'BOGUS'"
        raise ConfigurationError(
            f"invalid LOG_LEVEL (or POWERTOOLS_LOG_LEVEL): {exc}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        ) from exc
    if service == SERVICE_NAME:
        _redact_app_logs(logger.registered_handler, logger.log_level)
    return logger


# The packages whose modules log with logging.getLogger(__name__): adapters may not import handlers,
# so they cannot use the Logger above, and their records would reach the root logger's handler (the
# Lambda runtime's, writing them as they are) with the customer's e-mail or phone number in them.
_APP_PACKAGES = ("adapters", "domain", "handlers")


def _is_app_record(record: logging.LogRecord) -> bool:
    return any(record.name == package or record.name.startswith(f"{package}.") for package in _APP_PACKAGES)


class _WithoutAppRecords(logging.Filter):
    """On the root logger's handlers: the app's records are written, redacted, by the service's handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_app_record(record)


def _redact_app_logs(handler: logging.Handler, level: int) -> None:
    """Write the app's standard-library log records through the service's redacting handler, at
    the service's level (LOG_LEVEL), not the root logger's WARNING, which would drop their INFO lines.

    They still propagate, so that a handler added later (pytest's caplog, a command's own) sees
    them; the root handlers there now, as Powertools does for the service's own records, leave
    them out, which would otherwise write each a second time, unredacted.
    """
    for package in _APP_PACKAGES:
        package_logger = logging.getLogger(package)
        package_logger.setLevel(level)
        if handler not in package_logger.handlers:
            package_logger.addHandler(handler)
    for root_handler in logging.root.handlers:
        # pytest's capture handler, as Powertools leaves it too: tests read the app's records there.
        if type(root_handler).__name__ == "LogCaptureHandler":
            continue
        if not any(isinstance(f, _WithoutAppRecords) for f in root_handler.filters):
            root_handler.addFilter(_WithoutAppRecords())


@contextlib.contextmanager
def app_logs_to(stream: Any, service: str = SERVICE_NAME) -> Iterator[None]:
    """Write the service's log lines, and the app's (adapters, domain, handlers), redacted, to
    `stream` meanwhile.

    Powertools binds its handler to the stdout of the time it was built (by whichever module built
    the logger first), so the handler is re-pointed, then restored. Built here if no module has:
    without it an adapter's warning would reach stderr unredacted, through logging's last resort.
    """
    build_logger(service)
    handlers = [h for h in logging.getLogger(service).handlers if isinstance(h, logging.StreamHandler)]
    previous = [(h, _swap_stream(h, stream)) for h in handlers]
    try:
        yield
    finally:
        for handler, original in previous:
            _swap_stream(handler, original)


@contextlib.contextmanager
def logs_to(stream: Any, service: str = SERVICE_NAME) -> Iterator[None]:
    """Send the handlers' log lines, and anything they print (EMF metrics), to `stream` meanwhile.

    For the command line, whose stdout carries a result that must stay parseable, and benchmarks.
    """
    with app_logs_to(stream, service), contextlib.redirect_stdout(stream):
        yield


def logs_to_stderr(service: str = SERVICE_NAME) -> contextlib.AbstractContextManager[None]:
    return logs_to(sys.stderr, service)


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    # Not setStream, which flushes the old stream first: that stream may be closed already (a
    # test's captured stdout), and each record is flushed as it is written anyway.
    with handler.lock or contextlib.nullcontext():
        previous, handler.stream = handler.stream, stream
    return previous
