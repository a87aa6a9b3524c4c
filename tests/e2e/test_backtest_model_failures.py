"""backtest of the model engines when the model fails: the fallback decisions are not the model's
figures, so the failures are counted on stderr, and a run in which the model never answered fails.

The real BedrockModel talks to tests/bedrock_server.py on 127.0.0.1: no network, no account."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.cli import main
from tests.bedrock_server import BedrockError, FakeBedrockRuntime, always_throttle, answer_from_evidence, ticket_id_of

HEADER = ("ticket_id", "customer_id", "subject", "description", "team")
TICKETS = [
    ("T-1", "C-1", "Charged twice", "I was charged twice for my plan this month", "Billing Support"),
    ("T-2", "C-2", "No internet", "internet down in my whole street since this morning", "Network Operations"),
    ("T-3", "C-3", "Password", "cannot log in, the password reset email never arrives", "Account Management"),
]


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(TICKETS)
    return path


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrockRuntime]:
    with FakeBedrockRuntime() as server:
        # Read when the boto3 client is built, i.e. when the backtest builds its engine.
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
        yield server


def backtest(history: Path, engine: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(["backtest", str(history), "--label-column", "team", "--engine", engine, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def throttle_t2(body: dict[str, Any]) -> dict[str, Any] | BedrockError:
    return always_throttle(body) if ticket_id_of(body) == "T-2" else answer_from_evidence(body)


@pytest.mark.parametrize("engine", ["agent", "hybrid"])
def test_backtest_where_every_model_call_fails_says_so_and_exits_non_zero(
    history: Path,
    bedrock: FakeBedrockRuntime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    engine: str,
) -> None:
    # Given a model that throttles every request, and a hybrid engine that escalates any doubt
    bedrock.policy = always_throttle
    monkeypatch.setenv("ESCALATION_THRESHOLD", "1.0")
    # When the history is replayed through the model engine
    code, report, err = backtest(history, engine, capsys)
    # Then each ticket sent to the model (all of them for the agent, the unsure ones for the
    # hybrid engine) fell back to the pipeline's decision
    consulted = len(bedrock.tickets_seen())
    assert (consulted == 3) if engine == "agent" else (0 < consulted <= 3)
    assert (report["n"], report["model_call_failures"]) == (3, consulted)
    # And stderr counts the failures, says why, and that the figures are not the engine's
    assert f"warning: the model call failed for {consulted} of {consulted} ticket(s) sent to the model" in err
    assert "ModelThrottledException" in err
    assert f"the model never answered: these are not the {engine} engine's figures" in err
    # And the run fails: a backtest of an engine that never answered is not a result
    assert code == 1


def test_backtest_where_some_model_calls_fail_warns_with_the_count(
    history: Path, bedrock: FakeBedrockRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that throttles the request for T-2 only
    bedrock.policy = throttle_t2
    # When the history is replayed through the agent engine
    code, report, err = backtest(history, "agent", capsys)
    # Then the one failure is counted and the first named, but the run stands
    assert report["model_call_failures"] == 1
    assert "warning: the model call failed for 1 of 3 ticket(s) sent to the model" in err
    assert "first: ticket T-2: ModelThrottledException" in err
    assert "never answered" not in err
    assert code == 0


def test_backtest_where_the_model_answers_reports_no_failure(
    history: Path, bedrock: FakeBedrockRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that answers every ticket
    # When the history is replayed through the agent engine
    code, report, err = backtest(history, "agent", capsys)
    # Then there is nothing to warn about
    assert (code, report["model_call_failures"]) == (0, 0)
    assert "model call failed" not in err
