"""route with a model engine when the model fails: the pipeline's decision stands, flagged for
review, and stderr says so, since the summary still reads "with the agent engine"; a run in which
the model never answered exits 1.

The real BedrockModel talks to tests/bedrock_server.py on 127.0.0.1: no network, no account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.cli import main
from tests.bedrock_server import (
    FakeBedrockRuntime,
    always_throttle,
    answer_from_evidence,
    text_only,
    ticket_id_of,
    tools_forever,
)

TICKETS = [
    {"ticket_id": "T-1", "customer_id": "C-1", "description": "I was charged twice for my plan this month"},
    {"ticket_id": "T-2", "customer_id": "C-2", "description": "internet down in my whole street since this morning"},
]


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrockRuntime]:
    with FakeBedrockRuntime() as server:
        # Read when the boto3 client is built, i.e. when route builds its engine.
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
        yield server


def test_route_where_the_model_fails_names_the_failures_on_stderr(
    tmp_path: Path, bedrock: FakeBedrockRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that throttles every request
    bedrock.policy = always_throttle
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps(ticket) + "\n" for ticket in TICKETS), encoding="utf-8")
    output = tmp_path / "decisions.jsonl"

    # When the tickets are routed with the agent engine
    code = main(["route", str(tickets), "--engine", "agent", "--quiet", "--output", str(output)])
    err = capsys.readouterr().err

    # Then every ticket is still decided (the pipeline's decision, flagged for review)
    decisions = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [(d["ticket_id"], d["requires_manual_review"]) for d in decisions] == [("T-1", True), ("T-2", True)]
    # And stderr counts the failed model calls and says why
    assert "warning: the model call failed for 2 of 2 ticket(s) sent to the model" in err
    assert "ModelThrottledException" in err
    # And the run fails, as backtest does: a script must learn the model was never reached
    assert "error: the model never answered any of the 2 ticket(s) sent to it" in err
    assert code == 1


def test_route_where_some_model_calls_fail_warns_and_succeeds(
    tmp_path: Path, bedrock: FakeBedrockRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that throttles the request for T-2 only
    bedrock.policy = lambda body: always_throttle(body) if ticket_id_of(body) == "T-2" else answer_from_evidence(body)
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps(ticket) + "\n" for ticket in TICKETS), encoding="utf-8")

    # When the tickets are routed with the agent engine
    code = main(["route", str(tickets), "--engine", "agent", "--quiet"])
    err = capsys.readouterr().err

    # Then the one failure is counted, but the model did answer: the run stands
    assert "warning: the model call failed for 1 of 2 ticket(s) sent to the model" in err
    assert "never answered" not in err
    assert code == 0


def test_route_where_the_model_answers_only_in_prose_does_not_blame_its_credentials(
    tmp_path: Path, bedrock: FakeBedrockRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that is reached but never calls the answer tool, not even when it is forced
    bedrock.policy = text_only
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps(ticket) + "\n" for ticket in TICKETS), encoding="utf-8")

    # When the tickets are routed with the agent engine
    code = main(["route", str(tickets), "--engine", "agent", "--quiet"])
    err = capsys.readouterr().err

    # Then the run fails, as no ticket was routed by the model, and stderr says that the model
    # answered without a routing, not that it could not be reached
    assert "error: the model answered none of the 2 ticket(s) sent to it with a routing" in err
    assert "credentials" not in err
    assert code == 1


def test_route_where_the_model_only_calls_tools_says_so_not_that_it_answers_in_prose(
    tmp_path: Path, bedrock: FakeBedrockRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a model that is reached but only ever asks for another lookup, until the agent's own
    # budget of model calls stops it
    bedrock.policy = tools_forever
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps(ticket) + "\n" for ticket in TICKETS), encoding="utf-8")

    # When the tickets are routed with the agent engine
    code = main(["route", str(tickets), "--engine", "agent", "--quiet"])
    err = capsys.readouterr().err

    # Then the run fails, and stderr says the model kept calling tools, not that it answered without
    # calling them, nor that it could not be reached
    assert "error: the model answered none of the 2 ticket(s) sent to it with a routing" in err
    assert "2 kept calling tools until the agent's budget of model calls was spent" in err
    assert "check that the model calls tools" not in err
    assert "credentials" not in err
    assert code == 1
