"""Re-driving ticketing updates that failed: every failed decision can be found and replayed.

So can a decision left `pending`: a stream record can fail before its sync is recorded at all (the
table throttled on the read, the function timed out mid-push), and once the stream's retries are
spent its dead-letter message only points at stream positions. Past `STALE_PENDING_AFTER` nothing
else will push it.

A decision the ticketing system rejected (`rejected`) is not retried unless asked for: the same
update would be refused again until a person fixes its cause, and retrying it on every replay would
use up the limit ahead of the transient failures. It is reported instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.errors import RepositoryUnavailable, SyncUnavailable
from domain.models import RoutingDecision, SyncStatus
from domain.ports import Clock, DecisionRepository, TicketingSystem
from domain.services import sync_decision

# A report lists at most this many ticket ids of each kind.
REPORTED_IDS = 50

# Since the decision was made: far beyond the stream's own retries (seconds to minutes), so a replay
# does not race the push of a live stream record. One that still overlaps is harmless: the
# Idempotency-Key makes the second push a no-op.
STALE_PENDING_AFTER = timedelta(minutes=15)

# Transient failures in a row after which the ticketing system is taken to be down and the run
# stops: each costs a push's every retry (about a minute), so going on through hundreds would take
# hours to change nothing. Failed updates are tried least recently attempted first, so three that
# always fail cannot stop every run before the others: the next run starts with those.
DOWN_AFTER_FAILURES = 3


def _least_recently_attempted(decision: RoutingDecision) -> tuple[bool, datetime]:
    """Never attempted (pending, or failed before attempts were recorded) first, then the least
    recent attempt; a stable sort keeps the repository's order among equals."""
    attempted = decision.sync_attempted_at
    return (attempted is not None, attempted or datetime.min.replace(tzinfo=UTC))


@dataclass
class ReplayReport:
    attempted: int = 0
    succeeded: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    stale_pending: int = 0  # of `attempted`: decisions whose sync was never recorded
    # Rejected earlier and not retried by this run: the first REPORTED_IDS, and whether more wait.
    rejected_not_retried: list[str] = field(default_factory=list)
    more_rejected_not_retried: bool = False
    # Why the run stopped short, when the store failed under it: what it did before still stands.
    store_error: str | None = None
    # Why the run stopped short, when the ticketing system looked down; and how many of the
    # decisions it had picked it left untried when either stopped it.
    ticketing_unavailable: str | None = None
    not_attempted: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "attempted": self.attempted,
            "stale_pending": self.stale_pending,
            "succeeded": len(self.succeeded),
            "still_failing": len(self.still_failing),
            "rejected": len(self.rejected),
            "still_failing_ticket_ids": self.still_failing[:REPORTED_IDS],
            "rejected_ticket_ids": self.rejected[:REPORTED_IDS],
            "rejected_not_retried_ticket_ids": self.rejected_not_retried,
            "more_rejected_not_retried": self.more_rejected_not_retried,
            "store_error": self.store_error,
            "ticketing_unavailable": self.ticketing_unavailable,
            "not_attempted": self.not_attempted,
        }


def replay_failed_syncs(
    *,
    repository: DecisionRepository,
    ticketing: TicketingSystem,
    clock: Clock,
    limit: int = 500,
    stale_pending_after: timedelta = STALE_PENDING_AFTER,
    include_rejected: bool = False,
    down_after_failures: int = DOWN_AFTER_FAILURES,
    progress: Callable[[ReplayReport, int], None] | None = None,
) -> ReplayReport:
    """Push again every decision whose sync failed, those still pending for longer than
    `stale_pending_after` (never tried, so among the first) and (with `include_rejected`) those the
    ticketing system rejected, least recently attempted first, at most `limit` in all. The Idempotency-Key makes a replay of an update that did land in the
    ticketing system harmless. Stops after `down_after_failures` transient failures in a row.
    `progress(report, picked)` is called after each decision, `picked` being how many were chosen."""
    report = ReplayReport()
    failed = repository.find_by_sync_status(SyncStatus.FAILED, limit=limit)
    cutoff = clock.now() - stale_pending_after
    # The index is sorted by the ticket's receipt time, which its sender may set in the past or in
    # the future, so only the decision's own creation time decides: not narrowed by receipt time,
    # which would pass over a stranded decision of a ticket dated ahead for as long as it is ahead.
    # Decided in the query, so that recent decisions of backdated tickets cannot fill the limit.
    stale = repository.find_by_sync_status(SyncStatus.PENDING, limit=limit, made_before=cutoff)
    rejected = repository.find_by_sync_status(SyncStatus.REJECTED, limit=limit) if include_rejected else []
    # One queue, least recently attempted first (a stable sort: failed, then pending, then rejected
    # among equals): placed behind every failed one, a stranded pending decision (never tried) or a
    # rejected one asked for would wait forever once three that always fail stop each run.
    picked = sorted([*failed, *stale, *rejected], key=_least_recently_attempted)[:limit]
    report.stale_pending = sum(decision.sync_status is SyncStatus.PENDING for decision in picked)
    failures_in_a_row = 0
    for decision in picked:
        if progress is not None and report.attempted:
            progress(report, len(picked))
        report.attempted += 1
        try:
            status = sync_decision(decision, ticketing=ticketing, repository=repository, clock=clock)
        except SyncUnavailable as exc:
            report.still_failing.append(decision.ticket_id)
            failures_in_a_row += 1
            if failures_in_a_row >= down_after_failures:
                report.not_attempted = len(picked) - report.attempted
                report.ticketing_unavailable = (
                    f"the ticketing system failed {failures_in_a_row} updates in a row (last: {exc}); replay"
                    f" stopped with {report.not_attempted} picked update(s) not tried: run again once it is back"
                )
                break
            continue
        except RepositoryUnavailable as exc:
            # The push may have landed with its outcome unrecorded: the decision stays listed as it
            # was, and the next replay pushes it again (harmless, by its Idempotency-Key). Stopped
            # here, as the rest would fail alike, and returned, since the pushes so far did happen.
            report.still_failing.append(decision.ticket_id)
            report.not_attempted = len(picked) - report.attempted
            report.store_error = f"cannot record the sync of {decision.ticket_id}, replay stopped: {exc}"
            return report
        # A refusal is an answer too: the system is up.
        failures_in_a_row = 0
        (report.succeeded if status is SyncStatus.SUCCESS else report.rejected).append(decision.ticket_id)
    if progress is not None and report.attempted:
        progress(report, len(picked))
    if not include_rejected:
        # Those rejected by this run are reported as such; an index that lags the writes may list them.
        try:
            listed = repository.find_by_sync_status(SyncStatus.REJECTED, limit=len(report.rejected) + REPORTED_IDS + 1)
        except RepositoryUnavailable as exc:
            report.store_error = f"cannot list the rejected updates: {exc}"
            return report
        waiting = [decision.ticket_id for decision in listed if decision.ticket_id not in report.rejected]
        report.rejected_not_retried = waiting[:REPORTED_IDS]
        report.more_rejected_not_retried = len(waiting) > REPORTED_IDS
    return report
