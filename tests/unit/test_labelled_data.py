"""Reading labelled ticket files: unusable files are one clear error, unusable rows are reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from handlers.labelled_data import TextColumns, read_labelled
from handlers.record_files import RecordFileError

TEXT = TextColumns(text="text")


def test_a_directory_given_as_the_data_file_is_a_data_file_error(tmp_path: Path) -> None:
    # Given a directory where a data file is expected
    folder = tmp_path / "exports"
    folder.mkdir()
    # When it is read, then the error says it cannot be read, instead of an IsADirectoryError
    with pytest.raises(RecordFileError, match=r"cannot read data file .*exports"):
        read_labelled(folder, TEXT, "label")


def test_a_csv_field_over_the_csv_modules_limit_is_read_whole(tmp_path: Path) -> None:
    # Given a CSV whose second ticket is longer than the csv module's default 128 KiB field limit
    long_text = "modem keeps rebooting " * 10_000
    data = tmp_path / "long.csv"
    data.write_text(f"text,label\nshort one,a\n{long_text},b\nlast one,a\n")
    limit_before = csv.field_size_limit()
    # When it is read
    result = read_labelled(data, TEXT, "label")
    # Then every ticket is kept, the long one whole, and the process-wide limit is as it was
    assert result.labels == ["a", "b", "a"]
    assert result.texts[1] == long_text.strip()
    assert csv.field_size_limit() == limit_before


def test_a_json_lines_row_nested_too_deeply_is_a_row_error(tmp_path: Path) -> None:
    # Given JSON Lines whose second row nests 5000 arrays deep
    data = tmp_path / "deep.jsonl"
    good = json.dumps({"text": "my bill is wrong", "label": "billing"})
    data.write_text(f"{good}\n{'[' * 5000}{']' * 5000}\n{good}\n")
    # When it is read
    result = read_labelled(data, TEXT, "label")
    # Then that row is reported and skipped, and the rows around it are kept
    assert result.problems == ["row 2: JSON nested too deeply to read"]
    assert result.rows == [1, 3]


def test_a_json_document_nested_too_deeply_is_a_data_file_error(tmp_path: Path) -> None:
    data = tmp_path / "deep.json"
    data.write_text("[" + "[" * 5000 + "]" * 5000 + "]")
    with pytest.raises(RecordFileError, match="nested too deeply"):
        read_labelled(data, TEXT, "label")


def test_a_column_named_optional_may_be_absent(tmp_path: Path) -> None:
    # Given a file with a body column but no subject column
    data = tmp_path / "tickets.csv"
    data.write_text("description,team\nno signal at home,Network\n")
    columns = TextColumns(text=None, subject="subject", body="description")
    # When it is read with the subject optional, then the tickets are read from the body alone
    result = read_labelled(data, columns, "team", optional=("subject",))
    assert (result.texts, result.labels) == (["no signal at home"], ["Network"])


def test_a_label_of_zero_or_false_in_json_lines_is_a_label_not_an_empty_cell(tmp_path: Path) -> None:
    # Given JSON Lines whose labels are numbers and booleans, 0 and false among them, and a null one
    data = tmp_path / "numbered.jsonl"
    labels: list[object] = [0, 1, 2, False, None]
    data.write_text(
        "".join(json.dumps({"text": f"ticket {n}", "label": label}) + "\n" for n, label in enumerate(labels))
    )
    # When it is read
    result = read_labelled(data, TEXT, "label")
    # Then 0 and false are classes like any other; only the null label is an empty one
    assert result.labels == ["0", "1", "2", "false"]
    assert result.problems == ["row 5: empty label (label)"]


def test_a_boolean_label_is_the_same_class_in_json_lines_and_in_csv(tmp_path: Path) -> None:
    # Given the same labelled rows exported as JSON Lines and as CSV
    as_jsonl = tmp_path / "escalated.jsonl"
    as_jsonl.write_text('{"text": "outage", "label": true}\n{"text": "question", "label": false}\n')
    as_csv = tmp_path / "escalated.csv"
    as_csv.write_text("text,label\noutage,true\nquestion,false\n")
    # When each is read, then the labels are the same classes
    assert read_labelled(as_jsonl, TEXT, "label").labels == read_labelled(as_csv, TEXT, "label").labels


def test_a_numeric_label_is_one_class_whether_written_as_an_integer_or_a_float(tmp_path: Path) -> None:
    # Given JSON Lines whose tool wrote label 1 once as 1 and once as 1.0, and 2.5 once
    data = tmp_path / "numbered.jsonl"
    data.write_text(
        "".join(json.dumps({"text": f"ticket {n}", "label": label}) + "\n" for n, label in enumerate([1, 1.0, 2.5]))
    )
    # When it is read, then 1 and 1.0 are the same class, and 2.5 keeps its decimals
    assert read_labelled(data, TEXT, "label").labels == ["1", "1", "2.5"]


def test_a_json_object_or_array_where_text_or_a_label_belongs_is_a_row_error(tmp_path: Path) -> None:
    # Given JSON Lines where one text is an object and one label an array
    data = tmp_path / "nested.jsonl"
    rows: list[dict[str, object]] = [
        {"text": "my card is lost", "label": "card"},
        {"text": {"subject": "refund", "body": "charged twice"}, "label": "refund"},
        {"text": "charged twice", "label": ["refund", "billing"]},
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # When it is read
    result = read_labelled(data, TEXT, "label")
    # Then those rows are reported, not trained on as their Python spelling
    assert result.texts == ["my card is lost"] and result.labels == ["card"]
    assert result.problems == ["row 2: 'text' is an object, not text", "row 3: 'label' is an array, not text"]


def test_a_label_key_that_json_lines_leaves_out_of_the_first_rows_is_still_a_column(tmp_path: Path) -> None:
    # Given JSON Lines whose first 60 tickets are not labelled yet, their label key left out
    data = tmp_path / "export.jsonl"
    rows = [{"text": f"untriaged ticket {n}"} for n in range(60)]
    rows += [{"text": "my card is lost", "label": "card"}, {"text": "refund the charge", "label": "refund"}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # When it is read
    result = read_labelled(data, TEXT, "label")
    # Then the labelled rows are kept and the others reported, rather than the file refused
    assert result.labels == ["card", "refund"]
    assert len(result.problems) == 60 and result.problems[0] == "row 1: empty label (label)"


def test_columns_describe_only_the_options_given() -> None:
    # A subject without a body is one option: describing it must not name a column "None"
    assert TextColumns(text=None, subject="subject").describe() == "--subject-column subject"
    assert TextColumns(text=None, subject="s", body="b").describe() == "--subject-column s --body-column b"


def test_json_lines_starting_with_an_array_report_that_row_and_read_the_rest(tmp_path: Path) -> None:
    # Given JSON Lines whose first record is an array
    data = tmp_path / "train.jsonl"
    data.write_text('["my bill", "billing"]\n{"text": "no signal", "label": "network"}\n', encoding="utf-8")
    # When it is read, then that row is reported as what it is, and the object after it is kept
    result = read_labelled(data, TEXT, "label")
    assert result.problems == ["row 1: not an object"]
    assert (result.texts, result.labels, result.rows) == (["no signal"], ["network"], [2])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("train.json", '[["a", "b"], {"body": "no signal", "label": "network"}]'),
        ("train.jsonl", '"a note"\n{"body": "no signal", "label": "network"}\n'),
    ],
)
def test_a_missing_column_is_named_when_the_first_record_is_no_object(tmp_path: Path, name: str, content: str) -> None:
    # Given a file whose first record is not an object, and whose objects have no 'text' column
    data = tmp_path / name
    data.write_text(content, encoding="utf-8")
    # When it is read for 'text', then the error names the missing column, instead of every
    # object being skipped as "empty text"
    with pytest.raises(RecordFileError, match="no column 'text'; columns are body, label"):
        read_labelled(data, TEXT, "label")
