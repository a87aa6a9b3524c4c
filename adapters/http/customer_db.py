"""CustomerDirectory over the customer DB's HTTP API: GET {endpoint}/customers/{id}."""

from __future__ import annotations

import requests
from pydantic import ValidationError

from adapters.http.client import HttpClient, path_segment
from adapters.http.evidence import NOT_FOUND, lookup_json
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
        # A redirect is not followed: requests reads a redirect's body whole, past MAX_BODY_BYTES.
        document = lookup_json(
            self,
            lambda deadline: self.session.get(
                url,
                timeout=deadline.timeout(self.timeout),
                headers={"Accept": "application/json"},
                allow_redirects=False,
                stream=True,
            ),
            "customer DB",
            about=customer_id,
            not_found=True,
        )
        if document is NOT_FOUND:
            return CustomerProfile.unknown(customer_id)
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
