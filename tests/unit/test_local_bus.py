"""The in-process bus keeps what a subscriber failed on, even when keeping it fails too."""

from __future__ import annotations

import queue
import threading
from types import SimpleNamespace

import pytest

from adapters.local import bus as bus_module
from adapters.local.bus import InProcessEventBus
from domain.errors import ModelUnavailable, PublishFailed, RepositoryUnavailable
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


class LockedForAWhile:
    """Dead letters in a store another process holds locked for the first `failures` tries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.parked: list[str] = []

    def park(self, event: TicketReceived, reason: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RepositoryUnavailable("database is locked")
        self.parked.append(event.ticket_id)


def test_the_worker_keeps_trying_to_keep_a_failed_event_while_the_store_is_locked() -> None:
    # Given a serving bus (worker thread) whose store stays locked for three tries
    dead_letters, slept = LockedForAWhile(failures=3), []
    bus = InProcessEventBus(dead_letters=dead_letters, keep_retry_delays=(0.5, 1.0, 2.0, 4.0), sleep=slept.append)
    bus.subscribe(model_down)
    bus.start_worker()
    # When routing a ticket fails
    bus.publish_ticket_received(a_ticket_received("T-1"))
    bus.drain()
    bus.stop()
    # Then it is kept on the fourth try, after backing off, and nothing is left unkept
    assert dead_letters.parked == ["T-1"]
    assert slept == [0.5, 1.0, 2.0]
    assert bus.unkept == []


def test_what_could_not_be_kept_is_tried_again_at_the_end_and_named_if_still_not_kept() -> None:
    # Given a serving bus whose store stays locked past every try
    dead_letters = LockedForAWhile(failures=4)
    bus = InProcessEventBus(dead_letters=dead_letters, keep_retry_delays=(0.5, 1.0), sleep=lambda _: None)
    bus.subscribe(model_down)
    bus.start_worker()
    bus.publish_ticket_received(a_ticket_received("T-1"))
    bus.publish_ticket_received(a_ticket_received("T-2"))
    bus.drain()
    bus.stop()
    assert [event.ticket_id for event, _ in bus.unkept] == ["T-1"]
    # When the bus tries once more as it stops (T-2 got through; the lock has gone by now)
    still_lost = bus.keep_unkept()
    # Then every ticket ends up kept, and none is reported lost
    assert still_lost == []
    assert sorted(dead_letters.parked) == ["T-1", "T-2"]


def test_a_synchronous_run_does_not_stall_on_a_locked_store() -> None:
    # Given a bus delivering in the caller's thread (route), and a locked store
    slept: list[float] = []
    bus = InProcessEventBus(dead_letters=LockedForAWhile(failures=10), sleep=slept.append)
    bus.subscribe(model_down)
    # When routing a ticket fails
    bus.publish_ticket_received(a_ticket_received("T-1"))
    # Then the failure is reported at once, without waiting on the lock
    assert slept == []
    assert [event.ticket_id for event, _ in bus.unkept] == ["T-1"]


def test_once_stopping_a_failed_event_is_tried_once_not_waited_on() -> None:
    # Given a serving bus that is stopping, and a store locked for longer than any wait
    dead_letters = LockedForAWhile(failures=100)
    bus = InProcessEventBus(dead_letters=dead_letters, keep_retry_delays=(5.0, 5.0, 5.0))
    bus.subscribe(model_down)
    bus.start_worker()
    bus.stop_waiting()
    # When a ticket still in the queue fails
    bus.publish_ticket_received(a_ticket_received("T-1"))
    bus.drain()
    bus.stop()
    # Then keeping it was tried once, and it waits in `unkept` to be named
    assert dead_letters.failures == 99
    assert [event.ticket_id for event, _ in bus.unkept] == ["T-1"]


def test_abandoning_the_queue_keeps_what_was_not_delivered() -> None:
    # Given a serving bus busy on a first ticket, with two more queued behind it
    release, delivered = threading.Event(), []

    def slow(event: TicketReceived) -> None:
        release.wait(5)
        delivered.append(event.ticket_id)

    dead_letters = LockedForAWhile(failures=0)
    bus = InProcessEventBus(dead_letters=dead_letters)
    bus.subscribe(slow)
    bus.start_worker()
    for ticket_id in ("T-1", "T-2", "T-3"):
        bus.publish_ticket_received(a_ticket_received(ticket_id))
    while bus._queue is not None and bus._queue.qsize() > 2:
        threading.Event().wait(0.01)  # until the worker has taken T-1
    # When the queue is abandoned (a second interrupt) and what it held is kept
    bus.abandon()
    release.set()
    bus.stop()
    lost = bus.keep_unkept()
    # Then the two queued ones are kept for redelivery, and so is the one in hand, which may or may
    # not finish routing before the process ends (a redelivery of a routed one only clears it)
    assert delivered == ["T-1"]
    assert dead_letters.parked == ["T-1", "T-2", "T-3"]
    assert lost == []


def test_an_event_left_unkept_while_the_rest_are_being_kept_is_still_named() -> None:
    # Given one unkept event, and a worker that gives up on another while it is being kept
    bus = InProcessEventBus()
    late = a_ticket_received("T-LATE")

    class WorkerGivesUpMeanwhile:
        def park(self, event: TicketReceived, reason: str) -> None:
            with bus._unkept_lock:
                bus.unkept.append((late, "ModelUnavailable"))
            raise RepositoryUnavailable("database is locked")

    bus._dead_letters = WorkerGivesUpMeanwhile()
    bus.unkept.append((a_ticket_received("T-1"), "ModelUnavailable"))
    # When what was unkept is tried once more
    lost = bus.keep_unkept()
    # Then both are named as lost, the one that arrived meanwhile included
    assert lost == ["T-1", "T-LATE"]


def pause_after_taking_a_ticket(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Have the bus worker, once it has taken its first ticket off the queue, set the first event
    and wait for the second before it goes on with it."""
    taken, go_on = threading.Event(), threading.Event()

    class PausingQueue(queue.Queue[object]):
        def get(self, block: bool = True, timeout: float | None = None) -> object:
            item = super().get(block, timeout)
            if isinstance(item, TicketReceived) and not taken.is_set():
                taken.set()
                go_on.wait(5)
            return item

    monkeypatch.setattr(bus_module, "queue", SimpleNamespace(Queue=PausingQueue, Empty=queue.Empty, Full=queue.Full))
    return taken, go_on


