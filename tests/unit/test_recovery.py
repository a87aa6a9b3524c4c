"""Failed ticketing updates are always findable and replayable, and a replay reports honestly."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.clock import FixedClock
from domain.errors import RepositoryUnavailable, SyncRejected, SyncUnavailable
from domain.models import RoutingDecision, SyncStatus
from domain.recovery import REPORTED_IDS, replay_failed_syncs
from domain.services import sync_decision
from tests.builders import NOW, InMemoryRepository
from tests.integration.test_sqlite_repository import a_decision

CLOCK = FixedClock(NOW)


class FlakyTicketing:
    def __init__(self, failures: dict[str, Exception]) -> None:
        self.failures = failures
        self.pushed: list[str] = []

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        if decision.ticket_id in self.failures:
            raise self.failures[decision.ticket_id]
        self.pushed.append(decision.ticket_id)


def made(decision: RoutingDecision, at: datetime) -> RoutingDecision:
    return decision.model_copy(update={"created_at": at})


def failed_store(*ticket_ids: str) -> InMemoryRepository:
    repo = InMemoryRepository()
    for i, ticket_id in enumerate(ticket_ids):
        decision = a_decision(ticket_id, timestamp=i)
        repo.save(decision)
        with pytest.raises(SyncUnavailable):
            sync_decision(
                decision, ticketing=FlakyTicketing({ticket_id: SyncUnavailable("503")}), repository=repo, clock=CLOCK
            )
    return repo


def test_replay_pushes_every_failed_decision_once_and_marks_it_synced() -> None:
    repo = failed_store("T-1", "T-2", "T-3")
    ticketing = FlakyTicketing({})
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)
    assert sorted(ticketing.pushed) == ["T-1", "T-2", "T-3"]
    assert report.as_dict()["succeeded"] == 3
    assert repo.find_by_sync_status(SyncStatus.FAILED) == []


def test_replay_reports_what_still_fails_and_what_is_rejected() -> None:
    repo = failed_store("T-1", "T-2", "T-3")
    ticketing = FlakyTicketing({"T-2": SyncUnavailable("still down"), "T-3": SyncRejected("404 no such ticket")})
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)
    assert (report.succeeded, report.still_failing, report.rejected) == (["T-1"], ["T-2"], ["T-3"])
    # Still failing stays visibly failed, ready for the next replay; the refused one is recorded as rejected
    assert {d.ticket_id for d in repo.find_by_sync_status(SyncStatus.FAILED)} == {"T-2"}
    assert {d.ticket_id for d in repo.find_by_sync_status(SyncStatus.REJECTED)} == {"T-3"}


def test_replay_also_pushes_decisions_whose_sync_was_never_recorded() -> None:
    # Given a decision made an hour ago and left pending by a stream record that failed before its
    # sync was recorded, one made a minute ago whose stream record is being processed right now,
    # and one made just now for a ticket its sender dated an hour back
    repo = InMemoryRepository()
    an_hour_ago = int(NOW.timestamp()) - 3600
    repo.save(made(a_decision("T-STRANDED", timestamp=an_hour_ago), NOW - timedelta(hours=1)))
    repo.save(made(a_decision("T-IN-FLIGHT", timestamp=an_hour_ago + 1), NOW - timedelta(minutes=1)))
    repo.save(made(a_decision("T-BACKDATED", timestamp=an_hour_ago + 2), NOW))
    ticketing = FlakyTicketing({})

    # When failed syncs are replayed
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)

    # Then the stranded one is pushed and synced; the other two are left to their stream records
    assert ticketing.pushed == ["T-STRANDED"]
    assert report.as_dict()["stale_pending"] == 1 and report.as_dict()["succeeded"] == 1
    assert {d.ticket_id for d in repo.find_by_sync_status(SyncStatus.PENDING)} == {"T-IN-FLIGHT", "T-BACKDATED"}


def test_recent_decisions_of_backdated_tickets_do_not_hide_a_stale_one_under_the_limit() -> None:
    # Given two decisions made just now for tickets their senders dated a day back, and one made an
    # hour ago, left pending, for a ticket received before them
    repo = InMemoryRepository()
    a_day_ago = int(NOW.timestamp()) - 86_400
    repo.save(made(a_decision("T-STRANDED", timestamp=a_day_ago - 60), NOW - timedelta(hours=1)))
    repo.save(made(a_decision("T-BACKDATED-1", timestamp=a_day_ago), NOW))
    repo.save(made(a_decision("T-BACKDATED-2", timestamp=a_day_ago + 1), NOW))
    ticketing = FlakyTicketing({})

    # When a replay may push two
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK, limit=2)

    # Then the stranded one is pushed: the recent ones, newer by receipt time, did not use up the limit
    assert ticketing.pushed == ["T-STRANDED"]
    assert report.stale_pending == 1
    assert {d.ticket_id for d in repo.find_by_sync_status(SyncStatus.PENDING)} == {"T-BACKDATED-1", "T-BACKDATED-2"}


def test_a_stranded_pending_decision_never_tried_comes_before_failed_ones_within_the_limit() -> None:
    # Given two failed decisions, tried once already, and an hour-old pending one, never tried
    repo = failed_store("T-1", "T-2")
    repo.save(made(a_decision("T-STRANDED", timestamp=int(NOW.timestamp()) - 3600), NOW - timedelta(hours=1)))
    ticketing = FlakyTicketing({})

    # When a replay may push two
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK, limit=2)

    # Then the pending one went first, then the newest failed one; the other waits for the next replay
    assert ticketing.pushed == ["T-STRANDED", "T-2"]
    assert report.stale_pending == 1
    assert [d.ticket_id for d in repo.find_by_sync_status(SyncStatus.FAILED)] == ["T-1"]


def rejected_store(repo: InMemoryRepository, *ticket_ids: str, first_timestamp: int = 100) -> None:
    for i, ticket_id in enumerate(ticket_ids):
        decision = a_decision(ticket_id, timestamp=first_timestamp + i)
        repo.save(decision)
        sync_decision(
            decision, ticketing=FlakyTicketing({ticket_id: SyncRejected("422 closed")}), repository=repo, clock=CLOCK
        )


def test_rejected_updates_do_not_crowd_transient_failures_out_of_the_limit() -> None:
    # Given one update that failed for a moment, and three, received later, the ticketing system refused
    repo = failed_store("T-DOWN")
    rejected_store(repo, "T-R1", "T-R2", "T-R3")
    ticketing = FlakyTicketing({})

    # When a replay may push two
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK, limit=2)

    # Then the transient failure is pushed, the refused ones are listed for a person, not retried
    assert ticketing.pushed == ["T-DOWN"]
    assert report.succeeded == ["T-DOWN"]
    assert report.rejected_not_retried == ["T-R3", "T-R2", "T-R1"] and not report.more_rejected_not_retried
    assert {d.ticket_id for d in repo.find_by_sync_status(SyncStatus.REJECTED)} == {"T-R1", "T-R2", "T-R3"}


def test_rejected_updates_are_retried_when_asked_for_after_failed_ones_tried_as_long_ago() -> None:
    # Given a failed update and two refused ones, whose cause has since been fixed, all tried at one moment
    repo = failed_store("T-DOWN")
    rejected_store(repo, "T-R1", "T-R2")
    ticketing = FlakyTicketing({})

    # When a replay that includes rejected updates may push two
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK, limit=2, include_rejected=True)

    # Then the failed one goes first, then the newest refused one; the other stays rejected
    assert ticketing.pushed == ["T-DOWN", "T-R2"]
    assert report.rejected_not_retried == []
    assert [d.ticket_id for d in repo.find_by_sync_status(SyncStatus.REJECTED)] == ["T-R1"]


def test_a_stored_failed_update_that_is_refused_on_replay_becomes_rejected() -> None:
    # Given an update stored as failed (as every refusal was before `rejected` existed)
    repo = failed_store("T-OLD")
    ticketing = FlakyTicketing({"T-OLD": SyncRejected("404 no such ticket")})

    # When it is replayed and refused
    first = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)

    # Then it is reported as rejected by this run, and the next replay lists it without pushing it
    assert (first.rejected, first.rejected_not_retried) == (["T-OLD"], [])
    second = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)
    assert (second.attempted, second.rejected, second.rejected_not_retried) == (0, [], ["T-OLD"])


def test_a_long_list_of_rejected_updates_is_cut_and_says_so() -> None:
    # Given more refused updates than a report lists
    repo = InMemoryRepository()
    rejected_store(repo, *(f"T-{n:03}" for n in range(REPORTED_IDS + 1)))

    # When failed syncs are replayed
    report = replay_failed_syncs(repository=repo, ticketing=FlakyTicketing({}), clock=CLOCK)

    # Then the report lists as many as it may and says more wait
    assert len(report.rejected_not_retried) == REPORTED_IDS and report.more_rejected_not_retried


class StoreFailingOnUpdate(InMemoryRepository):
    """A store that stops taking writes from the sync of `ticket_id` on (throttled, locked)."""

    def __init__(self, ticket_id: str) -> None:
        super().__init__()
        self.failing_from = ticket_id
        self.failing = False

    def update_sync_status(self, ticket_id: str, timestamp: int, status: SyncStatus, **fields: Any) -> None:
        self.failing = self.failing or ticket_id == self.failing_from
        if self.failing:
            raise RepositoryUnavailable("DynamoDB throttled or failing on update_sync_status")
        super().update_sync_status(ticket_id, timestamp, status, **fields)


def test_a_store_failing_mid_replay_stops_it_and_keeps_what_it_did() -> None:
    # Given three failed updates, and a store that stops taking writes at the second one pushed
    repo = StoreFailingOnUpdate("T-2")
    for i, ticket_id in enumerate(["T-1", "T-2", "T-3"]):
        repo.save(a_decision(ticket_id, timestamp=10 - i).model_copy(update={"sync_status": SyncStatus.FAILED}))
    ticketing = FlakyTicketing({})

    # When failed syncs are replayed
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)

    # Then the first is reported synced, the second (pushed, its outcome unrecorded) still failing
    # for the next replay, the third left untried, and the report says why it stopped
    assert (report.succeeded, report.still_failing, report.attempted) == (["T-1"], ["T-2"], 2)
    assert report.as_dict()["not_attempted"] == 1
    assert ticketing.pushed == ["T-1", "T-2"]
    assert report.store_error is not None and "T-2" in report.store_error and "throttled" in report.store_error
    assert {d.ticket_id for d in repo.find_by_sync_status(SyncStatus.FAILED)} == {"T-2", "T-3"}


def test_a_stranded_decision_of_a_ticket_dated_in_the_future_is_pushed_too() -> None:
    # Given a decision made an hour ago and left pending, for a ticket its sender dated tomorrow
    # (a clock set wrong, a time zone taken for UTC)
    repo = InMemoryRepository()
    tomorrow = int(NOW.timestamp()) + 86_400
    repo.save(made(a_decision("T-FUTURE", timestamp=tomorrow), NOW - timedelta(hours=1)))
    ticketing = FlakyTicketing({})

    # When failed syncs are replayed
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)

    # Then it is pushed: its own age decides, not the date its sender gave the ticket
    assert ticketing.pushed == ["T-FUTURE"]
    assert report.stale_pending == 1


class DownTicketing:
    """A ticketing system that fails every push, as one that is down does, counting the pushes."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        self.tried.append(decision.ticket_id)
        raise SyncUnavailable("HTTP 503 after 5 retries")


