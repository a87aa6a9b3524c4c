"""Reading labelled tickets (CSV or JSON Lines) for train, evaluate and backtest.

Rows that cannot be used are reported with their row number and skipped, never fatal.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import TicketRouterError


class DataFileError(TicketRouterError):
    """The data file as a whole is unusable (missing, empty, unknown columns)."""


@dataclass(frozen=True, slots=True)
class TextColumns:
    text: str | None = "text"
    subject: str | None = None
    body: str | None = None

    def describe(self) -> str:
        return (
            f"--text-column {self.text}" if self.text else f"--subject-column {self.subject} --body-column {self.body}"
        )


@dataclass
class LabelledData:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def label_counts(self) -> Counter[str]:
        return Counter(self.labels)


def _read_records(path: Path) -> tuple[list[tuple[int, Any]], list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DataFileError(f"data file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not UTF-8 text") from exc
    if not text.strip():
        raise DataFileError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"} or text.lstrip()[:1] in "{[":
        if text.lstrip().startswith("["):
            try:
                return list(enumerate(json.loads(text), start=1)), []
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}: not valid JSON: {exc.msg}") from exc
        records, problems = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"row {number}: malformed JSON ({exc.msg})")
        return records, problems
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataFileError(f"{path}: CSV has no header row")
    return list(enumerate(reader, start=2)), []


def read_labelled(path: str | Path, columns: TextColumns, label_column: str | None) -> LabelledData:
    """Texts and labels from a file; `label_column=None` reads texts only."""
    target = Path(path)
    rows, problems = _read_records(target)
    data = LabelledData(problems=list(problems))
    wanted = [c for c in (columns.text, columns.subject, columns.body, label_column) if c]
    if rows and isinstance(rows[0][1], dict):
        present = set().union(*(r.keys() for _, r in rows[:50] if isinstance(r, dict)))
        missing = [c for c in wanted if c not in present]
        if missing:
            raise DataFileError(
                f"{target}: no column {', '.join(repr(m) for m in missing)}; columns are {', '.join(sorted(present))}"
            )
    for number, record in rows:
        if not isinstance(record, dict):
            data.problems.append(f"row {number}: not an object")
            continue
        if columns.text:
            text = str(record.get(columns.text) or "").strip()
        else:
            subject = str(record.get(columns.subject or "") or "").strip()
            body = str(record.get(columns.body or "") or "").strip()
            text = f"{subject}\n{body}" if subject and body else subject or body
        if not text:
            data.problems.append(f"row {number}: empty text ({columns.describe()})")
            continue
        label = ""
        if label_column:
            label = str(record.get(label_column) or "").strip()
            if not label:
                data.problems.append(f"row {number}: empty label ({label_column})")
                continue
        data.texts.append(text)
        data.labels.append(label)
        data.records.append(record)
    return data


def add_column_arguments(parser: Any, *, label_required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--text-column", default=None, help="column holding the whole text (default: text)")
    group.add_argument("--subject-column", default=None, help="column holding the subject (use with --body-column)")
    parser.add_argument("--body-column", default=None, help="column holding the body/description")
    parser.add_argument("--label-column", required=label_required, help="column holding the label")


def columns_from_args(args: Any) -> TextColumns:
    if args.subject_column or args.body_column:
        return TextColumns(text=None, subject=args.subject_column, body=args.body_column)
    return TextColumns(text=args.text_column or "text")
