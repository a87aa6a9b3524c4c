"""Reading labelled tickets (CSV or JSON Lines) for train, evaluate and backtest.

Rows that cannot be used are reported with their row number and skipped, never fatal.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from domain.errors import ConfigurationError
from handlers.commands.arguments import column_name
from handlers.record_files import BadRecord, RecordFileError, read_records

# Problems printed per file; the rest are counted, so that a broken export does not flood the terminal.
SHOWN_PROBLEMS = 20
# Label names listed in an error: a trained model can have hundreds, and the message is one line.
SHOWN_LABELS = 12


@dataclass(frozen=True, slots=True)
class TextColumns:
    text: str | None = "text"
    subject: str | None = None
    body: str | None = None

    def describe(self) -> str:
        if self.text:
            return f"--text-column {self.text}"
        # Only the options given: "--body-column None" would name a column that is no part of it.
        return " ".join(
            f"--{part}-column {name}" for part, name in (("subject", self.subject), ("body", self.body)) if name
        )

    def names(self) -> dict[str, str | None]:
        """As recorded in a model's metadata, to read the same columns back with `TextColumns(**names)`."""
        return {"text": self.text, "subject": self.subject, "body": self.body}

    def reads(self) -> tuple[str | None, str | None]:
        """(subject, body) as the text is composed from them: a whole-text column, or a subject or a
        body alone, is the same text as a body column of that name with no subject."""
        if self.text:
            return None, self.text
        if self.subject and self.body:
            return self.subject, self.body
        return None, self.subject or self.body


@dataclass
class LabelledData:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    # The file's own row number of each kept record, for messages about it made later.
    rows: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def label_counts(self) -> Counter[str]:
        return Counter(self.labels)


def read_labelled(
    path: str | Path,
    columns: TextColumns,
    label_column: str | None,
    *,
    optional: Collection[str] = (),
    also: Collection[str] = (),
    text_hint: str = "",
) -> LabelledData:
    """Texts and labels from a file; `label_column=None` reads texts only. The columns in `also`
    must be in the file as well; those in `optional` may be absent from it. `text_hint` ends the
    error for a missing text column: how to name the file's own."""
    target = Path(path)
    data = LabelledData()
    rows: list[tuple[int, Any]] = []
    for number, record in read_records(target, "data file"):
        if isinstance(record, BadRecord):
            data.problems.append(f"row {number}: {record.reason}")
        else:
            rows.append((number, record))
    wanted = [c for c in (columns.text, columns.subject, columns.body, label_column, *also) if c and c not in optional]
    objects = [r for _, r in rows if isinstance(r, dict)]
    if objects:
        # Every row: JSON Lines may leave a key out of the rows that have no value for it, and a
        # column found in none of the first rows is still the file's. Every object, not only when
        # the first record is one: a stray array first must not hide a missing column.
        present = set().union(*(r.keys() for r in objects))
        missing = [c for c in wanted if c not in present]
        if missing:
            text_missing = text_hint and {columns.text, columns.subject, columns.body} & set(missing)
            raise RecordFileError(
                f"{target}: no column {', '.join(repr(m) for m in missing)}; columns are {', '.join(sorted(present))}"
                + (f"; {text_hint}" if text_missing else "")
            )
    for number, record in rows:
        if not isinstance(record, dict):
            data.problems.append(f"row {number}: not an object")
            continue
        # str() of a JSON object or array would be trained on, or taken for a label, as if it were text.
        nested = next((c for c in (*wanted, *optional) if isinstance(record.get(c), dict | list)), None)
        if nested is not None:
            kind = "an object" if isinstance(record[nested], dict) else "an array"
            data.problems.append(f"row {number}: {nested!r} is {kind}, not text")
            continue
        if columns.text:
            text = cell(record, columns.text)
        else:
            subject = cell(record, columns.subject)
            body = cell(record, columns.body)
            text = f"{subject}\n{body}" if subject and body else subject or body
        if not text:
            data.problems.append(f"row {number}: empty text ({columns.describe()})")
            continue
        label = ""
        if label_column:
            label = cell(record, label_column)
            if not label:
                data.problems.append(f"row {number}: empty label ({label_column})")
                continue
        data.texts.append(text)
        data.labels.append(label)
        data.records.append(record)
        data.rows.append(number)
    return data


def cell(record: dict[str, Any], column: str | None) -> str:
    """A record's value as text: 0 and false are values (a JSONL label 0 is a class), only a missing
    or null cell is empty."""
    value = record.get(column) if column else None
    if isinstance(value, bool):
        # As JSON and a CSV export of the same rows spell it: Python's "True" would be a label that
        # the CSV's "true" is not, and a model trained on one file would know no label of the other.
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        # One class, however the exporting tool wrote its number: 1 and 1.0 are not two labels.
        value = int(value)
    return "" if value is None else str(value).strip()


def report_problems(path: Path, problems: list[str]) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"ticket-router: {path}: {problem} (skipped)", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"ticket-router: ... and {len(problems) - SHOWN_PROBLEMS} more rows skipped", file=sys.stderr)


