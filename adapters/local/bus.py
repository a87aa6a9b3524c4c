"""In-process event bus: the embedded mode's EventBridge.

Synchronous by default so a CLI run is deterministic; `start_worker` moves delivery to a
background thread so an HTTP submit returns before routing finishes, as with EventBridge.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from domain.errors import PublishFailed, TicketRouterError
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
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._subscribers: list[Subscriber] = []
        self._queue: queue.Queue[object] | None = None
        self._worker: threading.Thread | None = None
        self._dead_letters = dead_letters
        self._keep_retry_delays = keep_retry_delays
        self._sleep = sleep
        # Set when the process is stopping: no more waiting between tries to keep an event.
        self._stopping = threading.Event()
        # This run's failures, for a command to report; `dead_letters` is what outlives the process.
        self.failed: list[tuple[TicketReceived, str]] = []
        # Failures the dead letters could not take either: all that is left of them is here.
        self.unkept: list[tuple[TicketReceived, str]] = []
        self._unkept_lock = threading.Lock()  # the worker adds while the stopping thread keeps
        self._in_flight: TicketReceived | None = None
        # Taken with _in_flight: an event the worker takes off the queue is either seen in flight
        # by abandon(), or taken after it and set aside unrouted; never neither.
        self._flight_lock = threading.Lock()
        self._abandoned = False

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish_ticket_received(self, event: TicketReceived) -> None:
        if self._queue is None:
            self._deliver(event)
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            # As EventBridge throttling would: the sender is told to retry, rather than the queue
            # (and memory) growing for as long as tickets come faster than they are routed.
            raise PublishFailed(f"{self._queue.maxsize} tickets are waiting to be routed") from None

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
                if delay is None or self._stopping.is_set():
                    log = logger.error if isinstance(exc, TicketRouterError) else logger.exception
                    log("ticket %s could not be kept for redelivery either: %s", event.ticket_id, exc)
                    with self._unkept_lock:
                        self.unkept.append((event, reason))
                    return
                logger.warning("could not keep ticket %s yet (%s); trying again in %.1f s", event.ticket_id, exc, delay)
                self._pause(delay)

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stopping.wait(seconds)  # cut short by stop_waiting()

    def stop_waiting(self) -> None:
        """The process is stopping: from now on a failed event is tried once, not waited on."""
        self._stopping.set()

    def abandon(self) -> None:
        """Give up waiting on delivery (a second interrupt): what is still queued, and the event
        being delivered, join `unkept` for keep_unkept to store or name. The one in flight may yet
        be routed as the process ends; kept as well, a later redelivery finds its decision and
        only clears it."""
        if self._queue is None:
            return
        with self._flight_lock:
            self._abandoned = True
            in_flight = self._in_flight
        with self._unkept_lock:
            if in_flight is not None:
                self.unkept.append((in_flight, "routing interrupted: the server was stopped"))
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, TicketReceived):
                with self._unkept_lock:
                    self.unkept.append((item, "not routed: the server was stopped first"))
            elif item is _STOP:
                self._queue.put(_STOP)  # still for the worker, after this
                self._queue.task_done()
                return
            self._queue.task_done()

    def keep_unkept(self) -> list[str]:
        """Try once more to keep what could not be kept (the store may be free again by now); the
        ticket ids of those still not kept, which are lost once the process ends."""
        if self._dead_letters is None:
            return [event.ticket_id for event, _ in self.unkept]
        still: list[tuple[TicketReceived, str]] = []
        with self._unkept_lock:
            pending, self.unkept = self.unkept, []
        try:
            while pending:
                event, reason = pending[0]
                try:
                    self._dead_letters.park(event, reason)
                except Exception:
                    still.append((event, reason))
                pending.pop(0)
        except KeyboardInterrupt:  # interrupted once more: what is not kept yet is named, not dropped
            still.extend(pending)
        with self._unkept_lock:
            # Ahead of any the worker added meanwhile, which are named too.
            self.unkept = still + self.unkept
            return list(dict.fromkeys(event.ticket_id for event, _ in self.unkept))

    def start_worker(self, *, max_queued: int = 0) -> None:
        """Deliver on a background thread from now on, holding at most `max_queued` events waiting
        (0: no limit)."""
        if self._worker is not None:
            return
        self._queue = queue.Queue(maxsize=max_queued)
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
                with self._flight_lock:
                    if self._abandoned:  # taken as abandon() emptied the queue: not routed either
                        with self._unkept_lock:
                            self.unkept.append((item, "not routed: the server was stopped first"))
                        continue
                    self._in_flight = item
                self._deliver(item)
            finally:
                with self._flight_lock:
                    self._in_flight = None
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
