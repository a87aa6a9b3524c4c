"""A deadline over a request as a whole: its connection, its answer's status line and headers, its body.

requests' timeout bounds each read of the socket, not their sum, and read_body bounds the body
only: a server sending its status line and headers a byte at a time, each byte within the timeout,
held a request for as long as it liked. Under a `Deadline`, the socket of a request sent through a
`DeadlineTransport` is shut down once the deadline passes, which ends the read blocked on it.

    with Deadline(seconds) as deadline:
        response = session.get(url, timeout=deadline.timeout(per_wait), stream=True)
        body = read_body(response, deadline=deadline)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3 import poolmanager as urllib3_poolmanager
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ReadTimeoutError

# Where a request's connection names the deadline watching it, until it goes back to the pool.
_WATCHED_BY = "_ticket_router_deadline"


class Deadline:
    """A point in time past which a request is cut off; a context manager whose exit stops the watch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self._expired = False
        self._over = False
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            self._over = True
            self._connections.clear()
        self._timer.cancel()

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self._at

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())

    def timeout(self, per_wait: float) -> Any:  # a DeadlineTimeout: requests' stubs name only floats
        """requests' `timeout` for a request under this deadline: each wait at most `per_wait`, and
        all of them within the time left. Raises requests.Timeout when none is left."""
        remaining = self.remaining()
        if remaining <= 0:
            raise self.timed_out()
        wait = min(per_wait, remaining)
        return DeadlineTimeout(self, connect=wait, read=wait, total=remaining)

    def timed_out(self) -> requests.Timeout:
        return requests.Timeout(f"no complete answer within {self.seconds:g}s")

    def failure(self, exc: requests.RequestException) -> requests.RequestException:
        """What `exc` means: past the deadline, a broken connection is the one it cut."""
        return self.timed_out() if self.expired else exc

    def _watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            if self._over:
                return
            setattr(connection, _WATCHED_BY, self)
            self._connections.append(connection)
            if self._expired:
                _cut(connection)

    def _release(self, connection: HTTPConnection) -> None:
        # Back in the pool, the connection may serve another request: it is no longer this one's to cut.
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)

    def _expire(self) -> None:
        # Under the lock, so that no connection is cut once released or once the watch is over.
        with self._lock:
            if self._over:
                return
            self._expired = True
            for connection in self._connections:
                _cut(connection)


def _cut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is None:
        # Still connecting: the connect timeout ends by the deadline, and urllib3 gives the answer
        # only the time its `total` has left (none), so no read follows.
        return
    # socket.socket's own shutdown: ssl.SSLSocket's also drops the TLS state under the read that
    # another thread is still blocked in; ending the stream under it is all that is needed.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class DeadlineTimeout(Timeout):
    """urllib3's Timeout carrying the deadline to the connection pool (requests passes a Timeout
    through as it is), so that the pool can hand the deadline the request's connection."""

    def __init__(self, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline

    def clone(self) -> DeadlineTimeout:
        return DeadlineTimeout(self.deadline, connect=self._connect, read=self._read, total=self.total)


class _WatchedPool(HTTPConnectionPool):
    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        timeout = kwargs.get("timeout")
        if not isinstance(timeout, DeadlineTimeout):
            return super()._make_request(conn, method, url, *args, **kwargs)
        deadline = timeout.deadline
        deadline._watch(conn)
        response = super()._make_request(conn, method, url, *args, **kwargs)
        if deadline._expired:
            # Cut off mid-headers, http.client takes the end of the stream for the end of the
            # headers: the status and the headers read so far would pass for a whole answer.
            raise ReadTimeoutError(self, url, str(deadline.timed_out()))
        return response

    def _put_conn(self, conn: Any) -> None:
        deadline = getattr(conn, _WATCHED_BY, None)
        if deadline is not None:
            delattr(conn, _WATCHED_BY)
            deadline._release(conn)
        super()._put_conn(conn)


class _WatchedHttpsPool(_WatchedPool, HTTPSConnectionPool):
    pass


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _WatchedPool, "https": _WatchedHttpsPool}


class DeadlineTransport(HTTPAdapter):
    """requests' transport, its connection pools handing each request's connection to its deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # A SOCKS proxy has pools of its own, which are left as they are (unwatched).
        if manager.pool_classes_by_scheme is urllib3_poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager
