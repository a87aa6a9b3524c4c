"""The embedded mode's outbox and event bus when the disk or a subscriber fails."""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

import pytest

from adapters.local.bus import InProcessEventBus
from adapters.local.outbox import JsonlOutbox
from domain.errors import RepositoryUnavailable, SyncUnavailable
from domain.models import CustomerContext, CustomerProfile, TicketReceived
from tests.builders import a_ticket
from tests.integration.test_sqlite_repository import a_decision


def test_an_outbox_that_cannot_be_appended_to_reports_the_sync_unavailable(tmp_path: Path) -> None:
    # Given an outbox whose path has become a directory
    path = tmp_path / "outbox.jsonl"
    outbox = JsonlOutbox(path)
    path.mkdir()
    # When / Then a push fails as a transient sync failure naming the outbox, which replay retries
    with pytest.raises(SyncUnavailable, match=f"cannot append to outbox {path}: Is a directory"):
        outbox.push_routing(a_decision())


def test_an_anticipated_subscriber_failure_is_kept_and_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    # Given a bus whose subscriber meets a locked decision store
    bus = InProcessEventBus()

    def locked(event: TicketReceived) -> None:
        raise RepositoryUnavailable("database is locked")

    bus.subscribe(locked)
    ticket = a_ticket()
    event = TicketReceived(
        **ticket.model_dump(include={"ticket_id", "customer_id", "subject", "description", "timestamp"}),
        correlation_id="c-1",
        customer_context=CustomerContext(is_vip=False, account_type=CustomerProfile.unknown("C-1").account_type),
    )
    # When a ticket is published
    with caplog.at_level(logging.ERROR, logger="adapters.local.bus"):
        bus.publish_ticket_received(event)
    # Then the event is kept as failed, and the log says why without a traceback
    assert [m for _, m in bus.failed] == ["RepositoryUnavailable: database is locked"]
    [record] = caplog.records
    assert "database is locked" in record.getMessage()
    assert record.exc_info is None


def _push_all_in_a_child(path: str, count: int) -> None:
    outbox = JsonlOutbox(path)
    for n in range(count):
        outbox.push_routing(a_decision(ticket_id=f"T-{n}"))


def test_a_repeated_idempotency_key_is_written_once_as_a_ticketing_system_keeps_it(tmp_path: Path) -> None:
    # Given an outbox holding a push, and a second outbox on the same file (another run)
    path = tmp_path / "outbox.jsonl"
    JsonlOutbox(path).push_routing(a_decision(ticket_id="T-1"))
    other = JsonlOutbox(path)
    # When the same decision is pushed again by both, and another decision once
    JsonlOutbox(path).push_routing(a_decision(ticket_id="T-1"))
    other.push_routing(a_decision(ticket_id="T-1"))
    other.push_routing(a_decision(ticket_id="T-2"))
    # Then the file holds one line per key
    assert [e["ticket_id"] for e in other.entries()] == ["T-1", "T-2"]


def test_two_processes_pushing_the_same_decisions_at_once_leave_one_line_per_key(tmp_path: Path) -> None:
    # Given two processes pushing the same 200 decisions to one outbox at the same moment
    path = tmp_path / "outbox.jsonl"
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_push_all_in_a_child, args=(str(path), 200)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    # Then each key is written once, every line whole
    assert [child.exitcode for child in children] == [0, 0]
    keys = [e["idempotency_key"] for e in JsonlOutbox(path).entries()]
    assert len(keys) == 200 == len(set(keys))


def test_a_push_after_a_line_torn_by_a_crash_is_written_whole(tmp_path: Path) -> None:
    # Given an outbox whose last line a crash left half written
    path = tmp_path / "outbox.jsonl"
    JsonlOutbox(path).push_routing(a_decision(ticket_id="T-1"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"ticket_id":"T-2","idempo')
    # When another decision is pushed
    JsonlOutbox(path).push_routing(a_decision(ticket_id="T-3"))
    # Then it is on a line of its own, readable
    last = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert last["ticket_id"] == "T-3"