def test_a_replay_stops_once_the_ticketing_system_is_clearly_down() -> None:
    # Given five failed syncs and a ticketing system still down
    repo = failed_store("T-1", "T-2", "T-3", "T-4", "T-5")
    ticketing = DownTicketing()
    seen: list[int] = []

    # When they are replayed
    report = replay_failed_syncs(
        repository=repo, ticketing=ticketing, clock=CLOCK, progress=lambda r, picked: seen.append(r.attempted)
    )

    # Then it stops after three failures in a row, says why and what it left, and loses nothing
    assert len(ticketing.tried) == 3
    assert (report.attempted, report.not_attempted) == (3, 2)
    assert report.ticketing_unavailable is not None and "3 updates in a row" in report.ticketing_unavailable
    assert report.as_dict()["ticketing_unavailable"] == report.ticketing_unavailable
    assert len(repo.find_by_sync_status(SyncStatus.FAILED)) == 5
    # and it told how far it got after each decision
    assert seen == [1, 2, 3]


def test_failures_between_answers_do_not_stop_a_replay() -> None:
    # Given failed syncs of which two in every three still fail: the system answers, just not to all
    repo = failed_store("T-1", "T-2", "T-3", "T-4", "T-5", "T-6")
    ticketing = FlakyTicketing({t: SyncUnavailable("503") for t in ("T-6", "T-5", "T-3", "T-2")})

    # When they are replayed
    report = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=CLOCK)

    # Then every one is tried: a success in between shows the system is up
    assert report.attempted == 6
    assert report.ticketing_unavailable is None
    assert sorted(ticketing.pushed) == ["T-1", "T-4"]


