"""`ticket-router route` end to end on files, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.cli import EXIT_BROKEN_PIPE, main

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "adapters" / "local" / "sample_data"
NOW = "2026-11-24T12:00:00Z"


def route(tmp_path: Path, *args: str) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    output = tmp_path / "decisions.jsonl"
    code = main(["route", *args, "--now", NOW, "--output", str(output), "--outbox", str(tmp_path / "outbox.jsonl")])
    decisions = [json.loads(line) for line in output.read_text().splitlines()] if output.exists() else []
    return code, decisions


def test_samples_route_end_to_end_and_sync_to_the_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, decisions = route(tmp_path, str(SAMPLES / "tickets.jsonl"))
    out = capsys.readouterr().out
    assert code == 0
    assert len(decisions) == 24
    assert {d["sync_status"] for d in decisions} == {"success"}
    outbox = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert sorted(e["ticket_id"] for e in outbox) == sorted(d["ticket_id"] for d in decisions)
    assert "Routed 24 ticket(s)" in out
    assert "Manual review:" in out and "Teams:" in out


def test_sample_decisions_follow_the_priority_rules(tmp_path: Path) -> None:
    _, decisions = route(tmp_path, str(SAMPLES / "tickets.jsonl"))
    by_id = {d["ticket_id"]: d for d in decisions}
    # VIP enterprise, fibre outage on their own service SVC001: P0
    assert (by_id["T-0001"]["assigned_team"], by_id["T-0001"]["priority_level"]) == ("Network Operations", "P0")
    # Consumer, Network Outage naming SVC004 with an active outage: score 50 raised to P1
    assert by_id["T-0002"]["priority"]["score"] == 50
    assert by_id["T-0002"]["priority_level"] == "P1"
    # Stale (> 48 h) billing dispute of a business customer: 10 + 10 + 20 = 40 -> P2
    assert by_id["T-0007"]["priority"]["factors"] == {"customer": 10, "severity": 10, "age": 20, "service_impact": 10}


def test_csv_and_json_array_inputs_are_read(tmp_path: Path) -> None:
    csv_file = tmp_path / "t.csv"
    csv_file.write_text(
        "ticket_id,customer_id,subject,description,expected_team\n"
        "C1,CUST-1006,Refund,I was charged twice for October please refund,Billing Support\n"
        'C2,CUST-1005,"Login, again","I can\'t log in to the app, password reset never arrives",Account Management\n'
    )
    code, decisions = route(tmp_path, str(csv_file))
    assert code == 0
    assert [d["assigned_team"] for d in decisions] == ["Billing Support", "Account Management"]

    json_file = tmp_path / "t.json"
    json_file.write_text(
        json.dumps([{"ticket_id": "J1", "customer_id": "X", "description": "no signal in the whole town"}])
    )
    code, decisions = route(tmp_path, str(json_file))
    assert code == 0 and decisions[0]["assigned_team"] == "Network Operations"


def test_bad_rows_are_named_and_good_rows_still_routed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a JSONL file with a missing field, empty text, a malformed line and two good rows
    tickets = tmp_path / "mixed.jsonl"
    tickets.write_text(
        '{"ticket_id": "G1", "customer_id": "C", "description": "charged twice, want a refund"}\n'
        '{"ticket_id": "B1", "description": "no customer here"}\n'
        '{"ticket_id": "B2", "customer_id": "C", "description": "   "}\n'
        '{"ticket_id": "B3", "customer_id": \n'
        '{"ticket_id": "B4", "customer_id": "C", "description": "x", "timestamp": "yesterday"}\n'
        '{"ticket_id": "G2", "customer_id": "C", "description": "cannot log in, account locked"}\n'
    )
    # When it is routed
    code, decisions = route(tmp_path, str(tickets))
    err = capsys.readouterr().err
    # Then the run fails, each bad row is named with its field, and the good rows are stored
    assert code == 1
    assert [d["ticket_id"] for d in decisions] == ["G1", "G2"]
    assert "row 2: customer_id: is required" in err
    assert "row 3: description: must not be empty" in err
    assert "row 4: (record): malformed JSON" in err
    assert "row 5: timestamp:" in err
    assert "Traceback" not in err


def test_malformed_csv_row_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("customer_id,description\nC1,router broken\nC2,too,many,cells\n")
    code, decisions = route(tmp_path, str(csv_file))
    assert code == 1 and len(decisions) == 1
    assert "row 3: (record):" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("[{", "not valid JSON"),
    ],
)
def test_unreadable_files_give_one_clear_error(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.json"
    path.write_text(content)
    code, _ = route(tmp_path, str(path))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_missing_file_and_bad_customer_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert route(tmp_path, str(tmp_path / "nope.jsonl"))[0] == 2
    bad_customers = tmp_path / "customers.json"
    bad_customers.write_text('[{"customer_id": "C", "account_type": "Platinum"}]')
    assert route(tmp_path, str(SAMPLES / "tickets.jsonl"), "--customers", str(bad_customers))[0] == 2
    err = capsys.readouterr().err
    assert "ticket file not found" in err
    assert "account_type" in err


def test_now_must_be_iso8601(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["route", str(SAMPLES / "tickets.jsonl"), "--now", "tomorrow"])
    assert exc.value.code == 2
    assert "not an ISO 8601 date-time" in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly_with_the_work_kept(tmp_path: Path) -> None:
    # Given `ticket-router route ... | head` whose reader has already gone
    output = tmp_path / "decisions.jsonl"
    command = [sys.executable, "-m", "handlers.cli", "route", str(SAMPLES / "tickets.jsonl"), "--now", NOW]
    command += ["--output", str(output), "--outbox", str(tmp_path / "outbox.jsonl")]
    reader, writer = os.pipe()
    os.close(reader)
    try:
        # When the command prints its table into the closed pipe
        result = subprocess.run(command, cwd=ROOT, stdout=writer, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writer)
    # Then it exits as a SIGPIPE'd tool does, with no traceback, and every decision is written
    assert result.returncode == EXIT_BROKEN_PIPE, result.stderr
    assert "Traceback" not in result.stderr
    assert len(output.read_text().splitlines()) == 24
