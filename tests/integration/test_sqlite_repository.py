"""The SQLite store keeps one decision per ticket, finds history by customer and failures by status."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.errors import ConfigurationError, DamagedRecord, DuplicateDecision, RepositoryUnavailable
from domain.models import (
    AccountType,
    CustomerContext,
    Feedback,
    IssueClassification,
    PriorityAssessment,
    PriorityLevel,
    RoutingDecision,
    SyncStatus,
    TicketReceived,
    retention_deadline,
)
from tests.builders import NOW


def a_decision(
    ticket_id: str = "T-1", *, customer_id: str = "C-1", timestamp: int = 1_000, review: bool = False
) -> RoutingDecision:
    return RoutingDecision(
        ticket_id=ticket_id,
        timestamp=timestamp,
        customer_id=customer_id,
        assigned_team="Billing Support",
        priority_level=PriorityLevel.P3,
        priority=PriorityAssessment(level=PriorityLevel.P3, score=10, factors={"severity": 10}),
        confidence_score=0.9,
        issue_classification=IssueClassification(primary_category="Billing Dispute", confidence=0.9),
        reasoning="r",
        requires_manual_review=review,
        processing_time_ms=0.5,
        correlation_id="corr",
        created_at=NOW,
        ttl=retention_deadline(NOW),
        engine="pipeline",
    )


@pytest.fixture
def repo(tmp_path: Path) -> SqliteDecisionRepository:
    store = SqliteDecisionRepository(tmp_path / "decisions.db")
    yield store
    store.close()


def test_round_trip_preserves_every_field(repo: SqliteDecisionRepository) -> None:
    decision = a_decision()
    repo.save(decision)
    assert repo.get("T-1") == decision


def test_second_save_of_the_same_decision_is_a_duplicate(repo: SqliteDecisionRepository) -> None:
    repo.save(a_decision())
    with pytest.raises(DuplicateDecision):
        repo.save(a_decision())
    assert repo.count() == 1


def test_a_second_decision_for_a_ticket_at_another_time_is_a_duplicate_from_any_connection(tmp_path: Path) -> None:
    # Given a ticket decided through one connection (a `route --db` run)
    path = tmp_path / "d.db"
    first, second = SqliteDecisionRepository(path), SqliteDecisionRepository(path)
    first.save(a_decision(timestamp=1))
    # When another connection (a second run at the same moment, which saw no decision yet and
    # gave the ticket its own arrival time) saves its decision for it
    with pytest.raises(DuplicateDecision):
        second.save(a_decision(timestamp=2))
    # Then the first stays the only decision: one ticket is pushed under one idempotency key
    assert second.count() == 1
    assert second.get("T-1").timestamp == 1
    first.close()
    second.close()


def test_get_returns_the_latest_decision_of_a_ticket_in_an_older_store(tmp_path: Path) -> None:
    # Given a store to which an older version wrote two decisions for one ticket
    path = tmp_path / "d.db"
    repo = SqliteDecisionRepository(path)
    repo.save(a_decision(timestamp=1))
    older = sqlite3.connect(path, isolation_level=None)
    older.execute(
        "INSERT INTO decisions SELECT ticket_id, 2, customer_id, assigned_team, sync_status, created_at, ? FROM"
        " decisions WHERE ticket_id = 'T-1'",
        (a_decision(timestamp=2).model_dump_json(),),
    )
    older.close()
    # Then the latest one is the ticket's decision
    assert repo.get("T-1").timestamp == 2
    assert repo.get("missing") is None
    repo.close()


def test_history_is_newest_first_and_limited(repo: SqliteDecisionRepository) -> None:
    for i in range(7):
        repo.save(a_decision(f"T-{i}", timestamp=i))
    repo.save(a_decision("T-other", customer_id="C-2"))
    history = repo.recent_for_customer("C-1", limit=5)
    assert [d.ticket_id for d in history] == ["T-6", "T-5", "T-4", "T-3", "T-2"]
    assert {(h.issue_category, h.assigned_team, h.priority_level, h.requires_manual_review) for h in history} == {
        ("Billing Dispute", "Billing Support", "P3", False)
    }
    assert history[0].created_at == NOW


def test_sync_status_updates_and_failed_lookup(repo: SqliteDecisionRepository) -> None:
    repo.save(a_decision("T-1", timestamp=1))
    repo.save(a_decision("T-2", timestamp=2))
    repo.update_sync_status("T-1", 1, SyncStatus.FAILED, error="503")
    repo.update_sync_status("T-2", 2, SyncStatus.SUCCESS, synced_at=NOW + timedelta(seconds=1))
    failed = repo.find_by_sync_status(SyncStatus.FAILED)
    assert [(d.ticket_id, d.sync_error) for d in failed] == [("T-1", "503")]
    # A success is final
    repo.update_sync_status("T-2", 2, SyncStatus.FAILED, error="late")
    assert repo.get("T-2").sync_status is SyncStatus.SUCCESS


def test_rejected_decisions_are_listed_apart_from_failed_ones(repo: SqliteDecisionRepository) -> None:
    # Given one decision whose push failed for a moment and one the ticketing system refused
    repo.save(a_decision("T-1", timestamp=1))
    repo.save(a_decision("T-2", timestamp=2))
    repo.update_sync_status("T-1", 1, SyncStatus.FAILED, error="503")
    repo.update_sync_status("T-2", 2, SyncStatus.REJECTED, error="422 ticket is closed")
    # When / Then each status lists only its own, and the refusal keeps its reason
    assert [d.ticket_id for d in repo.find_by_sync_status(SyncStatus.FAILED)] == ["T-1"]
    assert [(d.ticket_id, d.sync_error) for d in repo.find_by_sync_status(SyncStatus.REJECTED)] == [
        ("T-2", "422 ticket is closed")
    ]
    # And a late refusal never undoes a success
    repo.update_sync_status("T-1", 1, SyncStatus.SUCCESS, synced_at=NOW)
    repo.update_sync_status("T-1", 1, SyncStatus.REJECTED, error="late")
    assert repo.get("T-1").sync_status is SyncStatus.SUCCESS


def test_pending_lookup_can_keep_only_tickets_received_before_a_time(repo: SqliteDecisionRepository) -> None:
    # Given pending decisions for tickets received at 1, 2 and 3
    for n in (1, 2, 3):
        repo.save(a_decision(f"T-{n}", timestamp=n))
    # When / Then those received before 3 come back, newest first
    assert [d.ticket_id for d in repo.find_by_sync_status(SyncStatus.PENDING, received_before=3)] == ["T-2", "T-1"]


def test_pending_lookup_can_keep_only_decisions_made_before_a_time(repo: SqliteDecisionRepository) -> None:
    # Given a decision made an hour ago, and two made just now for tickets received after it
    repo.save(a_decision("T-OLD", timestamp=1).model_copy(update={"created_at": NOW - timedelta(hours=1)}))
    for n in (2, 3):
        repo.save(a_decision(f"T-{n}", timestamp=n).model_copy(update={"created_at": NOW}))

    # When one decision made before ten minutes ago is asked for
    found = repo.find_by_sync_status(SyncStatus.PENDING, limit=1, made_before=NOW - timedelta(minutes=10))

    # Then it is the old one, though the newer ones come first by receipt time
    assert [d.ticket_id for d in found] == ["T-OLD"]


def test_data_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    first = SqliteDecisionRepository(path)
    first.save(a_decision())
    first.close()
    again = SqliteDecisionRepository(path)
    assert again.get("T-1") == a_decision()
    again.close()


def test_feedback_is_stored_in_order(repo: SqliteDecisionRepository) -> None:
    first = Feedback(ticket_id="T-1", correct_team="Technical Support", recorded_at=NOW)
    assert repo.record(first) is None
    repo.record(Feedback(ticket_id="T-2", correct_team="Billing Support", recorded_at=NOW + timedelta(seconds=1)))
    assert [f.ticket_id for f in repo.feedback()] == ["T-1", "T-2"]
    # A later correction of a ticket says which one it supersedes
    again = Feedback(ticket_id="T-1", correct_team="Billing Support", recorded_at=NOW + timedelta(seconds=2))
    assert repo.record(again) == first


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda r: r.update_sync_status("T-1", 1_000, SyncStatus.FAILED, error="503"), id="sync-status"),
        pytest.param(
            lambda r: r.record(Feedback(ticket_id="T-1", correct_team="Technical Support", recorded_at=NOW)),
            id="feedback",
        ),
    ],
)
def test_a_write_the_store_cannot_take_is_reported_as_unavailable(
    tmp_path: Path, write: Callable[[SqliteDecisionRepository], None]
) -> None:
    # Given a store whose connection is gone (closed, as after a shutdown)
    store = SqliteDecisionRepository(tmp_path / "d.db")
    store.save(a_decision())
    store.close()
    # When / Then the write fails as the domain's RepositoryUnavailable, not a raw sqlite3 error
    with pytest.raises(RepositoryUnavailable):
        write(store)


def test_a_success_recorded_by_another_process_is_not_undone_by_a_late_failure(tmp_path: Path) -> None:
    # Given a pending decision, and another process (serve, say) recording its sync as a success
    path = tmp_path / "d.db"
    store = SqliteDecisionRepository(path)
    store.save(a_decision())
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    succeeded = a_decision().model_copy(update={"sync_status": SyncStatus.SUCCESS})
    other.execute(
        "UPDATE decisions SET sync_status = 'success', body = ? WHERE ticket_id = 'T-1'", (succeeded.model_dump_json(),)
    )
    # When this process records a failure for it while that transaction is still open
    errors: list[BaseException] = []

    def record_failure() -> None:
        try:
            store.update_sync_status("T-1", 1_000, SyncStatus.FAILED, error="timeout")
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    late = threading.Thread(target=record_failure)
    late.start()
    time.sleep(0.3)  # long enough for the late writer to have read the decision, were it not locked out
    # Then it waits for the other transaction rather than reading around it
    assert late.is_alive()
    other.execute("COMMIT")
    late.join(timeout=10)
    other.close()
    # And once it ran, the success stands
    assert errors == []
    assert store.get("T-1").sync_status is SyncStatus.SUCCESS
    assert store.find_by_sync_status(SyncStatus.FAILED) == []
    store.close()


def test_opening_an_existing_store_only_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "d.db"
    with pytest.raises(ConfigurationError, match="no decision store at"):
        SqliteDecisionRepository(path, create=False)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("create", [False, True], ids=["existing-only", "create"])
def test_another_database_is_refused_and_left_untouched(tmp_path: Path, create: bool) -> None:
    # Given another application's SQLite database
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    before = path.read_bytes()
    # When / Then it is refused as not a decision store, even where a store may be created, and its
    # bytes are unchanged: no tables of ours, no switch to WAL
    with pytest.raises(ConfigurationError, match="not a ticket-router decision store"):
        SqliteDecisionRepository(path, create=create)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("other.db*")) == ["other.db"]


@pytest.mark.parametrize("create", [False, True], ids=["existing-only", "create"])
def test_a_store_with_a_second_hard_link_is_refused(tmp_path: Path, create: bool) -> None:
    # Given a store with one decision, hard-linked under a second name (as `cp -l` or `ln` makes)
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    store.save(a_decision("T-1"))
    store.close()
    (tmp_path / "snapshot.db").hardlink_to(tmp_path / "ticket-router.db")
    # When / Then it is refused under either name: SQLite would keep a write-ahead log per name
    for name in ("ticket-router.db", "snapshot.db"):
        with pytest.raises(ConfigurationError, match="2 hard links; SQLite keeps a separate log per name"):
            SqliteDecisionRepository(tmp_path / name, create=create)
    # And once the second name is gone, the store opens with its decision
    (tmp_path / "snapshot.db").unlink()
    assert SqliteDecisionRepository(tmp_path / "ticket-router.db", create=create).get("T-1") is not None


def test_a_directory_named_as_the_store_is_refused_as_a_directory(tmp_path: Path) -> None:
    # Given a folder where the store was expected (ROUTER_DB=some/dir, route --db some/dir)
    folder = tmp_path / "stores"
    folder.mkdir()
    # When / Then it is refused as a directory, not as a file with hard links
    with pytest.raises(ConfigurationError, match="stores is a directory; name a file"):
        SqliteDecisionRepository(folder)


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    # Given an empty file (touch'ed, or made by mktemp)
    path = tmp_path / "new.db"
    path.touch()
    # When it is opened as a store, then it is one
    store = SqliteDecisionRepository(path)
    store.save(a_decision())
    assert store.count() == 1
    store.close()


def test_opening_an_existing_store_only_reads_a_real_one(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    SqliteDecisionRepository(path).close()
    store = SqliteDecisionRepository(path, create=False)
    assert store.count() == 0
    store.close()


def test_an_event_parked_for_redelivery_survives_reopening_until_unparked(tmp_path: Path) -> None:
    # Given a ticket whose routing failed twice, parked in the store each time
    store = SqliteDecisionRepository(tmp_path / "decisions.db")
    event = a_ticket_received("T-9")
    store.park(event, "ModelUnavailable: throttled", NOW)
    store.park(event, "RepositoryUnavailable: database is locked", NOW + timedelta(minutes=1))
    store.close()
    # When the store is opened again (the process restarted)
    store = SqliteDecisionRepository(tmp_path / "decisions.db")
    # Then the event is there once, intact, with the attempts and the latest reason
    assert store.parked() == [event]
    assert store._query("SELECT attempts, reason FROM undelivered_events", ()) == [
        (2, "RepositoryUnavailable: database is locked")
    ]
    # And once redelivered and unparked it is gone
    store.unpark("T-9")
    assert store.parked() == []
    store.close()


def a_ticket_received(ticket_id: str) -> TicketReceived:
    return TicketReceived(
        ticket_id=ticket_id,
        customer_id="C-1",
        subject="No signal",
        description="No signal since this morning at home.",
        timestamp=NOW,
        correlation_id="corr-1",
        customer_context=CustomerContext(is_vip=False, account_type=AccountType.CONSUMER),
    )


def damage(store: SqliteDecisionRepository, table: str, ticket_id: str) -> None:
    """Overwrite a stored record the way a hand edit or an older release might leave it."""
    store._db.execute(f"UPDATE {table} SET body = ? WHERE ticket_id = ?", ('{"ticket_id": "cut off', ticket_id))


def test_a_damaged_row_is_left_out_of_listings_and_named_in_the_log(
    repo: SqliteDecisionRepository, caplog: pytest.LogCaptureFixture
) -> None:
    # Given two failed decisions, two feedback records and two unrouted tickets, one of each damaged
    for i, ticket_id in enumerate(["T-1", "T-2"]):
        repo.save(a_decision(ticket_id, timestamp=i))
        repo.update_sync_status(ticket_id, i, SyncStatus.FAILED, error="503")
        repo.record(Feedback(ticket_id=ticket_id, correct_team="Billing Support", recorded_at=NOW))
        repo.park(a_ticket_received(ticket_id), "ModelUnavailable", NOW)
    for table in ("decisions", "feedback", "undelivered_events"):
        damage(repo, table, "T-1")
    # When the store is listed
    failed = repo.find_by_sync_status(SyncStatus.FAILED)
    everything = repo.all()
    feedback = repo.feedback()
    parked = repo.parked()
    # Then the intact records are all there, and each damaged one is named in a warning
    assert [d.ticket_id for d in failed] == [d.ticket_id for d in everything] == ["T-2"]
    assert [f.ticket_id for f in feedback] == [e.ticket_id for e in parked] == ["T-2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 4
    assert all("ticket T-1" in w and "not valid" in w for w in warnings)


def test_a_damaged_decision_read_by_id_is_a_damaged_record_not_a_crash(repo: SqliteDecisionRepository) -> None:
    # Given a stored decision that was damaged
    repo.save(a_decision("T-1"))
    damage(repo, "decisions", "T-1")
    # When it is read or its sync recorded, then the store says which record, without quoting it,
    # and not as a busy store that a retry would get past
    with pytest.raises(DamagedRecord, match=r"decision for ticket T-1 .* is not a valid record") as read:
        repo.get("T-1")
    with pytest.raises(DamagedRecord, match="T-1"):
        repo.update_sync_status("T-1", 1_000, SyncStatus.SUCCESS)
    assert repo.unreadable == {"T-1"}
    assert "cut off" not in str(read.value)
    # And new feedback on it is still recorded, even when the earlier feedback is damaged too
    repo.record(Feedback(ticket_id="T-1", correct_team="Billing Support", recorded_at=NOW))
    damage(repo, "feedback", "T-1")
    assert repo.record(Feedback(ticket_id="T-1", correct_team="Network Operations", recorded_at=NOW)) is None


def test_damaged_rows_do_not_take_the_place_of_good_ones_under_a_limit(repo: SqliteDecisionRepository) -> None:
    # Given three failed decisions and three unrouted tickets, the two newest of each damaged
    for i, ticket_id in enumerate(["T-1", "T-2", "T-3"]):
        repo.save(a_decision(ticket_id, timestamp=i))
        repo.update_sync_status(ticket_id, i, SyncStatus.FAILED, error="503")
        repo.park(a_ticket_received(ticket_id), "ModelUnavailable", NOW + timedelta(seconds=i))
    for ticket_id in ("T-2", "T-3"):
        damage(repo, "decisions", ticket_id)
    for ticket_id in ("T-1", "T-2"):
        damage(repo, "undelivered_events", ticket_id)
    # When one of each is asked for
    failed = repo.find_by_sync_status(SyncStatus.FAILED, limit=1)
    parked = repo.parked(limit=1)
    # Then the one good record is found past the damaged ones, and those are counted
    assert [d.ticket_id for d in failed] == ["T-1"]
    assert [e.ticket_id for e in parked] == ["T-3"]
    assert repo.unreadable == {"T-1", "T-2", "T-3"}


def test_failed_decisions_are_listed_least_recently_attempted_first(repo: SqliteDecisionRepository) -> None:
    # Given failed decisions attempted at various times, and one failed before attempts were recorded
    attempts = {
        "T-1": NOW + timedelta(minutes=5),
        "T-2": NOW + timedelta(seconds=30.5),
        "T-3": NOW + timedelta(minutes=1),
    }
    for i, ticket_id in enumerate(["T-LEGACY", *attempts]):
        repo.save(a_decision(ticket_id, timestamp=i))
        repo.update_sync_status(ticket_id, i, SyncStatus.FAILED, error="503", attempted_at=attempts.get(ticket_id))
    # When the failed ones are listed
    failed = repo.find_by_sync_status(SyncStatus.FAILED)
    # Then the never-timed one comes first, then the least recently attempted
    assert [d.ticket_id for d in failed] == ["T-LEGACY", "T-2", "T-3", "T-1"]
    assert failed[1].sync_attempted_at == attempts["T-2"]


@pytest.fixture
def unwritable() -> Iterator[Callable[[Path], None]]:
    """Makes a file unwritable, even to root (who writes past its mode bits): immutable by chattr."""
    frozen: list[Path] = []

    def freeze(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
            return
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
            pytest.skip("chattr +i is not available here")
        frozen.append(path)

    yield freeze
    for path in frozen:  # else pytest could not remove its temporary directory
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_store_that_cannot_be_written_is_told_at_once_and_left_as_it_was(
    tmp_path: Path, unwritable: Callable[[Path], None]
) -> None:
    # Given a store holding a decision, its file since made read-only
    path = tmp_path / "decisions.db"
    store = SqliteDecisionRepository(path)
    store.save(a_decision("T-1"))
    store.close()
    unwritable(path)
    store = SqliteDecisionRepository(path)
    # When its writability is checked
    # Then it is refused naming the store, and what it held is unchanged
    with pytest.raises(RepositoryUnavailable, match=f"cannot write to decision store {path}"):
        store.check_writable()
    assert store.count() == 1
    store.close()


def test_a_writable_store_passes_the_check_with_nothing_written(tmp_path: Path) -> None:
    store = SqliteDecisionRepository(tmp_path / "decisions.db")
    store.check_writable()
    assert store.count() == 0
    store.close()
