"""`ticket-router route FILE`: route a file of tickets end to end on this machine."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import stat
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import TypeAdapter, ValidationError

from adapters.atomic_files import atomic_write, is_standard_output
from adapters.clock import FixedClock, SystemClock
from adapters.engines.agent import answered_without_a_routing, stopped_by_the_engine, stopped_for_time
from adapters.local.files import DEFAULT_CUSTOMERS_FILE, DEFAULT_SERVICES_FILE
from domain.errors import DamagedRecord, InvalidField, RepositoryUnavailable, SyncUnavailable
from domain.models import MODEL_TOOL, RoutingDecision, SyncStatus, Ticket, UtcDatetime, submitted_content
from domain.recovery import STALE_PENDING_AFTER
from domain.services import sync_decision
from domain.taxonomy import DEFAULT_TAXONOMY_PATH
from handlers.bootstrap import LocalApp, bootstrap_local
from handlers.commands.arguments import output_path_argument, path_argument
from handlers.output_paths import check_writable, message_stream, model_files
from handlers.record_files import STANDARD_INPUT, RecordFileError, read_standard_input
from handlers.settings import LocalSettings, load_settings
from handlers.ticket_files import ParsedRow, RowError, read_ticket_file

_TIMESTAMP = TypeAdapter(UtcDatetime)
# A refused update was not pushed either, though a replay retries it only when asked to.
_NOT_PUSHED = frozenset({SyncStatus.FAILED, SyncStatus.REJECTED})


def parse_now(value: str) -> datetime:
    try:
        return _TIMESTAMP.validate_python(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {value!r}") from exc


def add_routing_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose how tickets are routed; `route` and `backtest` share them."""
    # Each default names its environment variable: the option only overrides what it sets.
    parser.add_argument(
        "--customers",
        type=path_argument,
        help="customer profiles (JSON array); default: ROUTER_CUSTOMERS_FILE, else bundled samples",
    )
    parser.add_argument(
        "--services",
        type=path_argument,
        help="service status snapshot (JSON); default: ROUTER_SERVICES_FILE, else bundled samples",
    )
    parser.add_argument(
        "--engine",
        choices=("pipeline", "agent", "hybrid"),
        help="routing engine (default: ROUTING_ENGINE, else pipeline)",
    )
    parser.add_argument(
        "--model-dir",
        type=path_argument,
        help="trained classifier artifact (default: ROUTER_MODEL_DIR, else the bundled model)",
    )
    parser.add_argument(
        "--label-team-map",
        type=path_argument,
        help="map a trained model's labels to teams (JSON object or label,team CSV; default: ROUTER_LABEL_TEAM_MAP)",
    )
    parser.add_argument(
        "--taxonomy",
        type=path_argument,
        help="taxonomy TOML (default: ROUTER_TAXONOMY, else the bundled telecom taxonomy)",
    )


def routing_settings(args: argparse.Namespace) -> LocalSettings:
    """Local settings from the environment, overridden by the routing options given."""
    overrides: dict[str, Any] = {}
    for option, field in (
        ("engine", "routing_engine"),
        ("model_dir", "router_model_dir"),
        ("label_team_map", "router_label_team_map"),
        ("taxonomy", "router_taxonomy"),
    ):
        if getattr(args, option):
            overrides[field] = getattr(args, option)
    return load_settings(LocalSettings).model_copy(update=overrides)


def routing_inputs(settings: LocalSettings) -> dict[str, Path | None]:
    """The files routing reads besides the tickets, bundled defaults included, named for `keep_apart`."""
    return {
        "--taxonomy": settings.router_taxonomy or DEFAULT_TAXONOMY_PATH,
        "--label-team-map": settings.router_label_team_map,
        **model_files(settings.router_model_dir),
    }


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "route",
        help="route a file of tickets (JSON array, JSON Lines or CSV)",
        description="Route every ticket in FILE through the same domain code the Lambdas run.",
    )
    parser.add_argument(
        "file",
        type=path_argument,
        metavar="FILE",
        help="tickets as a JSON array, JSON Lines or CSV (- for standard input, its format told by its content)",
    )
    parser.add_argument("--now", type=parse_now, help="fix the clock (ISO 8601) for ticket age")
    parser.add_argument(
        "--output", type=output_path_argument, help="write one JSON decision a line here (- for standard output)"
    )
    parser.add_argument(
        "--db",
        type=path_argument,
        help="SQLite decision store to use and keep (default: a fresh in-memory store for this run)",
    )
    parser.add_argument(
        "--outbox",
        type=path_argument,
        help="JSONL outbox standing in for the ticketing system (default: ROUTER_OUTBOX, else outbox.jsonl in "
        "ROUTER_HOME)",
    )
    add_routing_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    parser.set_defaults(func=run)


