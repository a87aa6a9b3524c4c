"""What every HTTP adapter shares: a base URL, a timeout and a lazily created, reusable session."""

from __future__ import annotations

import contextlib
import time
from urllib.parse import quote

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

# Far above any profile, status answer or error message; far below a Lambda's memory.
MAX_BODY_BYTES = 1_000_000


class ResponseTooLarge(requests.RequestException):
    """The answer's body is larger than any legitimate answer: it is not read further."""


def path_segment(value: str) -> str:
    """`value` as one URL path segment that addresses nothing else: "/" is encoded, and a segment
    of dots is refused, since "%2E" is decoded again by requests and "." or ".." resolve to other
    resources. Identifiers are validated at the API; this keeps a stored or replayed one honest."""
    if value.strip(".") == "":
        raise ValueError(f"{value!r} cannot be a URL path segment")
    return quote(value, safe="")


def read_body(response: requests.Response, *, seconds: float, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body of a `stream=True` response, given up on past `seconds` or `limit` bytes.

    requests' timeout bounds each read of the socket, not their sum: a server sending a byte now
    and then would hold a lookup for as long as it likes, and one sending gigabytes would fill the
    function's memory. Raises requests exceptions, as reading `.content` would.
    """
    deadline = time.monotonic() + seconds
    body = bytearray()
    try:
        # read1 returns what one read of the socket brings, so the clock is checked between reads.
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            body += chunk
            if len(body) > limit:
                raise ResponseTooLarge(f"answer too large: over {limit} bytes")
            if time.monotonic() > deadline:
                raise requests.Timeout(f"answer not received within {seconds:g}s")
    except ReadTimeoutError as exc:
        raise requests.Timeout(str(exc)) from exc
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(str(exc)) from exc
    except SSLError as exc:  # a record that fails its integrity check, mid-body
        raise requests.exceptions.SSLError(str(exc)) from exc
    return bytes(body)


def discard_body(response: requests.Response, *, seconds: float) -> None:
    """Read and drop a body that is not needed, within `seconds`: only a connection whose answer
    was read to the end goes back to the pool; closed mid-body, the next request must reconnect."""
    # Unreadable, it changes nothing: the answer is known from its status, and this connection
    # is closed instead.
    with contextlib.suppress(requests.RequestException):
        read_body(response, seconds=seconds)


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
