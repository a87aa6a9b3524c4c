"""A label-team map as spreadsheets and editors save it is read; an ambiguous one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from handlers.label_team_map import read_label_team_map

EXPECTED = {"refund": "Billing Support", "no_signal": "Network Operations"}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            b"\xef\xbb\xbflabel,team\r\nrefund,Billing Support\r\nno_signal,Network Operations\r\n", id="excel-bom"
        ),
        pytest.param(b'\xef\xbb\xbf{"refund": "Billing Support", "no_signal": "Network Operations"}', id="json-bom"),
        pytest.param(
            b"Label , Team ,note\nrefund,Billing Support,x\n  \n\nno_signal,Network Operations,\n   \n", id="loose"
        ),
        pytest.param(
            b"label,team\nrefund,Billing Support\nrefund, Billing Support \nno_signal,Network Operations\n", id="repeat"
        ),
    ],
)
def test_a_map_saved_by_a_spreadsheet_or_editor_is_read(tmp_path: Path, content: bytes) -> None:
    # Given a map with a byte-order mark, CRLF, a padded or capitalised header, an extra column,
    # blank lines, or a label repeated with the same team
    path = tmp_path / "map.csv"
    path.write_bytes(content)
    # When it is read, then it maps each label to its team
    assert read_label_team_map(path) == EXPECTED


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("map.csv", "label,team\nrefund,Billing Support\nrefund,Network Operations\n", "line 3"),
        ("map.json", '{"refund": "Billing Support", "refund": "Network Operations"}', "label 'refund'"),
    ],
)
def test_a_label_sent_to_two_teams_is_refused_naming_both(tmp_path: Path, name: str, content: str, where: str) -> None:
    # Given a map that sends one label to two different teams
    path = tmp_path / name
    path.write_text(content)
    # When it is read, then it is refused rather than the later line winning unseen
    with pytest.raises(ConfigurationError) as refused:
        read_label_team_map(path)
    assert str(refused.value) == (
        f"label-team map {path}: {where} sends 'refund' to 'Network Operations', "
        "but an earlier entry sends it to 'Billing Support'"
    )


def test_a_csv_map_without_its_header_line_is_refused_saying_the_header_is_missing(tmp_path: Path) -> None:
    # Given a map written as label,team rows with no header line
    path = tmp_path / "map.csv"
    path.write_text("refund,Billing Support\nno_signal,Network Operations\n")
    # When it is read, then the error says which line it expected first, and what it found there
    with pytest.raises(ConfigurationError) as refused:
        read_label_team_map(path)
    assert str(refused.value) == (
        f"label-team map {path} must be a JSON object or a CSV with label,team: "
        "its first line must be the header label,team, not 'refund,Billing Support'"
    )
