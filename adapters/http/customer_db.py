"""CustomerDirectory over the customer DB's HTTP API: GET {endpoint}/customers/{id}."""

from __future__ import annotations

import json
from typing import Any

import requests
from pydantic import ValidationError

from adapters.http.client import HttpClient, discard_body, path_segment
from adapters.http.retry import describe_response, send_with_quick_retry
from domain.errors import EvidenceUnavailable
from domain.models import CustomerProfile


class HttpCustomerDirectory(HttpClient):
    """404 means "no such customer" (an unprivileged default profile); anything else that is not
    a valid profile means the DB could not tell us, which the domain must treat as unknown evidence."""

    def __init__(self, endpoint: str, *, session: requests.Session | None = None, timeout: float = 3.0) -> None:
        super().__init__(endpoint, session=session, timeout=timeout)

    def get_profile(self, customer_id: str) -> CustomerProfile:
        try:
            url = f"{self.endpoint}/customers/{path_segment(customer_id)}"
        except ValueError:
            return CustomerProfile.unknown(customer_id)  # as for a 404: no customer has such an id
        with self.deadline() as deadline:
            try:
                # A redirect is not followed: requests reads a redirect's body whole, past MAX_BODY_BYTES.
                response, body = send_with_quick_retry(
                    lambda: self.session.get(
                        url,
                        timeout=deadline.timeout(self.timeout),
                        headers={"Accept": "application/json"},
                        allow_redirects=False,
                        stream=True,
                    ),
                    deadline=deadline,
                )
            except requests.RequestException as exc:
                failed = "unreachable" if exc.response is None else "answer unreadable"
                raise EvidenceUnavailable(f"customer DB {failed} for {customer_id}: {deadline.failure(exc)}") from exc
            with response:
                if response.status_code == 404:
                    discard_body(response, deadline=deadline)
                    return CustomerProfile.unknown(customer_id)
                if not 200 <= response.status_code < 300:
                    failure = describe_response(response, deadline=deadline)
                    if 300 <= response.status_code < 400:
                        failure += f" to {response.headers.get('Location', 'nowhere')}"
                    raise EvidenceUnavailable(f"customer DB failed for {customer_id}: {failure}")
        try:
            document: Any = json.loads(body)
        # json's decoder recurses once per nesting level: an answer nested deep enough exhausts it.
        except (ValueError, RecursionError) as exc:
            raise EvidenceUnavailable(f"customer DB sent invalid JSON for {customer_id}") from exc
        if not isinstance(document, dict):
            raise EvidenceUnavailable(f"customer DB sent a {type(document).__name__}, not a profile, for {customer_id}")
        document.setdefault("customer_id", customer_id)
        try:
            profile = CustomerProfile.model_validate(document)
        except ValidationError as exc:
            raise EvidenceUnavailable(f"customer DB sent an invalid profile for {customer_id}: {exc}") from exc
        if profile.customer_id.casefold() != customer_id.casefold():
            # Another customer's profile (a mixed-up cache or proxy in front of the DB) would lend
            # this one its VIP status and services. Case is not compared: a DB that answers with
            # its own canonical spelling of the id ("CUST-7" for "cust-7") would otherwise have
            # every customer routed as unknown.
            raise EvidenceUnavailable(
                f"customer DB sent the profile of {profile.customer_id!r} when asked for {customer_id!r}"
            )
        return profile.model_copy(update={"customer_id": customer_id})