@dataclasses.dataclass
class _Progress:
    """How far a run got, for the line that an interrupt (Ctrl-C) leaves."""

    total: int = 0
    outbox: Path | None = None
    decisions: list[RoutingDecision] = dataclasses.field(default_factory=list)
    # Of `decisions`, those an earlier run stored in --db: found, not routed (or pushed) by this one.
    found_stored: set[str] = dataclasses.field(default_factory=set)
    # Of those, the ones an earlier run stopped before pushing, which this run pushed (or tried to).
    pushed_for_earlier: set[str] = dataclasses.field(default_factory=set)
    routing: bool = False
    written: bool = False
    # Rows given no ticket_id: each run gives them a new one, so --db cannot find them again.
    without_id: int = 0


def run(args: argparse.Namespace) -> int:
    progress = _Progress()
    try:
        return _run(args, progress)
    except KeyboardInterrupt:
        # A bare exit 130 leaves the user guessing whether to start again, and from where.
        print(f"ticket-router: {_interrupted_message(progress, args)}", file=sys.stderr)
        raise


def _interrupted_message(progress: _Progress, args: argparse.Namespace) -> str:
    if not progress.routing:
        return "interrupted before any ticket was routed; nothing was stored, pushed or written"
    decisions = [d for d in progress.decisions if d.ticket_id not in progress.found_stored]
    pushed = sum(
        d.sync_status is SyncStatus.SUCCESS
        for d in progress.decisions
        if d.ticket_id not in progress.found_stored or d.ticket_id in progress.pushed_for_earlier
    )
    message = f"interrupted after routing {len(decisions)} of {progress.total} ticket(s)"
    if progress.found_stored:
        message += f" ({len(progress.found_stored)} more were already stored)"
    message += ": "
    if args.db:
        message += f"their decisions are kept in {args.db} (routing the same tickets again with it routes the rest"
        if progress.without_id:
            message += (
                f", but for the {progress.without_id} row(s) without a ticket_id, which get a new one each run and"
                " are routed again"
            )
        message += ")"
    else:
        message += "their decisions were in memory only (no --db)"
    message += f"; {pushed} pushed to the outbox {progress.outbox}"
    if args.output:
        output = "standard output" if is_standard_output(args.output) else args.output
        message += f"; --output {output} {'was written' if progress.written else 'was not written'}"
    return message


