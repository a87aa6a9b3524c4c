"""The embedded mode's outbox and event bus when the disk or a subscriber fails."""

from __future__ import annotations

import logging
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
