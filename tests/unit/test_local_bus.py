"""The in-process bus keeps what a subscriber failed on, even when keeping it fails too."""

from __future__ import annotations

import pytest

from adapters.local.bus import InProcessEventBus
from domain.errors import ModelUnavailable, RepositoryUnavailable
from domain.models import TicketReceived
from tests.integration.test_sqlite_repository import a_ticket_received


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.parked: list[tuple[str, str]] = []

    def park(self, event: TicketReceived, reason: str) -> None:
        self.parked.append((event.ticket_id, reason))


class BrokenDeadLetters:
    def park(self, event: TicketReceived, reason: str) -> None:
        raise RepositoryUnavailable("database is locked")


def model_down(event: TicketReceived) -> None:
    raise ModelUnavailable("throttled")


def test_an_event_a_subscriber_fails_on_goes_to_the_dead_letters() -> None:
    # Given a bus whose only subscriber fails
    dead_letters = RecordingDeadLetters()
    bus = InProcessEventBus(dead_letters=dead_letters)
    bus.subscribe(model_down)
    # When a ticket is published
    bus.publish_ticket_received(a_ticket_received("T-1"))
    # Then it is kept with the reason, and reported for this run
    assert dead_letters.parked == [("T-1", "ModelUnavailable: throttled")]
    assert [(event.ticket_id, reason) for event, reason in bus.failed] == [("T-1", "ModelUnavailable: throttled")]


def test_a_failure_to_keep_the_event_is_logged_and_does_not_stop_the_bus(caplog: pytest.LogCaptureFixture) -> None:
    # Given a bus whose subscriber fails and whose dead letters cannot be written
    bus = InProcessEventBus(dead_letters=BrokenDeadLetters())
    bus.subscribe(model_down)
    # When two tickets are published
    bus.publish_ticket_received(a_ticket_received("T-1"))
    bus.publish_ticket_received(a_ticket_received("T-2"))
    # Then both are still reported for this run, and the lost redelivery is logged for each
    assert [event.ticket_id for event, _ in bus.failed] == ["T-1", "T-2"]
    lost = [r for r in caplog.records if "could not be kept for redelivery" in r.getMessage()]
    assert [r.getMessage().split()[1] for r in lost] == ["T-1", "T-2"]