def _run(args: argparse.Namespace, progress: _Progress) -> int:
    settings = routing_settings(args)
    outbox = args.outbox or settings.outbox_path
    # Checked before any ticket is routed: a late failure would leave decisions stored in --db
    # with no output, or pending syncs that no later run pushes.
    from_stdin = args.file == Path("-")
    inputs = {
        "FILE": _standard_input_file() if from_stdin else args.file,
        "--db": args.db,
        "--customers": args.customers or settings.router_customers_file or DEFAULT_CUSTOMERS_FILE,
        "--services": args.services or settings.router_services_file or DEFAULT_SERVICES_FILE,
        **routing_inputs(settings),
    }
    check_writable(outbox, "--outbox" if args.outbox else settings.outbox_name, keep_apart=inputs)
    if args.output:
        check_writable(args.output, "--output", replaced=True, keep_apart={**inputs, "--outbox": outbox})

    source = STANDARD_INPUT if from_stdin else args.file
    parsed, errors = read_ticket_file(source, read_standard_input("tickets") if from_stdin else None)
    if not parsed:
        for error in errors:
            print(f"ticket-router: {source}: {error}", file=sys.stderr)
        reason = f"all {len({e.row for e in errors})} row(s) were rejected" if errors else "it holds no rows"
        raise RecordFileError(f"{source}: no ticket could be read: {reason}")
    clock = FixedClock(args.now) if args.now else SystemClock()
    app = bootstrap_local(
        settings,
        clock=clock,
        db_path=args.db or ":memory:",
        customers_file=args.customers,
        services_file=args.services,
        outbox_path=outbox,
    )
    if args.db:
        try:
            app.repository.check_writable()
        except RepositoryUnavailable:
            # Before any ticket: else each fails in turn, and --output is replaced by what little was stored.
            app.close()
            raise
    progress.total, progress.outbox, progress.routing = len(parsed), outbox, True
    progress.without_id = sum(row.ticket.ticket_id is None for row in parsed)
    decisions = progress.decisions
    try:
        duplicates, conflicts = _route_all(app, parsed, args.db, progress)
    finally:
        app.close()
    stored_before = len(progress.found_stored)
    errors = sorted(errors + conflicts, key=lambda error: error.row)

    if args.output:
        _write_decisions(args.output, decisions)
        progress.written = True
    # With the decisions on stdout (`--output -`), the table and summary go to stderr, out of their way.
    out = message_stream(args.output)
    if not args.quiet:
        _print_table(decisions, out)
    _print_summary(decisions, duplicates, errors, app, out, stored_before, args.db)
    for error in errors:
        print(f"ticket-router: {source}: {error}", file=sys.stderr)
    model_failures, consulted = warn_of_model_failures(decisions)
    never_answered = model_never_answered(model_failures, consulted)
    if never_answered and model_answered_without_routing(decisions):
        # Reached, so its credentials are not at fault: a model that answers in prose, or loops on tools, is.
        print(
            f"ticket-router: error: the model answered none of the {consulted} ticket(s) sent to it with a routing: "
            f"{_why_no_routing(decisions)}",
            file=sys.stderr,
        )
    elif never_answered:
        # The decisions stand (stored, pushed, flagged for review), but a script that asked for a
        # model engine must learn that the model was never reached, as backtest tells it.
        print(
            f"ticket-router: error: the model never answered any of the {consulted} ticket(s) sent to it:"
            " check its credentials, model id and region",
            file=sys.stderr,
        )
    unsynced = [d for d in decisions if d.sync_status in _NOT_PUSHED]
    if unsynced:
        print(f"ticket-router: {_unsynced_message(unsynced, args.db)}", file=sys.stderr)
    pushed = [
        d.ticket_id
        for d in decisions
        if d.ticket_id in progress.pushed_for_earlier and d.sync_status is SyncStatus.SUCCESS
    ]
    if pushed:
        print(
            f"ticket-router: pushed {len(pushed)} decision(s) that another run (stopped, or routing them at the "
            f"same moment) stored but had not pushed (first: ticket {pushed[0]})",
            file=sys.stderr,
        )
    # Every decision has been pushed or failed by now, those an earlier run left pending too: one
    # still pending is one whose outcome could not be recorded.
    stranded = [d for d in decisions if d.sync_status is SyncStatus.PENDING]
    if stranded:
        print(
            f"ticket-router: {len(stranded)} decision(s) stored by an earlier run were never pushed to the "
            f"ticketing system (first: ticket {stranded[0].ticket_id}); `ROUTER_DB={args.db} ticket-router dlq "
            f"replay` pushes them once {int(STALE_PENDING_AFTER.total_seconds() // 60)} minutes old",
            file=sys.stderr,
        )
    if app.bus.failed:
        kept = len(app.bus.failed) - len(app.bus.unkept)
        again = "route them again"
        if args.db and kept:
            again = f"`ROUTER_DB={args.db} ticket-router dlq replay` routes the {kept} kept in the store"
            if app.bus.unkept:
                again += ", route the others again"
        print(f"ticket-router: {len(app.bus.failed)} ticket(s) could not be routed; {again}", file=sys.stderr)
    return 1 if errors or app.bus.failed or unsynced or stranded or never_answered else 0


def _standard_input_file() -> Path | None:
    """Standard input, when it is a file (`route - < tickets.jsonl`), for `keep_apart`: an output
    over it would replace the tickets. A pipe or a terminal holds nothing an output could destroy,
    and a terminal is often stdout too, where `--output -` must still go."""
    try:
        descriptor = sys.stdin.fileno()
        regular = stat.S_ISREG(os.fstat(descriptor).st_mode)
    except (AttributeError, OSError, ValueError):  # closed, or no descriptor at all
        return None
    return Path(f"/dev/fd/{descriptor}") if regular else None


