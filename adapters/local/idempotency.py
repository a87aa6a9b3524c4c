"""A SQLite persistence layer for Powertools idempotency, so `ticket-router serve` deduplicates
submissions exactly as the ingestion Lambda does with its DynamoDB table."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

_INPROGRESS = "INPROGRESS"


class SqliteIdempotencyLayer(BasePersistenceLayer):
    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS idempotency ("
            " id TEXT PRIMARY KEY, status TEXT NOT NULL, expiration INTEGER,"
            " in_progress_expiration INTEGER, data TEXT, validation TEXT)"
        )

    def _row_to_record(self, row: tuple[str, str, int | None, int | None, str | None, str | None]) -> DataRecord:
        key, status, expiry, in_progress_expiry, data, validation = row
        return DataRecord(
            idempotency_key=key,
            status=status,
            expiry_timestamp=expiry,
            in_progress_expiry_timestamp=in_progress_expiry,
            response_data=data or "",
            payload_hash=validation or "",
        )

    def _select(self, key: str) -> DataRecord | None:
        row = self._db.execute(
            "SELECT id, status, expiration, in_progress_expiration, data, validation FROM idempotency WHERE id = ?",
            (key,),
        ).fetchone()
        return self._row_to_record(row) if row else None

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            record = self._select(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        now = time.time()
        with self._lock:
            existing = self._select(data_record.idempotency_key)
            if existing is not None:
                expired = existing.expiry_timestamp is not None and existing.expiry_timestamp < now
                stale_in_progress = (
                    existing.status == _INPROGRESS
                    and existing.in_progress_expiry_timestamp is not None
                    and existing.in_progress_expiry_timestamp < now * 1000
                )
                if not (expired or stale_in_progress):
                    self._validate_payload(data_payload=data_record, stored_data_record=existing)
                    raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            self._db.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (
                    data_record.idempotency_key,
                    data_record.status,
                    data_record.expiry_timestamp,
                    data_record.in_progress_expiry_timestamp,
                    data_record.response_data,
                    data_record.payload_hash if self.payload_validation_enabled else None,
                ),
            )

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE idempotency SET data = ?, expiration = ?, status = ? WHERE id = ?",
                (
                    data_record.response_data,
                    data_record.expiry_timestamp,
                    data_record.status,
                    data_record.idempotency_key,
                ),
            )

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE id = ?", (data_record.idempotency_key,))
