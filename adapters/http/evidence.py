"""One evidence lookup on the routing path (the customer DB, the service status API), whatever it asks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests

from adapters.http.client import HttpClient, discard_body
from adapters.http.deadline import Deadline
from adapters.http.retry import describe_response, send_with_quick_retry
from domain.errors import EvidenceUnavailable

# What a 404 answers when the lookup allows one: not None, which a 200 of `null` decodes to.
NOT_FOUND: Any = object()


def lookup_json(
    client: HttpClient,
    send: Callable[[Deadline], requests.Response],
    source: str,
    *,
    about: str = "",
    not_found: bool = False,
) -> Any:
    """The JSON answer of `send` (a request under the given deadline, redirects not followed),
    sent once more at once on a transient failure; NOT_FOUND for a 404 when `not_found` allows one.

    Any other failure, a 3xx among them, is EvidenceUnavailable naming `source` (and `about`).
    """
    where = f" for {about}" if about else ""
    with client.deadline() as deadline:
        try:
            response, body = send_with_quick_retry(lambda: send(deadline), deadline=deadline)
        except requests.RequestException as exc:
            failed = "unreachable" if exc.response is None else "answer unreadable"
            raise EvidenceUnavailable(f"{source} {failed}{where}: {deadline.failure(exc)}") from exc
        with response:
            if not_found and response.status_code == 404:
                discard_body(response, deadline=deadline)
                return NOT_FOUND
            if not 200 <= response.status_code < 300:
                failure = describe_response(response, deadline=deadline)
                if 300 <= response.status_code < 400:
                    failure += f" to {response.headers.get('Location', 'nowhere')}"
                raise EvidenceUnavailable(f"{source} failed{where}: {failure}")
    try:
        return json.loads(body)
    # json's decoder recurses once per nesting level: an answer nested deep enough exhausts it.
    except (ValueError, RecursionError) as exc:
        raise EvidenceUnavailable(f"{source} sent invalid JSON{where}") from exc
