"""train, evaluate and backtest given bad options or unusable files: a one-line error before any
slow work, exit 2, nothing written, never a traceback."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.classifier import loader, training
from handlers.cli import main

TICKETS = [
    ("T-1", "C-1", "Charged twice", "I was charged twice for my plan this month", "Billing Support"),
    ("T-2", "C-2", "No internet", "internet down in my whole street since this morning", "Network Operations"),
    ("T-3", "C-3", "Password", "cannot log in, the password reset email never arrives", "Account Management"),
]


def write_labelled(path: Path, rows: int = 12) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        for i in range(rows):
            writer.writerow(["please refund the charge" if i % 2 else "I lost my card", "refund" if i % 2 else "card"])


def write_tickets(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


TICKET_HEADER = ("ticket_id", "customer_id", "subject", "description", "team")


@pytest.fixture
def training_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every n-gram fit, so that a test can tell that training never started."""
    calls: list[Any] = []
    real = training.fit_ngram_classifier

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit_ngram_classifier", recording)
    return calls


@pytest.mark.parametrize(
    ("option", "value"),
    [("--c", "0"), ("--c", "-1"), ("--c", "nan"), ("--seed", "-5")],
)
def test_train_refuses_a_bad_number_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    # Given a usable file
    data = tmp_path / "train.csv"
    write_labelled(data)
    target = tmp_path / "m"
    # When train is given a regularisation strength or seed that the trainers cannot take
    with pytest.raises(SystemExit) as exited:
        main(
            ["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(target), f"{option}={value}"]
        )
    # Then argparse refuses it, naming the option, and nothing is written
    assert exited.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err
    assert not target.exists()


@pytest.mark.parametrize("model_dir", ["a-file", "a-file/sub"])
def test_train_checks_the_model_dir_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], training_calls: list[Any], model_dir: str
) -> None:
    # Given a file where the model directory (or one of its parents) should be
    data = tmp_path / "train.csv"
    write_labelled(data)
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    # When a model is trained into it
    code = main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / model_dir)])
    # Then it stops before training, says why, and the file is untouched
    assert code == 2
    assert "--model-dir" in capsys.readouterr().err
    assert training_calls == []
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("text", ["!!! ??? ...", "потеряла карту"])
def test_train_on_text_without_usable_features_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    # Given labelled texts with no latin letters or digits (punctuation only, or Cyrillic)
    data = tmp_path / "train.csv"
    write_tickets(data, [(text, label) for label in ("a", "b") for _ in range(6)], ("text", "intent"))
    target = tmp_path / "m"
    # When an n-gram model is trained on them
    code = main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(target)])
    # Then the error says there are no usable text features, and no model is written
    assert code == 2
    assert "no usable text features" in capsys.readouterr().err
    assert not target.exists()


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_text_column_with_body_column_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # Given a file with both a whole-text and a body column
    data = tmp_path / "train.csv"
    write_labelled(data)
    # When both are named, then argparse refuses them together rather than drop --text-column
    with pytest.raises(SystemExit) as exited:
        main([command, "--data", str(data), "--label-column", "intent", "--text-column", "text", "--body-column", "b"])
    assert exited.value.code == 2
    assert "argument --body-column: not allowed with argument --text-column" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("train", "--label-column"),
        ("train", "--text-column"),
        ("evaluate", "--subject-column"),
        ("evaluate", "--body-column"),
        ("backtest", "--label-column"),
        ("backtest", "--customer-column"),
    ],
)
def test_an_empty_column_name_is_a_usage_error_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str
) -> None:
    # Given a labelled file
    data = tmp_path / "train.csv"
    write_labelled(data)
    # When a column option is given an empty name (an unset shell variable, say)
    argv = [command, str(data)] if command == "backtest" else [command, "--data", str(data)]
    argv += ["--label-column", "intent", option, " "] if option != "--label-column" else [option, ""]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    # Then argparse refuses it, naming the option
    assert exited.value.code == 2
    assert f"argument {option}: a column name cannot be empty" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["nan", "inf", "-1", "2"])
def test_evaluate_refuses_a_threshold_outside_0_to_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], threshold: str
) -> None:
    data = tmp_path / "test.csv"
    write_labelled(data)
    with pytest.raises(SystemExit) as exited:
        main(["evaluate", "--data", str(data), "--label-column", "intent", f"--threshold={threshold}"])
    assert exited.value.code == 2
    assert "argument --threshold: must be between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("report", ["a-directory", "a-file/report.html"])
