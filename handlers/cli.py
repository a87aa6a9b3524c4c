"""`ticket-router`: the command line of the embedded mode.

Each sub-command lives in handlers/commands/ and registers itself here. Errors the user can fix
are printed as one line on stderr with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from domain.errors import TicketRouterError

# Each is a module of handlers/commands exposing register(subparsers), which sets `func`.
COMMANDS = (
    "route",
    "serve",
    "invoke",
    "train",
    "evaluate",
    "backtest",
    "feedback",
    "dlq",
)

EXIT_OK = 0
EXIT_BAD_ROWS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticket-router",
        description="Route telecom support tickets to the right team with the right priority.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"handlers.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TicketRouterError as exc:
        print(f"ticket-router: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
