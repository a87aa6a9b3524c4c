"""The one reader behind route, train, evaluate and backtest: records numbered as a person would
look them up, unreadable records reported in place, and the rest of the file still read."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from handlers.record_files import BadRecord, RecordFileError, read_records


def test_csv_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path: Path) -> None:
    # Given a CSV with a header and two rows
    data = tmp_path / "tickets.csv"
    data.write_text("text,label\nfirst,a\nsecond,b\n", encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then the header is row 1 and the records start at row 2
    assert records == [(2, {"text": "first", "label": "a"}), (3, {"text": "second", "label": "b"})]


def test_a_csv_row_with_more_cells_than_the_header_is_a_bad_record(tmp_path: Path) -> None:
    # Given a CSV whose second row has an unquoted comma, shifting its columns
    data = tmp_path / "tickets.csv"
    data.write_text("text,label\nfirst,a\nsecond, with a comma,b\nthird,c\n", encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then that row is reported with the reason, and the rows around it are read
    assert records == [
        (2, {"text": "first", "label": "a"}),
        (3, BadRecord("has 1 more cell(s) than the header's 2")),
        (4, {"text": "third", "label": "c"}),
    ]


def test_json_lines_are_numbered_by_line_and_skip_blank_lines(tmp_path: Path) -> None:
    # Given JSON Lines with a blank line and a malformed line
    data = tmp_path / "tickets.jsonl"
    data.write_text('{"text": "first"}\n\n{"text": \n{"text": "third"}\n', encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then the malformed line is a bad record at its own line number
    assert [number for number, _ in records] == [1, 3, 4]
    assert records[0][1] == {"text": "first"}
    assert isinstance(records[1][1], BadRecord) and records[1][1].reason.startswith("malformed JSON")
    assert records[2][1] == {"text": "third"}


def test_a_json_array_is_numbered_from_one(tmp_path: Path) -> None:
    data = tmp_path / "tickets.json"
    data.write_text('[{"text": "first"}, {"text": "second"}]', encoding="utf-8")
    assert list(read_records(data, "data file")) == [(1, {"text": "first"}), (2, {"text": "second"})]


def test_a_file_with_no_suffix_is_read_by_its_content(tmp_path: Path) -> None:
    # Given an export saved without a suffix, one JSON and one CSV
    as_json = tmp_path / "export1"
    as_json.write_text('{"text": "first"}\n', encoding="utf-8")
    as_csv = tmp_path / "export2"
    as_csv.write_text("text\nfirst\n", encoding="utf-8")
    # When each is read, then each is read as what it holds
    assert list(read_records(as_json, "data file")) == [(1, {"text": "first"})]
    assert list(read_records(as_csv, "data file")) == [(2, {"text": "first"})]


def test_a_long_csv_cell_is_read_whole_and_the_process_wide_limit_is_restored(tmp_path: Path) -> None:
    # Given a CSV cell past the csv module's 128 KiB default
    data = tmp_path / "tickets.csv"
    long_text = "x" * 200_000
    data.write_text(f"text\n{long_text}\n", encoding="utf-8")
    limit_before = csv.field_size_limit()
    # When it is read
    records = list(read_records(data, "data file"))
    # Then the cell arrives whole, and other csv users keep their limit
    assert records == [(2, {"text": long_text})]
    assert csv.field_size_limit() == limit_before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b"text\n\xff\xfe\n", "not UTF-8 text"),
        (b"[{]", "not valid JSON"),
    ],
)
def test_a_file_unusable_as_a_whole_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    data = tmp_path / ("tickets.json" if content.startswith(b"[") else "tickets.csv")
    data.write_bytes(content)
    with pytest.raises(RecordFileError, match=message):
        list(read_records(data, "data file"))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_text_with_its_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    # Given a CSV saved as UTF-16 with a byte-order mark, as Excel's "Unicode Text" and
    # PowerShell's Out-File save it
    data = tmp_path / "tickets.csv"
    data.write_bytes("\ufefftext,label\ncafé,a\n".encode(encoding))
    # When it is read, then it reads as the same file in UTF-8 would
    assert list(read_records(data, "data file")) == [(2, {"text": "café", "label": "a"})]


def test_text_in_another_encoding_is_refused_saying_how_to_save_it(tmp_path: Path) -> None:
    # Given a CSV saved as Latin-1
    data = tmp_path / "tickets.csv"
    data.write_bytes("text,label\ncafé,a\n".encode("latin-1"))
    # When it is read, then the error says what to do about it
    with pytest.raises(RecordFileError) as refused:
        list(read_records(data, "data file"))
    assert str(refused.value) == f"{data}: not UTF-8 text (byte 14); save it as UTF-8 (Excel: CSV UTF-8)"


@pytest.mark.parametrize(("encoding", "name"), [("utf-16-le", "tickets.csv"), ("utf-16-be", "tickets.jsonl")])
def test_utf16_text_without_its_byte_order_mark_is_refused_saying_how_to_save_it(
    tmp_path: Path, encoding: str, name: str
) -> None:
    # Given a file saved as UTF-16 without a byte-order mark (iconv -t UTF-16LE, .NET's GetBytes),
    # whose every other byte is a NUL to UTF-8
    data = tmp_path / name
    data.write_bytes('customer_id,description\nC-1,"fibre down"\n'.encode(encoding))
    # When it is read, then it is refused as not UTF-8, not read as a header of unknown columns
    with pytest.raises(RecordFileError) as refused:
        list(read_records(data, "ticket file"))
    assert str(refused.value) == (
        f"{data}: not UTF-8 text (NUL bytes in its first line: UTF-16 without a byte-order mark?);"
        " save it as UTF-8 (Excel: CSV UTF-8)"
    )


def test_a_missing_file_names_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(RecordFileError, match="ticket file not found"):
        list(read_records(tmp_path / "absent.csv", "ticket file"))


def test_a_quote_left_open_is_reported_instead_of_swallowing_the_rows_after_it(tmp_path: Path) -> None:
    # Given a CSV whose second row opens a quote that is never closed
    data = tmp_path / "tickets.csv"
    data.write_text('text,label\nfirst,a\n"unterminated,b\nthird,c\n', encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then the good row is read and the rest is one reported bad record, not a silent long cell
    assert records[0] == (2, {"text": "first", "label": "a"})
    assert [type(record) for _, record in records[1:]] == [BadRecord]
    assert "unexpected end of data" in records[1][1].reason


def test_a_stray_quote_inside_a_cell_is_a_row_error_and_reading_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_text('text,label\n"say "hi" here,a\nsecond,b\n', encoding="utf-8")
    records = list(read_records(data, "data file"))
    assert isinstance(records[0][1], BadRecord) and records[0][1].reason.startswith("unreadable CSV")
    assert records[-1][1] == {"text": "second", "label": "b"}


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    # Given a header with two description columns: which one holds the ticket is anyone's guess
    data = tmp_path / "tickets.csv"
    data.write_text("ticket_id,description,description\nT1,a,b\n", encoding="utf-8")
    # When it is read, then the file is refused naming the column
    with pytest.raises(RecordFileError, match="names 'description' more than once"):
        list(read_records(data, "data file"))


def test_json_lines_holding_unicode_line_separators_in_strings_are_read_whole(tmp_path: Path) -> None:
    # Given JSON Lines written with ensure_ascii=False, whose texts hold U+2028, U+2029 and U+0085,
    # which JSON leaves unescaped inside strings
    data = tmp_path / "tickets.jsonl"
    texts = ["para one\u2028para two", "next\u2029page", "old\x85break"]
    data.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\r\n" for t in texts), encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then each line is one record, whole, at its own line number
    assert records == [(1, {"text": texts[0]}), (2, {"text": texts[1]}), (3, {"text": texts[2]})]


def test_csv_rows_after_a_blank_line_keep_the_number_a_spreadsheet_shows(tmp_path: Path) -> None:
    # Given a CSV with a blank line between its rows, and a row one cell short
    data = tmp_path / "tickets.csv"
    data.write_text("text,label\nfirst,a\n\nsecond,b\nthird\n", encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then the blank line counts as the row it is, and a missing cell is not given
    assert records == [
        (2, {"text": "first", "label": "a"}),
        (4, {"text": "second", "label": "b"}),
        (5, {"text": "third", "label": None}),
    ]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param(
            "tickets.jsonl",
            '{"text": "first"}\n{"text": "kept?", "label": "a", "text": "or this?"}\n{"text": "third"}\n',
            id="json-lines",
        ),
        pytest.param(
            "tickets.json",
            '[{"text": "first"}, {"text": "kept?", "label": "a", "text": "or this?"}, {"text": "third"}]',
            id="json-array",
        ),
    ],
)
def test_a_json_record_naming_a_key_twice_is_a_bad_record(tmp_path: Path, name: str, content: str) -> None:
    # Given a file whose second record gives "text" twice, with two values
    data = tmp_path / name
    data.write_text(content, encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then that record is reported, not read with one of its texts silently dropped
    assert records == [(1, {"text": "first"}), (2, BadRecord("names 'text' more than once")), (3, {"text": "third"})]


def test_a_csv_written_with_a_space_after_each_comma_is_read_by_its_column_names(tmp_path: Path) -> None:
    # Given a hand-written CSV with ", " between cells, one of them quoted around a comma
    data = tmp_path / "tickets.csv"
    data.write_text('text, label \n"charged twice, refund", billing\n', encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then the columns are named as written, and the quoted cell is one cell
    assert records == [(2, {"text": "charged twice, refund", "label": "billing"})]


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_separated_by_another_character_is_one_clear_error(tmp_path: Path, separator: str) -> None:
    # Given a "CSV" saved with semicolons (Excel in many locales) or tabs
    data = tmp_path / "tickets.csv"
    data.write_text(f"customer_id{separator}description\nC1{separator}fibre down\n", encoding="utf-8")
    # When it is read, then the file is refused saying why, not every row for lacking its columns
    with pytest.raises(RecordFileError, match=re.escape(f"cells must be separated by commas, not {separator!r}")):
        list(read_records(data, "data file"))


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_quoting_every_cell_and_separated_by_another_character_is_the_same_clear_error(
    tmp_path: Path, separator: str
) -> None:
    # Given a "CSV" saved with semicolons or tabs and every cell quoted, as many exports write it
    data = tmp_path / "tickets.csv"
    data.write_text(f'"customer_id"{separator}"description"\n"C1"{separator}"fibre down"\n', encoding="utf-8")
    # When it is read, then the file is refused naming the separator, not the quote read with commas
    with pytest.raises(RecordFileError, match=re.escape(f"cells must be separated by commas, not {separator!r}")):
        list(read_records(data, "data file"))


@pytest.mark.parametrize("name", ["ticket.json", "ticket.jsonl"])
def test_a_single_json_object_written_over_several_lines_is_one_record(tmp_path: Path, name: str) -> None:
    # Given one ticket written out by hand as an indented JSON object
    data = tmp_path / name
    data.write_text('\n{\n  "text": "fibre down",\n  "label": "outage"\n}\n', encoding="utf-8")
    # When it is read
    records = list(read_records(data, "data file"))
    # Then it is one record, at the line where it starts, not each of its lines a malformed one
    assert records == [(2, {"text": "fibre down", "label": "outage"})]


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_a_one_column_csv_whose_quoted_name_holds_another_separator_is_read(tmp_path: Path, separator: str) -> None:
    # Given a one-column CSV whose column name, quoted, holds a semicolon, a tab or a bar
    data = tmp_path / "tickets.csv"
    data.write_text(f'"text{separator}notes"\nfibre down since 9am\n', encoding="utf-8")
    # When it is read, then the quoted name is one column, as any CSV reader has it
    assert list(read_records(data, "data file")) == [(2, {f"text{separator}notes": "fibre down since 9am"})]


def test_a_semicolon_csv_with_a_comma_in_a_column_name_is_the_same_clear_error(tmp_path: Path) -> None:
    # Given a "CSV" saved with semicolons whose second column name holds a comma
    data = tmp_path / "tickets.csv"
    data.write_text("customer_id;subject, short;description\nC1;no internet;fibre down\n", encoding="utf-8")
    # When it is read, then it is refused naming the separator, not read as two comma columns
    with pytest.raises(RecordFileError, match=re.escape("cells must be separated by commas, not ';'")):
        list(read_records(data, "data file"))


def test_a_comma_csv_with_a_semicolon_in_a_column_name_is_read(tmp_path: Path) -> None:
    # Given a comma CSV one of whose column names holds a semicolon
    data = tmp_path / "tickets.csv"
    data.write_text("customer_id,notes;internal,description\nC1,vip,fibre down\n", encoding="utf-8")
    # When it is read, then the commas separate the columns
    records = list(read_records(data, "data file"))
    assert records == [(2, {"customer_id": "C1", "notes;internal": "vip", "description": "fibre down"})]


@pytest.mark.parametrize("name", ["tickets.jsonl", "tickets.json", "tickets"])
def test_json_lines_whose_first_record_is_an_array_are_read_line_by_line(tmp_path: Path, name: str) -> None:
    # Given JSON Lines whose first line is an array, not an object
    data = tmp_path / name
    data.write_text('["my bill", "billing"]\n{"text": "second"}\n{"text": "third"}\n', encoding="utf-8")
    # When it is read, then each line is its own record, the array at its line, instead of one
    # "not valid JSON: Extra data" error for the whole file
    assert list(read_records(data, "data file")) == [
        (1, ["my bill", "billing"]),
        (2, {"text": "second"}),
        (3, {"text": "third"}),
    ]


def test_a_json_array_with_text_after_it_is_still_invalid_json(tmp_path: Path) -> None:
    # Given a JSON array written over several lines, with something after it
    data = tmp_path / "tickets.json"
    data.write_text('[\n  {"text": "first"}\n]\n{"text": "after"}\n', encoding="utf-8")
    # Then it is one clear error, as it cannot be read line by line either
    with pytest.raises(RecordFileError, match="not valid JSON: Extra data at line 4 column 1"):
        list(read_records(data, "data file"))


def test_a_comma_csv_whose_quoted_column_name_holds_several_bars_is_read(tmp_path: Path) -> None:
    # Given a comma CSV whose second column name, quoted, holds two bars (more cells, split at them)
    data = tmp_path / "tickets.csv"
    data.write_text('description,"category|queue|team"\nfibre down,Network Outage\n', encoding="utf-8")
    # When it is read, then the commas separate the columns and the quoted name is one of them
    records = list(read_records(data, "data file"))
    assert records == [(2, {"description": "fibre down", "category|queue|team": "Network Outage"})]


def test_a_single_record_holding_a_list_of_objects_beside_its_fields_is_still_one_record(tmp_path: Path) -> None:
    # Given one ticket with an extra column that holds objects (attachments)
    data = tmp_path / "ticket.json"
    record = {"customer_id": "C1", "description": "fibre down", "attachments": [{"name": "photo.jpg"}]}
    data.write_text(json.dumps(record), encoding="utf-8")
    # When it is read, then it is that one record, not taken for a wrapper of records
    assert list(read_records(data, "data file")) == [(1, record)]


def test_a_comma_csv_with_bars_in_an_unquoted_column_name_is_read(tmp_path: Path) -> None:
    # Given a comma CSV whose second column name, unquoted, holds two bars (three cells split at them)
    data = tmp_path / "tickets.csv"
    data.write_text("text,label|team|x\nfibre down,Network Outage\nbill too high,Billing\n", encoding="utf-8")
    # When it is read, then its rows, which the commas split as they split the header, are read by them
    assert list(read_records(data, "data file")) == [
        (2, {"text": "fibre down", "label|team|x": "Network Outage"}),
        (3, {"text": "bill too high", "label|team|x": "Billing"}),
    ]


def test_a_bar_csv_whose_rows_the_bars_split_as_the_header_is_still_refused(tmp_path: Path) -> None:
    # Given a bar-separated file with a comma in one column name and in one row's text
    data = tmp_path / "tickets.csv"
    data.write_text("text|label, team|x\nfibre down, again|outage|1\nslow|outage|2\n", encoding="utf-8")
    # When it is read, then it is refused naming the bar, which splits every row as it splits the header
    with pytest.raises(RecordFileError, match=re.escape("cells must be separated by commas, not '|'")):
        list(read_records(data, "data file"))
