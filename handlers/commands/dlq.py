"""`ticket-router dlq replay`: re-drive failed ticketing updates and report what succeeded.

Locally, it first routes again the accepted tickets whose routing failed (kept in the SQLite store
by the bus); then failed decisions come from the store and updates go to the outbox. With --aws they
come from the decisions table's sparse sync_status-unsynced-index and go to the ticketing API, using
the ticketing-update function's environment; --queue-url then also empties the stream's DLQ once
nothing is left failing (its messages only point at stream batches, which the index covers).

Updates the ticketing system rejected are listed, not retried, unless --include-rejected asks for
them (once their cause is fixed): they would be refused again, and would use up the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.errors import ConfigurationError, RepositoryUnavailable
from domain.models import SyncStatus
from domain.recovery import STALE_PENDING_AFTER, ReplayReport, replay_failed_syncs
from handlers.commands.arguments import non_empty, whole_number

if TYPE_CHECKING:
    from domain.models import RoutingDecision
    from domain.ports import Clock, DecisionRepository, TicketingSystem

# Each replayed decision is one push; past this a run is better split, and SQLite needs the
# limit to fit in 64 bits anyway.
MAX_LIMIT = 100_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dlq", help="recover failed routings and ticketing updates")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay = actions.add_parser(
        "replay",
        help="route again every accepted ticket whose routing failed (local mode), then push again every "
        "decision whose sync failed",
    )
    replay.add_argument("--aws", action="store_true", help="use the AWS resources named by the environment")
    replay.add_argument(
        "--queue-url",
        type=non_empty("a queue URL"),
        help="(--aws) the stream DLQ to empty once every replay succeeded",
    )
    replay.add_argument(
        "--limit",
        type=whole_number(1, MAX_LIMIT),
        default=500,
        help=f"at most this many tickets routed and decisions pushed, together (default 500, most {MAX_LIMIT})",
    )
    replay.add_argument(
        "--include-rejected",
        action="store_true",
        help="also push again the updates the ticketing system rejected (in turn with the failed ones, least "
        "recently attempted first), once the cause of the rejection is fixed",
    )
    replay.set_defaults(func=run_replay)


@dataclass
class _Replayed:
    report: ReplayReport
    payload: dict[str, Any]
    limit_reached: bool
    unreadable: list[str]
    unrouted: list[str] = field(default_factory=list)
    drain_error: str | None = None

    @property
    def left_undone(self) -> bool:
        # An update rejected by this run was not pushed either: it waits, rejected, for a person.
        # Those rejected earlier and not retried are listed, not counted: left to a person, they
        # would otherwise fail every run until they expire.
        report = self.report
        return bool(
            report.still_failing
            or report.rejected
            or self.unrouted
            or self.unreadable
            or self.limit_reached
            or self.drain_error
            or report.store_error
            or report.ticketing_unavailable
        )


def run_replay(args: argparse.Namespace) -> int:
    if args.queue_url and not args.aws:
        # Ignoring it would let the user believe the queue was dealt with.
        raise ConfigurationError("--queue-url needs --aws: the local mode has no queue to empty")
    replayed = _replay_on_aws(args) if args.aws else _replay_locally(args)
    if replayed.limit_reached:
        print(f"ticket-router: --limit {args.limit} reached; run again for the rest", file=sys.stderr)
    print(json.dumps(replayed.payload, indent=2))
    waiting = replayed.report.rejected_not_retried
    if waiting:
        count = f"more than {len(waiting)}" if replayed.report.more_rejected_not_retried else str(len(waiting))
        print(
            f"ticket-router: {count} update(s) the ticketing system rejected earlier were not retried"
            " (rejected_not_retried_ticket_ids); fix what it refused, then run again with --include-rejected",
            file=sys.stderr,
        )
    for error in (replayed.report.ticketing_unavailable, replayed.report.store_error, replayed.drain_error):
        if error is not None:
            print(f"ticket-router: error: {error}", file=sys.stderr)
    return 1 if replayed.left_undone else 0


def _replay_on_aws(args: argparse.Namespace) -> _Replayed:
    from handlers.bootstrap import build_ticketing_update_deps

    deps = build_ticketing_update_deps()
    repository = deps.repository
    if repository is None:
        raise ConfigurationError("dlq replay --aws needs ROUTING_DECISIONS_TABLE")
    report = replay_failed_syncs(
        repository=repository,
        ticketing=_BoundedPushes(deps.ticketing),
        clock=deps.clock,
        limit=args.limit,
        include_rejected=args.include_rejected,
        progress=_Progress(),
    )
    limit_reached = report.attempted >= args.limit and _unless_store_failed(
        report, lambda: _sync_work_left(repository, deps.clock, report, include_rejected=args.include_rejected)
    )
    unreadable = sorted(getattr(repository, "unreadable", ()))
    # The queue's messages are the only pointer some operators watch: emptied only once nothing is
    # left to do (an update this run saw rejected waits for a person).
    settled = (
        not report.still_failing
        and not report.rejected
        and not unreadable
        and not limit_reached
        and report.store_error is None
        and report.ticketing_unavailable is None
    )
    drained, drain_error = _drain_queue(args.queue_url) if args.queue_url and settled else (0, None)
    payload: dict[str, Any] = {
        **report.as_dict(),
        "unreadable_records": len(unreadable),
        "unreadable_ticket_ids": unreadable[:50],
        "limit_reached": limit_reached,
        "dlq_messages_deleted": drained,
    }
    if drain_error is not None:
        # In the report, not instead of it: the pushes it lists did happen.
        payload["dlq_error"] = drain_error
    return _Replayed(report, payload, limit_reached, unreadable, drain_error=drain_error)


def _replay_locally(args: argparse.Namespace) -> _Replayed:
    from adapters.local.sqlite_repository import SqliteDecisionRepository
    from handlers.bootstrap import bootstrap_local
    from handlers.output_paths import check_writable
    from handlers.settings import LocalSettings, load_settings

    settings = load_settings(LocalSettings)
    # A missing store has nothing to replay; creating one would only hide a mistyped path.
    SqliteDecisionRepository(settings.db_path, create=False).close()
    check_writable(settings.outbox_path, settings.outbox_name, keep_apart={"the decision store": settings.db_path})
    with _only_replay_of(settings.db_path):
        app = bootstrap_local(settings)
        try:
            # Routing first: a ticket it decides and cannot push is then picked up by the replay
            # below. One --limit for both: it bounds the run, whatever the mix.
            redelivery = app.redeliver_parked(args.limit)
            left = args.limit - len(redelivery.routed) - len(redelivery.still_failing)
            report = (
                replay_failed_syncs(
                    repository=app.repository,
                    ticketing=app.ticketing,
                    clock=app.clock,
                    limit=left,
                    include_rejected=args.include_rejected,
                    progress=_Progress(),
                )
                if left > 0
                else ReplayReport()
            )
            # Work left because the limit was used up is said, rather than reported as a clean run.
            limit_reached = left - report.attempted <= 0 and _unless_store_failed(
                report,
                lambda: (
                    app.repository.parked_count() > len(redelivery.still_failing)
                    or _sync_work_left(app.repository, app.clock, report, include_rejected=args.include_rejected)
                ),
            )
        finally:
            app.close()
    # Damaged records could be neither routed nor pushed: still work to do, by hand.
    unreadable = sorted(app.repository.unreadable)
    unrouted = redelivery.still_failing
    payload = {
        "unrouted_tickets_routed": len(redelivery.routed),
        "unrouted_tickets_still_failing": len(unrouted),
        "unrouted_still_failing_ticket_ids": unrouted[:50],
        **report.as_dict(),
        "unreadable_records": len(unreadable),
        "unreadable_ticket_ids": unreadable[:50],
        "limit_reached": limit_reached,
    }
    return _Replayed(report, payload, limit_reached, unreadable, unrouted=unrouted)


class _BoundedPushes:
    """The ticketing system, each push given a deadline: the time its own retries need. Without
    one (as the stream's Lambda has), the HTTP adapter waits out every Retry-After up to its
    max_retry_after, five minutes a retry, so a rate-limited API held each decision for half an
    hour before a run could see that it is not being answered."""

    def __init__(self, ticketing: TicketingSystem) -> None:
        self._ticketing = ticketing
        self._seconds: float | None = getattr(ticketing, "longest_push_seconds", None)

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        if self._seconds is not None:
            deadline = time.monotonic() + self._seconds
        self._ticketing.push_routing(decision, deadline=deadline)


# Each push may take a minute of retries: a line this often (and after each failure) shows a long
# run is moving, on stderr so that the report on stdout stays one JSON document.
_PROGRESS_EVERY = 10


class _Progress:
    """Prints a line every _PROGRESS_EVERY decisions, and after each push that failed (the slow ones)."""

    def __init__(self) -> None:
        self._failing = 0

    def __call__(self, report: ReplayReport, picked: int) -> None:
        failed_now = len(report.still_failing) > self._failing
        self._failing = len(report.still_failing)
        if report.attempted % _PROGRESS_EVERY and not failed_now:
            return
        print(
            f"ticket-router: replayed {report.attempted} of {picked}: {len(report.succeeded)} synced,"
            f" {len(report.still_failing)} still failing, {len(report.rejected)} rejected",
            file=sys.stderr,
            flush=True,
        )


def _unless_store_failed(report: ReplayReport, work_left: Callable[[], bool]) -> bool:
    """`work_left()`, unless the store failed: the run then fails and says why (in the report, so
    that what it did is not lost with it), rather than guess."""
    if report.store_error is not None:
        return False
    try:
        return work_left()
    except RepositoryUnavailable as exc:
        report.store_error = f"cannot tell whether work is left: {exc}"
        return False


def _sync_work_left(
    repository: DecisionRepository, clock: Clock, report: ReplayReport, *, include_rejected: bool
) -> bool:
    """Whether a failed sync or a stale pending decision (or, when asked for, a rejected one) is
    left that this run did not try. What it
    tried is told apart by id, not count: a tried one may still be listed as it was (a DynamoDB
    index lags the table's writes), and one it tried and failed, or saw rejected, is reported."""
    tried = {*report.succeeded, *report.still_failing, *report.rejected}
    # One more than were tried: any beyond them is one this run did not try.
    failed = repository.find_by_sync_status(SyncStatus.FAILED, limit=len(tried) + 1)
    if any(decision.ticket_id not in tried for decision in failed):
        return True
    cutoff = clock.now() - STALE_PENDING_AFTER
    pending = repository.find_by_sync_status(SyncStatus.PENDING, limit=len(tried) + 1, made_before=cutoff)
    if any(decision.ticket_id not in tried for decision in pending):
        return True
    if not include_rejected:
        return False
    rejected = repository.find_by_sync_status(SyncStatus.REJECTED, limit=len(tried) + 1)
    return any(decision.ticket_id not in tried for decision in rejected)


@contextlib.contextmanager
def _only_replay_of(db: Path) -> Iterator[None]:
    """Hold the store's replay lock: two replays at once would each push every failed decision,
    and each report the other's work as its own."""
    import fcntl

    # Beside the store itself, through any symlink: every path to one store takes one lock (a store
    # with a second hard link is refused when opened).
    real = db.resolve()
    lock_path = real.with_name(real.name + ".replay-lock")
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(f"another `dlq replay` is running on {db}; wait for it to finish") from None
        yield


# Long polling asks every SQS server, where a short poll samples some and may answer empty while
# messages remain; a second's wait is the price of knowing the queue is empty.
_DRAIN_WAIT_SECONDS = 1


def _drain_queue(queue_url: str) -> tuple[int, str | None]:
    """The number of messages deleted, and why the queue could not be emptied if it could not (a
    mistyped --queue-url, no permission, a delete refused): the user's to fix, not a crash."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    sqs = boto3.client("sqs")
    deleted = 0
    try:
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=_DRAIN_WAIT_SECONDS
            ).get("Messages", [])
            if not messages:
                return deleted, None
            answer = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            deleted += len(answer.get("Successful", []))
            failed = answer.get("Failed", [])
            if failed:
                # Said rather than counted: they come back once their visibility timeout ends.
                reasons = sorted({f"{entry.get('Code')}: {entry.get('Message')}" for entry in failed})
                return (
                    deleted,
                    f"cannot empty the DLQ {queue_url}: {len(failed)} message(s) not deleted ({'; '.join(reasons)})",
                )
    except (ClientError, BotoCoreError) as exc:
        return deleted, f"cannot empty the DLQ {queue_url}: {exc}"
