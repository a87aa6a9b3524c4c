"""`ticket-router feedback`: turn agents' corrections into training data and accuracy figures."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.atomic_files import atomic_write, is_standard_output
from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.errors import DamagedRecord
from domain.feedback import correction_rows, routing_accuracy
from domain.models import RoutingDecision
from handlers.bootstrap import build_taxonomy
from handlers.cli import EXIT_BAD_ROWS
from handlers.commands.arguments import output_path_argument, path_argument
from handlers.observability import logs_to_stderr
from handlers.output_paths import check_writable, message_stream
from handlers.record_files import spreadsheet_safe
from handlers.settings import LocalSettings, load_settings

EXPORT_FIELDS = (
    "ticket_id",
    "subject",
    "description",
    "category",
    "team",
    "original_category",
    "original_team",
    "agent_id",
    "recorded_at",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("feedback", help="export corrections as training data, or show routing accuracy")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write re-routes as a retraining file (CSV, JSON Lines or JSON)")
    export.add_argument(
        "--output",
        type=output_path_argument,
        required=True,
        help="file to write (.csv, .jsonl or .json; - for standard output, as CSV)",
    )
    export.add_argument(
        "--db", type=path_argument, help="decision store (default: ROUTER_DB, else ticket-router.db in ROUTER_HOME)"
    )
    export.add_argument("--all", action="store_true", help="also export confirmations, not only re-routes")
    export.set_defaults(func=run_export)
    stats = actions.add_parser("stats", help="routing accuracy: the share of decisions not re-routed")
    stats.add_argument(
        "--db", type=path_argument, help="decision store (default: ROUTER_DB, else ticket-router.db in ROUTER_HOME)"
    )
    stats.set_defaults(func=run_stats)


def _store(args: argparse.Namespace) -> tuple[SqliteDecisionRepository, LocalSettings]:
    settings = load_settings(LocalSettings)
    # Only an existing store: a mistyped --db would otherwise report a perfect score from an
    # empty one it had just created.
    return SqliteDecisionRepository(args.db or settings.db_path, create=False), settings


def _readable_decision(store: SqliteDecisionRepository) -> Callable[[str], RoutingDecision | None]:
    """store.get, with a damaged decision left out like a missing one (it is logged, and counted
    in store.unreadable): one bad record must not hide every other correction."""

    def get(ticket_id: str) -> RoutingDecision | None:
        try:
            return store.get(ticket_id)
        except DamagedRecord:
            return None

    return get


def _warn_of_unreadable(store: SqliteDecisionRepository) -> int:
    if not store.unreadable:
        return 0
    shown = ", ".join(sorted(store.unreadable)[:10])
    print(
        f"ticket-router: warning: the stored records of {len(store.unreadable)} ticket(s) could not be read and "
        f"were left out: {shown}{' ...' if len(store.unreadable) > 10 else ''}",
        file=sys.stderr,
    )
    return EXIT_BAD_ROWS


def run_export(args: argparse.Namespace) -> int:
    store, settings = _store(args)
    try:
        check_writable(args.output, "--output", replaced=True, keep_apart={"the decision store": Path(store.path)})
        rows = correction_rows(
            store.feedback(),
            _readable_decision(store),
            # With the deployment's label-team map: its labels are the ones to train on.
            build_taxonomy(settings),
            include_confirmations=args.all,
        )
    finally:
        store.close()
    suffix = args.output.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        with atomic_write(args.output, encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    elif suffix == ".json":
        # A .json file is read back as JSON (an array, or JSON Lines), never as CSV: CSV written
        # there would be all malformed rows to `train`.
        with atomic_write(args.output, encoding="utf-8") as handle:
            handle.write(json.dumps(rows, indent=1) + "\n")
    else:
        with atomic_write(args.output, encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)
    # With the corrections on stdout, what is said about them goes to stderr, out of their way.
    to_stdout = is_standard_output(args.output)
    out = message_stream(args.output)
    data = "FILE (where you saved them)" if to_stdout else str(args.output)
    print(f"Wrote {len(rows)} correction(s) to {'standard output' if to_stdout else args.output}", file=out)
    if not rows:
        # A retraining command for an empty file would only fail, after sending the user to it.
        what = "corrections or confirmations" if args.all else "re-routes (--all adds confirmations)"
        print(f"No {what} recorded yet: nothing to retrain on", file=out)
        return _warn_of_unreadable(store)
    print(
        f"Retrain with: ticket-router train --data {data} --subject-column subject "
        "--body-column description --label-column category",
        file=out,
    )
    unlabelled = sum(1 for row in rows if not row["category"])
    if unlabelled:
        # train skips a row without a label: said here, where it can still be put right.
        print(
            f"{unlabelled} correction(s) have no category (a re-route to a team of several categories, given "
            f"without correct_category): train skips them; fill in their category in {data} first",
            file=out,
        )
    return _warn_of_unreadable(store)


def run_stats(args: argparse.Namespace) -> int:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    store, _ = _store(args)
    try:
        stats = routing_accuracy(store.count(), store.feedback(), _readable_decision(store))
    finally:
        store.close()
    print(json.dumps(stats, indent=2))
    outcome = _warn_of_unreadable(store)
    if stats["routing_accuracy"] is None:
        return outcome
    metrics = Metrics(namespace="TicketRouting", service="ticket-router")
    metrics.add_metric(name="RoutingAccuracy", unit=MetricUnit.Percent, value=stats["routing_accuracy"] * 100)
    try:
        # stdout holds the one JSON document above; the EMF line is for a log collector.
        with logs_to_stderr():
            metrics.flush_metrics()
    finally:
        # Metrics share one set per process; with metrics disabled nothing flushes it.
        metrics.clear_metrics()
    return outcome
