"""`ticket-router`: the command line of the embedded mode.

Each sub-command lives in handlers/commands/ and registers itself here. Errors the user can fix
are printed as one line on stderr with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module

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
# sysexits' EX_SOFTWARE: a bug, told apart from a run that finished with some rows rejected (1).
EXIT_INTERNAL_ERROR = 70
# What shells report for a process ended by SIGPIPE, as `cmd | head` ends `cat`.
EXIT_BROKEN_PIPE = 128 + 13


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
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130


def _main(argv: Sequence[str] | None) -> int:
    # Imported here, not at the top: loading the app's modules takes a quarter of a second, and a
    # Ctrl-C then must end as one during a command does (130, no trace), which main() alone sees.
    from domain.errors import TicketRouterError
    from handlers.observability import app_logs_to

    try:
        # Inside the try: importing the commands reads the environment (LOG_LEVEL...), which can
        # be invalid even for --help.
        parser = build_parser()
        args = parser.parse_args(argv)
        # stdout carries the commands' results (a JSON report, decisions) that scripts parse: the
        # log lines of the app's modules go to stderr, redacted as in the functions.
        with app_logs_to(sys.stderr):
            return int(args.func(args))
    except TicketRouterError as exc:
        print(f"ticket-router: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (`| head`, a closed pager) has gone. Point stdout at /dev/null so that the
        # interpreter's final flush does not raise a second time, and exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        # A file that cannot be read or written (a directory, no permission, a full disk) is the
        # user's to fix; commands check what they can up front, and this catches what is left.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ticket-router: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        # Not the user's to fix: the trace is what a bug report needs.
        traceback.print_exc()
        print("ticket-router: internal error (a bug): please report it with the trace above", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
