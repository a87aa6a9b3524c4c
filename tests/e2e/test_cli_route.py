"""`ticket-router route` end to end on files, as a user runs it."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.local.outbox import JsonlOutbox
from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.models import Feedback, RoutingDecision, SyncStatus
from handlers.bootstrap import LocalApp
from handlers.cli import EXIT_BROKEN_PIPE, main
from tests.builders import ModelDown
from tests.integration.test_sqlite_repository import damage

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


def test_a_timestamp_no_ticket_can_have_is_a_row_error_and_the_rest_is_routed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an export whose timestamps include an epoch zero, a count, and times after --now
    tickets = tmp_path / "export.jsonl"
    tickets.write_text(
        '{"ticket_id": "G1", "customer_id": "C", "description": "charged twice", "timestamp": "2026-11-21T12:00:00Z"}\n'
        '{"ticket_id": "B1", "customer_id": "C", "description": "charged twice", "timestamp": 0}\n'
        '{"ticket_id": "B2", "customer_id": "C", "description": "charged twice", "timestamp": 12345}\n'
        '{"ticket_id": "B3", "customer_id": "C", "description": "charged twice", "timestamp": "2099-01-01"}\n'
        '{"ticket_id": "B4", "customer_id": "C", "description": "charged twice", "timestamp": "2026-11-24T12:10:00Z"}\n'
        '{"ticket_id": "G2", "customer_id": "C", "description": "charged twice", "timestamp": "2026-11-24T12:04:00Z"}\n'
    )
    # When it is routed at --now
    code, decisions = route(tmp_path, str(tickets))
    err = capsys.readouterr().err
    # Then each bogus timestamp is a row error naming it, none is routed at a made-up age, and the
    # good rows (one from a clock a few minutes ahead) are routed
    assert code == 1
    assert [d["ticket_id"] for d in decisions] == ["G1", "G2"]
    for row in (2, 3):
        assert f"row {row}: timestamp: is before 2000-01-01" in err
    for row in (4, 5):
        assert f"row {row}: timestamp: is after" in err
    assert "Traceback" not in err


def test_a_spreadsheet_header_spelling_names_the_same_fields(tmp_path: Path) -> None:
    # Given a CSV exported from a helpdesk, its column names capitalised and spaced
    tickets = tmp_path / "export.csv"
    tickets.write_text(
        "Ticket ID,Customer ID,Subject,Description,Timestamp\n"
        "HD-1,CUST-1001,Bill,charged twice for the same month,2026-11-21T12:00:00Z\n"
    )
    # When it is routed
    code, [decision] = route(tmp_path, str(tickets))
    # Then each column is read as its field: none is dropped, nor the row refused for lacking it
    assert code == 0
    assert decision["ticket_id"] == "HD-1"
    assert decision["customer_id"] == "CUST-1001"
    assert decision["subject"] == "Bill"
    assert decision["priority"]["factors"]["age"] == 20


def test_a_field_given_under_two_spellings_is_a_row_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a row that names its subject twice, in two spellings
    tickets = tmp_path / "twice.csv"
    tickets.write_text("subject,Subject,customer_id,description\na,b,C,internet down\n")
    # When it is routed
    code, decisions = route(tmp_path, str(tickets))
    # Then the row is refused naming both, rather than one of them chosen silently
    assert code == 2
    assert decisions == []
    assert "row 2: subject: given twice, as 'subject' and 'Subject'" in capsys.readouterr().err


def test_a_repeated_ticket_id_is_skipped_when_the_ticket_is_the_same_and_refused_when_it_is_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file that repeats one ticket as it was, and reuses an id for another customer's ticket
    tickets = tmp_path / "repeats.jsonl"
    tickets.write_text(
        '{"ticket_id": "R1", "customer_id": "C1", "description": "fibre down at HQ"}\n'
        '{"ticket_id": "R1", "customer_id": "C1", "description": "fibre down at HQ"}\n'
        '{"ticket_id": "R1", "customer_id": "C2", "description": "charged twice, want a refund"}\n'
    )
    # When it is routed
    code, decisions = route(tmp_path, str(tickets))
    captured = capsys.readouterr()
    # Then the repeat is skipped, but the other ticket is a row error, not silently dropped
    assert code == 1
    assert [(d["ticket_id"], d["customer_id"]) for d in decisions] == [("R1", "C1")]
    assert "Skipped 1 repeated ticket_id(s) at row(s) 2." in captured.out
    assert "row 3: ticket_id: R1 is used by row 1 for another customer_id, subject or description" in captured.err


def test_a_ticket_id_already_routed_in_the_db_for_another_ticket_is_a_row_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a store where R1 was routed for one customer
    db = tmp_path / "decisions.db"
    first = tmp_path / "first.jsonl"
    first.write_text('{"ticket_id": "R1", "customer_id": "C1", "description": "fibre down at HQ"}\n')
    assert route(tmp_path, str(first), "--db", str(db))[0] == 0
    # When a later file brings the same ticket again and another ticket under that id
    later = tmp_path / "later.jsonl"
    later.write_text(
        '{"ticket_id": "R1", "customer_id": "C1", "description": "fibre down at HQ"}\n'
        '{"ticket_id": "R2", "customer_id": "C2", "description": "cannot log in, account locked"}\n'
    )
    again = tmp_path / "again.jsonl"
    again.write_text('{"ticket_id": "R1", "customer_id": "C2", "description": "charged twice, want a refund"}\n')
    capsys.readouterr()
    code_same, decisions_same = route(tmp_path, str(later), "--db", str(db))
    code_other, decisions_other = route(tmp_path, str(again), "--db", str(db))
    err = capsys.readouterr().err
    # Then the same ticket gets its stored decision back, and the other one is refused by row, not
    # answered with the first ticket's decision
    assert code_same == 0
    assert [(d["ticket_id"], d["customer_id"]) for d in decisions_same] == [("R1", "C1"), ("R2", "C2")]
    assert code_other == 1
    assert decisions_other == []
    assert f"row 1: ticket_id: R1 was routed before in {db} for another customer_id" in err
    assert {(d.ticket_id, d.customer_id) for d in stored(db)} == {("R1", "C1"), ("R2", "C2")}


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


def three_tickets(tmp_path: Path) -> Path:
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(SAMPLES.joinpath("tickets.jsonl").read_text().splitlines(keepends=True)[:3]))
    return tickets


def stored(db: Path) -> list[RoutingDecision]:
    store = SqliteDecisionRepository(db, create=False)
    try:
        return store.all()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("target", "options"),
    [
        pytest.param("db", ["--output", "{db}"], id="output-is-the-db"),
        pytest.param("input", ["--output", "{input}"], id="output-is-the-input"),
        pytest.param("input", ["--outbox", "{input}"], id="outbox-is-the-input"),
        pytest.param("db", ["--outbox", "{db}"], id="outbox-is-the-db"),
    ],
)
def test_an_output_naming_the_input_or_the_store_is_refused_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, options: list[str]
) -> None:
    # Given a ticket file and a decision store from an earlier run
    tickets = three_tickets(tmp_path)
    db = tmp_path / "decisions.db"
    assert main(["route", str(tickets), "--db", str(db), "--outbox", str(tmp_path / "o.jsonl"), "--quiet"]) == 0
    capsys.readouterr()
    protected = db if target == "db" else tickets
    before = protected.read_bytes()
    # When an output option names one of them (through a different spelling of the path)
    aliases = {"db": str(tmp_path / "." / db.name), "input": str(tmp_path / "sub" / ".." / tickets.name)}
    (tmp_path / "sub").mkdir()
    argv = ["route", str(tickets), "--db", str(db), "--quiet", "--now", NOW]
    argv += [o.format(**aliases) for o in options]
    if "--outbox" not in options:
        argv += ["--outbox", str(tmp_path / "o.jsonl")]
    code = main(argv)
    # Then the command refuses in one line and the file is as it was
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ticket-router: error: ") and err.count("\n") == 1
    assert "same file" in err
    assert protected.read_bytes() == before


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(["--outbox", "{taxonomy}"], "--outbox {taxonomy} is the same file as --taxonomy", id="taxonomy"),
        pytest.param(
            ["--output", "{label_map}"], "--output {label_map} is the same file as --label-team-map", id="label-map"
        ),
        pytest.param(
            ["--output", "{metadata}"],
            "--output {metadata} is the same file as the model's metadata.json in {model}",
            id="model-file",
        ),
    ],
)
def test_an_output_naming_a_file_routing_reads_is_refused_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: list[str], expected: str
) -> None:
    # Given a taxonomy, a label-team map and a trained model of the user's own
    paths = {
        "taxonomy": tmp_path / "taxonomy.toml",
        "label_map": tmp_path / "labels.json",
        "model": tmp_path / "model",
        "metadata": tmp_path / "model" / "metadata.json",
    }
    shutil.copy(ROOT / "domain" / "taxonomy.toml", paths["taxonomy"])
    shutil.copytree(ROOT / "adapters" / "classifier" / "default_model", paths["model"])
    labels = {name: name for name in json.loads((paths["metadata"]).read_text())["labels"]}
    paths["label_map"].write_text(json.dumps(labels))
    before = {name: path.read_bytes() for name, path in paths.items() if path.is_file()}
    # When an output of route names one of them
    argv = ["route", str(three_tickets(tmp_path)), "--quiet", "--outbox", str(tmp_path / "o.jsonl")]
    argv += ["--taxonomy", str(paths["taxonomy"]), "--model-dir", str(paths["model"])]
    argv += ["--label-team-map", str(paths["label_map"])]
    argv += [o.format(**paths) for o in output]
    code = main(argv)
    # Then the command refuses in one line, naming both, and every file is as it was
    assert (code, capsys.readouterr().err) == (
        2,
        f"ticket-router: error: {expected.format(**paths)}; refusing to write to it\n",
    )
    assert {name: path.read_bytes() for name, path in paths.items() if path.is_file()} == before


@pytest.mark.parametrize(
    ("option", "make_path"),
    [
        pytest.param("--output", lambda tmp: _mkdir(tmp / "a-dir"), id="output-is-a-directory"),
        pytest.param("--output", lambda tmp: _touch(tmp / "a-file") / "x.jsonl", id="output-under-a-file"),
        pytest.param("--outbox", lambda tmp: _mkdir(tmp / "a-dir"), id="outbox-is-a-directory"),
        pytest.param("--outbox", lambda tmp: _touch(tmp / "a-file") / "x.jsonl", id="outbox-under-a-file"),
    ],
)
def test_an_unwritable_output_fails_before_any_ticket_is_routed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, make_path: Any
) -> None:
    # Given an output path that cannot be written
    path = make_path(tmp_path)
    db = tmp_path / "decisions.db"
    argv = ["route", str(three_tickets(tmp_path)), "--db", str(db), "--now", NOW, option, str(path)]
    if option != "--outbox":
        argv += ["--outbox", str(tmp_path / "outbox.jsonl")]
    # When the tickets are routed
    code = main(argv)
    # Then it fails in one line naming the path, before any decision is stored
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"ticket-router: error: cannot write {option} {path}: ")
    assert err.count("\n") == 1
    assert not db.exists()


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _touch(path: Path) -> Path:
    path.touch()
    return path


def test_a_failed_outbox_write_leaves_the_decisions_failed_for_dlq_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an outbox that becomes unwritable once routing has started (the disk fills up)
    def disk_full(self: JsonlOutbox, key: str, line: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(JsonlOutbox, "_append", disk_full)
    db, outbox = tmp_path / "decisions.db", tmp_path / "outbox.jsonl"
    # When three tickets are routed into a kept store
    code = main(["route", str(three_tickets(tmp_path)), "--db", str(db), "--outbox", str(outbox), "--now", NOW])
    err = capsys.readouterr().err
    # Then the run fails in one line, with every decision stored as a failed sync, not a pending one
    assert code == 1
    assert "Traceback" not in err and err.count("\n") == 1
    assert "3 decision(s) not pushed to the ticketing system" in err and "No space left on device" in err
    assert [d.sync_status for d in stored(db)] == [SyncStatus.FAILED] * 3
    # And once there is room again, `dlq replay` pushes all three
    monkeypatch.undo()
    monkeypatch.setenv("ROUTER_DB", str(db))
    monkeypatch.setenv("ROUTER_OUTBOX", str(outbox))
    assert main(["dlq", "replay"]) == 0
    assert json.loads(capsys.readouterr().out)["succeeded"] == 3
    assert [d.sync_status for d in stored(db)] == [SyncStatus.SUCCESS] * 3


def test_oversized_csv_fields_and_deeply_nested_json_are_row_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a CSV with a 200 KB cell and a JSONL file with a row nested 5000 deep, between good rows
    big = tmp_path / "big.csv"
    big.write_text(
        "ticket_id,customer_id,description\n"
        "A1,C1,internet down in my whole street\n"
        f"A2,C2,{'x' * 200_000}\n"
        "A3,C3,I was charged twice please refund\n"
    )
    deep = tmp_path / "deep.jsonl"
    nested = "[" * 5000 + "]" * 5000
    deep.write_text(
        '{"ticket_id": "D1", "customer_id": "C", "description": "internet down in my whole street"}\n'
        f'{{"ticket_id": "D2", "customer_id": "C", "description": "x", "notes": {nested}}}\n'
        '{"ticket_id": "D3", "customer_id": "C", "description": "I was charged twice please refund"}\n'
    )
    for path, good, bad_row, message in [
        # The cell is read whole and judged by the ticket's own limit, which names the field.
        (big, ["A1", "A3"], 3, "description: String should have at most 20000 characters"),
        (deep, ["D1", "D3"], 2, "(record): JSON nested too deeply to read"),
    ]:
        # When each is routed
        code, decisions = route(tmp_path, str(path))
        err = capsys.readouterr().err
        # Then the bad row is named and the rows around it are routed
        assert code == 1
        assert [d["ticket_id"] for d in decisions] == good
        assert f"row {bad_row}: {message}" in err
        assert "Traceback" not in err


def test_a_json_array_nested_too_deeply_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    path.write_text("[" + "[" * 5000 + "]" * 5000 + "]")
    code, _ = route(tmp_path, str(path))
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"ticket-router: error: {path}: JSON nested too deeply to read\n"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        pytest.param("header.csv", "ticket_id,customer_id,description\n", "it holds no rows", id="header-only"),
        pytest.param("bad.jsonl", '{"ticket_id": "B1"}\n{"ticket_id": "B2"}\n', "all 2 row(s)", id="all-rejected"),
    ],
)
def test_a_file_with_no_readable_ticket_fails_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, reason: str
) -> None:
    # Given a file in which no row is a ticket
    path = tmp_path / name
    path.write_text(content)
    # When it is routed
    code = main(["route", str(path), "--db", str(tmp_path / "d.db"), "--output", str(tmp_path / "out.jsonl")])
    # Then the run fails saying so, and neither a store nor an output is left behind
    err = capsys.readouterr().err
    assert code == 2
    assert f"ticket-router: error: {path}: no ticket could be read: {reason}" in err
    assert not (tmp_path / "d.db").exists() and not (tmp_path / "out.jsonl").exists()


def test_a_customers_path_that_is_a_directory_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the customers file given is a directory
    code, _ = route(tmp_path, str(three_tickets(tmp_path)), "--customers", str(tmp_path))
    # Then the error names the path and the reason, in one line
    assert code == 2
    assert capsys.readouterr().err == f"ticket-router: error: {tmp_path}: Is a directory\n"


def test_tickets_that_fail_to_route_are_kept_in_the_store_for_dlq_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that is down for this run
    monkeypatch.setattr("handlers.bootstrap.build_engine", lambda *args, **kwargs: ModelDown())
    db = tmp_path / "decisions.db"
    # When the samples are routed into a store
    code, decisions = route(tmp_path, str(SAMPLES / "tickets.jsonl"), "--db", str(db))
    err = capsys.readouterr().err
    # Then the run fails, says so and how to recover
    assert (code, decisions) == (1, [])
    assert f"24 ticket(s) could not be routed; `ROUTER_DB={db} ticket-router dlq replay` routes the 24 kept" in err
    # And every ticket is kept in the store, ready to be routed again
    store = SqliteDecisionRepository(db, create=False)
    assert len(store.parked(limit=100)) == 24
    store.close()


def test_kept_tickets_routed_by_a_later_run_are_no_longer_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three tickets kept in the store by a run whose model was down
    db = tmp_path / "decisions.db"
    tickets = str(three_tickets(tmp_path))
    with monkeypatch.context() as down:
        down.setattr("handlers.bootstrap.build_engine", lambda *args, **kwargs: ModelDown())
        assert route(tmp_path, tickets, "--db", str(db))[0] == 1
    # When the same file is routed again with the model back
    code, decisions = route(tmp_path, tickets, "--db", str(db))
    capsys.readouterr()
    # Then they are routed, and no longer wait to be routed by `dlq replay` (nor are counted by it)
    assert (code, len(decisions)) == (0, 3)
    store = SqliteDecisionRepository(db, create=False)
    assert store.parked_count() == 0
    store.close()


def test_another_ticket_under_the_id_of_a_kept_ticket_is_refused_and_the_kept_one_still_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given ticket K1 kept in the store by a run whose model was down
    db = tmp_path / "decisions.db"
    first = tmp_path / "first.jsonl"
    first.write_text('{"ticket_id": "K1", "customer_id": "C1", "description": "fibre down at HQ"}\n')
    with monkeypatch.context() as down:
        down.setattr("handlers.bootstrap.build_engine", lambda *args, **kwargs: ModelDown())
        assert route(tmp_path, str(first), "--db", str(db))[0] == 1
    # When, the model back, a file brings another ticket under K1
    other = tmp_path / "other.jsonl"
    other.write_text('{"ticket_id": "K1", "customer_id": "C2", "description": "charged twice, want a refund"}\n')
    capsys.readouterr()
    code, decisions = route(tmp_path, str(other), "--db", str(db))
    err = capsys.readouterr().err
    # Then it is refused by row, naming the id
    assert (code, decisions) == (1, [])
    assert f"row 1: ticket_id: K1 waits in it to be routed (kept after a failed routing) in {db}" in err
    # And the kept ticket is the one `dlq replay` routes, not one found already routed and dropped
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    monkeypatch.setenv("ROUTER_DB", str(db))
    assert main(["dlq", "replay"]) == 0
    store = SqliteDecisionRepository(db, create=False)
    decision = store.get("K1")
    assert decision is not None and decision.customer_id == "C1"
    assert store.parked_count() == 0
    store.close()


def test_decisions_written_to_a_named_pipe_reach_the_reader_waiting_on_it(tmp_path: Path) -> None:
    # Given a named pipe with a reader that reads it to its end, as `cat pipe` does
    pipe = tmp_path / "decisions.pipe"
    os.mkfifo(pipe)
    reader = subprocess.Popen(["cat", str(pipe)], stdout=subprocess.PIPE)
    # When route writes its decisions there
    argv = ["route", str(three_tickets(tmp_path)), "--quiet", "--output", str(pipe)]
    argv += ["--outbox", str(tmp_path / "o.jsonl")]
    # (bounded, so that a regression fails instead of hanging the suite)
    routed = subprocess.run(
        [sys.executable, "-m", "handlers.cli", *argv], check=False, cwd=ROOT, capture_output=True, timeout=120
    )
    # Then the reader gets every decision: an up-front probe no longer ends it before they are written
    received = reader.communicate(timeout=60)[0].decode().splitlines()
    assert routed.returncode == 0, routed.stderr
    assert [json.loads(line)["ticket_id"] for line in received] == ["T-0001", "T-0002", "T-0003"]


def test_decisions_sent_to_dev_stdout_are_appended_to_the_file_stdout_appends_to(tmp_path: Path) -> None:
    # Given a log that stdout appends to (`route ... --output /dev/stdout >> run.log`)
    log = tmp_path / "run.log"
    log.write_text("earlier run\n")
    argv = ["route", str(three_tickets(tmp_path)), "--quiet", "--output", "/dev/stdout"]
    argv += ["--outbox", str(tmp_path / "o.jsonl")]
    # When route writes its decisions there
    with log.open("a") as stdout:
        routed = subprocess.run(
            [sys.executable, "-m", "handlers.cli", *argv], check=False, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE
        )
    # Then the log keeps what it held, followed by the decisions (and the summary)
    assert routed.returncode == 0, routed.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier run"
    assert [json.loads(line)["ticket_id"] for line in lines if line.startswith("{")] == ["T-0001", "T-0002", "T-0003"]


def test_decisions_sent_to_dev_stdout_reach_a_pipe(tmp_path: Path) -> None:
    # When route writes its decisions to /dev/stdout, and stdout is a pipe (`... | jq`)
    argv = ["route", str(three_tickets(tmp_path)), "--quiet", "--output", "/dev/stdout"]
    argv += ["--outbox", str(tmp_path / "o.jsonl")]
    routed = subprocess.run([sys.executable, "-m", "handlers.cli", *argv], check=False, cwd=ROOT, capture_output=True)
    # Then the reader gets them
    assert routed.returncode == 0, routed.stderr
    decisions = [json.loads(line) for line in routed.stdout.decode().splitlines() if line.startswith("{")]
    assert [d["ticket_id"] for d in decisions] == ["T-0001", "T-0002", "T-0003"]


def test_an_output_in_a_folder_that_takes_no_new_file_is_refused_before_routing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an existing, writable output file in a folder where no file can be created (chattr +i:
    # what a read-only folder is to a user who is not root)
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "decisions.jsonl").write_text("previous\n")
    if subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable attribute")
    try:
        db = tmp_path / "d.db"
        # When route is asked to write there
        argv = ["route", str(three_tickets(tmp_path)), "--quiet", "--db", str(db)]
        code = main([*argv, "--outbox", str(tmp_path / "o.jsonl"), "--output", str(folder / "decisions.jsonl")])
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    # Then it refuses up front, naming the option, before any ticket is routed or pushed
    assert code == 2
    assert "cannot write --output" in capsys.readouterr().err
    assert not db.exists() and not (tmp_path / "o.jsonl").exists()
    assert (folder / "decisions.jsonl").read_text() == "previous\n"


def test_an_output_of_dash_is_standard_output_not_a_file_named_dash(tmp_path: Path) -> None:
    # When route is told to write its decisions to "-", in a directory of its own
    argv = ["route", str(three_tickets(tmp_path)), "--quiet", "--output", "-", "--outbox", str(tmp_path / "o.jsonl")]
    work = tmp_path / "work"
    work.mkdir()
    routed = subprocess.run(
        [sys.executable, "-m", "handlers.cli", *argv],
        check=False,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
    )
    # Then the decisions come out on stdout, and no file "-" appears
    assert routed.returncode == 0, routed.stderr
    decisions = [json.loads(line) for line in routed.stdout.decode().splitlines() if line.startswith("{")]
    assert [d["ticket_id"] for d in decisions] == ["T-0001", "T-0002", "T-0003"]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["route", "{tickets}", "--output", "-", "--outbox", "{tmp}/o.jsonl"],
        ["feedback", "export", "--db", "{db}", "--output", "-", "--all"],
        [
            "evaluate",
            "--data",
            "{labelled}",
            "--subject-column",
            "subject",
            "--body-column",
            "description",
            "--label-column",
            "category",
            "--report",
            "-",
        ],
    ],
    ids=["route", "feedback-export", "evaluate-report"],
)
def test_an_output_of_dash_redirected_to_a_file_is_whole_and_alone_there(tmp_path: Path, argv: list[str]) -> None:
    # Given tickets, a store with a correction, and labelled data
    tickets = three_tickets(tmp_path)
    db = tmp_path / "d.db"
    assert main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(tmp_path / "x.jsonl")]) == 0
    assert main(["feedback", "export", "--db", str(db), "--output", str(tmp_path / "none.csv")]) == 0
    store = SqliteDecisionRepository(db, create=False)
    store.record(Feedback(ticket_id="T-0001", correct_team="Billing Support", recorded_at=datetime.now(UTC)))
    store.close()
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(
        "".join(
            json.dumps(
                {"subject": "Refund", "description": "I was charged twice, refund me", "category": "Billing Dispute"}
            )
            + "\n"
            for _ in range(3)
        )
    )
    values = {"tickets": tickets, "tmp": tmp_path, "db": db, "labelled": labelled}
    # When the command writes its output to "-", with stdout sent to a file (`> out`)
    out = tmp_path / "out"
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "handlers.cli", *(a.format(**values) for a in argv)],
            check=False,
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
    # Then the file holds that output whole, and nothing else (what is said about it went to stderr)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    if argv[0] == "route":
        assert [json.loads(line)["ticket_id"] for line in text.splitlines()] == ["T-0001", "T-0002", "T-0003"]
    elif argv[0] == "feedback":
        assert text.splitlines()[0].startswith("ticket_id,") and len(text.splitlines()) == 2
        assert "Wrote 1 correction(s) to standard output" in done.stderr
        assert "--data /dev/stdout" not in done.stderr
    else:
        assert text.lstrip().lower().startswith("<!doctype html>") and text.rstrip().endswith("</html>")
        assert "Report written to standard output" in done.stderr


@pytest.mark.parametrize("target", ["/dev/stderr", "link-to-stdout"])
def test_stdout_reached_by_another_name_keeps_what_the_file_held_and_every_decision(
    tmp_path: Path, target: str
) -> None:
    # Given a log that stdout and stderr append to, and an output naming it another way than "-"
    log = tmp_path / "run.log"
    log.write_text("earlier run\n")
    if target == "link-to-stdout":
        (tmp_path / target).symlink_to("/dev/stdout")
        target = str(tmp_path / target)
    argv = ["route", str(three_tickets(tmp_path)), "--output", target, "--outbox", str(tmp_path / "o.jsonl")]
    # When route writes its decisions there (`>> run.log 2>&1`)
    with log.open("a") as stdout:
        routed = subprocess.run(
            [sys.executable, "-m", "handlers.cli", *argv], check=False, cwd=ROOT, stdout=stdout, stderr=stdout
        )
    # Then the log keeps what it held, and every decision is there whole
    assert routed.returncode == 0, log.read_text()
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier run"
    assert [json.loads(line)["ticket_id"] for line in lines if line.startswith("{")] == ["T-0001", "T-0002", "T-0003"]


def test_an_output_to_a_closed_stdout_is_refused_before_anything_is_routed(tmp_path: Path) -> None:
    # Given stdout closed (`>&-`), so that its descriptor may be reused for the decision store
    db = tmp_path / "d.db"
    argv = [
        "route",
        str(three_tickets(tmp_path)),
        "--output",
        "-",
        "--db",
        str(db),
        "--outbox",
        str(tmp_path / "o.jsonl"),
    ]
    # When route is told to write its decisions there
    routed = subprocess.run(
        [sys.executable, "-m", "handlers.cli", *argv],
        check=False,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),  # the child starts with stdout closed, as after `>&-`
    )
    # Then it refuses up front, and no decision is stored, let alone written into the store's file
    assert routed.returncode == 2, routed.stderr
    assert "standard output is closed" in routed.stderr
    assert not db.exists()


@pytest.mark.parametrize("redirect", ["stdout-to-dev-null", "stderr-closed"])
def test_messages_stay_out_of_the_output_and_off_a_discarded_stream(tmp_path: Path, redirect: str) -> None:
    # Given route's output and stdout both sent to /dev/null (cron), or the output on stdout with
    # stderr closed (`2>&-`)
    argv = ["route", str(three_tickets(tmp_path)), "--outbox", str(tmp_path / "o.jsonl")]
    if redirect == "stdout-to-dev-null":
        argv += ["--output", "/dev/null"]
        streams: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    else:
        argv += ["--output", "-"]
        streams = {"stdout": subprocess.PIPE, "preexec_fn": lambda: os.close(2)}
    # When it runs
    done = subprocess.run([sys.executable, "-m", "handlers.cli", *argv], check=False, cwd=ROOT, text=True, **streams)
    # Then the table and summary neither move to stderr for /dev/null, nor fall into the output
    assert done.returncode == 0
    if redirect == "stdout-to-dev-null":
        assert done.stderr == ""
    else:
        assert [json.loads(line)["ticket_id"] for line in done.stdout.splitlines()] == ["T-0001", "T-0002", "T-0003"]


def test_a_timestamp_cell_with_a_trailing_space_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a CSV saved from a spreadsheet whose timestamp cell kept a space after the value
    tickets = tmp_path / "tickets.csv"
    tickets.write_text(
        "ticket_id,customer_id,description,timestamp\nT-1,CUST-1001,Fibre down since this morning,2026-11-24T08:00:00Z \n",
        encoding="utf-8",
    )
    # When it is routed, then the ticket is routed with its own time
    code, decisions = route(tmp_path, str(tickets))
    capsys.readouterr()
    assert code == 0
    assert [d["ticket_id"] for d in decisions] == ["T-1"]
    assert decisions[0]["timestamp"] == 1795507200  # 2026-11-24T08:00:00Z


def test_a_damaged_stored_decision_fails_its_row_and_the_rest_is_routed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a store holding a damaged decision for the first of three tickets
    db = tmp_path / "decisions.db"
    tickets = str(three_tickets(tmp_path))
    assert route(tmp_path, tickets, "--db", str(db))[0] == 0
    store = SqliteDecisionRepository(db, create=False)
    damage(store, "decisions", "T-0001")
    store.close()
    capsys.readouterr()
    # When the file is routed into it again
    code, decisions = route(tmp_path, tickets, "--db", str(db))
    err = capsys.readouterr().err
    # Then that row fails naming the damaged record, and the others are routed and written out
    assert code == 1
    assert "T-0001" in err and "not a valid record" in err
    assert [d["ticket_id"] for d in decisions] == ["T-0002", "T-0003"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(SAMPLES.joinpath("tickets.jsonl").read_text().splitlines(keepends=True)[0], id="json-lines"),
        pytest.param(
            json.dumps([{"ticket_id": "S1", "customer_id": "X", "description": "no signal in town"}]), id="array"
        ),
        pytest.param("ticket_id,customer_id,description\nS1,X,I was charged twice please refund\n", id="csv"),
    ],
)
def test_a_file_of_dash_reads_the_tickets_from_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    # Given tickets piped in, with no file name to tell their format
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    # When route is given "-" as its file
    code, decisions = route(tmp_path, "-")
    # Then the tickets are read from standard input, their format told by their content
    assert code == 0, capsys.readouterr().err
    assert len(decisions) == 1


def test_a_standard_input_with_no_ticket_is_named_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"[]")))
    code, _ = route(tmp_path, "-")
    assert code == 2
    assert capsys.readouterr().err == "ticket-router: error: <stdin>: no ticket could be read: it holds no rows\n"


def test_an_output_over_the_file_standard_input_reads_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    # Given `route - < tickets.jsonl --output tickets.jsonl`
    tickets = three_tickets(tmp_path)
    before = tickets.read_bytes()
    argv = ["route", "-", "--quiet", "--output", str(tickets), "--outbox", str(tmp_path / "o.jsonl")]
    with tickets.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "handlers.cli", *argv],
            check=False,
            cwd=ROOT,
            stdin=stdin,
            capture_output=True,
            text=True,
        )
    # Then it is refused, as for the file named, and the tickets are kept
    assert done.returncode == 2, done.stderr
    assert "is the same file as FILE" in done.stderr
    assert tickets.read_bytes() == before


def test_tickets_piped_in_can_be_routed_to_standard_output(tmp_path: Path) -> None:
    # Given `cat tickets.jsonl | ticket-router route - --output -`
    argv = ["route", "-", "--quiet", "--output", "-", "--outbox", str(tmp_path / "o.jsonl")]
    done = subprocess.run(
        [sys.executable, "-m", "handlers.cli", *argv],
        check=False,
        cwd=ROOT,
        input=three_tickets(tmp_path).read_text(),
        capture_output=True,
        text=True,
    )
    # Then the decisions come out on stdout, the summary on stderr
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["ticket_id"] for line in done.stdout.splitlines()] == ["T-0001", "T-0002", "T-0003"]
    assert "Routed 3 ticket(s)" in done.stderr


def test_an_interrupt_during_routing_says_what_was_routed_kept_pushed_and_written(tmp_path: Path) -> None:
    # Given more tickets than are routed before the user gives up waiting
    sample = [json.loads(line) for line in SAMPLES.joinpath("tickets.jsonl").read_text().splitlines()]
    tickets = tmp_path / "many.jsonl"
    tickets.write_text(
        "".join(json.dumps({**sample[n % len(sample)], "ticket_id": f"M-{n}"}) + "\n" for n in range(20_000))
    )
    db, outbox, output = tmp_path / "d.db", tmp_path / "outbox.jsonl", tmp_path / "decisions.jsonl"
    argv = ["route", str(tickets), "--quiet", "--now", NOW, "--db", str(db), "--outbox", str(outbox)]
    routing = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", *argv, "--output", str(output)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # When Ctrl-C comes once the first decisions reach the outbox
        while routing.poll() is None and not (outbox.exists() and outbox.read_text().count("\n") >= 2):
            time.sleep(0.02)
        routing.send_signal(signal.SIGINT)
        _, err = routing.communicate(timeout=120)
    finally:
        routing.kill()
    # Then it exits 130 with one line that says how far it got, which matches what is kept
    assert routing.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    routed = len(stored(db))
    pushed = outbox.read_text().count("\n")
    assert lines[0] in {
        f"ticket-router: interrupted after routing {n} of 20000 ticket(s): their decisions are kept in {db} (routing"
        f" the same tickets again with it routes the rest); {p} pushed to the outbox {outbox}; --output {output} was"
        " not written"
        # The ticket routed as the interrupt came may be stored and pushed without being counted.
        for n, p in ((routed, pushed), (routed - 1, pushed), (routed - 1, pushed - 1))
    }
    assert 2 <= pushed < 20_000
    assert not output.exists()


def test_an_interrupt_without_a_store_says_the_decisions_were_in_memory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run whose third ticket is interrupted by Ctrl-C
    real_submit = LocalApp.submit
    submitted: list[str] = []

    def submit_until_interrupted(self: LocalApp, ticket: Any, correlation_id: str | None = None) -> Any:
        if len(submitted) == 2:
            raise KeyboardInterrupt
        submitted.append(ticket.ticket_id)
        return real_submit(self, ticket, correlation_id)

    monkeypatch.setattr(LocalApp, "submit", submit_until_interrupted)
    # When it is routed to standard output
    code = main(["route", str(three_tickets(tmp_path)), "--quiet", "--output", "-", "--outbox", str(tmp_path / "o")])
    # Then the line says that nothing but the outbox holds the two routed
    assert code == 130
    assert capsys.readouterr().err == (
        "ticket-router: interrupted after routing 2 of 3 ticket(s): their decisions were in memory only (no --db);"
        f" 2 pushed to the outbox {tmp_path / 'o'}; --output standard output was not written\n"
    )


def test_an_interrupt_counts_apart_the_tickets_found_already_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three tickets routed into a store, and a file holding them and two more
    db, outbox = tmp_path / "d.db", tmp_path / "o.jsonl"
    assert main(["route", str(three_tickets(tmp_path)), "--quiet", "--db", str(db), "--outbox", str(outbox)]) == 0
    tickets = tmp_path / "five.jsonl"
    tickets.write_text("".join(SAMPLES.joinpath("tickets.jsonl").read_text().splitlines(keepends=True)[:5]))
    real_submit = LocalApp.submit
    submitted: list[str] = []

    def submit_until_interrupted(self: LocalApp, ticket: Any, correlation_id: str | None = None) -> Any:
        if len(submitted) == 4:
            raise KeyboardInterrupt
        submitted.append(ticket.ticket_id)
        return real_submit(self, ticket, correlation_id)

    monkeypatch.setattr(LocalApp, "submit", submit_until_interrupted)
    capsys.readouterr()
    # When the file is routed into that store and Ctrl-C comes at its fifth ticket
    code = main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)])
    # Then the line counts the one ticket this run routed and pushed, and the three it found stored apart
    assert code == 130
    assert capsys.readouterr().err == (
        "ticket-router: interrupted after routing 1 of 5 ticket(s) (3 more were already stored): their decisions"
        f" are kept in {db} (routing the same tickets again with it routes the rest); 1 pushed to the outbox"
        f" {outbox}\n"
    )
    assert len(stored(db)) == 4 and outbox.read_text().count("\n") == 4


def test_an_interrupt_says_that_rows_without_a_ticket_id_would_be_routed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three tickets, two of them without a ticket_id (each run gives them a new one)
    sample = [json.loads(line) for line in SAMPLES.joinpath("tickets.jsonl").read_text().splitlines()[:3]]
    for ticket in sample[1:]:
        del ticket["ticket_id"]
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps(ticket) + "\n" for ticket in sample))
    db, outbox = tmp_path / "d.db", tmp_path / "o.jsonl"
    real_submit = LocalApp.submit
    submitted: list[str] = []

    def submit_until_interrupted(self: LocalApp, ticket: Any, correlation_id: str | None = None) -> Any:
        if len(submitted) == 2:
            raise KeyboardInterrupt
        submitted.append(ticket.ticket_id)
        return real_submit(self, ticket, correlation_id)

    monkeypatch.setattr(LocalApp, "submit", submit_until_interrupted)
    # When Ctrl-C comes at the third ticket of a run into a store
    code = main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)])
    # Then the line does not promise that routing the file again routes only the rest
    assert code == 130
    assert capsys.readouterr().err == (
        "ticket-router: interrupted after routing 2 of 3 ticket(s): their decisions are kept in"
        f" {db} (routing the same tickets again with it routes the rest, but for the 2 row(s) without a ticket_id,"
        f" which get a new one each run and are routed again); 2 pushed to the outbox {outbox}\n"
    )


@pytest.mark.parametrize("name", ["export.json", "export.jsonl", "export"])
def test_tickets_wrapped_in_a_json_object_are_refused_saying_which_shapes_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # Given an export that holds its tickets in a list under one key
    export = tmp_path / name
    sample = [json.loads(line) for line in SAMPLES.joinpath("tickets.jsonl").read_text().splitlines()[:2]]
    export.write_text(json.dumps({"tickets": sample}, indent=2))
    # When it is routed
    code, decisions = route(tmp_path, str(export))
    # Then one line names the shape found and the shapes that are read, and nothing is routed
    assert code == 2 and decisions == []
    assert capsys.readouterr().err == (
        f"ticket-router: error: {export}: a JSON object holding 2 record(s) under 'tickets': give the records as a"
        " JSON array ([{...}, ...]), JSON Lines (one object a line) or CSV\n"
    )
    assert not (tmp_path / "outbox.jsonl").exists()


def test_a_second_run_on_the_same_store_counts_apart_the_tickets_it_found_already_routed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three tickets routed into a store
    tickets = three_tickets(tmp_path)
    db, outbox = tmp_path / "d.db", tmp_path / "o.jsonl"
    assert main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)]) == 0
    assert "Routed 3 ticket(s) with the pipeline engine.\n" in capsys.readouterr().out
    # When the file, grown by a fourth ticket, is routed again into that store
    fourth = SAMPLES.joinpath("tickets.jsonl").read_text().splitlines(keepends=True)[3]
    tickets.write_text(tickets.read_text() + fourth)
    code = main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)])
    # Then only the new one is counted as routed now, the others as found in the store
    assert code == 0
    assert (
        f"Routed 1 ticket(s) with the pipeline engine; 3 more were already stored in {db}, shown as stored,"
        " not routed again.\n"
    ) in capsys.readouterr().out
    assert len(stored(db)) == 4 and outbox.read_text().count("\n") == 4


def test_a_ticket_another_run_stores_while_this_one_routes_is_counted_as_found_and_pushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three tickets, and the decision another run made for the second (into another store)
    tickets = three_tickets(tmp_path)
    db, outbox = tmp_path / "d.db", tmp_path / "o.jsonl"
    assert main(["route", str(tickets), "--quiet", "--db", str(tmp_path / "other.db"), "--outbox", str(outbox)]) == 0
    theirs = stored(tmp_path / "other.db")[1].model_copy(update={"sync_status": SyncStatus.PENDING})
    outbox.unlink()
    real_submit = LocalApp.submit

    def submit_as_the_other_run_stores(self: LocalApp, ticket: Any, correlation_id: str | None = None) -> Any:
        if ticket.ticket_id == theirs.ticket_id:
            # The other run, routing the same file into the same store at the same moment, stores
            # its decision after this run found none, and has not pushed it yet.
            self.repository.save(theirs)
        return real_submit(self, ticket, correlation_id)

    monkeypatch.setattr(LocalApp, "submit", submit_as_the_other_run_stores)
    capsys.readouterr()
    # When this run routes the file into the store
    code = main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)])
    # Then that ticket counts as found stored, not as routed by this run, and its decision is pushed
    # (under its own Idempotency-Key) rather than reported as never pushed, failing the run
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"Routed 2 ticket(s) with the pipeline engine; 1 more were already stored in {db}" in captured.out
    assert "never pushed" not in captured.err
    assert {d.ticket_id: d.sync_status for d in stored(db)}[theirs.ticket_id] is SyncStatus.SUCCESS
    pushes = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [p["idempotency_key"] for p in pushes if p["ticket_id"] == theirs.ticket_id] == [theirs.idempotency_key]


def test_a_stored_decision_an_earlier_run_never_pushed_is_pushed_by_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three tickets routed into a store, one of whose decisions an interrupted run left pending
    tickets = three_tickets(tmp_path)
    db, outbox = tmp_path / "d.db", tmp_path / "o.jsonl"
    assert main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)]) == 0
    first = stored(db)[0].ticket_id
    store = SqliteDecisionRepository(db)
    body = json.loads(store._db.execute("SELECT body FROM decisions WHERE ticket_id = ?", (first,)).fetchone()[0])
    body["sync_status"] = "pending"
    store._db.execute(
        "UPDATE decisions SET sync_status = 'pending', body = ? WHERE ticket_id = ?", (json.dumps(body), first)
    )
    store.close()
    outbox.write_text("".join(line for line in outbox.read_text().splitlines(keepends=True) if first not in line))
    capsys.readouterr()
    # When the same file is routed again into that store
    code = main(["route", str(tickets), "--quiet", "--db", str(db), "--outbox", str(outbox)])
    # Then that decision is pushed now, under its own Idempotency-Key, and recorded and named as pushed
    assert code == 0
    assert (
        "pushed 1 decision(s) that another run (stopped, or routing them at the same moment) stored but had not"
        f" pushed (first: ticket {first})" in capsys.readouterr().err
    )
    [decision] = [d for d in stored(db) if d.ticket_id == first]
    assert decision.sync_status is SyncStatus.SUCCESS
    pushes = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [p["idempotency_key"] for p in pushes if p["ticket_id"] == first] == [decision.idempotency_key]
    assert len(pushes) == 3


def test_a_db_that_cannot_be_written_fails_at_start_in_one_line_leaving_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a store made read-only after an earlier run, and that run's --output
    db, output = tmp_path / "decisions.db", tmp_path / "decisions.jsonl"
    SqliteDecisionRepository(db).close()
    output.write_text("earlier\n")
    if os.geteuid() != 0:
        db.chmod(0o444)
    elif subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        # When the samples are routed into it
        code = main(
            [
                "route",
                str(SAMPLES / "tickets.jsonl"),
                "--db",
                str(db),
                "--output",
                str(output),
                "--outbox",
                str(tmp_path / "outbox.jsonl"),
            ]
        )
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True, check=False)
    err = capsys.readouterr().err
    # Then it stops before routing, in one line naming the store, with --output as it was
    assert code == 2
    assert err.count("\n") == 1 and f"cannot write to decision store {db}" in err
    assert output.read_text() == "earlier\n"
    assert not (tmp_path / "outbox.jsonl").exists() or (tmp_path / "outbox.jsonl").read_text() == ""
