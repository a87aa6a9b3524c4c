"""`ticket-router invoke FUNCTION -e EVENT.json` on the sample events, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.cli import main

EVENTS = Path(__file__).parents[2] / "events"
TICKET_ID = "T-EVT-0001"


@pytest.fixture(autouse=True)
def router_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh embedded store per test: ROUTER_HOME in tmp_path, no other local settings leaking in."""
    for name in (
        "ROUTER_DB",
        "ROUTER_OUTBOX",
        "ROUTER_CUSTOMERS_FILE",
        "ROUTER_SERVICES_FILE",
        "ROUTER_API_KEY",
        "ROUTER_TAXONOMY",
        "ROUTER_MODEL_DIR",
        "ROUTER_LABEL_TEAM_MAP",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("ROUTER_HOME", str(home))
    return home


def invoke(capsys: pytest.CaptureFixture[str], function: str, event: str | Path) -> tuple[int, Any, str]:
    """Exit code, the printed result, and stderr, where the handler's own log lines go."""
    path = event if isinstance(event, Path) else EVENTS / event
    code = main(["invoke", function, "-e", str(path)])
    captured = capsys.readouterr()
    result = json.loads(captured.out) if code == 0 else None
    return code, result, captured.err


def outbox(home: Path) -> list[dict[str, Any]]:
    path = home / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_post_then_orchestrator_then_get_then_ticketing_update(
    capsys: pytest.CaptureFixture[str], router_home: Path
) -> None:
    # When the sample POST is invoked
    code, result, _ = invoke(capsys, "ingestion", "api_post_ticket.json")
    # Then 202 is printed, and the in-process bus has routed and synced the ticket
    assert code == 0
    assert result["statusCode"] == 202
    accepted = json.loads(result["body"])
    assert accepted["ticket_id"] == TICKET_ID and accepted["status"] == "accepted"
    assert [e["ticket_id"] for e in outbox(router_home)] == [TICKET_ID]

    # When the orchestrator is invoked on the sample TicketReceived for the same ticket
    code, result, _ = invoke(capsys, "orchestrator", "eventbridge_ticket_received.json")
    # Then it finds that decision: a redelivery creates nothing
    assert code == 0
    assert result["ticket_id"] == TICKET_ID
    assert result["created"] is False
    assert (result["assigned_team"], result["priority_level"]) == ("Network Operations", "P0")

    # When the sample GET is invoked
    code, result, _ = invoke(capsys, "ingestion", "api_get_ticket.json")
    # Then the stored decision is printed, already synced
    assert code == 0
    assert result["statusCode"] == 200
    decision = json.loads(result["body"])
    assert decision["ticket_id"] == TICKET_ID
    assert decision["correlation_id"] == accepted["correlation_id"]
    assert decision["sync_status"] == "success"

    # When the ticketing update is invoked on the sample stream record
    code, result, _ = invoke(capsys, "ticketing-update", "dynamodb_stream_decision.json")
    # Then there are no failures and nothing is pushed twice
    assert code == 0
    assert result == {"batchItemFailures": []}
    assert len(outbox(router_home)) == 1


def test_orchestrator_on_a_fresh_store_creates_the_decision(capsys: pytest.CaptureFixture[str]) -> None:
    # Given an empty store
    # When the orchestrator is invoked on the sample event
    code, result, _ = invoke(capsys, "orchestrator", "eventbridge_ticket_received.json")
    # Then it creates the decision, which the GET then finds
    assert code == 0
    assert result["created"] is True
    assert (result["assigned_team"], result["priority_level"]) == ("Network Operations", "P0")
    code, result, _ = invoke(capsys, "ingestion", "api_get_ticket.json")
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["sync_status"] == "pending"
    # And invoking it again is a no-op
    _, again, _ = invoke(capsys, "orchestrator", "eventbridge_ticket_received.json")
    assert again["created"] is False


def test_ticketing_update_on_a_fresh_store_pushes_to_the_outbox(
    capsys: pytest.CaptureFixture[str], router_home: Path
) -> None:
    code, result, _ = invoke(capsys, "ticketing-update", "dynamodb_stream_decision.json")
    assert code == 0
    assert result == {"batchItemFailures": []}
    entries = outbox(router_home)
    assert [e["ticket_id"] for e in entries] == [TICKET_ID]
    assert entries[0]["idempotency_key"] == f"{TICKET_ID}:1795508400"


def test_get_of_a_ticket_never_posted_prints_404(capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = invoke(capsys, "ingestion", "api_get_ticket.json")
    assert code == 0
    assert result["statusCode"] == 404


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize(
    ("function", "make_event", "reason"),
    [
        pytest.param("ingestion", lambda tmp: tmp / "missing.json", "not found", id="missing-file"),
        pytest.param("ingestion", lambda tmp: tmp, "cannot read", id="a-directory"),
        pytest.param("ingestion", lambda tmp: _write(tmp, "bad.json", "{not json"), "not valid JSON", id="not-json"),
        pytest.param(
            "ticketing-update", lambda tmp: _write(tmp, "list.json", "[1, 2]"), "JSON object", id="not-an-object"
        ),
        pytest.param(
            "orchestrator",
            lambda tmp: _write(tmp, "e.json", json.dumps({"detail-type": "TicketReceived", "detail": {}})),
            "ticket_id",
            id="invalid-ticket-received",
        ),
        pytest.param(
            "orchestrator",
            lambda tmp: EVENTS / "api_post_ticket.json",
            "api_post_ticket.json is not an EventBridge TicketReceived event, which the orchestrator function takes:"
            " TicketReceived detail is invalid at: detail (see events/eventbridge_ticket_received.json)",
            id="orchestrator-given-an-api-event",
        ),
        pytest.param(
            "ingestion",
            lambda tmp: EVENTS / "dynamodb_stream_decision.json",
            "not an API Gateway (REST proxy) event",
            id="ingestion-given-a-stream-event",
        ),
        pytest.param(
            "ingestion", lambda tmp: _write(tmp, "e.json", "{}"), "not an API Gateway", id="ingestion-given-{}"
        ),
        pytest.param(
            "ticketing-update",
            lambda tmp: EVENTS / "api_post_ticket.json",
            "not a DynamoDB stream event",
            id="ticketing-update-given-an-api-event",
        ),
        pytest.param(
            "ingestion",
            lambda tmp: _write(tmp, "e.json", json.dumps({"httpMethod": "GET"})),
            "not an API Gateway (REST proxy) event, which the ingestion function takes: path: is required",
            id="ingestion-without-a-path",
        ),
        pytest.param(
            "ingestion",
            lambda tmp: _write(tmp, "e.json", json.dumps({"httpMethod": "GET", "path": "/health", "headers": 5})),
            "headers: Input should be a valid dictionary",
            id="ingestion-headers-a-number",
        ),
        pytest.param(
            "ingestion",
            lambda tmp: _write(
                tmp, "e.json", json.dumps({"httpMethod": "POST", "path": "/tickets", "body": {"ticket_id": "T-1"}})
            ),
            "body: Input should be a valid string",
            id="ingestion-body-an-object",
        ),
        pytest.param(
            "ingestion",
            lambda tmp: _write(
                tmp,
                "e.json",
                json.dumps(
                    {
                        "httpMethod": "GET",
                        "path": "/tickets/T-1",
                        "multiValueHeaders": {"Accept": "application/json"},
                        "pathParameters": ["T-1"],
                        "queryStringParameters": "a=1",
                    }
                ),
            ),
            "multiValueHeaders.Accept: Input should be a valid list; queryStringParameters: Input should be a valid"
            " dictionary; pathParameters: Input should be a valid dictionary",
            id="ingestion-parameters-of-the-wrong-types",
        ),
        pytest.param(
            "ticketing-update",
            lambda tmp: _write(tmp, "e.json", '{"Records": [null]}'),
            "is not a DynamoDB stream event: Records.0: must be an object",
            id="ticketing-update-a-null-record",
        ),
        pytest.param(
            "ticketing-update",
            lambda tmp: _write(tmp, "e.json", json.dumps({"Records": [{"eventName": "INSERT", "dynamodb": "x"}]})),
            "Records.0.dynamodb: must be an object",
            id="ticketing-update-dynamodb-text",
        ),
        pytest.param(
            "ingestion",
            lambda tmp: _write(tmp, "deep.json", '{"body": ' + "[" * 5000 + "]" * 5000 + "}"),
            "nested too deeply",
            id="nested-5000-deep",
        ),
    ],
)
def test_an_unusable_event_file_is_a_one_line_error_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, function: str, make_event: Any, reason: str
) -> None:
    # Given an event file that cannot be used
    event = make_event(tmp_path)
    # When it is invoked
    code = main(["invoke", function, "-e", str(event)])
    # Then the user gets one line on stderr saying why, no traceback, and exit code 2
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ticket-router: error: ")
    assert reason in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_stdout_holds_the_result_alone_and_logs_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # When the sample POST is invoked, which logs "ticket accepted"
    code = main(["invoke", "ingestion", "-e", str(EVENTS / "api_post_ticket.json")])
    captured = capsys.readouterr()
    # Then stdout parses as one JSON document, the handler's response, and the log line is on stderr
    assert code == 0
    assert json.loads(captured.out)["statusCode"] == 202
    logged = [json.loads(line) for line in captured.err.splitlines()]
    assert [entry["message"] for entry in logged] == ["ticket accepted"]


def test_an_event_file_saved_with_a_byte_order_mark_is_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given the sample POST saved by a Windows editor, which starts UTF-8 with a byte-order mark
    event = tmp_path / "post.json"
    event.write_bytes(b"\xef\xbb\xbf" + (EVENTS / "api_post_ticket.json").read_bytes())
    # When it is invoked, then it is read as the event it is
    code, result, _ = invoke(capsys, "ingestion", event)
    assert code == 0
    assert result["statusCode"] == 202
