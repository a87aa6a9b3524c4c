"""`ticket-router dlq replay` in the embedded mode: failed updates reach the outbox."""

from __future__ import annotations

import fcntl
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.models import SyncStatus
from handlers.cli import main
from tests.builders import NOW
from tests.integration.test_sqlite_repository import a_decision, a_ticket_received, damage


def test_replay_moves_failed_decisions_to_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local store with two decisions whose sync failed and one that succeeded
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    for i, ticket_id in enumerate(["T-1", "T-2", "T-3"]):
        store.save(a_decision(ticket_id, timestamp=i))
    store.update_sync_status("T-1", 0, SyncStatus.FAILED, error="503")
    store.update_sync_status("T-2", 1, SyncStatus.FAILED, error="timeout")
    store.update_sync_status("T-3", 2, SyncStatus.SUCCESS)
    store.close()
    # When the DLQ is replayed
    code = main(["dlq", "replay"])
    report = json.loads(capsys.readouterr().out)
    # Then both failed updates are pushed once, and nothing is left failing
    assert code == 0
    assert (report["attempted"], report["succeeded"], report["still_failing"]) == (2, 2, 0)
    outbox = [json.loads(line)["ticket_id"] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert sorted(outbox) == ["T-1", "T-2"]
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    assert store.find_by_sync_status(SyncStatus.FAILED) == []
    store.close()


def test_replay_lists_rejected_updates_and_pushes_them_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local store with one failed update and one the ticketing system refused
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    store.save(a_decision("T-1", timestamp=1))
    store.save(a_decision("T-2", timestamp=2))
    store.update_sync_status("T-1", 1, SyncStatus.FAILED, error="503")
    store.update_sync_status("T-2", 2, SyncStatus.REJECTED, error="422 ticket is closed")
    store.close()
    # When the DLQ is replayed
    code = main(["dlq", "replay"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    # Then only the failed one is pushed; the refused one is named, with the way to retry it
    assert (code, report["succeeded"], report["rejected_not_retried_ticket_ids"]) == (0, 1, ["T-2"])
    assert "--include-rejected" in captured.err
    # And when asked for, it is pushed too
    code = main(["dlq", "replay", "--include-rejected"])
    report = json.loads(capsys.readouterr().out)
    assert (code, report["succeeded"], report["rejected_not_retried_ticket_ids"]) == (0, 1, [])
    outbox = [json.loads(line)["ticket_id"] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert outbox == ["T-1", "T-2"]


def test_replay_refuses_a_missing_store_and_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a decision store path that holds nothing (a typo, a fresh machine)
    db = tmp_path / "no" / "such" / "ticket-router.db"
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    monkeypatch.setenv("ROUTER_DB", str(db))
    # When the DLQ is replayed
    code = main(["dlq", "replay"])
    # Then it says there is no store, and creates neither the store nor its directories
    assert code == 2
    assert capsys.readouterr().err == f"ticket-router: error: no decision store at {db}\n"
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("limit", ["0", "-1", "99999999999999999999"])
def test_replay_limit_must_be_a_positive_bounded_number(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dlq", "replay", "--limit", limit])
    assert exc.value.code == 2
    assert "argument --limit" in capsys.readouterr().err


def test_queue_url_without_aws_is_refused_rather_than_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local store with a failed decision
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    store.save(a_decision("T-1"))
    store.update_sync_status("T-1", 1_000, SyncStatus.FAILED, error="503")
    store.close()
    # When a queue to empty is named without --aws
    code = main(["dlq", "replay", "--queue-url", "https://sqs.example/dlq"])
    # Then nothing is replayed and the user is told the option needs --aws
    assert code == 2
    assert "--queue-url needs --aws" in capsys.readouterr().err
    assert not (tmp_path / "outbox.jsonl").exists()


def store_with_failed_syncs(path: Path, *ticket_ids: str) -> SqliteDecisionRepository:
    store = SqliteDecisionRepository(path)
    for i, ticket_id in enumerate(ticket_ids):
        store.save(a_decision(ticket_id, timestamp=i))
        store.update_sync_status(ticket_id, i, SyncStatus.FAILED, error="503")
    return store


def test_replay_pushes_the_intact_decisions_when_one_stored_record_is_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two failed decisions, one of them damaged in the store
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = store_with_failed_syncs(tmp_path / "ticket-router.db", "T-1", "T-2")
    damage(store, "decisions", "T-1")
    store.close()
    # When the DLQ is replayed
    code = main(["dlq", "replay"])
    report = json.loads(capsys.readouterr().out)
    # Then the intact one is pushed, rather than the whole replay failing on the damaged one, and
    # the damaged one is reported as work left undone
    assert code == 1
    assert (report["attempted"], report["succeeded"]) == (1, 1)
    assert (report["unreadable_records"], report["unreadable_ticket_ids"]) == (1, ["T-1"])
    assert [json.loads(line)["ticket_id"] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()] == ["T-2"]


def test_a_stores_warning_comes_out_masked_on_stderr_leaving_stdout_to_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed decision, damaged in the store, of a ticket whose id is the customer's e-mail
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = store_with_failed_syncs(tmp_path / "ticket-router.db", "jane.doe@example.com", "T-2")
    damage(store, "decisions", "jane.doe@example.com")
    store.close()
    # When the DLQ is replayed, and the store warns of the damaged record
    code = main(["dlq", "replay"])
    captured = capsys.readouterr()
    # Then stdout holds the report alone, still parseable, and the store's warning is on stderr,
    # the e-mail masked as in the functions' logs
    report = json.loads(captured.out)
    assert (code, report["unreadable_records"]) == (1, 1)
    (warning,) = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert warning["level"] == "WARNING"
    assert warning["message"].startswith("decision record of ticket <EMAIL_1> ")
    assert "jane.doe@example.com" not in captured.err


def test_one_limit_bounds_the_unrouted_and_the_failed_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two unrouted tickets and two decisions whose sync failed
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = store_with_failed_syncs(tmp_path / "ticket-router.db", "T-1", "T-2")
    for ticket_id in ["T-3", "T-4"]:
        store.park(a_ticket_received(ticket_id), "ModelUnavailable", NOW)
    store.close()
    # When at most three are replayed
    code = main(["dlq", "replay", "--limit", "3"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    # Then the two unrouted tickets are routed and one failed sync is pushed: three in all, and the
    # run says that work is left, with the exit of work left undone
    assert code == 1
    assert (report["unrouted_tickets_routed"], report["attempted"], report["limit_reached"]) == (2, 1, True)
    assert "--limit 3 reached; run again for the rest" in captured.err
    # And a run with room for the rest finishes it, without claiming the limit was reached
    assert main(["dlq", "replay", "--limit", "3"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["attempted"], again["limit_reached"]) == (1, False)


def test_a_second_replay_of_the_same_store_at_once_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a store that a replay is working on (it holds the replay lock)
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    db = tmp_path / "ticket-router.db"
    SqliteDecisionRepository(db).close()
    link = tmp_path / "elsewhere" / "link.db"
    link.parent.mkdir()
    link.symlink_to(db)
    with open(tmp_path / "ticket-router.db.replay-lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        # When another replay starts, on the same store or on a symlink to it
        code = main(["dlq", "replay"])
        monkeypatch.setenv("ROUTER_DB", str(link))
        through_link = main(["dlq", "replay"])
        monkeypatch.delenv("ROUTER_DB")
    # Then each is refused, rather than pushing everything a second time and counting it twice
    assert (code, through_link) == (2, 2)
    err = capsys.readouterr().err
    assert f"another `dlq replay` is running on {db}" in err
    assert f"another `dlq replay` is running on {link}" in err
    # And once the first is done, a replay runs
    assert main(["dlq", "replay"]) == 0


def test_stale_pending_decisions_left_by_the_limit_are_work_left_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one failed sync and two decisions still pending long after they were made
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = store_with_failed_syncs(tmp_path / "ticket-router.db", "T-1")
    for i, ticket_id in enumerate(["T-2", "T-3"], start=1):
        store.save(a_decision(ticket_id, timestamp=i))  # made at NOW, long before this run
    store.close()
    # When one is replayed
    code = main(["dlq", "replay", "--limit", "1"])
    report = json.loads(capsys.readouterr().out)
    # Then the run says work is left, rather than reporting a clean run
    assert (report["attempted"], report["limit_reached"], code) == (1, True, 1)


def test_a_stale_pending_decision_behind_many_recent_backdated_ones_is_work_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one failed sync, a decision pending long after it was made, and a hundred and one made
    # moments ago for tickets their senders dated after it (and long ago)
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = store_with_failed_syncs(tmp_path / "ticket-router.db", "T-FAILED")
    store.save(a_decision("T-STALE", timestamp=1))
    moments_ago = datetime.now(UTC)
    for n in range(2, 103):
        store.save(a_decision(f"T-RECENT-{n}", timestamp=n).model_copy(update={"created_at": moments_ago}))
    store.close()
    # When one is replayed
    code = main(["dlq", "replay", "--limit", "1"])
    report = json.loads(capsys.readouterr().out)
    # Then the run says the stale one is left, though the recent ones come first by receipt time
    assert (report["attempted"], report["limit_reached"], code) == (1, True, 1)


def test_a_stranded_decision_of_a_ticket_dated_in_the_future_is_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a decision pending long after it was made, for a ticket its sender dated next year
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    next_year = int(datetime.now(UTC).timestamp()) + 365 * 86_400
    store.save(a_decision("T-FUTURE", timestamp=next_year))  # made at NOW, long before this run
    store.close()
    # When the DLQ is replayed
    code = main(["dlq", "replay"])
    report = json.loads(capsys.readouterr().out)
    # Then it is pushed, as any other stranded decision
    assert (code, report["stale_pending"], report["succeeded"]) == (0, 1, 1)
    outbox = [json.loads(line)["ticket_id"] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert outbox == ["T-FUTURE"]
