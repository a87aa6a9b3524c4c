"""What every HTTP adapter shares: a base URL, a timeout and a lazily created, reusable session."""

from __future__ import annotations

from urllib.parse import quote

import requests


def path_segment(value: str) -> str:
    """`value` as one URL path segment that addresses nothing else: "/" is encoded, and a segment
    of dots is refused, since "%2E" is decoded again by requests and "." or ".." resolve to other
    resources. Identifiers are validated at the API; this keeps a stored or replayed one honest."""
    if value.strip(".") == "":
        raise ValueError(f"{value!r} cannot be a URL path segment")
    return quote(value, safe="")


class HttpClient:
    def __init__(self, endpoint: str, *, session: requests.Session | None = None, timeout: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._session = session

    @property
    def session(self) -> requests.Session:
        # One session per adapter: connections are kept alive across a warm Lambda's invocations.
        if self._session is None:
            self._session = requests.Session()
        return self._session
