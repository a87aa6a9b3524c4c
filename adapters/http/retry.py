"""Retry helpers shared by the HTTP adapters: backoff with jitter, Retry-After, transient errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from adapters.http.client import read_body
from adapters.http.deadline import Deadline

# Failures worth another attempt: the request may never have reached the server, or the
# connection broke mid-answer. Anything else (invalid URL, too many redirects) will not heal.
TRANSIENT_ERRORS: tuple[type[requests.RequestException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


# An error body is read only to quote its start.
ERROR_BODY_BYTES = 64 * 1024


def is_retryable_status(status: int) -> bool:
    # 408: the server gave up waiting for the request, which says nothing against sending it again.
    return status in (408, 429) or status >= 500


def backoff_delay(attempt: int, *, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Capped exponential backoff with "equal jitter": half the nominal delay fixed, half random.

    Nominal delay for attempt n (0-based) is min(base * 2**n, cap): 1, 2, 4, 8, 16 s for base 1,
    cap 16. Equal jitter spreads retries of many clients apart (unlike no jitter) while never
    retrying sooner than half the schedule (unlike full jitter, which may retry at once).
    """
    nominal = min(base * (2**attempt), cap)
    return nominal / 2 + rng() * nominal / 2


def parse_retry_after(value: str | None, *, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        # OverflowError: a year too large for the C long that datetime is built from.
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or _utcnow)()).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def describe_response(response: requests.Response, *, deadline: Deadline, limit: int = 200) -> str:
    """`HTTP 503: <start of body>` for error messages; the body is cut so logs stay small.

    The body of a `stream=True` response is read until `deadline` at most: it only explains a
    failure already known from the status, so one that cannot be read in time is left out.
    """
    try:
        raw = read_body(response, deadline=deadline, limit=ERROR_BODY_BYTES)
    except requests.RequestException:
        raw = b""
    try:
        text = raw.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset no codec here knows: the body is only quoted, as best it can be
        text = raw.decode("utf-8", errors="replace")
    body = text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}" + (f": {body[:limit]}" if body else "")


def send_with_quick_retry(
    send: Callable[[], requests.Response], *, deadline: Deadline
) -> tuple[requests.Response, bytes]:
    """Send, and read a 2xx answer's body; on a refused connection, one dropped before or during the
    answer, or a 5xx, do it once more straight away.

    For evidence lookups on the routing path: one immediate retry rides out a recycled pooled
    connection or a single bad instance behind a load balancer. Timeouts are not retried, since a
    second wait would double the worst-case latency of every ticket; the retry runs within
    `deadline`, as the first attempt did. Returns the response and, for a 2xx, its body (b""
    otherwise: unread, for the caller to drop or quote). Exceptions propagate; one raised while
    reading a body carries its response.
    """
    try:
        response, body = _send_and_read(send, deadline)
    except requests.Timeout:
        raise
    except TRANSIENT_ERRORS:
        return _send_and_read(send, deadline)
    if response.status_code >= 500:
        response.close()
        return _send_and_read(send, deadline)
    return response, body


def _send_and_read(send: Callable[[], requests.Response], deadline: Deadline) -> tuple[requests.Response, bytes]:
    response = send()
    if not 200 <= response.status_code < 300:
        return response, b""
    try:
        return response, read_body(response, deadline=deadline)
    except requests.RequestException as exc:
        response.close()
        if exc.response is None:
            exc.response = response
        raise
