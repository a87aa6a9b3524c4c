"""ServiceStatusProvider over the status API: POST {endpoint}/status/batch {"service_ids": [...]}."""

from __future__ import annotations

from collections.abc import Sequence

import requests
from pydantic import ValidationError

from adapters.http.client import HttpClient
from adapters.http.evidence import lookup_json
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
        # A redirect is not followed: requests turns a 301/302/303 POST into a bodiless GET, whose
        # answer, asked about no service, would pass for "no outage on these".
        document = lookup_json(
            self,
            lambda deadline: self.session.post(
                url, json=body, timeout=deadline.timeout(self.timeout), allow_redirects=False, stream=True
            ),
            "service status API",
        )
        try:
            return ServiceStatus.model_validate(document)
        except ValidationError as exc:
            raise EvidenceUnavailable(f"service status API sent an invalid answer: {exc}") from exc
