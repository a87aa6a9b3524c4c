"""The CodeDeploy PreTraffic hook against real boto3 clients whose HTTP layer is a botocore Stubber."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from handlers import codedeploy_hook
from handlers.codedeploy_hook import HEALTH_EVENT, handle, lambda_handler
from handlers.local_context import LocalLambdaContext

REGION = "us-east-1"
INGESTION = "arn:aws:lambda:us-east-1:123456789012:function:stack-IngestionFunction-abc:7"
ORCHESTRATOR = "arn:aws:lambda:us-east-1:123456789012:function:stack-OrchestratorFunction-def:3"
UPDATE = "arn:aws:lambda:us-east-1:123456789012:function:stack-TicketingUpdateFunction-ghi:4"
ENVIRON = {
    "INGESTION_VERSION_ARN": INGESTION,
    "ORCHESTRATOR_VERSION_ARN": ORCHESTRATOR,
    "TICKETING_UPDATE_VERSION_ARN": UPDATE,
}
EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "eyJleGVjdXRpb25JZCI6IjEifQ=="}


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    lambda_client = boto3.client("lambda", region_name=REGION)
    codedeploy_client = boto3.client("codedeploy", region_name=REGION)
    with Stubber(lambda_client) as lambda_stub, Stubber(codedeploy_client) as codedeploy_stub:
        yield lambda_client, lambda_stub, codedeploy_client, codedeploy_stub
        lambda_stub.assert_no_pending_responses()
        codedeploy_stub.assert_no_pending_responses()


def _body(document: Any) -> StreamingBody:
    raw = json.dumps(document).encode("utf-8")
    return StreamingBody(io.BytesIO(raw), len(raw))


def _expect_health(stub: Stubber, answer: Any, *, function_error: str | None = None) -> None:
    response: dict[str, Any] = {"StatusCode": 200, "Payload": _body(answer), "ExecutedVersion": "7"}
    if function_error:
        response["FunctionError"] = function_error
    stub.add_response(
        "invoke",
        response,
        {"FunctionName": INGESTION, "InvocationType": "RequestResponse", "Payload": ANY},
    )


def _expect_start(stub: Stubber, arn: str, answer: Any, *, function_error: str | None = None) -> None:
    response: dict[str, Any] = {"StatusCode": 200, "Payload": _body(answer), "ExecutedVersion": "3"}
    if function_error:
        response["FunctionError"] = function_error
    stub.add_response("invoke", response, {"FunctionName": arn, "InvocationType": "RequestResponse", "Payload": ANY})


def _expect_starts(stub: Stubber) -> None:
    _expect_start(stub, ORCHESTRATOR, {"status": "started"})
    _expect_start(stub, UPDATE, {"batchItemFailures": []})


def _expect_report(stub: Stubber, status: str) -> None:
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"]},
        {
            "deploymentId": EVENT["DeploymentId"],
            "lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"],
            "status": status,
        },
    )


def _run(clients: tuple[Any, Stubber, Any, Stubber], environ: dict[str, str] | None = None) -> dict[str, Any]:
    lambda_client, _, codedeploy_client, _ = clients
    return handle(
        EVENT,
        codedeploy_client=codedeploy_client,
        lambda_client=lambda_client,
        environ=ENVIRON if environ is None else environ,
    )


def test_healthy_versions_report_succeeded(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": '{"status": "ok"}'})
    _expect_starts(lambda_stub)
    _expect_report(codedeploy_stub, "Succeeded")

    outcome = _run(clients)

    assert outcome["status"] == "Succeeded"
    assert [(c["target"], c["ok"]) for c in outcome["checks"]] == [
        ("INGESTION_VERSION_ARN", True),
        ("ORCHESTRATOR_VERSION_ARN", True),
        ("TICKETING_UPDATE_VERSION_ARN", True),
    ]


def test_function_error_reports_failed(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    crash = {"errorMessage": "No module named 'handlers.ingestion'", "errorType": "Runtime.ImportModuleError"}
    _expect_health(lambda_stub, crash, function_error="Unhandled")
    _expect_starts(lambda_stub)
    _expect_report(codedeploy_stub, "Failed")

    outcome = _run(clients)

    assert outcome["status"] == "Failed"
    ingestion = outcome["checks"][0]
    assert ingestion["ok"] is False
    assert "FunctionError Unhandled" in ingestion["detail"]
    assert "ImportModuleError" in ingestion["detail"]


def _run_with_a_crashing_orchestrator(
    clients: tuple[Any, Stubber, Any, Stubber], caplog: pytest.LogCaptureFixture, crash: dict[str, Any]
) -> tuple[str, str]:
    """What the hook logs, and the orchestrator check's detail, when the new orchestrator crashes so."""
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": "{}"})
    _expect_start(lambda_stub, ORCHESTRATOR, crash, function_error="Unhandled")
    _expect_start(lambda_stub, UPDATE, {"batchItemFailures": []})
    _expect_report(codedeploy_stub, "Failed")
    with caplog.at_level("INFO", logger=codedeploy_hook.__name__):
        outcome = _run(clients)
    return "\n".join(record.getMessage() for record in caplog.records), outcome["checks"][1]["detail"]