def warn_of_model_failures(decisions: list[RoutingDecision]) -> tuple[int, int]:
    """Say on stderr how many tickets sent to the model got no answer from it; (failed, consulted).

    A failed model call leaves the pipeline's decision, flagged for review: the ticket is routed,
    but not by the engine asked for, and a model never reached (no credentials, a wrong model id)
    would otherwise pass for many tickets the agent was unsure of. Only the engine's own model
    counts: when a second opinion fails, the main model still answered."""
    consulted = [
        (d.ticket_id, call)
        for d in decisions
        if (call := next((c for c in d.tool_calls if c.tool == MODEL_TOOL), None)) is not None
    ]
    failed = [(ticket_id, call) for ticket_id, call in consulted if not call.ok]
    if failed:
        ticket_id, call = failed[0]
        print(
            f"ticket-router: warning: the model call failed for {len(failed)} of {len(consulted)} ticket(s) sent "
            f"to the model; the pipeline's decision stands for them, flagged for review "
            f"(first: ticket {ticket_id}: {call.detail})",
            file=sys.stderr,
        )
    return len(failed), len(consulted)


def model_answered_without_routing(decisions: list[RoutingDecision]) -> bool:
    """Whether every failed model call was answered by the model, though with no routing."""
    return all(
        call.ok or stopped_by_the_engine(call.detail) or answered_without_a_routing(call.detail)
        for d in decisions
        for call in d.tool_calls
        if call.tool == MODEL_TOOL
    )


def _why_no_routing(decisions: list[RoutingDecision]) -> str:
    """The failed model calls counted by cause: the agent's own budget stop (a model that kept
    calling tools, or no time left to start a call) asks for another fix than an answer in prose."""
    details = [call.detail for d in decisions for call in d.tool_calls if call.tool == MODEL_TOOL and not call.ok]
    no_time = sum(stopped_for_time(detail) for detail in details)
    looped = sum(stopped_by_the_engine(detail) for detail in details) - no_time
    in_prose = len(details) - looped - no_time
    causes = [
        f"{looped} kept calling tools until the agent's budget of model calls was spent: check that the model "
        "answers with RoutingAnswer once it has the evidence"
        if looped
        else "",
        f"{no_time} had too little time left to start a model call: slow lookups, or too short a deadline"
        if no_time
        else "",
        f"{in_prose} answered in prose, or past its output token limit: check that the model calls tools"
        if in_prose
        else "",
    ]
    return "; ".join(cause for cause in causes if cause)


def model_never_answered(failed: int, consulted: int) -> bool:
    """Whether every ticket sent to the model got no answer: some did fail, and none succeeded."""
    return failed > 0 and failed == consulted


def _unsynced_message(unsynced: list[RoutingDecision], db: Path | None) -> str:
    reasons = sorted({d.sync_error or "unknown error" for d in unsynced})
    message = f"{len(unsynced)} decision(s) not pushed to the ticketing system: {'; '.join(reasons)}"
    if db is None:
        return message + "; the store was in memory, so route them again once the outbox is writable"
    return message + f"; they are kept as failed in {db}, and `ROUTER_DB={db} ticket-router dlq replay` pushes them"


def _route_all(
    app: LocalApp, rows: list[ParsedRow], db: Path | None, progress: _Progress
) -> tuple[list[int], list[RowError]]:
    """Route each row, adding its decision to `progress` as it is made (an interrupt tells how many
    were), and the ids of those already in the store (`db`), from an earlier run, and not made
    again; the rows skipped as repeats, and those refused."""
    duplicates: list[int] = []
    conflicts: list[RowError] = []
    seen: dict[str, tuple[int, Ticket]] = {}
    for row in rows:
        try:
            ticket = row.ticket.to_ticket(app.clock.now())
        except InvalidField as exc:
            conflicts.append(RowError(row.row, exc.field, exc.message))
            continue
        if ticket.ticket_id in seen:
            first_row, first = seen[ticket.ticket_id]
            if submitted_content(first) == submitted_content(ticket):
                duplicates.append(row.row)
            else:
                # Another ticket under a used id: the store would hand back the first one's
                # decision and this ticket would be lost, as POST /tickets answers 409 to it.
                conflicts.append(
                    RowError(row.row, "ticket_id", f"{ticket.ticket_id} is used by row {first_row}{_OTHER}")
                )
            continue
        seen[ticket.ticket_id] = (row.row, ticket)
        try:
            if (earlier := app.use_of_id_by_another(ticket)) is not None:
                conflicts.append(RowError(row.row, "ticket_id", f"{ticket.ticket_id} {earlier} in {db}{_OTHER}"))
                continue
            # The same ticket routed by an earlier run: submitting it hands its stored decision back.
            found_stored = app.repository.get(ticket.ticket_id) is not None
            received = app.submit(ticket)
            decision = app.repository.get(ticket.ticket_id)
            # Another run on the store (the same file routed twice at once) may have stored it since:
            # its decision is not this run's to count, and may still wait for that run to push it.
            if decision is not None and decision.correlation_id != received.correlation_id:
                found_stored = True
            if found_stored and decision is not None and decision.sync_status is SyncStatus.PENDING:
                decision = _push_stranded(app, decision)
                progress.pushed_for_earlier.add(decision.ticket_id)
        except DamagedRecord as exc:
            # This row's stored record needs a person; the rest of the file is still routed.
            conflicts.append(RowError(row.row, "ticket_id", str(exc)))
            continue
        if decision is not None:
            if found_stored:
                progress.found_stored.add(decision.ticket_id)
            progress.decisions.append(decision)
    return duplicates, conflicts


