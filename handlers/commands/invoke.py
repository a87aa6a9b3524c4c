"""`ticket-router invoke FUNCTION -e EVENT.json`: one handler, in-process, with local adapters.

The Docker-free twin of `sam local invoke`: the decision store, outbox and customer files are
those of the embedded mode, so a POST, an orchestrator event and a GET can follow each other.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path
from typing import Any

from domain.errors import TicketRouterError
from handlers.bootstrap import (
    bootstrap_local,
    local_ingestion_deps,
    local_orchestrator_deps,
    local_ticketing_update_deps,
)
from handlers.commands.arguments import path_argument
from handlers.local_context import LocalLambdaContext
from handlers.observability import logs_to_stderr
from handlers.settings import LocalSettings, load_settings
from handlers.validation import api_event_problems

FUNCTIONS = ("ingestion", "orchestrator", "ticketing-update")


class EventFileError(TicketRouterError):
    pass


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("invoke", help="run one Lambda handler in-process on an event file")
    parser.add_argument("function", choices=FUNCTIONS, metavar="FUNCTION", help=" | ".join(FUNCTIONS))
    parser.add_argument("-e", "--event", type=path_argument, required=True, help="event JSON (see events/)")
    parser.set_defaults(func=run)


def _read_event(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: an event saved by a Windows editor starts with a byte-order mark.
        event = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise EventFileError(f"event file not found: {path}") from exc
    except OSError as exc:  # a directory, a file we may not read...
        raise EventFileError(f"cannot read event file {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventFileError(f"event file {path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise EventFileError(f"event file {path} is JSON nested too deeply to read") from exc
    if not isinstance(event, dict):
        raise EventFileError(f"event file {path} must hold a JSON object")
    return event


def _check_shape(function: str, event: dict[str, Any], path: Path) -> None:
    """Refuse an event of another source, which the handler would fail on with a bare KeyError."""
    if function == "ingestion" and (problems := api_event_problems(event)):
        # Refused here rather than answered 400 by the handler: the file is at fault, not a request.
        fields = "; ".join(f"{field}: {message}" for field, message in problems)
        raise EventFileError(
            f"event file {path} is not an API Gateway (REST proxy) event, which the ingestion function takes:"
            f" {fields} (see events/api_*.json)"
        )
    if function == "ticketing-update" and not isinstance(event.get("Records"), list):
        raise EventFileError(
            f"event file {path} is not a DynamoDB stream event, which the ticketing-update function takes:"
            " it has no Records list (see events/dynamodb_stream_decision.json)"
        )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the handlers' imports are the slow part of a command's start.
    from handlers import ingestion, orchestrator, ticketing_update

    # The handler's EMF metric lines mean nothing without CloudWatch and would mix with the result.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    event = _read_event(args.event)
    _check_shape(args.function, event, args.event)
    app = bootstrap_local(load_settings(LocalSettings))
    context = LocalLambdaContext(function_name=args.function)
    # stdout carries the result alone, so that it can be piped to jq: the handler's log lines go
    # to stderr, and the warning that a handler which failed early had no metric to flush goes.
    with logs_to_stderr(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        try:
            if args.function == "ingestion":
                result = ingestion.lambda_handler(event, context, deps=local_ingestion_deps(app))
                app.bus.drain()
            elif args.function == "orchestrator":
                try:
                    result = orchestrator.lambda_handler(event, context, deps=local_orchestrator_deps(app))
                except orchestrator.InvalidEvent as exc:
                    # Named as the other functions' wrong events are: the file, and a sample to follow.
                    raise EventFileError(
                        f"event file {args.event} is not an EventBridge TicketReceived event, which the orchestrator"
                        f" function takes: {exc} (see events/eventbridge_ticket_received.json)"
                    ) from exc
            else:
                try:
                    result = ticketing_update.lambda_handler(event, context, deps=local_ticketing_update_deps(app))
                except ticketing_update.InvalidEvent as exc:
                    raise EventFileError(f"event file {args.event} is {exc}") from exc
        finally:
            app.close()
    print(json.dumps(result, indent=2, default=str))
    return 0