def test_updates_that_always_fail_do_not_take_the_limit_from_the_others_run_after_run() -> None:
    # Given an older failed sync and, newer, three whose updates the ticketing system always fails
    repo = failed_store("T-OLD", "T-BAD-1", "T-BAD-2", "T-BAD-3")
    ticketing = FlakyTicketing({f"T-BAD-{n}": SyncUnavailable("HTTP 500") for n in (1, 2, 3)})

    # When replays of at most two run one after another
    tried: list[list[str]] = []
    for minutes in (1, 2):
        report = replay_failed_syncs(
            repository=repo, ticketing=ticketing, clock=FixedClock(NOW + timedelta(minutes=minutes)), limit=2
        )
        tried.append([*report.succeeded, *report.still_failing])

    # Then the second tries those the first did not, and the older update gets through
    assert tried[0] == ["T-BAD-3", "T-BAD-2"]
    assert sorted(tried[1]) == ["T-BAD-1", "T-OLD"]
    assert ticketing.pushed == ["T-OLD"]


def test_three_updates_that_always_fail_stop_one_replay_not_every_one() -> None:
    # Given an older failed sync and, newer, three that the ticketing system always fails
    repo = failed_store("T-OLD", "T-BAD-1", "T-BAD-2", "T-BAD-3")
    ticketing = FlakyTicketing({f"T-BAD-{n}": SyncUnavailable("HTTP 500") for n in (1, 2, 3)})
    # When a replay stops on them, taking the system for down, and another runs later
    first = replay_failed_syncs(repository=repo, ticketing=ticketing, clock=FixedClock(NOW + timedelta(minutes=1)))
    replay_failed_syncs(repository=repo, ticketing=ticketing, clock=FixedClock(NOW + timedelta(minutes=2)))
    # Then the later one starts with the update the first left, which gets through
    assert first.ticketing_unavailable is not None and first.not_attempted == 1
    assert ticketing.pushed == ["T-OLD"]