def test_an_event_taken_off_the_queue_as_it_is_abandoned_is_kept_not_routed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a serving bus whose worker has just taken a ticket off the queue, and not yet begun it
    taken, go_on = pause_after_taking_a_ticket(monkeypatch)
    delivered: list[str] = []
    dead_letters = RecordingDeadLetters()
    bus = InProcessEventBus(dead_letters=dead_letters)
    bus.subscribe(lambda event: delivered.append(event.ticket_id))
    bus.start_worker()
    bus.publish_ticket_received(a_ticket_received("T-1"))
    assert taken.wait(5)
    # When the queue is abandoned (a second interrupt) in that instant
    bus.abandon()
    go_on.set()
    bus.stop()
    lost = bus.keep_unkept()
    # Then the ticket is kept for redelivery, not routed after the stop was asked for
    assert [ticket_id for ticket_id, _ in dead_letters.parked] == ["T-1"]
    assert (delivered, lost) == ([], [])


def test_a_full_queue_refuses_a_ticket_for_a_retry_rather_than_growing() -> None:
    # Given a serving bus that holds at most two waiting tickets, busy routing a first one
    release, started, delivered = threading.Event(), threading.Event(), []

    def slow(event: TicketReceived) -> None:
        started.set()
        release.wait(5)
        delivered.append(event.ticket_id)

    bus = InProcessEventBus(dead_letters=RecordingDeadLetters())
    bus.subscribe(slow)
    bus.start_worker(max_queued=2)
    bus.publish_ticket_received(a_ticket_received("T-1"))
    assert started.wait(5)
    bus.publish_ticket_received(a_ticket_received("T-2"))
    bus.publish_ticket_received(a_ticket_received("T-3"))
    # When one more is published, then it is refused as the bus being busy (the API answers 503)
    with pytest.raises(PublishFailed, match="2 tickets are waiting"):
        bus.publish_ticket_received(a_ticket_received("T-4"))
    # And those it took are all routed
    release.set()
    bus.drain()
    bus.stop()
    assert delivered == ["T-1", "T-2", "T-3"]
