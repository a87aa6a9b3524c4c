"""What every HTTP adapter shares: a base URL, a timeout and a lazily created, reusable session."""

from __future__ import annotations

import contextlib
from urllib.parse import quote

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

from adapters.http.deadline import Deadline, DeadlineTransport

# Far above any profile, status answer or error message; far below a Lambda's memory.
MAX_BODY_BYTES = 1_000_000

# A request waits for its connection, its answer's headers and its body in turn, each up to the
# timeout: however a server paces its bytes, the request is cut off once all three could be over.
WAITS_PER_REQUEST = 3


class ResponseTooLarge(requests.RequestException):
    """The answer's body is larger than any legitimate answer: it is not read further."""


def path_segment(value: str) -> str:
    """`value` as one URL path segment that addresses nothing else: "/" is encoded, and a segment
    of dots is refused, since "%2E" is decoded again by requests and "." or ".." resolve to other
    resources. Identifiers are validated at the API; this keeps a stored or replayed one honest."""
    if value.strip(".") == "":
        raise ValueError(f"{value!r} cannot be a URL path segment")
    return quote(value, safe="")


def read_body(response: requests.Response, *, deadline: Deadline, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body of a `stream=True` response, given up on past `deadline` or `limit` bytes.

    requests' timeout bounds each read of the socket, not their sum: a server sending a byte now
    and then would hold a lookup for as long as it likes, and one sending gigabytes would fill the
    function's memory. Raises requests exceptions, as reading `.content` would.
    """
    body = bytearray()
    try:
        # read1 returns what one read of the socket brings, so the clock is checked between reads.
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            body += chunk
            if len(body) > limit:
                raise ResponseTooLarge(f"answer too large: over {limit} bytes")
            if deadline.expired:
                raise deadline.timed_out()
    except ReadTimeoutError as exc:
        raise requests.Timeout(str(exc)) from exc
    except ProtocolError as exc:
        raise deadline.failure(requests.exceptions.ChunkedEncodingError(str(exc))) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(str(exc)) from exc
    except SSLError as exc:  # a record that fails its integrity check, mid-body
        raise deadline.failure(requests.exceptions.SSLError(str(exc))) from exc
    if deadline.expired:
        # The socket the deadline shut down reads as the end of a body whose length is not told.
        raise deadline.timed_out()
    return bytes(body)


def discard_body(response: requests.Response, *, deadline: Deadline) -> None:
    """Read and drop a body that is not needed, within `deadline`: only a connection whose answer
    was read to the end goes back to the pool; closed mid-body, the next request must reconnect."""
    # Unreadable, it changes nothing: the answer is known from its status, and this connection
    # is closed instead.
    with contextlib.suppress(requests.RequestException):
        read_body(response, deadline=deadline)


class HttpClient:
    """`timeout` bounds each wait of a request; `deadline()` the request as a whole.

    Requests to the endpoint go through a DeadlineTransport mounted on the session (an injected
    one too), without which a deadline could not cut off a request in flight.
    """

    def __init__(self, endpoint: str, *, session: requests.Session | None = None, timeout: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._session = None if session is None else self._mounted(session)

    @property
    def session(self) -> requests.Session:
        # One session per adapter: connections are kept alive across a warm Lambda's invocations.
        if self._session is None:
            self._session = self._mounted(requests.Session())
        return self._session

    def deadline(self, timeout: float | None = None) -> Deadline:
        """The deadline of a request whose waits are each bounded by `timeout` (the client's by default)."""
        return Deadline(WAITS_PER_REQUEST * (self.timeout if timeout is None else timeout))

    def _mounted(self, session: requests.Session) -> requests.Session:
        prefix = self.endpoint + "/"
        if not isinstance(session.adapters.get(prefix), DeadlineTransport):
            session.mount(prefix, DeadlineTransport())
        return session
