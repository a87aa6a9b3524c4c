"""SQLite decision store for the embedded mode: the local twin of the DynamoDB decisions table."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from domain.errors import ConfigurationError, DamagedRecord, DuplicateDecision, RepositoryUnavailable
from domain.models import Feedback, PastTicket, RoutingDecision, SyncStatus, TicketReceived

logger = logging.getLogger(__name__)
Record = TypeVar("Record", bound=BaseModel)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    ticket_id     TEXT    NOT NULL,
    timestamp     INTEGER NOT NULL,
    customer_id   TEXT    NOT NULL,
    assigned_team TEXT    NOT NULL,
    sync_status   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, timestamp)
);
CREATE INDEX IF NOT EXISTS decisions_by_customer ON decisions (customer_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS decisions_by_team ON decisions (assigned_team, timestamp DESC);
CREATE INDEX IF NOT EXISTS decisions_by_sync_status ON decisions (sync_status, timestamp DESC);
CREATE TABLE IF NOT EXISTS feedback (
    ticket_id   TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS undelivered_events (
    ticket_id TEXT    PRIMARY KEY,
    failed_at TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    body      TEXT    NOT NULL
);
"""


class SqliteDecisionRepository:
    """DecisionRepository, TicketHistory, FeedbackStore and the bus's dead letters over one SQLite
    file (WAL mode).

    One connection guarded by a lock: SQLite serialises writers anyway, and the embedded server
    calls in from several threads.
    """

    def __init__(self, path: str | Path = ":memory:", *, create: bool = True) -> None:
        """Open the store at `path`, creating it unless `create` is False.

        Commands that only read or amend an existing store pass create=False: a mistyped path then
        fails instead of answering from a new, empty store, and a SQLite file that is not a decision
        store is left as it was (no tables added, no journal mode changed).
        """
        self.path = str(path)
        self._lock = threading.Lock()
        # Tickets whose stored record (decision, feedback, unrouted event) could not be read.
        self.unreadable: set[str] = set()
        try:
            if self.path == ":memory:":
                self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            elif create:
                self._refuse_hard_links(Path(self.path))
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                self._refuse_another_database(self._db, Path(self.path), empty_is_ours=True)
            else:
                self._db = self._open_existing(Path(self.path))
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
            # the last transactions, an acceptable trade for a local tool.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(f"cannot open decision store {self.path}: {exc}") from exc
        except OSError as exc:
            raise RepositoryUnavailable(f"cannot open decision store {self.path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _open_existing(path: Path) -> sqlite3.Connection:
        if not path.is_file():
            raise ConfigurationError(f"no decision store at {path}")
        SqliteDecisionRepository._refuse_hard_links(path)
        # mode=rw: SQLite must not create the file should it vanish between the check and here.
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw", uri=True, check_same_thread=False, isolation_level=None
        )
        SqliteDecisionRepository._refuse_another_database(db, path, empty_is_ours=False)
        return db

    @staticmethod
    def _refuse_hard_links(path: Path) -> None:
        """SQLite names its write-ahead log after the path it was given, so writers through two
        hard links to one store keep two logs, and each overwrites what the other committed."""
        if path.is_dir():
            # A directory's link count is its subfolders plus two: not what the message below means.
            raise ConfigurationError(f"the decision store {path} is a directory; name a file (in it, or elsewhere)")
        try:
            links = path.stat().st_nlink
        except FileNotFoundError:
            return
        if links > 1:
            raise ConfigurationError(
                f"the decision store {path} has {links} hard links; SQLite keeps a separate log per name, so"
                " writes through two of them would corrupt it: keep one name (a copy, or a symbolic link, is safe)"
            )

    @staticmethod
    def _refuse_another_database(db: sqlite3.Connection, path: Path, *, empty_is_ours: bool) -> None:
        """Close `db` and refuse it when it is some other application's database: adding our tables
        to it, and switching it to WAL, would change a file that is not ours."""
        try:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error:
            db.close()
            raise
        if "decisions" in tables or (empty_is_ours and not tables):
            return
        db.close()
        raise ConfigurationError(f"{path} is not a ticket-router decision store (it has no decisions table)")

    def check_writable(self) -> None:
        """RepositoryUnavailable unless the store takes a write: a read-only or immutable file opens
        and reads as any other, and would otherwise fail each ticket in turn. The write is real
        (SQLite may defer its check to the first page written) and rolled back."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute("CREATE TABLE write_probe (x)")
                finally:
                    self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise RepositoryUnavailable(f"cannot write to decision store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- DecisionRepository -----------------------------------------------------------------

    def save(self, decision: RoutingDecision) -> None:
        try:
            with self._lock:
                # Refused for any decision of the ticket, not only one at the same time: two `route
                # --db` runs at once each give a ticket without a timestamp its own arrival time, and
                # both would be stored and pushed under two idempotency keys. One statement takes the
                # write lock before it reads, so the check and the insert are one step across processes.
                inserted = self._db.execute(
                    "INSERT INTO decisions SELECT ?, ?, ?, ?, ?, ?, ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM decisions WHERE ticket_id = ?)",
                    (
                        decision.ticket_id,
                        decision.timestamp,
                        decision.customer_id,
                        decision.assigned_team,
                        decision.sync_status.value,
                        decision.created_at.isoformat(),
                        decision.model_dump_json(),
                        decision.ticket_id,
                    ),
                ).rowcount
        except sqlite3.IntegrityError as exc:
            raise DuplicateDecision(decision.ticket_id) from exc
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc
        if not inserted:
            raise DuplicateDecision(decision.ticket_id)

    def get(self, ticket_id: str) -> RoutingDecision | None:
        rows = self._query(
            "SELECT body FROM decisions WHERE ticket_id = ? ORDER BY timestamp DESC LIMIT 1", (ticket_id,)
        )
        if not rows:
            return None
        try:
            return RoutingDecision.model_validate_json(rows[0][0])
        except ValidationError as exc:
            raise self._damaged(ticket_id, exc) from None

    def update_sync_status(
        self,
        ticket_id: str,
        timestamp: int,
        status: SyncStatus,
        *,
        error: str | None = None,
        synced_at: datetime | None = None,
        attempted_at: datetime | None = None,
    ) -> None:
        try:
            with self._lock:
                self._update_sync_status(
                    ticket_id, timestamp, status, error=error, synced_at=synced_at, attempted_at=attempted_at
                )
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc

    def _update_sync_status(
        self,
        ticket_id: str,
        timestamp: int,
        status: SyncStatus,
        *,
        error: str | None,
        synced_at: datetime | None,
        attempted_at: datetime | None,
    ) -> None:
        # IMMEDIATE takes the write lock before the read: another process (`serve` and `dlq replay`
        # share a store) cannot record a success between our read and our write and have it undone.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT body FROM decisions WHERE ticket_id = ? AND timestamp = ?", (ticket_id, timestamp)
            ).fetchone()
            if row is None:
                self._db.execute("COMMIT")
                return
            try:
                current = RoutingDecision.model_validate_json(row[0])
            except ValidationError as exc:
                raise self._damaged(ticket_id, exc) from None
            # A success is final: a late failure report (e.g. a retried stream record) must not undo it.
            if current.sync_status is SyncStatus.SUCCESS and status is not SyncStatus.SUCCESS:
                self._db.execute("COMMIT")
                return
            updated = current.model_copy(
                update={
                    "sync_status": status,
                    "sync_error": error,
                    "synced_at": synced_at,
                    "sync_attempted_at": attempted_at,
                }
            )
            self._db.execute(
                "UPDATE decisions SET sync_status = ?, body = ? WHERE ticket_id = ? AND timestamp = ?",
                (status.value, updated.model_dump_json(), ticket_id, timestamp),
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def find_by_sync_status(
        self,
        status: SyncStatus,
        limit: int = 100,
        *,
        received_before: int | None = None,
        made_before: datetime | None = None,
    ) -> list[RoutingDecision]:
        return self._first_valid(
            RoutingDecision,
            # Least recently attempted first: julianday() reads the ISO time as a time (its text does
            # not sort as one where fractions of a second differ), and a decision never tried has
            # none, which sorts first. A damaged body sorts first too, to be named when parsed.
            "SELECT ticket_id, body FROM decisions WHERE sync_status = ? AND timestamp < ? ORDER BY"
            " julianday(CASE WHEN json_valid(body) THEN json_extract(body, '$.sync_attempted_at') END),"
            " timestamp DESC",
            (status.value, received_before if received_before is not None else 2**63 - 1),
            limit,
            "decision",
            keep=None if made_before is None else (lambda decision: decision.created_at <= made_before),
        )

    def all(self) -> list[RoutingDecision]:
        rows = self._query("SELECT ticket_id, body FROM decisions ORDER BY created_at", ())
        return self._valid(RoutingDecision, rows, "decision")

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM decisions", ())[0][0])

    # --- TicketHistory ----------------------------------------------------------------------

    def recent_for_customer(self, customer_id: str, limit: int = 5) -> list[PastTicket]:
        # SQLite extracts the few fields history needs; parsing whole audit records was the
        # pipeline's second-largest cost.
        rows = self._query(
            "SELECT ticket_id, json_extract(body, '$.issue_classification.primary_category'), assigned_team,"
            " json_extract(body, '$.priority_level'), json_extract(body, '$.requires_manual_review'), created_at"
            " FROM decisions WHERE customer_id = ? ORDER BY timestamp DESC LIMIT ?",
            (customer_id, limit),
        )
        return [
            PastTicket(
                ticket_id=ticket_id,
                issue_category=category,
                assigned_team=team,
                priority_level=level,
                requires_manual_review=bool(review),
                created_at=created_at,
            )
            for ticket_id, category, team, level, review, created_at in rows
        ]

    # --- FeedbackStore ----------------------------------------------------------------------

    def record(self, feedback: Feedback, *, deadline: float | None = None) -> Feedback | None:
        # `deadline` is not looked at: one local transaction, waited on no longer than busy_timeout.
        try:
            with self._lock:
                previous = self._db.execute(
                    "SELECT body FROM feedback WHERE ticket_id = ? ORDER BY recorded_at DESC LIMIT 1",
                    (feedback.ticket_id,),
                ).fetchone()
                self._db.execute(
                    "INSERT INTO feedback VALUES (?, ?, ?)",
                    (feedback.ticket_id, feedback.recorded_at.isoformat(), feedback.model_dump_json()),
                )
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc
        if previous is None:
            return None
        earlier = self._valid(Feedback, [(feedback.ticket_id, previous[0])], "feedback")
        return earlier[0] if earlier else None

    def feedback(self) -> list[Feedback]:
        rows = self._query("SELECT ticket_id, body FROM feedback ORDER BY recorded_at", ())
        return self._valid(Feedback, rows, "feedback")

    # --- Undelivered events: the embedded bus's dead-letter queue --------------------------------

    def park(self, event: TicketReceived, reason: str, failed_at: datetime) -> None:
        """Keep an accepted ticket whose routing failed until a redelivery succeeds.

        The client already has its 202 and a retry of its POST gets the same cached answer, so this
        row is the only way the ticket still gets routed. One row per ticket: a failed redelivery
        updates the reason and counts the attempt.
        """
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO undelivered_events VALUES (?, ?, 1, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET"
                    " failed_at = excluded.failed_at, reason = excluded.reason, body = excluded.body,"
                    " attempts = attempts + 1",
                    (event.ticket_id, failed_at.isoformat(), reason, event.model_dump_json()),
                )
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc

    def parked(self, limit: int = 100) -> list[TicketReceived]:
        return self._first_valid(
            TicketReceived,
            "SELECT ticket_id, body FROM undelivered_events ORDER BY failed_at",
            (),
            limit,
            "unrouted ticket",
        )

    def kept(self, ticket_id: str) -> TicketReceived | None:
        """The kept (parked) ticket under this id, if any and readable."""
        found = self._first_valid(
            TicketReceived,
            "SELECT ticket_id, body FROM undelivered_events WHERE ticket_id = ?",
            (ticket_id,),
            1,
            "unrouted ticket",
        )
        return found[0] if found else None

    def parked_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM undelivered_events", ())[0][0])

    def unpark(self, ticket_id: str) -> None:
        try:
            with self._lock:
                self._db.execute("DELETE FROM undelivered_events WHERE ticket_id = ?", (ticket_id,))
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc

    def unpark_routed(self, event: TicketReceived) -> None:
        """Forget a kept ticket now routed by another way in (a later `route` of the same file):
        only one of the same content, which is the ticket just routed."""
        try:
            with self._lock:
                self._db.execute(
                    "DELETE FROM undelivered_events WHERE ticket_id = ? AND json_extract(body, '$.customer_id') = ?"
                    " AND json_extract(body, '$.subject') = ? AND json_extract(body, '$.description') = ?",
                    (event.ticket_id, event.customer_id, event.subject, event.description),
                )
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc

    def _damaged(self, ticket_id: str, exc: ValidationError) -> DamagedRecord:
        # Without the cause: pydantic would quote the stored body, customer text included.
        self.unreadable.add(ticket_id)
        return DamagedRecord(
            f"the stored decision for ticket {ticket_id} in {self.path} is not a valid record"
            f" ({exc.error_count()} error(s), first: {exc.errors()[0]['msg']})"
        )

    def _valid(
        self,
        model: type[Record],
        rows: Iterable[tuple[Any, ...]],
        what: str,
        limit: int | None = None,
        keep: Callable[[Record], bool] | None = None,
    ) -> list[Record]:
        """Parse the stored records (the first `limit` that parse), leaving out any that no longer do.

        One damaged row (a hand edit, a record written by an older version) must not stop every
        report and replay that reads the store, nor take the place of a good one under a limit;
        each is logged by ticket and counted in `unreadable`, so that a command can say so.
        """
        records: list[Record] = []
        for ticket_id, body in rows:
            if limit is not None and len(records) >= limit:
                break
            try:
                record = model.model_validate_json(body)
            except ValidationError as exc:
                self.unreadable.add(ticket_id)
                logger.warning(
                    "%s record of ticket %s in %s is not valid and was left out (%d error(s), first: %s)",
                    what,
                    ticket_id,
                    self.path,
                    exc.error_count(),
                    exc.errors()[0]["msg"],
                )
                continue
            if keep is None or keep(record):
                records.append(record)
        return records

    def _first_valid(
        self,
        model: type[Record],
        sql: str,
        params: tuple[object, ...],
        limit: int,
        what: str,
        keep: Callable[[Record], bool] | None = None,
    ) -> list[Record]:
        try:
            with self._lock:
                # Row by row, not LIMITed in SQL: damaged rows, and those `keep` leaves out, must not
                # count against the limit.
                return self._valid(model, self._db.execute(sql, params), what, limit, keep)
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return list(self._db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise RepositoryUnavailable(str(exc)) from exc