def test_updates_that_always_fail_do_not_keep_a_stranded_pending_one_from_its_turn() -> None:
    # Given three failed syncs the ticketing system always fails, and a decision left pending an hour ago
    repo = failed_store("T-BAD-1", "T-BAD-2", "T-BAD-3")
    repo.save(made(a_decision("T-STRANDED", timestamp=int(NOW.timestamp()) - 3600), NOW - timedelta(hours=1)))
    ticketing = FlakyTicketing({f"T-BAD-{n}": SyncUnavailable("HTTP 500") for n in (1, 2, 3)})

    # When replays run one after another, each stopping once three updates failed in a row
    for minutes in (1, 2, 3):
        replay_failed_syncs(repository=repo, ticketing=ticketing, clock=FixedClock(NOW + timedelta(minutes=minutes)))

    # Then the never-tried pending one got its turn and went through
    assert ticketing.pushed == ["T-STRANDED"]
    assert repo.find_by_sync_status(SyncStatus.PENDING) == []


def test_updates_that_always_fail_do_not_keep_rejected_ones_asked_for_from_their_turn() -> None:
    # Given three failed syncs the ticketing system always fails, and a refused update whose cause is fixed
    repo = failed_store("T-BAD-1", "T-BAD-2", "T-BAD-3")
    rejected_store(repo, "T-FIXED")
    ticketing = FlakyTicketing({f"T-BAD-{n}": SyncUnavailable("HTTP 500") for n in (1, 2, 3)})

    # When replays that include rejected updates run one after another, each stopping once three failed in a row
    for minutes in (1, 2, 3):
        replay_failed_syncs(
            repository=repo,
            ticketing=ticketing,
            clock=FixedClock(NOW + timedelta(minutes=minutes)),
            include_rejected=True,
        )

    # Then the refused one got its turn and went through
    assert ticketing.pushed == ["T-FIXED"]
    assert repo.find_by_sync_status(SyncStatus.REJECTED) == []
