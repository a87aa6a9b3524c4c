"""Reading ticket files (JSON array, JSON Lines, CSV) into validated tickets, row by row.

A bad row never stops the file: it becomes a RowError naming the row and the field at fault. A file
unusable as a whole raises RecordFileError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.models import NewTicket
from handlers.record_files import BadRecord, read_records
from handlers.validation import describe_validation_error

TICKET_FIELDS = frozenset(NewTicket.model_fields)


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
    record, clashes = _with_field_names(record)
    if clashes:
        return [RowError(row, field, f"given twice, as {' and '.join(map(repr, names))}") for field, names in clashes]
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


def _folded(name: str) -> str:
    return "_".join(name.replace("-", " ").replace("_", " ").split()).casefold()


def _with_field_names(record: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
    """The record with a spreadsheet's spelling of a field ('Customer ID', 'Description',
    'Ticket-ID') under the field's own name, and the fields given under two names. Left as unknown
    columns, such a file had every row refused for lacking a column it shows, or worse, its ticket
    ids, subjects or timestamps silently dropped."""
    if all(key in TICKET_FIELDS for key in record):
        return record, []
    spellings: dict[str, list[str]] = {}
    for key in record:
        if (field := _folded(key)) in TICKET_FIELDS:
            spellings.setdefault(field, []).append(key)
    clashes = [(field, names) for field, names in spellings.items() if len(names) > 1]
    renamed = {names[0]: field for field, names in spellings.items() if len(names) == 1}
    return {renamed.get(key, key): value for key, value in record.items()}, clashes


def read_ticket_file(path: str | Path, text: str | None = None) -> tuple[list[ParsedRow], list[RowError]]:
    """The tickets of the file at `path`, or of `text` (standard input) that `path` names."""
    parsed: list[ParsedRow] = []
    errors: list[RowError] = []
    for number, record in read_records(Path(path), "ticket file", text):
        if isinstance(record, BadRecord):
            errors.append(RowError(number, "(record)", record.reason))
            continue
        outcome = _validate(number, record)
        if isinstance(outcome, ParsedRow):
            parsed.append(outcome)
        else:
            errors.extend(outcome)
    return parsed, errors
