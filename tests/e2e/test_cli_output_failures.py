"""An output that fails part-way (a full disk) as the CLI writes it: the previous file or model is
left whole, no temporary file is left beside it, and the error is one line naming the output."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from adapters.classifier import ngram
from adapters.classifier.loader import load_classifier
from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.models import Feedback, RoutingDecision
from handlers.cli import main
from handlers.commands import route as route_command
from tests.builders import NOW
from tests.e2e.test_learning_loop import write_dataset
from tests.integration.test_sqlite_repository import a_decision

SAMPLES = Path(__file__).parents[2] / "adapters" / "local" / "sample_data"
FULL = os.strerror(errno.ENOSPC)


def disk_full(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, FULL)


def last_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The error line that ends stderr (after any warnings about skipped rows), never a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()[-1]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`, hidden ones included, with a file's bytes (None for a directory)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def test_route_output_that_fills_the_disk_keeps_the_previous_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the decisions of an earlier run in the output folder
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "decisions.jsonl"
    output.write_text('{"ticket_id": "EARLIER"}\n')
    # ...and a disk that fills once the first new decision is written
    real_route_all, real_dump = route_command._route_all, RoutingDecision.model_dump_json

    def route_all_then_fill_the_disk(*args: Any) -> Any:
        routed = real_route_all(*args)
        written: list[RoutingDecision] = []

        def dump(self: RoutingDecision, **kwargs: Any) -> str:
            if written:
                disk_full()
            written.append(self)
            return real_dump(self, **kwargs)

        monkeypatch.setattr(RoutingDecision, "model_dump_json", dump)
        return routed

    monkeypatch.setattr(route_command, "_route_all", route_all_then_fill_the_disk)
    # When tickets are routed to that output
    code = main(
        [
            "route", str(SAMPLES / "tickets.jsonl"), "--now", "2026-11-24T12:00:00Z", "--quiet",
            "--output", str(output), "--outbox", str(tmp_path / "outbox.jsonl"),
        ]
    )  # fmt: skip
    # Then it fails in one line naming the output, which still holds the earlier decisions alone
    assert code == 2
    assert last_error(capsys) == f"ticket-router: error: {output}: {FULL}"
    assert snapshot(out_dir) == {"decisions.jsonl": b'{"ticket_id": "EARLIER"}\n'}


def test_an_evaluation_report_that_cannot_reach_the_disk_keeps_the_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a trained model and last week's report
    data, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_dataset(data, seed=1)
    write_dataset(test, per_label=10, seed=2)
    assert main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "m")]) == 0
    reports = tmp_path / "reports"
    reports.mkdir()
    report = reports / "report.html"
    report.write_text("<!doctype html>last week")
    capsys.readouterr()
    # When a new report is written to a disk that reports itself full on flushing it
    monkeypatch.setattr(os, "fsync", disk_full)
    code = main(
        [
            "evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(test), "--label-column", "intent",
            "--report", str(report),
        ]
    )  # fmt: skip
    # Then it fails in one line naming the report, and last week's report is all the folder holds
    assert code == 2
    assert last_error(capsys) == f"ticket-router: error: {report}: {FULL}"
    assert snapshot(reports) == {"report.html": b"<!doctype html>last week"}


@pytest.mark.parametrize("name", ["corrections.csv", "corrections.jsonl"])
def test_a_feedback_export_that_cannot_reach_the_disk_keeps_the_previous_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # Given a store with a re-routed decision, and yesterday's export of it
    db = tmp_path / "decisions.db"
    repo = SqliteDecisionRepository(db)
    repo.save(a_decision("T-1", timestamp=1))
    repo.record(Feedback(ticket_id="T-1", correct_team="Technical Support", recorded_at=NOW))
    repo.close()
    exports = tmp_path / "exports"
    exports.mkdir()
    output = exports / name
    output.write_text("yesterday's rows\n")
    # When it is exported again to a disk that reports itself full on flushing it
    monkeypatch.setattr(os, "fsync", disk_full)
    code = main(["feedback", "export", "--db", str(db), "--output", str(output)])
    # Then it fails in one line naming the export, and yesterday's export is all the folder holds
    assert code == 2
    assert last_error(capsys) == f"ticket-router: error: {output}: {FULL}"
    assert snapshot(exports) == {name: b"yesterday's rows\n"}


def test_a_retrain_that_fails_while_saving_leaves_the_previous_model_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model trained into models/current
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write_dataset(first, seed=1)
    write_dataset(second, seed=3)
    models = tmp_path / "models"
    model_dir = models / "current"
    train = ["train", "--label-column", "intent", "--model-dir", str(model_dir)]
    assert main([*train, "--data", str(first)]) == 0
    before = snapshot(models)
    capsys.readouterr()
    # When it is retrained on new data, and the disk fills once the new weights are written
    monkeypatch.setattr(ngram, "_save_static", disk_full)
    code = main([*train, "--data", str(second)])
    # Then training fails in one line naming the model directory
    assert code == 2
    assert last_error(capsys) == f"ticket-router: error: {model_dir}: {FULL}"
    # ...and the previous model is byte for byte what it was, with nothing left beside it, and still loads
    assert snapshot(models) == before
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["source_file"] == "first.csv"
    assert load_classifier(model_dir).classify("please refund the charge").primary_category == "refund"