def test_evaluate_checks_the_report_path_before_evaluating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, report: str
) -> None:
    # Given a report path that is a directory, or lies under a file
    data = tmp_path / "test.csv"
    write_labelled(data)
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("keep me")
    loaded: list[Any] = []
    real_load = loader.load_classifier

    def recording_load(*args: Any) -> Any:
        loaded.append(args)
        return real_load(*args)

    monkeypatch.setattr(loader, "load_classifier", recording_load)
    # When a model is evaluated with a report there
    code = main(["evaluate", "--data", str(data), "--label-column", "intent", "--report", str(tmp_path / report)])
    # Then it stops before loading the model, saying why, and the file is untouched
    assert code == 2
    assert "--report" in capsys.readouterr().err
    assert loaded == []
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_evaluate_refuses_a_report_over_its_own_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given labelled data
    data = tmp_path / "test.csv"
    write_labelled(data)
    before = data.read_bytes()
    # When the report is pointed at the data file itself
    code = main(["evaluate", "--data", str(data), "--label-column", "intent", "--report", str(data)])
    # Then it is refused, and the data is kept
    assert code == 2
    assert "same file as --data" in capsys.readouterr().err
    assert data.read_bytes() == before


def test_evaluate_refuses_a_report_over_a_file_of_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a copy of the bundled model and labelled data
    model = tmp_path / "model"
    shutil.copytree(Path(__file__).parents[2] / "adapters" / "classifier" / "default_model", model)
    data = tmp_path / "test.csv"
    write_labelled(data)
    before = (model / "metadata.json").read_bytes()
    # When the report is pointed at the model's metadata
    argv = ["evaluate", "--model-dir", str(model), "--data", str(data), "--label-column", "intent"]
    code = main([*argv, "--report", str(model / "metadata.json")])
    # Then it is refused before the model is even loaded, and the model is kept
    assert code == 2
    assert f"same file as the model's metadata.json in {model}" in capsys.readouterr().err
    assert (model / "metadata.json").read_bytes() == before


@pytest.mark.parametrize("content", ["text,intent\n", "text,intent\n,refund\n"])
def test_evaluate_with_no_usable_rows_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    # Given a header-only file, or one whose every row is skipped
    data = tmp_path / "test.csv"
    data.write_text(content)
    # When it is evaluated, then it fails rather than print figures over no tickets
    code = main(["evaluate", "--data", str(data), "--label-column", "intent"])
    captured = capsys.readouterr()
    assert code == 2
    assert "no usable labelled rows" in captured.err
    assert "Evaluated" not in captured.out


def test_evaluate_of_labels_the_model_does_not_know_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given tickets labelled refund/card, none of which is a label of the bundled telecom model
    data = tmp_path / "test.csv"
    write_labelled(data)
    # When the bundled model is evaluated on them
    code = main(["evaluate", "--data", str(data), "--label-column", "intent", "--json"])
    # Then it refuses, naming the model's labels and the file's, instead of reporting 0% accuracy
    captured = capsys.readouterr()
    assert code == 2
    assert "no label in column 'intent' is one of the labels of the bundled telecom model" in captured.err
    assert "Account Access, Billing Dispute, Network Outage, Technical Problem" in captured.err
    assert "the file has card, refund" in captured.err
    assert captured.out == ""


def test_backtest_with_no_usable_rows_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "history.csv"
    write_tickets(data, [], TICKET_HEADER)
    code = main(["backtest", str(data), "--label-column", "team"])
    captured = capsys.readouterr()
    assert code == 2
    assert "no usable labelled rows" in captured.err
    assert "Backtest of" not in captured.out


def test_backtest_of_team_labels_read_as_categories_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given history labelled with teams
    data = tmp_path / "history.csv"
    write_tickets(data, TICKETS, TICKET_HEADER)
    # When it is replayed as if the labels were categories
    code = main(["backtest", str(data), "--label-column", "team", "--label-kind", "category"])
    # Then it says no label is a category, instead of reporting 0% accuracy
    captured = capsys.readouterr()
    assert code == 2
    assert "no label in column 'team' is one of the categories" in captured.err
    assert "Backtest of" not in captured.out


