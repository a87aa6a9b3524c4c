"""Reading a file of records (a JSON array, JSON Lines, or CSV with a header row) one record at a
time, for every command that takes a file of tickets (route, train, evaluate, backtest).

A record that cannot be read becomes a `BadRecord` at its place, and the rest of the file is still
read: the callers report it and skip it. Only a file unusable as a whole raises `RecordFileError`.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import TicketRouterError

JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
# json.loads recurses once per level of nesting; no ticket is nested anywhere near that deep.
TOO_DEEP = "JSON nested too deeply to read"
# JSON Lines ends a record at a newline only. str.splitlines() also breaks at U+2028, U+2029 and
# U+0085, which JSON carries unescaped inside strings (text pasted from the web, json.dumps with
# ensure_ascii=False): a valid record would be cut in two and both halves rejected.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class RecordFileError(TicketRouterError):
    """The file as a whole cannot be read: missing, not UTF-8, empty, not JSON, no CSV header."""


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be read, with the reason."""

    reason: str


# The name standard input goes by in messages, as Python and most tools call it.
STANDARD_INPUT = Path("<stdin>")


def read_text(path: Path, what: str) -> str:
    """The file's text; `what` ("ticket file", "data file") names it in errors."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise RecordFileError(f"{what} not found: {path}") from exc
    except OSError as exc:
        raise RecordFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    return _decoded(raw, path)


def read_standard_input(what: str) -> str:
    """The text of standard input, read to its end and decoded as a file's would be."""
    if sys.stdin is None:
        raise RecordFileError(f"cannot read {what} from standard input: it is closed")
    try:
        raw = sys.stdin.buffer.read()
    except OSError as exc:
        raise RecordFileError(f"cannot read {what} from standard input: {exc.strerror or exc}") from exc
    return _decoded(raw, STANDARD_INPUT)


def _decoded(raw: bytes, path: Path) -> str:
    # A byte-order mark of UTF-16 (Excel's "Unicode Text", PowerShell's Out-File) names the encoding
    # for certain: no UTF-8 text starts with those bytes.
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    try:
        text = raw.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordFileError(
            f"{path}: not {'UTF-16' if utf16 else 'UTF-8'} text (byte {exc.start}); save it as UTF-8 (Excel: CSV UTF-8)"
        ) from exc
    # UTF-16 without a byte-order mark decodes as UTF-8 with a NUL before or after each character:
    # read on, its header names no column the command knows, and each row is refused for lacking them.
    if "\x00" in text.split("\n", 1)[0]:
        raise RecordFileError(
            f"{path}: not UTF-8 text (NUL bytes in its first line: UTF-16 without a byte-order mark?);"
            " save it as UTF-8 (Excel: CSV UTF-8)"
        )
    if not text.strip():
        raise RecordFileError(f"{path}: the file is empty")
    return text


def read_records(path: Path, what: str, text: str | None = None) -> Iterator[tuple[int, Any]]:
    """(row number, record or BadRecord) for each record of the file: a JSON array, JSON Lines (or
    a single JSON object), or CSV. Rows are numbered as a spreadsheet shows them: JSON Lines by
    line, a JSON array from 1, CSV from 2 (1 is the header). With `text` (standard input), that is
    read, and `path` only names it: without a suffix, the format is told by the content."""
    if text is None:
        text = read_text(path, what)
    suffix = path.suffix.lower()
    stripped = text.lstrip()
    if suffix == ".csv" or (suffix not in JSON_SUFFIXES and stripped[:1] not in "[{"):
        yield from _csv_records(path, text)
        return
    records = _json_array_or_lines(path, text) if stripped.startswith("[") else _json_object_or_lines(path, text)
    for number, record in records:
        if isinstance(record, _RepeatedKeys):
            yield number, BadRecord(f"names {', '.join(map(repr, record.repeated))} more than once")
        else:
            yield number, record


class _RepeatedKeys(dict[str, Any]):
    """A JSON object that names some keys more than once."""

    repeated: list[str]


