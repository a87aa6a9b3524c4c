"""`ticket-router invoke FUNCTION -e EVENT.json`: one handler, in-process, with local adapters.

The Docker-free twin of `sam local invoke`: the decision store, outbox and customer files are
those of the embedded mode, so a POST, an orchestrator event and a GET can follow each other.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from domain.errors import TicketRouterError
from handlers.bootstrap import (
    bootstrap_local,
    local_ingestion_deps,
    local_orchestrator_deps,
    local_ticketing_update_deps,
)
from handlers.local_context import LocalLambdaContext
from handlers.settings import LocalSettings, load_settings

FUNCTIONS = ("ingestion", "orchestrator", "ticketing-update")


class EventFileError(TicketRouterError):
    pass


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("invoke", help="run one Lambda handler in-process on an event file")
    parser.add_argument("function", choices=FUNCTIONS, metavar="FUNCTION", help=" | ".join(FUNCTIONS))
    parser.add_argument("-e", "--event", type=Path, required=True, help="event JSON (see events/)")
    parser.set_defaults(func=run)


def _read_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EventFileError(f"event file not found: {path}") from exc
    except OSError as exc:  # a directory, a file we may not read...
        raise EventFileError(f"cannot read event file {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventFileError(f"event file {path} is not valid JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise EventFileError(f"event file {path} must hold a JSON object")
    return event


def run(args: argparse.Namespace) -> int:
    # The handler's EMF metric lines mean nothing without CloudWatch and would mix with the result.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    event = _read_event(args.event)
    app = bootstrap_local(load_settings(LocalSettings))
    context = LocalLambdaContext(function_name=args.function)
    try:
        if args.function == "ingestion":
            from handlers import ingestion

            result = ingestion.lambda_handler(event, context, deps=local_ingestion_deps(app))
            app.bus.drain()
        elif args.function == "orchestrator":
            from handlers import orchestrator

            try:
                result = orchestrator.lambda_handler(event, context, deps=local_orchestrator_deps(app))
            except orchestrator.InvalidEvent as exc:
                raise EventFileError(str(exc)) from exc
        else:
            from handlers import ticketing_update

            result = ticketing_update.lambda_handler(event, context, deps=local_ticketing_update_deps(app))
    finally:
        app.close()
    print(json.dumps(result, indent=2, default=str))
    return 0
