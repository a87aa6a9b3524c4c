"""ServiceStatusProvider over the status API: POST {endpoint}/status/batch {"service_ids": [...]}."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import requests
from pydantic import ValidationError

from adapters.http.client import HttpClient
from adapters.http.retry import describe_response, send_with_quick_retry
from domain.errors import EvidenceUnavailable
from domain.models import ServiceStatus


class HttpServiceStatusProvider(HttpClient):
    """An empty `service_ids` list is still sent: the answer's known_issues and overall_health are
    network-wide and feed the evidence even when the ticket names no service."""

    def __init__(self, endpoint: str, *, session: requests.Session | None = None, timeout: float = 3.0) -> None:
        super().__init__(endpoint, session=session, timeout=timeout)

    def get_status(self, service_ids: Sequence[str]) -> ServiceStatus:
        url = f"{self.endpoint}/status/batch"
        body = {"service_ids": list(service_ids)}
        with self.deadline() as deadline:
            try:
                # A redirect is not followed: requests turns a 301/302/303 POST into a bodiless GET,
                # whose answer, asked about no service, would pass for "no outage on these".
                response, raw = send_with_quick_retry(
                    lambda: self.session.post(
                        url, json=body, timeout=deadline.timeout(self.timeout), allow_redirects=False, stream=True
                    ),
                    deadline=deadline,
                )
            except requests.RequestException as exc:
                failed = "unreachable" if exc.response is None else "answer unreadable"
                raise EvidenceUnavailable(f"service status API {failed}: {deadline.failure(exc)}") from exc
            with response:
                if not 200 <= response.status_code < 300:
                    failure = describe_response(response, deadline=deadline)
                    if 300 <= response.status_code < 400:
                        failure += f" to {response.headers.get('Location', 'nowhere')}"
                    raise EvidenceUnavailable(f"service status API failed: {failure}")
        try:
            document: Any = json.loads(raw)
        # json's decoder recurses once per nesting level: an answer nested deep enough exhausts it.
        except (ValueError, RecursionError) as exc:
            raise EvidenceUnavailable("service status API sent invalid JSON") from exc
        try:
            return ServiceStatus.model_validate(document)
        except ValidationError as exc:
            raise EvidenceUnavailable(f"service status API sent an invalid answer: {exc}") from exc
