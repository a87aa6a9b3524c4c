"""Re-driving ticketing updates that failed: every failed decision can be found and replayed.

So can a decision left `pending`: a stream record can fail before its sync is recorded at all (the
table throttled on the read, the function timed out mid-push), and once the stream's retries are
spent its dead-letter message only points at stream positions. Past `STALE_PENDING_AFTER` nothing
else will push it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from domain.errors import SyncUnavailable
from domain.models import SyncStatus
from domain.ports import Clock, DecisionRepository, TicketingSystem
from domain.services import sync_decision

# Since the decision was made: far beyond the stream's own retries (seconds to minutes), so a replay
# does not race the push of a live stream record. One that still overlaps is harmless: the
# Idempotency-Key makes the second push a no-op.
STALE_PENDING_AFTER = timedelta(minutes=15)


@dataclass
class ReplayReport:
    attempted: int = 0
    succeeded: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    stale_pending: int = 0  # of `attempted`: decisions whose sync was never recorded

    def as_dict(self) -> dict[str, object]:
        return {
            "attempted": self.attempted,
            "stale_pending": self.stale_pending,
            "succeeded": len(self.succeeded),
            "still_failing": len(self.still_failing),
            "rejected": len(self.rejected),
            "still_failing_ticket_ids": self.still_failing[:50],
            "rejected_ticket_ids": self.rejected[:50],
        }


def replay_failed_syncs(
    *,
    repository: DecisionRepository,
    ticketing: TicketingSystem,
    clock: Clock,
    limit: int = 500,
    stale_pending_after: timedelta = STALE_PENDING_AFTER,
) -> ReplayReport:
    """Push again every decision whose sync failed, then those still pending for longer than
    `stale_pending_after`, at most `limit` in all. The Idempotency-Key makes a replay of an update
    that did land in the ticketing system harmless."""
    report = ReplayReport()
    failed = repository.find_by_sync_status(SyncStatus.FAILED, limit=limit)
    cutoff = clock.now() - stale_pending_after
    # The index is sorted by the ticket's receipt time, which a client may set in the past: it
    # narrows the search, and the decision's own creation time decides. Decided in the query, so
    # that recent decisions of backdated tickets cannot fill the limit ahead of stale ones.
    stale = repository.find_by_sync_status(
        SyncStatus.PENDING, limit=limit - len(failed), received_before=int(cutoff.timestamp()), made_before=cutoff
    )
    report.stale_pending = len(stale)
    for decision in [*failed, *stale]:
        report.attempted += 1
        try:
            status = sync_decision(decision, ticketing=ticketing, repository=repository, clock=clock)
        except SyncUnavailable:
            report.still_failing.append(decision.ticket_id)
            continue
        (report.succeeded if status is SyncStatus.SUCCESS else report.rejected).append(decision.ticket_id)
    return report