def _push_stranded(app: LocalApp, decision: RoutingDecision) -> RoutingDecision:
    """Push a decision an earlier run stored and was stopped before pushing: the one who routes the
    ticket again expects it in the ticketing system, and `dlq replay` would leave it for 15 minutes.
    Should another run be pushing it at this moment, its Idempotency-Key makes the second a no-op."""
    with contextlib.suppress(SyncUnavailable):  # recorded as failed, and reported as such
        sync_decision(decision, ticketing=app.ticketing, repository=app.repository, clock=app.clock)
    return app.repository.get(decision.ticket_id) or decision


_OTHER = " for another customer_id, subject or description; give this ticket an id of its own"


def _write_decisions(path: Path, decisions: list[RoutingDecision]) -> None:
    with atomic_write(path, encoding="utf-8") as handle:
        for decision in decisions:
            handle.write(decision.model_dump_json() + "\n")


def _print_table(decisions: list[RoutingDecision], out: TextIO) -> None:
    headers = ("ticket", "team", "priority", "confidence", "review")
    rows = [
        (
            d.ticket_id,
            d.assigned_team,
            d.priority_level.value,
            f"{d.confidence_score:.2f}",
            "yes: " + " / ".join(f"{t.team} {t.score:.2f}" for t in d.alternative_teams)
            if d.requires_manual_review
            else "no",
        )
        for d in decisions
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)), file=out)


def _print_summary(
    decisions: list[RoutingDecision],
    duplicates: list[int],
    errors: list[Any],
    app: LocalApp,
    out: TextIO,
    stored_before: int = 0,
    db: Path | None = None,
) -> None:
    count = len(decisions)
    mean_ms = sum(d.processing_time_ms for d in decisions) / count if count else 0.0
    review = sum(d.requires_manual_review for d in decisions)
    teams = Counter(d.assigned_team for d in decisions)
    priorities = Counter(d.priority_level.value for d in decisions)
    print(file=out)
    # A second run over the same file routes nothing: counting the stored decisions as routed would
    # hide that, and that they are shown as the earlier run made them.
    routed = f"Routed {count - stored_before} ticket(s) with the {app.engine.name} engine"
    if stored_before:
        routed += f"; {stored_before} more were already stored in {db}, shown as stored, not routed again"
    print(routed + ".", file=out)
    print(f"Mean processing time: {mean_ms:.2f} ms per ticket", file=out)
    print(f"Manual review: {review} of {count}", file=out)
    print("Teams: " + (", ".join(f"{t} {n}" for t, n in teams.most_common()) or "none"), file=out)
    print("Priorities: " + (", ".join(f"{p} {priorities[p]}" for p in sorted(priorities)) or "none"), file=out)
    cost = sum(d.cost_usd for d in decisions)
    if app.engine.name != "pipeline":
        mean_cost = cost / count if count else 0.0
        print(f"Model cost: ${cost:.4f} total, ${mean_cost:.5f} per ticket", file=out)
    if duplicates:
        print(f"Skipped {len(duplicates)} repeated ticket_id(s) at row(s) {', '.join(map(str, duplicates))}.", file=out)
    if errors:
        bad_rows = len({e.row for e in errors})
        print(f"Rejected {bad_rows} row(s) with errors (details on stderr).", file=out)
    if app.bus.failed:
        print(f"Failed to route {len(app.bus.failed)} ticket(s): " + "; ".join(m for _, m in app.bus.failed), file=out)
    unsynced = sum(d.sync_status in _NOT_PUSHED for d in decisions)
    if unsynced:
        print(f"Not pushed to the ticketing system: {unsynced} of {count} (details on stderr).", file=out)
