"""Re-driving ticketing updates that failed: every failed decision can be found and replayed."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.errors import SyncUnavailable
from domain.models import SyncStatus
from domain.ports import Clock, DecisionRepository, TicketingSystem
from domain.services import sync_decision


@dataclass
class ReplayReport:
    attempted: int = 0
    succeeded: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "attempted": self.attempted,
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
) -> ReplayReport:
    """Push every decision whose sync failed again. The Idempotency-Key makes a replay of an update
    that did land in the ticketing system harmless."""
    report = ReplayReport()
    for decision in repository.find_by_sync_status(SyncStatus.FAILED, limit=limit):
        report.attempted += 1
        try:
            status = sync_decision(decision, ticketing=ticketing, repository=repository, clock=clock)
        except SyncUnavailable:
            report.still_failing.append(decision.ticket_id)
            continue
        (report.succeeded if status is SyncStatus.SUCCESS else report.rejected).append(decision.ticket_id)
    return report