def _mark_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A plain dict keeps the last of a repeated key and drops the others without a word: the
    # record is marked, to be reported, rather than read with one value silently lost.
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    marked = _RepeatedKeys(document)
    counts = Counter(key for key, _ in pairs)
    marked.repeated = [key for key, count in counts.items() if count > 1]
    return marked


def _json_array_or_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    try:
        document = json.loads(text, object_pairs_hook=_mark_repeated_keys)
    except json.JSONDecodeError as exc:
        # JSON Lines whose first record is an array: its first line is a whole JSON value and the
        # lines after it "extra data". Read by line, that record is reported and the rest are read.
        if exc.msg == "Extra data" and _is_json(_LINE_BREAK.split(text.lstrip(), maxsplit=1)[0]):
            return _json_lines(text)
        raise RecordFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise RecordFileError(f"{path}: {TOO_DEEP}") from exc
    return enumerate(document, start=1)  # a list: the text starts with '['


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _json_object_or_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    # One ticket written out by hand is a JSON object over several lines: read line by line, each
    # of its lines would be reported malformed, and the ticket with them.
    try:
        document = json.loads(text, object_pairs_hook=_mark_repeated_keys)
    except (json.JSONDecodeError, RecursionError):
        return _json_lines(text)
    if not isinstance(document, dict):
        return _json_lines(text)
    if len(document) == 1 and _is_list_of_objects(wrapped := next(iter(document.values()))):
        # An export's {"tickets": [...]}: read as the one record it looks like, it was refused for
        # lacking every field its records do have.
        key = next(iter(document))
        raise RecordFileError(
            f"{path}: a JSON object holding {len(wrapped)} record(s) under {key!r}: give the records as a JSON array"
            " ([{...}, ...]), JSON Lines (one object a line) or CSV"
        )
    return iter([(text[: len(text) - len(text.lstrip())].count("\n") + 1, document)])


