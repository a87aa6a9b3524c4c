"""`route` given a taxonomy, label-team map, customers or services file it cannot use: a one-line
error naming the file and what is wrong with it, exit 2, nothing routed, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from handlers.cli import main

SAMPLES = Path(__file__).parents[2] / "adapters" / "local" / "sample_data"


@pytest.fixture(autouse=True)
def no_local_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the options a test gives choose the files: no ROUTER_* setting leaks in."""
    for name in ("ROUTER_TAXONOMY", "ROUTER_LABEL_TEAM_MAP", "ROUTER_CUSTOMERS_FILE", "ROUTER_SERVICES_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path / "home"))


def _bytes(name: str, content: bytes) -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content)
        return path

    return write


def _text(name: str, content: str) -> Callable[[Path], Path]:
    return _bytes(name, content.encode())


# A model's labels that a map sends to the taxonomy's teams, save the one a test breaks.
ALL_LABELS = {
    "Network Outage": "Network Operations",
    "Billing Dispute": "Billing Support",
    "Technical Problem": "Technical Support",
    "Account Access": "Account Management",
}

CASES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "taxonomy not UTF-8": (
        "--taxonomy",
        _bytes("taxonomy.toml", b"manual_review_threshold = 0.7\n# r\xe9seau\n"),
        "is not UTF-8 text (byte 33)",
    ),
    "taxonomy nested 100000 deep": (
        "--taxonomy",
        _text("taxonomy.toml", "a = " + "[" * 100_000),
        "is TOML nested too deeply to read",
    ),
    "label-team map a binary file": (
        "--label-team-map",
        _bytes("teams.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        "is not UTF-8 text (byte 0)",
    ),
    "label-team map row without a team": (
        "--label-team-map",
        _text("teams.csv", "label,team\nNetwork Outage,Network Operations\nBilling Dispute,\n"),
        "line 3 needs a label and a team as text, not 'Billing Dispute' -> ''",
    ),
    "label-team map row cut short": (
        "--label-team-map",
        _text("teams.csv", "label,team\nNetwork Outage\n"),
        "line 2 needs a label and a team as text, not 'Network Outage' -> None",
    ),
    "label-team map JSON team not text": (
        "--label-team-map",
        _text("teams.json", json.dumps({"Network Outage": ["Network Operations"]})),
        "label 'Network Outage' needs a label and a team as text",
    ),
    "label-team map cell over the csv field limit": (
        "--label-team-map",
        _text("teams.csv", "label,team\nNetwork Outage,Network Operations\n" + "x" * 200_000 + ",Billing Support\n"),
        "line 3: field larger than field limit",
    ),
    "label-team map JSON nested 100000 deep": (
        "--label-team-map",
        _text("teams.json", '{"Network Outage": ' + "[" * 100_000),
        "is JSON nested too deeply to read",
    ),
    "label-team map naming teams the taxonomy lacks": (
        "--label-team-map",
        _text("teams.json", json.dumps(ALL_LABELS | {"Billing Dispute": "Refunds", "Account Access": "Fraud"})),
        "names team(s) the taxonomy does not have: 'Fraud', 'Refunds'; the teams are 'Network Operations', "
        "'Billing Support', 'Technical Support', 'Account Management'",
    ),
    "label-team map leaving out a label of the model": (
        "--label-team-map",
        _text("teams.json", json.dumps({k: v for k, v in ALL_LABELS.items() if k != "Account Access"})),
        "does not map label(s) 'Account Access' of the classifier (the bundled telecom model); add them to the map,"
        " or check that the map and the model (--model-dir / ROUTER_MODEL_DIR) go together",
    ),
    "label-team map of another model's labels": (
        "--label-team-map",
        _text("teams.csv", "label,team\nrefund,Billing Support\nno_signal,Network Operations\n"),
        "does not map label(s) 'Account Access', 'Billing Dispute', 'Network Outage', 'Technical Problem' of the"
        " classifier (the bundled telecom model)",
    ),
    "customers nested 100000 deep": (
        "--customers",
        _text("customers.json", "[" * 100_000),
        "is JSON nested too deeply to read",
    ),
    "services nested 100000 deep": (
        "--services",
        _text("services.json", '{"outages": ' + "[" * 100_000),
        "is JSON nested too deeply to read",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unusable_configuration_file_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    # Given the sample tickets and one configuration file that cannot be used
    option, write, reason = CASES[case]
    path = write(tmp_path)
    output = tmp_path / "decisions.jsonl"
    # When they are routed with it
    code = main(["route", str(SAMPLES / "tickets.jsonl"), option, str(path), "--output", str(output)])
    # Then one line on stderr names the file and says what is wrong, with exit code 2
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ticket-router: error: ")
    assert str(path) in err
    assert reason in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    # And nothing was routed
    assert not output.exists()


def test_a_label_team_map_onto_the_taxonomys_teams_routes_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a map, as CSV with padded cells, sending every label of the bundled model to its usual
    # team but Billing Dispute to Account Management
    team_map = tmp_path / "teams.csv"
    rows = {**ALL_LABELS, "Billing Dispute": "Account Management"}
    team_map.write_text("label,team\n" + "".join(f" {label} , {team} \n" for label, team in rows.items()))
    output = tmp_path / "decisions.jsonl"
    # When the sample tickets are routed with it
    code = main(["route", str(SAMPLES / "tickets.jsonl"), "--label-team-map", str(team_map), "--output", str(output)])
    # Then billing disputes go where the map says
    assert code == 0, capsys.readouterr().err
    decisions = [json.loads(line) for line in output.read_text().splitlines()]
    disputes = [d for d in decisions if d["issue_classification"]["primary_category"] == "Billing Dispute"]
    assert disputes
    assert {d["assigned_team"] for d in disputes if not d["requires_manual_review"]} <= {"Account Management"}