def test_backtest_warns_about_labels_that_are_no_team(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "history.csv"
    write_tickets(data, [*TICKETS, ("T-4", "C-4", "Help", "my bill is wrong", "Billing")], TICKET_HEADER)
    code = main(["backtest", str(data), "--label-column", "team", "--json"])
    assert code == 0
    assert "warning: 1 of 4 label(s) are not a known team" in capsys.readouterr().err


def test_backtest_counts_unknown_labels_among_the_tickets_it_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given four rows, one with an unknown label and one that is skipped for its invalid customer id
    data = tmp_path / "history.csv"
    rows = [*TICKETS, ("T-4", "C-4", "Help", "my bill is wrong", "Billing"), ("T-5", "bad id!", "x", "y", "Sales")]
    write_tickets(data, rows, TICKET_HEADER)
    # When it is replayed / Then the warning counts over the four replayed tickets, not the five rows
    assert main(["backtest", str(data), "--label-column", "team", "--json"]) == 0
    assert "warning: 1 of 4 label(s) are not a known team" in capsys.readouterr().err


def test_backtest_reports_tickets_the_engine_failed_on_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import bootstrap

    # Given history of three tickets, and an engine that fails on T-2
    data = tmp_path / "history.csv"
    write_tickets(data, TICKETS, TICKET_HEADER)
    route_ticket = bootstrap.route_ticket

    def failing_on_t2(ticket: Any, **kwargs: Any) -> Any:
        if ticket.ticket_id == "T-2":
            raise RuntimeError("engine down")
        return route_ticket(ticket, **kwargs)

    monkeypatch.setattr(bootstrap, "route_ticket", failing_on_t2)
    # When it is replayed
    code = main(["backtest", str(data), "--label-column", "team", "--json"])
    # Then the figures cover the two decided tickets, and the failure is reported, not hidden
    captured = capsys.readouterr()
    assert code == 1
    assert '"n": 2' in captured.out and '"routing_failures": 1' in captured.out
    assert "routing failed for ticket T-2: RuntimeError: engine down" in captured.err


def test_backtest_of_tickets_the_engine_all_failed_on_lists_the_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import bootstrap

    # Given history the engine fails on entirely
    data = tmp_path / "history.csv"
    write_tickets(data, TICKETS, TICKET_HEADER)

    def failing(ticket: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine down")

    monkeypatch.setattr(bootstrap, "route_ticket", failing)
    # When it is replayed
    code = main(["backtest", str(data), "--label-column", "team", "--json"])
    # Then each failure is reported, not mistaken for a file without usable rows
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("routing failed for ticket") == 3
    assert "no usable labelled rows" not in captured.err
    assert '"routing_failures": 3' in captured.out


def test_backtest_names_the_file_row_of_a_bad_ticket_and_reports_a_repeated_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given history whose row 4 has an invalid customer id (after a row 3 that is kept) and whose
    # row 5 repeats the ticket id of row 2
    data = tmp_path / "history.csv"
    rows = [
        TICKETS[0],
        TICKETS[1],
        ("T-3", "not a valid id!", "Bill", "my bill is wrong", "Billing Support"),
        ("T-1", "C-9", "Again", "charged twice again", "Billing Support"),
    ]
    write_tickets(data, rows, TICKET_HEADER)
    # When it is replayed
    code = main(["backtest", str(data), "--label-column", "team", "--json"])
    # Then both are reported with the file's own row numbers, and two tickets are replayed
    captured = capsys.readouterr()
    assert code == 0
    assert f"{data}: row 4: customer_id:" in captured.err
    assert f"{data}: row 5: ticket_id 'T-1' repeats row 2 (skipped)" in captured.err
    assert '"n": 2' in captured.out


def test_backtest_reads_a_file_without_a_subject_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given history without the optional subject column
    data = tmp_path / "history.csv"
    write_tickets(
        data, [(t, c, d, team) for t, c, _, d, team in TICKETS], ("ticket_id", "customer_id", "description", "team")
    )
    # When it is replayed, then every ticket is routed from its description alone
    code = main(["backtest", str(data), "--label-column", "team", "--json"])
    assert code == 0
    assert '"n": 3' in capsys.readouterr().out


def test_backtest_refuses_a_customer_column_the_file_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given history whose customers are in customer_id, and a run that names a mistyped column
    data = tmp_path / "history.csv"
    write_tickets(data, TICKETS, TICKET_HEADER)
    # When it is replayed, then it is refused naming the column, rather than routed without customers
    code = main(["backtest", str(data), "--label-column", "team", "--customer-column", "account", "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{data}: no column 'account'; columns are" in captured.err
    assert captured.out == ""


def test_backtest_reads_a_file_without_a_customer_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given history without the optional customer_id column
    data = tmp_path / "history.csv"
    write_tickets(
        data, [(t, s, d, team) for t, _, s, d, team in TICKETS], ("ticket_id", "subject", "description", "team")
    )
    # When it is replayed, then every ticket is routed as from an unknown customer
    code = main(["backtest", str(data), "--label-column", "team", "--json"])
    assert code == 0
    assert '"n": 3' in capsys.readouterr().out


def test_a_report_and_json_both_on_standard_output_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "test.csv"
    write_labelled(data)
    code = main(["evaluate", "--data", str(data), "--label-column", "intent", "--json", "--report", "-"])
    assert code == 2
    assert "--report - and --json would both go to standard output" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["metadata.json", "model.npz", "ngram/metadata.json"])
def test_train_refuses_data_that_is_a_file_of_the_model_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], training_calls: list[Any], name: str
) -> None:
    # Given labelled tickets saved, by mischance, under a name the model directory's artifact uses
    data = tmp_path / "models" / name
    data.parent.mkdir(parents=True)
    data.write_text("".join(f'{{"text": "ticket {i}", "intent": "{"ab"[i % 2]}"}}\n' for i in range(12)))
    kept = data.read_text()
    # When a model is trained from it into that directory
    code = main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "models")])
    # Then it stops before training, says why, and the data is untouched
    assert code == 2
    assert "which training replaces" in capsys.readouterr().err
    assert training_calls == []
    assert data.read_text() == kept
