"""Real HTTP servers on 127.0.0.1 standing in for the customer DB, the service status API and the
ticketing system: the HTTP adapters are tested over real sockets, never against a mocked client.

Each server records every request and can be told to misbehave for the next N requests:

    with FakeTicketingSystem(api_key="k") as ticketing:
        ticketing.fail_next(2, status=503)          # 2 x 503, then the normal answer
        ticketing.throttle_next(1, retry_after="3") # 429 with Retry-After: 3
        ticketing.hang_next(1, seconds=5)           # answer only after 5 s (or at exit), past the client timeout
        ticketing.reject_next(1, status=400)        # a permanent refusal
        ticketing.malformed_next(1)                 # 200 with a body that is not JSON
        ticketing.drip_next(1, seconds_per_byte=0.1) # the normal answer, its body one byte at a time
        ticketing.drip_next(1, seconds_per_byte=0.1, headers=True) # its status line and headers so instead
        ticketing.drop_next(1)                      # the normal answer, its connection closed mid-body
        adapter = HttpTicketingSystem(ticketing.url, ...)

Faults queue up in order and are consumed one per request; `times=None` repeats one forever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import socket
import ssl
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import requests


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    # The client's (host, port): one port for several requests means one kept-alive connection.
    client: tuple[str, int] = ("", 0)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    # The body is sent one byte at a time, this far apart: each read is quick, the whole is slow.
    seconds_per_byte: float = 0.0
    # The status line and headers are sent so instead, and the body at once.
    drip_headers: bool = False
    # The connection is closed after this many bytes of the body, short of its Content-Length.
    cut_after: int | None = None

    @classmethod
    def json(cls, document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Fault:
    reply: Reply | None = None
    hang_seconds: float = 0.0
    times: int | None = 1  # None: forever
    seconds_per_byte: float = 0.0  # the normal answer, dripped (when there is no `reply`)
    drip_headers: bool = False  # its status line and headers dripped instead of its body
    drop: bool = False  # the normal answer, its connection closed halfway through the body


class FakeHttpServer:
    """Base: subclasses implement `respond`; faults and recording are handled here."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        # Set on exit so that hanging handlers return at once instead of holding the test up.
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- fault injection --------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def fail_next(self, times: int | None = 1, *, status: int = 503) -> None:
        self.add_fault(Fault(Reply.json({"error": "unavailable"}, status), times=times))

    def throttle_next(self, times: int | None = 1, *, retry_after: str | None = "1") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.add_fault(Fault(Reply.json({"error": "slow down"}, 429, headers), times=times))

    def hang_next(self, times: int | None = 1, *, seconds: float = 5.0) -> None:
        self.add_fault(Fault(hang_seconds=seconds, times=times))

    def reject_next(self, times: int | None = 1, *, status: int = 400, message: str = "bad request") -> None:
        self.add_fault(Fault(Reply.json({"error": message}, status), times=times))

    def malformed_next(self, times: int | None = 1) -> None:
        self.add_fault(Fault(Reply(200, b"<html>not json</html>", {"Content-Type": "text/html"}), times=times))

    def drip_next(self, times: int | None = 1, *, seconds_per_byte: float, headers: bool = False) -> None:
        self.add_fault(Fault(seconds_per_byte=seconds_per_byte, times=times, drip_headers=headers))

    def drop_next(self, times: int | None = 1) -> None:
        self.add_fault(Fault(drop=True, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.popleft()
            return fault

    # --- behaviour --------------------------------------------------------------------------

    def respond(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def requests_to(self, method: str, path_prefix: str = "/") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def _serve(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault()
        if fault is not None:
            if fault.hang_seconds:
                self._closing.wait(fault.hang_seconds)
            if fault.reply is not None:
                return fault.reply
            if self._closing.is_set():
                return None  # shutting down mid-hang: drop the connection unanswered
            if fault.drop:
                answer = self.respond(request)
                return dataclasses.replace(answer, cut_after=len(answer.body) // 2)
            if fault.seconds_per_byte:
                return dataclasses.replace(
                    self.respond(request), seconds_per_byte=fault.seconds_per_byte, drip_headers=fault.drip_headers
                )
        # After a hang the normal answer still goes out: a client with a longer timeout gets it,
        # one that gave up gets a broken pipe, which the handler ignores.
        return self.respond(request)


def _handler_for(server: FakeHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Nagle's algorithm would hold each small reply for ~40 ms waiting for the client's ACK.
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                self.command, self.path, dict(self.headers.items()), body, tuple(self.client_address[:2])
            )
            reply = server._serve(request)
            if reply is None:
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.cut_after is not None:
                    self.end_headers()
                    self.wfile.write(reply.body[: reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if reply.seconds_per_byte and reply.drip_headers:
                    # What end_headers would send at once, kept back to be dripped; the body follows whole.
                    dripped, whole = b"".join(self._headers_buffer) + b"\r\n", reply.body
                    self._headers_buffer = []
                else:
                    self.end_headers()
                    dripped, whole = (reply.body, b"") if reply.seconds_per_byte else (b"", reply.body)
                for i in range(len(dripped)):
                    self.wfile.write(dripped[i : i + 1])
                    self.wfile.flush()
                    if server._closing.wait(reply.seconds_per_byte):
                        self.close_connection = True
                        return
                self.wfile.write(whole)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean; requests are recorded instead

    return Handler


def _path_parts(raw_path: str) -> list[str]:
    return [unquote(p) for p in urlsplit(raw_path).path.split("/") if p]


class FakeCustomerDb(FakeHttpServer):
    """GET /customers/{id}: the profile as JSON, or 404 for an unknown id."""

    def __init__(self, customers: Iterable[Mapping[str, Any]] = ()) -> None:
        super().__init__()
        self.customers: dict[str, dict[str, Any]] = {str(c["customer_id"]): dict(c) for c in customers}

    def respond(self, request: RecordedRequest) -> Reply:
        parts = _path_parts(request.path)
        if request.method != "GET" or len(parts) != 2 or parts[0] != "customers":
            return Reply.json({"error": "no such route"}, 404)
        profile = self.customers.get(parts[1])
        if profile is None:
            return Reply.json({"error": "customer not found"}, 404)
        return Reply.json(profile)

    def lookups_of(self, customer_id: str) -> int:
        return sum(1 for r in self.requests_to("GET", "/customers/") if _path_parts(r.path)[-1] == customer_id)


class FakeServiceStatusApi(FakeHttpServer):
    """POST /status/batch {"service_ids": [...]}: outages on those services plus network-wide info."""

    def __init__(
        self,
        outages: Iterable[Mapping[str, Any]] = (),
        *,
        known_issues: Iterable[str] = (),
        overall_health: str = "Healthy",
    ) -> None:
        super().__init__()
        self.outages = [dict(o) for o in outages]
        self.known_issues = list(known_issues)
        self.overall_health = overall_health

    def respond(self, request: RecordedRequest) -> Reply:
        if request.method != "POST" or _path_parts(request.path) != ["status", "batch"]:
            return Reply.json({"error": "no such route"}, 404)
        try:
            wanted = set(request.json["service_ids"])
        except (ValueError, TypeError, KeyError):
            return Reply.json({"error": "service_ids required"}, 400)
        return Reply.json(
            {
                "outages": [o for o in self.outages if o.get("service_id") in wanted],
                "known_issues": self.known_issues,
                "overall_health": self.overall_health,
            }
        )


class FakeTicketingSystem(FakeHttpServer):
    """PUT /tickets/{id}/routing: stores the routing update per ticket.

    Like a real ticketing API it checks the bearer key (401 otherwise) and applies each
    Idempotency-Key once, so tests can assert a retried push took effect exactly once.
    """

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.routing: dict[str, dict[str, Any]] = {}
        self.applied_keys: list[str] = []

    def respond(self, request: RecordedRequest) -> Reply:
        parts = _path_parts(request.path)
        if request.method != "PUT" or len(parts) != 3 or parts[0] != "tickets" or parts[2] != "routing":
            return Reply.json({"error": "no such route"}, 404)
        if self.api_key is not None and request.header("Authorization") != f"Bearer {self.api_key}":
            return Reply.json({"error": "unauthorized"}, 401)
        try:
            payload = request.json
        except ValueError:
            return Reply.json({"error": "body is not JSON"}, 400)
        if not isinstance(payload, dict):
            return Reply.json({"error": "body must be an object"}, 400)
        key = request.header("Idempotency-Key") or ""
        with self._lock:
            if key and key in self.applied_keys:
                return Reply.json({"ticket_id": parts[1], "status": "already applied"})
            self.applied_keys.append(key)
            self.routing[parts[1]] = payload
        return Reply.json({"ticket_id": parts[1], "status": "updated"})

    @property
    def puts(self) -> list[RecordedRequest]:
        return self.requests_to("PUT", "/tickets/")


class TlsRecordSpoiler:
    """An HTTPS server whose every answer breaks mid-body at the TLS layer: the status line,
    headers and first bytes are sent, then a record that fails its integrity check, as a corrupting
    middlebox or a damaged link would. Clients trust it through `session`.

        with TlsRecordSpoiler(status=200) as server:
            HttpCustomerDirectory(server.url, session=server.session)...
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self._folder = tempfile.TemporaryDirectory()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closing = threading.Event()
        certificate = _self_signed_certificate(Path(self._folder.name))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(*certificate)
        self.session = requests.Session()
        self.session.verify = str(certificate[0])
        self.session.trust_env = False  # a CA bundle named in the environment would replace ours
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TlsRecordSpoiler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closing.set()
        self._listener.close()
        self._thread.join(timeout=5)
        self.session.close()
        self._folder.cleanup()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed: the server is stopping
                return
            with contextlib.suppress(OSError), self._context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(
                    f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n".encode()
                    + b'{"customer_id": '
                )
                # Written under the TLS layer: application data that fails decryption.
                os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + bytes(32))
                self._closing.wait(1)


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "certificate.pem", folder / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path
