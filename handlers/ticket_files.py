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
# json.loads recurses once per level of nesting; no ticket is nested anywhere near that deep.
_TOO_DEEP = "JSON nested too deeply to read"


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
        yield from _csv_records(path, text)
        return
    if stripped.startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TicketFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
        except RecursionError as exc:
            raise TicketFileError(f"{path}: {_TOO_DEEP}") from exc
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
        except RecursionError:
            yield number, ValueError(_TOO_DEEP)


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    source = io.StringIO(text, newline="")
    reader = csv.DictReader(source)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise TicketFileError(f"{path}: unreadable CSV header: {exc}") from exc
    if not fieldnames:
        raise TicketFileError(f"{path}: CSV has no header row")
    number = 1  # row 1 is the header
    while True:
        number += 1
        position = source.tell()
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader has consumed the bad record's lines and carries on with the next one.
            yield number, ValueError(f"unreadable CSV: {exc}")
            if source.tell() == position:  # no progress: stop rather than loop for ever
                return
            continue
        if None in record:
            extra_cells = len(record[None])  # DictReader files surplus cells under the key None
            yield number, ValueError(f"has {extra_cells} more cell(s) than the header's {len(fieldnames)}")
            continue
        yield number, record


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