def test_a_failing_functions_answer_is_logged_without_the_personal_data_it_quotes(
    clients: tuple[Any, Stubber, Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a version whose error quotes a ticket: an e-mail address, a phone and an account number
    quoted = "Call me on +44 20 7946 0958 or at jane.doe@example.com, account ACC-55501234, PIN 4821"
    crash = {"errorMessage": f"cannot route {quoted!r}", "errorType": "ValueError"}

    # When the hook runs
    logged, detail = _run_with_a_crashing_orchestrator(clients, caplog, crash)

    # Then what it logs, and answers, says why the check failed without the customer's data
    assert "ORCHESTRATOR_VERSION_ARN FAILED" in logged and "ValueError" in logged
    for value in ("7946", "0958", "jane.doe", "example.com", "55501234", "4821"):
        assert value not in logged
        assert value not in detail


def test_a_timed_out_version_is_logged_with_how_long_it_ran(
    clients: tuple[Any, Stubber, Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a version that ran out of time: Lambda's message says how long it was given
    crash = {"errorMessage": "Task timed out after 30.00 seconds, on card 4111 1111 1111 1111 seconds ago"}

    # When the hook runs
    _, detail = _run_with_a_crashing_orchestrator(clients, caplog, crash)

    # Then the duration, the diagnosis, is kept: it is no customer's data; a card number is not
    assert "timed out after 30.00 seconds" in detail
    assert "1111" not in detail


@pytest.mark.parametrize(
    ("log_level", "levels_logged"),
    [
        # As the other functions read it (Powertools): any case, POWERTOOLS_LOG_LEVEL first
        ({"LOG_LEVEL": "warning"}, []),
        ({"LOG_LEVEL": "DEBUG", "POWERTOOLS_LOG_LEVEL": "ERROR"}, []),
        ({}, ["INFO"] * 4),
        # Not a level: logged at INFO, saying so, and the verdict is still reported
        ({"LOG_LEVEL": "LOUD"}, ["WARNING"] + ["INFO"] * 4),
    ],
)
def test_the_hook_logs_at_the_level_the_stack_sets(
    clients: tuple[Any, Stubber, Any, Stubber],
    caplog: pytest.LogCaptureFixture,
    log_level: dict[str, str],
    levels_logged: list[str],
) -> None:
    # Given healthy versions, and the stack's log level
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": '{"status": "ok"}'})
    _expect_starts(lambda_stub)
    _expect_report(codedeploy_stub, "Succeeded")
    caplog.set_level("DEBUG")
    # When the hook runs
    outcome = _run(clients, {**ENVIRON, **log_level})
    # Then it logs what that level lets through, and reports
    assert outcome["status"] == "Succeeded"
    assert [r.levelname for r in caplog.records if r.name == codedeploy_hook.__name__] == levels_logged


def test_server_error_status_code_reports_failed(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 503, "body": '{"message": "dependencies unavailable"}'})
    _expect_starts(lambda_stub)
    _expect_report(codedeploy_stub, "Failed")

    outcome = _run(clients)

    assert outcome["status"] == "Failed"
    assert "statusCode 503" in outcome["checks"][0]["detail"]
    assert [c["ok"] for c in outcome["checks"][1:]] == [True, True]


def test_invoke_error_on_a_start_check_reports_failed(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": "{}"})
    lambda_stub.add_client_error(
        "invoke",
        service_error_code="ResourceNotFoundException",
        service_message="Function not found",
        http_status_code=404,
        expected_params={"FunctionName": ORCHESTRATOR, "InvocationType": "RequestResponse", "Payload": ANY},
    )
    _expect_start(lambda_stub, UPDATE, {"batchItemFailures": []})
    _expect_report(codedeploy_stub, "Failed")

    outcome = _run(clients)

    assert outcome["status"] == "Failed"
    assert "ResourceNotFoundException" in outcome["checks"][1]["detail"]


def test_missing_target_configuration_fails_closed(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": "{}"})
    _expect_report(codedeploy_stub, "Failed")

    outcome = _run(clients, environ={"INGESTION_VERSION_ARN": INGESTION})

    assert outcome["status"] == "Failed"
    assert [c["detail"] for c in outcome["checks"] if not c["ok"]] == [
        "ORCHESTRATOR_VERSION_ARN is not set",
        "TICKETING_UPDATE_VERSION_ARN is not set",
    ]


def test_the_health_payload_is_an_api_gateway_get_health_event(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    sent: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        if params.get("FunctionName") == INGESTION:
            sent.append(json.loads(params["Payload"]))

    clients[0].meta.events.register("provide-client-params.lambda.Invoke", capture)
    _expect_health(lambda_stub, {"statusCode": 200, "body": "{}"})
    _expect_starts(lambda_stub)
    _expect_report(codedeploy_stub, "Succeeded")

    _run(clients)

    assert sent == [HEALTH_EVENT]
    assert sent[0]["httpMethod"] == "GET"
    assert sent[0]["resource"] == sent[0]["path"] == "/health"


def test_an_orchestrator_version_that_cannot_start_fails_the_deployment(
    clients: tuple[Any, Stubber, Any, Stubber],
) -> None:
    # Given a new orchestrator version whose start fails (a model without a price, say)
    _, lambda_stub, _, codedeploy_stub = clients
    crash = {"errorMessage": "no price is known for model 'amazon.nova-pro-v1:0'", "errorType": "ConfigurationError"}
    sent: list[tuple[str, Any]] = []
    clients[0].meta.events.register(
        "provide-client-params.lambda.Invoke",
        lambda params, **_: sent.append((params["FunctionName"], json.loads(params.get("Payload") or "null"))),
    )
    _expect_health(lambda_stub, {"statusCode": 200, "body": "{}"})
    _expect_start(lambda_stub, ORCHESTRATOR, crash, function_error="Unhandled")
    _expect_start(lambda_stub, UPDATE, {"batchItemFailures": []})
    _expect_report(codedeploy_stub, "Failed")

    # When the hook runs
    outcome = _run(clients)

    # Then the version was run on its check event, not merely looked up, and the deployment fails
    assert outcome["status"] == "Failed"
    orchestrator = outcome["checks"][1]
    assert (orchestrator["target"], orchestrator["ok"]) == ("ORCHESTRATOR_VERSION_ARN", False)
    assert "FunctionError Unhandled" in orchestrator["detail"] and "ConfigurationError" in orchestrator["detail"]
    assert sent[1:] == [
        (ORCHESTRATOR, codedeploy_hook.START_EVENTS["ORCHESTRATOR_VERSION_ARN"]),
        (UPDATE, codedeploy_hook.START_EVENTS["TICKETING_UPDATE_VERSION_ARN"]),
    ]


def test_report_failure_propagates(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    _, lambda_stub, _, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": "{}"})
    _expect_starts(lambda_stub)
    codedeploy_stub.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        service_error_code="AccessDeniedException",
        http_status_code=400,
    )

    with pytest.raises(ClientError, match="AccessDenied"):
        _run(clients)


def test_non_codedeploy_event_is_rejected() -> None:
    with pytest.raises(ValueError, match="DeploymentId"):
        handle({}, codedeploy_client=object(), lambda_client=object(), environ=ENVIRON)


def test_lambda_handler_builds_clients_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_handle(event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        seen["event"], seen["kwargs"] = event, kwargs
        return {"status": "Succeeded", "checks": []}

    monkeypatch.setattr(codedeploy_hook, "handle", fake_handle)

    context = LocalLambdaContext(function_name="hook", timeout_seconds=120.0)
    assert lambda_handler(EVENT, context) == {"status": "Succeeded", "checks": []}
    assert seen["event"] == EVENT
    # The checks must end in time to report, whatever the invokes do
    remaining = seen["kwargs"]["deadline"] - time.monotonic()
    assert (
        120.0 - codedeploy_hook.REPORT_RESERVE_SECONDS - 5 < remaining <= 120.0 - codedeploy_hook.REPORT_RESERVE_SECONDS
    )


def test_checks_that_could_not_finish_in_time_fail_without_running(
    clients: tuple[Any, Stubber, Any, Stubber],
) -> None:
    # Given time for one slow check only: the health check takes all of it
    lambda_client, lambda_stub, codedeploy_client, codedeploy_stub = clients
    _expect_health(lambda_stub, {"statusCode": 200, "body": '{"status": "ok"}'})
    _expect_report(codedeploy_stub, "Failed")
    times = iter([0.0, 100.0, 100.0])
    # When the hook runs
    outcome = handle(
        EVENT,
        codedeploy_client=codedeploy_client,
        lambda_client=lambda_client,
        environ=ENVIRON,
        deadline=codedeploy_hook.CHECK_WORST_CASE_SECONDS + 10,
        clock=lambda: next(times),
    )
    # Then the other two are failed unrun (no invoke was made for them), and Failed is reported
    assert outcome["status"] == "Failed"
    assert [(c["target"], c["ok"], c["detail"]) for c in outcome["checks"][1:]] == [
        ("ORCHESTRATOR_VERSION_ARN", False, "not checked: the hook ran out of time"),
        ("TICKETING_UPDATE_VERSION_ARN", False, "not checked: the hook ran out of time"),
    ]
