"""`ticket-router backtest`: replay labelled history through the whole routing decision.

What a team would have seen had the router been live: team accuracy, manual-review rate,
priority mix and, for the model engines, cost per ticket. Nothing is pushed anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from pydantic import ValidationError

from adapters.classifier.ngram import DEFAULT_MODEL_DIR, read_metadata
from adapters.clock import FixedClock, SystemClock
from adapters.local.outbox import DiscardingTicketingSystem
from domain.errors import InvalidField
from domain.models import NewTicket
from handlers.bootstrap import bootstrap_local
from handlers.cli import EXIT_BAD_ROWS
from handlers.commands.arguments import column_name, path_argument
from handlers.commands.route import (
    add_routing_arguments,
    model_never_answered,
    parse_now,
    routing_settings,
    warn_of_model_failures,
)
from handlers.labelled_data import (
    SHOWN_PROBLEMS,
    TextColumns,
    cell,
    columns_as_trained,
    read_labelled,
    report_problems,
    require_known_labels,
    require_rows,
    text_columns_hint,
    warn_unless_as_trained,
)
from handlers.validation import describe_validation_error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("backtest", help="replay labelled tickets through the full routing decision")
    parser.add_argument("file", type=path_argument, metavar="FILE", help="labelled tickets, CSV or JSON Lines")
    parser.add_argument("--label-column", type=column_name, required=True, help="column with the right answer")
    parser.add_argument(
        "--label-kind",
        choices=("team", "category"),
        default="team",
        help="whether the label is a team (default) or a category of the taxonomy",
    )
    parser.add_argument(
        "--subject-column",
        type=column_name,
        default=None,
        help="ticket subject column (default: the model's, as trained, else subject, used when the file has one)",
    )
    parser.add_argument(
        "--body-column",
        type=column_name,
        default=None,
        help="ticket text column (default: the model's, as trained, else description)",
    )
    parser.add_argument(
        "--customer-column",
        type=column_name,
        default=None,
        help="customer id column (default customer_id, used when the file has one)",
    )
    add_routing_arguments(parser)
    parser.add_argument(
        "--now",
        type=parse_now,
        help="arrival time (ISO 8601) of tickets without a timestamp (default: now); the others are "
        "routed at their own timestamp",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = routing_settings(args)
    # A subject and a customer are optional for a ticket, so the default columns may be absent; one
    # named on the command line, or recorded as the model's, must be there: mistyped, every ticket
    # would be routed without it.
    model_dir = settings.router_model_dir
    metadata = read_metadata(model_dir or DEFAULT_MODEL_DIR)
    model = str(model_dir or "the bundled telecom model")
    subject_column, body_column, subject_given = _text_columns(args, metadata, model)
    customer_column = args.customer_column or "customer_id"
    columns = TextColumns(text=None, subject=subject_column, body=body_column)
    optional = [
        name
        for name, given in ((subject_column, subject_given), (customer_column, args.customer_column))
        if name and not given
    ]
    hint = (
        ""
        if args.subject_column or args.body_column
        else text_columns_hint("--body-column COLUMN (and --subject-column COLUMN)", metadata, model)
    )
    data = read_labelled(
        args.file, columns, args.label_column, optional=optional, also=(customer_column,), text_hint=hint
    )
    if args.subject_column or args.body_column:
        # The default subject column counts only where the file has it: without it, the text is the body's.
        read = (
            subject_column if subject_column and any(r.get(subject_column) is not None for r in data.records) else None
        )
        composed = TextColumns(text=None, subject=read, body=body_column)
        warn_unless_as_trained(metadata, model, composed, "backtested")
    # Each ticket is routed at the moment it arrived, as a live router routed it: with one clock for
    # all, every ticket older than the taxonomy's age thresholds would gain their points, and the
    # priority mix would depend on the day the backtest is run.
    arrival = args.now or SystemClock().now()
    # History may be replayed with a --now of its own day or earlier; only a time still to come
    # (on this machine's clock) is no ticket's.
    latest = max(arrival, SystemClock().now())
    clock = FixedClock(arrival)
    app = bootstrap_local(
        settings,
        clock=clock,
        db_path=":memory:",
        customers_file=args.customers,
        services_file=args.services,
        ticketing=DiscardingTicketingSystem(),
    )
    try:
        _require_known_labels(app.taxonomy, args.label_kind, args.label_column, data.labels)
        problems = list(data.problems)
        expected: dict[str, str] = {}
        raw_labels: dict[str, str] = {}
        first_row: dict[str, int] = {}
        started = time.perf_counter()
        for number, record, raw_label in zip(data.rows, data.records, data.labels, strict=True):
            candidate = {
                "ticket_id": cell(record, "ticket_id") or f"BT-{number:06d}",
                "customer_id": cell(record, customer_column) or "UNKNOWN",
                "subject": cell(record, subject_column)[:500],
                "description": cell(record, body_column)[:20_000],
            }
            # Blank is "not given" (as in `route`); a 0 is a timestamp, and refused as one.
            if record.get("timestamp") not in (None, ""):
                candidate["timestamp"] = record["timestamp"]
            try:
                ticket = NewTicket.model_validate(candidate).to_ticket(arrival, latest=latest)
            except ValidationError as exc:
                problems.extend(f"row {number}: {f}: {m}" for f, m in describe_validation_error(exc))
                continue
            except InvalidField as exc:
                problems.append(f"row {number}: {exc}")
                continue
            if ticket.ticket_id in expected:
                problems.append(
                    f"row {number}: ticket_id {ticket.ticket_id!r} repeats row {first_row[ticket.ticket_id]}"
                )
                continue
            label = raw_label
            if args.label_kind == "category":
                category = app.taxonomy.find_category(raw_label)
                label = category.team if category else f"(unknown category {raw_label})"
            expected[ticket.ticket_id] = label
            raw_labels[ticket.ticket_id] = raw_label
            first_row[ticket.ticket_id] = number
            clock.at = ticket.timestamp
            app.submit(ticket)
        seconds = time.perf_counter() - started
        decisions = [d for d in (app.repository.get(tid) for tid in expected) if d is not None]
        # A ticket the engine failed on has no decision: the figures cover the decided ones only,
        # so the failures are reported, and the exit status says the run was incomplete.
        failures = [f"ticket {event.ticket_id}: {reason}" for event, reason in app.bus.failed]
        engine = app.engine.name
    finally:
        app.close()
    report_problems(args.file, problems)
    require_rows(args.file, len(expected), problems)
    for failure in failures[:SHOWN_PROBLEMS]:
        print(f"ticket-router: routing failed for {failure} (left out of the figures)", file=sys.stderr)
    unknown = sum(1 for d in decisions if not _is_known(app.taxonomy, args.label_kind, raw_labels[d.ticket_id]))
    if unknown:
        print(
            f"ticket-router: warning: {unknown} of {len(decisions)} label(s) are not a known {args.label_kind} "
            "(counted wrong)",
            file=sys.stderr,
        )
    # A failed model call still yields a decision (the pipeline's, flagged for review), so it is
    # counted in the figures: they are the pipeline's for those tickets, not the model engine's.
    model_failures, consulted = warn_of_model_failures(decisions)
    never_answered = model_never_answered(model_failures, consulted)
    if never_answered:
        print(
            f"ticket-router: error: the model never answered: these are not the {engine} engine's figures",
            file=sys.stderr,
        )
    report = {
        **_summarise(decisions, expected, seconds, engine),
        "routing_failures": len(failures),
        "model_call_failures": model_failures,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return EXIT_BAD_ROWS if failures or never_answered else 0


def _text_columns(args: argparse.Namespace, metadata: dict[str, Any], model: str) -> tuple[str | None, str, bool]:
    """(subject column, body column, whether the subject column must be in the file): those given,
    else those the model was trained on, as `evaluate` reads them; a model trained on one column and
    backtested on another would be measured on text it will never route."""
    if not (args.subject_column or args.body_column):
        trained = columns_as_trained(
            metadata, model, TextColumns(text=None, subject="subject", body="description"), parts_only=True
        )
        if trained is not None:
            subject, body = trained.reads()
            return subject, body or "description", True
    return args.subject_column or "subject", args.body_column or "description", bool(args.subject_column)


def _require_known_labels(taxonomy: Any, kind: str, column: str, labels: list[str]) -> None:
    """Some labels must name a team (or a category, for `kind` category) of the taxonomy in force."""
    other = "category" if kind == "team" else "team"
    require_known_labels(
        labels,
        lambda label: _is_known(taxonomy, kind, label),
        column=column,
        known=taxonomy.teams if kind == "team" else taxonomy.category_names,
        known_as="teams" if kind == "team" else "categories",
        hint=f"are they {other} labels (--label-kind {other}), or is --label-column the wrong column?",
    )


def _is_known(taxonomy: Any, kind: str, label: str) -> bool:
    return taxonomy.find_category(label) is not None if kind == "category" else label in taxonomy.teams


def _summarise(decisions: list[Any], expected: dict[str, str], seconds: float, engine: str) -> dict[str, Any]:
    n = len(decisions)
    right = [d for d in decisions if d.assigned_team == expected[d.ticket_id]]
    automatic = [d for d in decisions if not d.requires_manual_review]
    auto_right = [d for d in automatic if d.assigned_team == expected[d.ticket_id]]
    review = [d for d in decisions if d.requires_manual_review]
    review_top2 = [d for d in review if expected[d.ticket_id] in {t.team for t in d.alternative_teams}]
    cost = sum(d.cost_usd for d in decisions)
    per_team = Counter(expected[d.ticket_id] for d in decisions)
    per_team_right = Counter(expected[d.ticket_id] for d in right)
    return {
        "engine": engine,
        "n": n,
        "team_accuracy": round(len(right) / n, 4) if n else 0.0,
        "manual_review_rate": round(len(review) / n, 4) if n else 0.0,
        "auto_route_accuracy": round(len(auto_right) / len(automatic), 4) if automatic else None,
        "review_top2_contains_answer": round(len(review_top2) / len(review), 4) if review else None,
        "priority_distribution": dict(sorted(Counter(d.priority_level.value for d in decisions).items())),
        "team_distribution": dict(Counter(d.assigned_team for d in decisions).most_common()),
        "accuracy_by_true_team": {t: round(per_team_right[t] / c, 4) for t, c in per_team.most_common()},
        "model_calls_per_ticket": round(sum(d.usage.model_calls for d in decisions) / n, 3) if n else 0.0,
        "cost_total_usd": round(cost, 6),
        "cost_per_ticket_usd": round(cost / n, 6) if n else 0.0,
        "tickets_per_second": round(n / seconds, 1) if seconds > 0 else None,
    }


def _print(report: dict[str, Any]) -> None:
    print(f"Backtest of {report['n']} tickets with the {report['engine']} engine")
    print(f"  team accuracy          {report['team_accuracy']:.1%}")
    print(f"  manual review          {report['manual_review_rate']:.1%}")
    if report["auto_route_accuracy"] is not None:
        print(f"  accuracy when automatic {report['auto_route_accuracy']:.1%}")
    if report["review_top2_contains_answer"] is not None:
        print(f"  reviewed with the right team in the top two: {report['review_top2_contains_answer']:.1%}")
    print("  priorities             " + ", ".join(f"{k} {v}" for k, v in report["priority_distribution"].items()))
    print("  accuracy by true team  " + ", ".join(f"{k} {v:.0%}" for k, v in report["accuracy_by_true_team"].items()))
    if report["engine"] != "pipeline":
        print(f"  model calls per ticket {report['model_calls_per_ticket']}")
        if report["model_call_failures"]:
            print(f"  model call failures    {report['model_call_failures']} (the pipeline decided those)")
        print(
            f"  cost                   ${report['cost_total_usd']:.4f} total, ${report['cost_per_ticket_usd']:.5f}/ticket"
        )
    print(f"  throughput             {report['tickets_per_second']} tickets/s")