def require_rows(path: Path, kept: int, problems: list[str]) -> None:
    """Refuse a file with nothing left to measure: figures over no tickets would read as a result."""
    if kept == 0:
        skipped = f"; all {len(problems)} row(s) were skipped" if problems else ""
        raise RecordFileError(f"{path}: no usable labelled rows{skipped}")


def require_known_labels(
    labels: Sequence[str],
    is_known: Callable[[str], bool],
    *,
    column: str,
    known: Sequence[str],
    known_as: str,
    hint: str,
) -> None:
    """Refuse labels of which none is `known`: the wrong column, label kind or model, not a finding.

    Every ticket would count wrong and the run would report 0% as if the model were that bad. Some
    unknown labels are a real result (a team the model was never trained on) and are only counted.
    """
    if not labels or any(is_known(label) for label in labels):
        return
    seen = list(dict.fromkeys(labels))
    raise ConfigurationError(
        f"no label in column {column!r} is one of the {known_as} ({_listed(known)}); "
        f"the file has {_listed(seen)}: {hint}"
    )


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_LABELS])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > SHOWN_LABELS else shown


class _TextColumnOption(argparse.Action):
    """--text-column names the whole text, so it cannot go with --subject-column or --body-column.

    argparse's mutually exclusive groups cannot say "one against either of two that go together",
    so each of these options refuses the other kind as it is parsed, with argparse's own message.
    """

    WHOLE = "text_column"
    PARTS = ("subject_column", "body_column")

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        rivals = self.PARTS if self.dest == self.WHOLE else (self.WHOLE,)
        for rival in rivals:
            if getattr(namespace, rival, None) is not None:
                option = "--" + rival.replace("_", "-")
                raise argparse.ArgumentError(self, f"not allowed with argument {option}")
        setattr(namespace, self.dest, values)


def add_column_arguments(parser: Any, *, label_required: bool = True, text_default: str = "text") -> None:
    parser.add_argument(
        "--text-column",
        action=_TextColumnOption,
        type=column_name,
        default=None,
        help=f"column holding the whole text (default: {text_default})",
    )
    parser.add_argument(
        "--subject-column",
        action=_TextColumnOption,
        type=column_name,
        default=None,
        help="column holding the subject (use with --body-column)",
    )
    parser.add_argument(
        "--body-column",
        action=_TextColumnOption,
        type=column_name,
        default=None,
        help="column holding the body/description",
    )
    parser.add_argument("--label-column", type=column_name, required=label_required, help="column holding the label")


def columns_given(args: Any) -> bool:
    return bool(args.text_column or args.subject_column or args.body_column)


def columns_from_args(args: Any) -> TextColumns:
    if args.subject_column or args.body_column:
        return TextColumns(text=None, subject=args.subject_column, body=args.body_column)
    return TextColumns(text=args.text_column or "text")


def text_columns_hint(options: str, metadata: dict[str, Any], model: str) -> str:
    """How to read a file's text from its own columns, when the command chose them (its default, or
    the model's as trained): the file's columns alone do not say which option names them."""
    trained = metadata.get("text_columns")
    why = f"{model} was trained on {trained}; " if isinstance(trained, str) and trained else ""
    return f"{why}name this file's text columns with {options}"


def columns_as_trained(
    metadata: dict[str, Any], model: str, default: TextColumns = TextColumns(), *, parts_only: bool = False
) -> TextColumns | None:
    """The text columns the model's metadata records it was trained on, said on stderr when they
    are not the command's `default`; None when it records none that can be read back. `parts_only`:
    the command has no --text-column, so a whole-text column is named as the body it reads it as."""
    recorded = metadata.get("text_column_names")
    if not _column_names(recorded):
        return None
    columns = TextColumns(**recorded)
    if columns.reads() != default.reads():
        subject, body = columns.reads()
        shown = TextColumns(text=None, subject=subject, body=body) if parts_only else columns
        print(f"ticket-router: reading {shown.describe()}, the text {model} was trained on", file=sys.stderr)
    return columns


def warn_unless_as_trained(metadata: dict[str, Any], model: str, columns: TextColumns, doing: str) -> None:
    """Warn when `columns` compose another text than the model was trained on: its figures would
    describe text the model was never trained to read."""
    recorded = metadata.get("text_column_names")
    trained = metadata.get("text_columns")
    if _column_names(recorded):
        differs = TextColumns(**recorded).reads() != columns.reads()
    else:  # older models record only the options' description
        differs = isinstance(trained, str) and trained != columns.describe()
    if differs and isinstance(trained, str):
        print(
            f"ticket-router: warning: {model} was trained on {trained}, {doing} here on {columns.describe()}:"
            " the figures describe other text than the model was trained to read",
            file=sys.stderr,
        )


def _column_names(recorded: Any) -> TypeGuard[dict[str, str | None]]:
    """Whether metadata's `text_column_names` can be read back (a hand-edited file may hold anything)."""
    return (
        isinstance(recorded, dict)
        and set(recorded) == {"text", "subject", "body"}
        and all(v is None or (isinstance(v, str) and v.strip()) for v in recorded.values())
        and any(recorded.values())
    )
