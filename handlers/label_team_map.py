"""Reading a label-team map: the team each label of a fine-grained trained model goes to.

A JSON object {label: team}, or a CSV with `label` and `team` columns, as a spreadsheet saves it
(a byte-order mark, padded header cells, blank lines and extra columns are all fine). Anything
else is one ConfigurationError naming the file and the line or label at fault.
"""

from __future__ import annotations

import csv
import io
import json
import reprlib
from collections.abc import Iterator
from pathlib import Path

from domain.errors import ConfigurationError


def read_label_team_map(path: Path) -> dict[str, str]:
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark.
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigurationError(f"label-team map not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"label-team map {path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:  # a directory, a file we may not read...
        raise ConfigurationError(f"cannot read label-team map {path}: {exc.strerror or exc}") from exc
    try:
        entries = list(_json_entries(text) if text.lstrip().startswith("{") else _csv_entries(text))
    except ValueError as exc:
        raise ConfigurationError(
            f"label-team map {path} must be a JSON object or a CSV with label,team: {exc}"
        ) from exc
    mapping: dict[str, str] = {}
    for where, label, team in entries:
        if not (isinstance(label, str) and label.strip() and isinstance(team, str) and team.strip()):
            raise ConfigurationError(
                f"label-team map {path}: {where} needs a label and a team as text, "
                f"not {reprlib.repr(label)} -> {reprlib.repr(team)}"
            )
        name, chosen = label.strip(), team.strip()
        earlier = mapping.setdefault(name, chosen)
        if earlier != chosen:
            # Last-one-wins would route the label to whichever line happens to come later.
            raise ConfigurationError(
                f"label-team map {path}: {where} sends {name!r} to {chosen!r}, but an earlier entry sends it to "
                f"{earlier!r}"
            )
    if not mapping:
        raise ConfigurationError(f"label-team map {path} is empty")
    return mapping


def _json_entries(text: str) -> Iterator[tuple[str, object, object]]:
    try:
        # As pairs, not a dict: a label given twice must be seen, not silently collapsed.
        pairs = json.loads(text, object_pairs_hook=list)
    except RecursionError as exc:
        raise ValueError("it is JSON nested too deeply to read") from exc
    for label, team in pairs:
        yield f"label {reprlib.repr(label)}", label, team


def _csv_entries(text: str) -> Iterator[tuple[str, object, object]]:
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(rows, None)
        if header is None:
            return  # an empty file, which the caller refuses as such
        names = [name.strip().casefold() for name in header]
        if "label" not in names or "team" not in names:
            # A map written straight away as label,team rows has its first mapping taken for the
            # header: say that a header line is what is missing.
            raise ValueError(f"its first line must be the header label,team, not {','.join(header)!r}"[:200])
        label_at, team_at = names.index("label"), names.index("team")
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            # A short row leaves its missing cells None, which the caller refuses with the row's line.
            label = row[label_at] if label_at < len(row) else None
            team = row[team_at] if team_at < len(row) else None
            yield f"line {rows.line_num}", label, team
    except csv.Error as exc:  # an over-long cell, a NUL byte, a stray quote...
        raise ValueError(f"line {rows.line_num}: {exc}") from exc
