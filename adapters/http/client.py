"""What every HTTP adapter shares: a base URL, a timeout and a lazily created, reusable session."""

from __future__ import annotations

import requests


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
