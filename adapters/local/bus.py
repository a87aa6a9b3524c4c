"""In-process event bus: the embedded mode's EventBridge.

Synchronous by default so a CLI run is deterministic; `start_worker` moves delivery to a
background thread so an HTTP submit returns before routing finishes, as with EventBridge.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from domain.errors import TicketRouterError
from domain.models import TicketReceived

logger = logging.getLogger(__name__)
Subscriber = Callable[[TicketReceived], None]
_STOP = object()


class DeadLetters(Protocol):
    """Where an event goes when a subscriber fails on it: EventBridge's DLQ, on this machine."""

    def park(self, event: TicketReceived, reason: str) -> None: ...


# Between tries at keeping a failed event (worker mode): about a minute in all, past another
# process's long write holding the store's lock (SQLite's own busy timeout is 5 s).
KEEP_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class InProcessEventBus:
    def __init__(
        self,
        dead_letters: DeadLetters | None = None,
        *,
        keep_retry_delays: tuple[float, ...] = KEEP_RETRY_DELAYS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._subscribers: list[Subscriber] = []
        self._queue: queue.Queue[object] | None = None
        self._worker: threading.Thread | None = None
        self._dead_letters = dead_letters
        self._keep_retry_delays = keep_retry_delays
        self._sleep = sleep
        # This run's failures, for a command to report; `dead_letters` is what outlives the process.
        self.failed: list[tuple[TicketReceived, str]] = []
        # Failures the dead letters could not take either: all that is left of them is here.
        self.unkept: list[tuple[TicketReceived, str]] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish_ticket_received(self, event: TicketReceived) -> None:
        if self._queue is not None:
            self._queue.put(event)
        else:
            self._deliver(event)

    def _deliver(self, event: TicketReceived) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception as exc:  # a failing subscriber must not take the bus down
                reason = f"{type(exc).__name__}: {exc}"
                self.failed.append((event, reason))
                if isinstance(exc, TicketRouterError):
                    # An anticipated failure (a locked store, a model down) says all in its message;
                    # a traceback would only bury it. Anything else is a bug and keeps its trace.
                    logger.error("subscriber failed for ticket %s: %s", event.ticket_id, exc)
                else:
                    logger.exception("subscriber failed for ticket %s", event.ticket_id)
                self._keep(event, reason)

    def _keep(self, event: TicketReceived, reason: str) -> None:
        # The publisher has already answered 202, so a failure kept only in memory would be lost
        # with the process, and a client's retry only gets the cached answer back. The worker
        # (serve) tries again for a while, as what failed is most likely the store being locked; a
        # synchronous run (route) reports its failures itself, and must not stall on each.
        if self._dead_letters is None:
            return
        delays = self._keep_retry_delays if self._queue is not None else ()
        for delay in (*delays, None):
            try:
                self._dead_letters.park(event, reason)
                return
            except Exception as exc:
                if delay is None:
                    logger.exception("ticket %s could not be kept for redelivery either", event.ticket_id)
                    self.unkept.append((event, reason))
                    return
                logger.warning("could not keep ticket %s yet (%s); trying again in %.1f s", event.ticket_id, exc, delay)
                self._sleep(delay)

    def keep_unkept(self) -> list[str]:
        """Try once more to keep what could not be kept (the store may be free again by now); the
        ticket ids of those still not kept, which are lost once the process ends."""
        if self._dead_letters is None:
            return [event.ticket_id for event, _ in self.unkept]
        still: list[tuple[TicketReceived, str]] = []
        for event, reason in self.unkept:
            try:
                self._dead_letters.park(event, reason)
            except Exception:
                still.append((event, reason))
        self.unkept = still
        return [event.ticket_id for event, _ in still]

    def start_worker(self) -> None:
        if self._worker is not None:
            return
        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="event-bus", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, TicketReceived)
                self._deliver(item)
            finally:
                self._queue.task_done()

    def drain(self) -> None:
        """Wait until every published event has been delivered."""
        if self._queue is not None:
            self._queue.join()

    def stop(self) -> None:
        if self._queue is not None and self._worker is not None:
            self._queue.put(_STOP)
            self._worker.join(timeout=10)
            self._worker = None
            self._queue = None
