"""The embedded mode's ticketing system: every routing update is appended to a JSONL outbox."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from domain.errors import SyncUnavailable
from domain.models import RoutingDecision
from domain.ticketing import routing_update_payload


class JsonlOutbox:
    """TicketingSystem that appends the exact payload the HTTP adapter would PUT, once per
    Idempotency-Key: as a ticketing system ignores a repeated key, a re-run, two runs at once or a
    re-push of a pending decision leaves the one line the first push wrote."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # The keys of the file's whole lines up to `_read_to` (bytes): each push reads only what
        # was appended since, by this outbox or another process's.
        self._keys: set[str] = set()
        self._read_to = 0

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        record = {
            "ticket_id": decision.ticket_id,
            "idempotency_key": decision.idempotency_key,
            "payload": routing_update_payload(decision),
        }
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        try:
            self._append(decision.idempotency_key, line.encode("utf-8"))
        except OSError as exc:
            # Transient as far as the decision goes (a full disk, a path that became a directory):
            # the caller records the sync as failed, which `ticket-router dlq replay` retries.
            raise SyncUnavailable(f"cannot append to outbox {self.path}: {exc.strerror or exc}") from exc

    def _append(self, key: str, line: bytes) -> None:
        with self._lock, self.path.open("ab+") as handle:
            # Held until the file is closed: another process's check-then-append waits for ours.
            fcntl.flock(handle, fcntl.LOCK_EX)
            size = handle.seek(0, os.SEEK_END)
            if size < self._read_to:  # truncated or replaced since: read it again from the start
                self._keys.clear()
                self._read_to = 0
            handle.seek(self._read_to)
            unread = handle.read()
            whole = unread[: unread.rfind(b"\n") + 1]
            self._keys.update(_keys_of(whole))
            self._read_to += len(whole)
            if key in self._keys:
                return
            # A line a crash left half written is ended first, so that this one stays whole.
            handle.write((b"\n" if len(whole) < len(unread) else b"") + line)
            handle.flush()
            self._keys.add(key)

    def entries(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]


def _keys_of(lines: bytes) -> set[str]:
    keys = set()
    for raw in lines.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:  # a line torn by a crash holds no push
            continue
        if isinstance(record, dict) and isinstance(record.get("idempotency_key"), str):
            keys.add(record["idempotency_key"])
    return keys


class DiscardingTicketingSystem:
    """A ticketing system that accepts and forgets: for backtests, which must not push anything."""

    def __init__(self) -> None:
        self.pushed = 0

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        self.pushed += 1
