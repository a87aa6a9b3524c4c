"""`ticket-router serve`: the HTTP API on this machine with the embedded adapters."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import threading
from types import FrameType
from typing import Any

from domain.errors import ConfigurationError, TicketRouterError
from handlers.bootstrap import LocalApp, bootstrap_local, local_ingestion_deps
from handlers.cli import EXIT_BAD_ROWS
from handlers.commands.arguments import whole_number
from handlers.local_server import ApiGatewayWsgiApp
from handlers.output_paths import check_writable
from handlers.settings import LocalSettings, load_settings
from handlers.validation import MAX_BODY_BYTES

# Each waitress thread handles one request at a time; routing itself runs on the bus worker.
MAX_THREADS = 256
# Accepted tickets waiting for the bus worker; past this a submission is answered 503 (retry), as
# when EventBridge throttles. Minutes of work for the agent engine, and bounded memory.
MAX_QUEUED_TICKETS = 1000
# waitress takes in a request's whole body before the app sees it, for callers without the key
# too: up to 1 GiB by default, spooled to disk. A body over the API's limit but under this one
# still gets the handler's JSON 413; beyond it, waitress refuses it before reading it.
MAX_BUFFERED_BODY_BYTES = 16 * MAX_BODY_BYTES


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the ticket API on this machine (the Docker-free twin of `sam local start-api`)",
        description="POST /tickets, GET /tickets/{id}, GET /health, POST /tickets/{id}/feedback, GET /openapi.json.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=whole_number(0, 65535), default=3000, help="port (default 3000; 0: any free port)"
    )
    parser.add_argument(
        "--threads", type=whole_number(1, MAX_THREADS), default=8, help="HTTP worker threads (default 8)"
    )
    parser.set_defaults(func=run)


def build_wsgi_app(settings: LocalSettings, **overrides: Any) -> tuple[ApiGatewayWsgiApp, LocalApp, str]:
    """The WSGI app, the local runtime behind it (bus worker started) and the API key in force."""
    app = bootstrap_local(settings, **overrides)
    app.bus.start_worker(max_queued=MAX_QUEUED_TICKETS)
    api_key = settings.router_api_key or secrets.token_urlsafe(24)
    return ApiGatewayWsgiApp(local_ingestion_deps(app), api_key), app, api_key


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from waitress import create_server

    # There is no CloudWatch here: keep the handler's EMF metric lines out of the console unless
    # the user asked for them.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    settings = load_settings(LocalSettings)
    check_writable(settings.outbox_path, settings.outbox_name, keep_apart={"the decision store": settings.db_path})
    wsgi, app, api_key = build_wsgi_app(settings)
    try:
        server = create_server(
            wsgi,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="ticket-router",
            max_request_body_size=MAX_BUFFERED_BODY_BYTES,
        )
    except (OSError, ValueError) as exc:  # ValueError: waitress cannot resolve the host
        app.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {reason}") from exc
    if threading.current_thread() is threading.main_thread():
        # A service manager (systemd, docker stop, kill) stops with SIGTERM, whose default ends the
        # process on the spot: tickets already answered 202 but still queued would be lost. Treat
        # it as Ctrl-C, so the queue is drained below before the process exits.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not settings.router_api_key:
            print(f"ROUTER_API_KEY not set; generated API key for this run: {api_key}", flush=True)
        port = getattr(server, "effective_port", args.port)
        # An IPv6 literal is bracketed in a URL (RFC 3986): http://::1:3000 reaches nothing.
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"ticket-router API on http://{host}:{port} (send the key as x-api-key)", flush=True)
        print(f"decisions: {settings.db_path}  outbox: {settings.outbox_path}", flush=True)
        _remind_of_unrouted(app, "left unrouted by earlier failures")
        server.run()  # returns on Ctrl-C or SIGTERM: waitress takes the KeyboardInterrupt itself
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping: routing what is queued (interrupt again to keep it for `dlq replay`)", file=sys.stderr)
        server.close()
        lost = finish_routing(app)
        _remind_of_unrouted(app, "unrouted")
        app.close()
    if lost:
        shown = ", ".join(lost[:20]) + (" ..." if len(lost) > 20 else "")
        print(
            f"ticket-router: error: {len(lost)} accepted ticket(s) could be neither routed nor kept for "
            f"`dlq replay` (the decision store was unavailable): {shown}; submit them again under new ticket ids",
            file=sys.stderr,
        )
        return EXIT_BAD_ROWS
    return 0


def finish_routing(app: LocalApp) -> list[str]:
    """Route what is queued, or keep it for `dlq replay` when interrupted again; the ids of the
    accepted tickets that are neither routed nor kept."""
    # What fails from here is tried once, not waited on: a stop must not hang on a locked store.
    app.bus.stop_waiting()
    try:
        app.bus.drain()
    except KeyboardInterrupt:  # interrupted again: stop routing, but keep or name what is queued
        app.bus.abandon()
    app.bus.keep_unkept()
    # The ticket in hand at a second interrupt may yet be routed: wait for the worker (at most
    # 10 s), unless interrupted once more.
    with contextlib.suppress(KeyboardInterrupt):
        app.bus.stop()
    # Once more, for what the worker gave up on meanwhile; then name as lost only what has no
    # decision either.
    lost = app.bus.keep_unkept()
    return [ticket_id for ticket_id in lost if not _decided(app, ticket_id)]


def _decided(app: LocalApp, ticket_id: str) -> bool:
    try:
        return app.repository.get(ticket_id) is not None
    except TicketRouterError:  # the store still locked, or the record damaged: not known to be routed
        return False


def _remind_of_unrouted(app: LocalApp, how: str) -> None:
    # Nothing retries them on its own: the client had its 202, and its retries get the same answer.
    try:
        waiting = app.repository.parked_count()
    except TicketRouterError:  # a locked store must not stop the server starting, or closing cleanly
        return
    if waiting:
        print(
            f"{waiting} accepted ticket(s) {how} are kept in {app.repository.path}; "
            "`ticket-router dlq replay` routes them",
            file=sys.stderr,
            flush=True,
        )
