"""Reading ticket files (JSON array, JSON Lines, CSV) into validated tickets, row by row.

A bad row never stops the file: it becomes a RowError naming the row and the field at fault.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.errors import TicketRouterError
from domain.models import NewTicket
from handlers.validation import describe_validation_error

TICKET_FIELDS = frozenset(NewTicket.model_fields)


class TicketFileError(TicketRouterError):
    """The file as a whole cannot be read (missing, empty, not JSON/CSV)."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedRow:
    row: int
    ticket: NewTicket
    extra: dict[str, Any]


def _validate(row: int, record: Any) -> ParsedRow | list[RowError]:
    if not isinstance(record, dict):
        return [RowError(row, "(record)", f"expected an object, got {type(record).__name__}")]
    # Blank optional cells (CSV) mean "not given"; unknown columns (labels, notes) are kept aside.
    known = {k: v for k, v in record.items() if k in TICKET_FIELDS and not (v is None or v == "")}
    for required in ("customer_id", "description"):
        if required in record and record[required] in ("", None) and required not in known:
            known[required] = ""
    extra = {k: v for k, v in record.items() if k not in TICKET_FIELDS}
    try:
        return ParsedRow(row, NewTicket.model_validate(known), extra)
    except ValidationError as exc:
        return [RowError(row, f, m) for f, m in describe_validation_error(exc)]


def _records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    suffix = path.suffix.lower()
    stripped = text.lstrip()
    if suffix == ".csv" or (suffix not in {".json", ".jsonl", ".ndjson"} and stripped[:1] not in "[{"):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise TicketFileError(f"{path}: CSV has no header row")
        for number, record in enumerate(reader, start=2):  # row 1 is the header
            if None in record:
                extra_cells = len(record[None])  # DictReader files surplus cells under the key None
                yield number, ValueError(f"has {extra_cells} more cell(s) than the header's {len(reader.fieldnames)}")
                continue
            yield number, record
        return
    if stripped.startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TicketFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
        for number, record in enumerate(document, start=1):
            yield number, record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, ValueError(f"malformed JSON: {exc.msg} at column {exc.colno}")


def read_ticket_file(path: str | Path) -> tuple[list[ParsedRow], list[RowError]]:
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError as exc:
        raise TicketFileError(f"ticket file not found: {target}") from exc
    except OSError as exc:
        raise TicketFileError(f"cannot read ticket file {target}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TicketFileError(f"{target}: not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise TicketFileError(f"{target}: the file is empty")
    parsed: list[ParsedRow] = []
    errors: list[RowError] = []
    for number, record in _records(target, text):
        if isinstance(record, Exception):
            errors.append(RowError(number, "(record)", str(record)))
            continue
        outcome = _validate(number, record)
        if isinstance(outcome, ParsedRow):
            parsed.append(outcome)
        else:
            errors.extend(outcome)
    return parsed, errors