def _is_list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, object_pairs_hook=_mark_repeated_keys)
        except json.JSONDecodeError as exc:
            yield number, BadRecord(f"malformed JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:
            yield number, BadRecord(TOO_DEEP)


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets; CSV we
# write (`feedback export`) puts an apostrophe before such a cell, so that customer text opened in a
# spreadsheet stays text, and CSV we read takes that apostrophe off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Text that itself starts with apostrophes before a formula sign looks guarded to the reader, which
# would take one of the customer's apostrophes off: it is guarded too, so one comes off and the
# text is read back as written.
_LOOKS_GUARDED = re.compile(r"'+[=+\-@\t\r]")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as the text it is, never runs as a formula."""
    if isinstance(value, str) and (value.startswith(FORMULA_STARTS) or _LOOKS_GUARDED.match(value)):
        return f"'{value}"
    return value


def _without_spreadsheet_guard(value: Any) -> Any:
    return value[1:] if isinstance(value, str) and _LOOKS_GUARDED.match(value) else value


# Data rows looked at to tell the separator when the header alone cannot.
_SEPARATOR_SAMPLE_ROWS = 50


def _other_separator(header: str, comma_cells: list[str] | None = None, rows: str = "") -> str | None:
    """The separator other than a comma (';', tab or '|') that splits this header line into more
    cells than the comma does (`comma_cells`, None when the comma cannot read it), unless the comma
    fits more of the data `rows` than it does. Read as CSV, so that one inside a quoted name, as in
    '"text;notes"', is part of the name and splits nothing."""
    # A quote left inside a cell is one this separator cut through: where the comma reads every
    # quote as a quoted name's, 'id,"category|queue|team"' is two comma cells, not three bar cells.
    comma_quotes_whole = comma_cells is not None and not any('"' in cell for cell in comma_cells)
    for separator in ";\t|":
        try:
            cells = next(csv.reader([header], delimiter=separator, strict=True, skipinitialspace=True), [])
        except csv.Error:
            continue
        if len(cells) > len(comma_cells or [""]) and not (comma_quotes_whole and any('"' in c for c in cells)):
            # A header alone is ambiguous: 'text,label|team' is two comma names or two bar names.
            # The rows under it are not: each has the header's cell count under its own separator.
            if comma_cells is not None and _rows_fitting(rows, ",", len(comma_cells)) > _rows_fitting(
                rows, separator, len(cells)
            ):
                continue
            return separator
    return None


def _rows_fitting(rows: str, separator: str, width: int) -> int:
    """How many of the first data rows split into `width` cells at `separator`."""
    reader = csv.reader(io.StringIO(rows, newline=""), delimiter=separator, skipinitialspace=True)
    fitting = 0
    try:
        for cells in itertools.islice(filter(None, reader), _SEPARATOR_SAMPLE_ROWS):
            fitting += len(cells) == width
    except csv.Error:  # a row this separator cannot read fits it no better
        pass
    return fitting


def _separator_error(path: Path, header: str, separator: str) -> RecordFileError:
    return RecordFileError(
        f"{path}: the CSV header {header[:80]!r} is not separated by commas: cells must be separated by commas,"
        f" not {separator!r}"
    )


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    # The csv module refuses fields over 128 KiB, a guard for streamed input; this file is already
    # in memory, so a long ticket is read whole (and judged by the caller's own limits). The limit
    # is process-wide, hence restored.
    previous_limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    try:
        source = io.StringIO(text, newline="")
        # strict: a quote left open would otherwise swallow every later row into one cell, silently.
        # csv.reader, not DictReader: DictReader skips blank lines without a word, and every row
        # after one would be reported a row above the one a spreadsheet shows.
        # skipinitialspace: a CSV written by hand is often "a, b, c"; without it the header names
        # " customer_id" (so every row lacks customer_id) and a quoted cell after ", " is split.
        reader = csv.reader(source, strict=True, skipinitialspace=True)
        try:
            fieldnames = [name.strip() for name in next(reader, [])]
        except csv.Error as exc:
            # A header quoted cell by cell, '"customer_id";"description"', is no comma CSV at all:
            # its separator says more than the quote the reader stumbled on.
            header = _LINE_BREAK.split(text, maxsplit=1)[0]
            if separator := _other_separator(header):
                raise _separator_error(path, header, separator) from exc
            raise RecordFileError(f"{path}: unreadable CSV header: {exc}") from exc
        if not fieldnames:
            raise RecordFileError(f"{path}: CSV has no header row")
        header, *rest = _LINE_BREAK.split(text, maxsplit=1)
        if separator := _other_separator(header, fieldnames, rest[0] if rest else ""):
            # Excel in many locales saves "CSV" with semicolons: read with commas, every row would
            # be one cell (or split at the commas in its text), and each rejected for lacking the
            # columns its header seems to name. A comma inside one of its column names still leaves
            # the semicolons the better split.
            raise _separator_error(path, header, separator)
        repeated = sorted({name for name in fieldnames if fieldnames.count(name) > 1})
        if repeated:
            # A record would keep the last such column and drop the others without a word.
            raise RecordFileError(f"{path}: the CSV header names {', '.join(map(repr, repeated))} more than once")
        number = 1
        while True:
            number += 1
            position = source.tell()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader has consumed the bad record's lines and carries on with the next one.
                yield number, BadRecord(f"unreadable CSV: {exc}")
                if source.tell() == position:  # no progress: stop rather than loop for ever
                    return
                continue
            if not cells:  # a blank line: a row in a spreadsheet too, with nothing to read
                continue
            if len(cells) > len(fieldnames):
                # Most often an unquoted comma, which shifts every later column: the row cannot be trusted.
                surplus = len(cells) - len(fieldnames)
                yield number, BadRecord(f"has {surplus} more cell(s) than the header's {len(fieldnames)}")
                continue
            # Missing trailing cells are not given (None), as DictReader has them.
            yield (
                number,
                {
                    name: _without_spreadsheet_guard(cells[i]) if i < len(cells) else None
                    for i, name in enumerate(fieldnames)
                },
            )
    finally:
        csv.field_size_limit(previous_limit)
