"""The embedded mode's ticketing system: every routing update is appended to a JSONL outbox."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from domain.errors import SyncUnavailable
from domain.models import RoutingDecision
from domain.ticketing import routing_update_payload


class JsonlOutbox:
    """TicketingSystem that appends the exact payload the HTTP adapter would PUT."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        record = {
            "ticket_id": decision.ticket_id,
            "idempotency_key": decision.idempotency_key,
            "payload": routing_update_payload(decision),
        }
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        try:
            self._append(line)
        except OSError as exc:
            # Transient as far as the decision goes (a full disk, a path that became a directory):
            # the caller records the sync as failed, which `ticket-router dlq replay` retries.
            raise SyncUnavailable(f"cannot append to outbox {self.path}: {exc.strerror or exc}") from exc

    def _append(self, line: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def entries(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]


class DiscardingTicketingSystem:
    """A ticketing system that accepts and forgets: for backtests, which must not push anything."""

    def __init__(self) -> None:
        self.pushed = 0

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        self.pushed += 1
