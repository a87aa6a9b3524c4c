"""CodeDeploy PreTraffic hook: smoke-test the new function versions before any traffic shifts to them.

CodeDeploy invokes this function (named `CodeDeployHook_...`, the prefix its service role may invoke) with
`{"DeploymentId": ..., "LifecycleEventHookExecutionId": ...}` before it moves the `live` alias of a function. We
check the versions the stack is deploying, whose ARNs the template passes in the environment, and report Succeeded
or Failed back with PutLifecycleEventHookExecutionStatus; Failed makes CodeDeploy stop and roll back. The report is
sent whatever happens here: without one the deployment hangs until CodeDeploy's one-hour hook timeout.

Checks, per version:
  INGESTION_VERSION_ARN         invoked with a GET /health API Gateway proxy event: it must answer statusCode 200
                                without a FunctionError. /health has no side effects.
  ORCHESTRATOR_VERSION_ARN      invoked with an event that does nothing once the version has started (START_EVENTS):
  TICKETING_UPDATE_VERSION_ARN  it must answer without a FunctionError. Each function builds its settings, model,
                                prices and clients when it starts, so this proves the version can take events, where
                                a DryRun would only prove it exists. A real event would route a ticket (Bedrock cost,
                                a stored decision) or write to the external ticketing system, so their behaviour is
                                left to the canary alarms.
One hook serves the three deployment groups; every run checks every configured version (cheap: three invocations that do nothing).
No dependency beyond boto3 (provided by the Lambda runtime): this module is packaged on its own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


def _apply_log_level(env: Mapping[str, str]) -> None:
    """The level the other functions get from Powertools (POWERTOOLS_LOG_LEVEL, else LOG_LEVEL, in any
    case; INFO when unset). Where they refuse to start on a level that is none, the hook logs at INFO
    and says so: a hook that fails before reporting leaves CodeDeploy waiting an hour."""
    raw = env.get("POWERTOOLS_LOG_LEVEL") or env.get("LOG_LEVEL") or "INFO"
    level = logging.getLevelNamesMapping().get(raw.strip().upper())
    logger.setLevel(level if level is not None else logging.INFO)
    if level is None:
        logger.warning("LOG_LEVEL %r is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL); logging at INFO", raw[:40])


CheckKind = Literal["health", "start"]
HookStatus = Literal["Succeeded", "Failed"]

# Environment variable -> how that version is checked.
TARGETS: dict[str, CheckKind] = {
    "INGESTION_VERSION_ARN": "health",
    "ORCHESTRATOR_VERSION_ARN": "start",
    "TICKETING_UPDATE_VERSION_ARN": "start",
}

# Events the handlers answer without doing anything: the orchestrator's check event (matched in
# handlers/orchestrator.py, which this module, packaged alone, cannot import), and a stream batch
# with no records.
START_EVENTS: dict[str, dict[str, Any]] = {
    "ORCHESTRATOR_VERSION_ARN": {"source": "codedeploy.pretraffic", "detail-type": "PreTrafficCheck", "detail": {}},
    "TICKETING_UPDATE_VERSION_ARN": {"Records": []},
}

# A minimal API Gateway REST (v1) proxy event for GET /health, as API Gateway would send it.
HEALTH_EVENT: dict[str, Any] = {
    "resource": "/health",
    "path": "/health",
    "httpMethod": "GET",
    "headers": {"Accept": "application/json", "User-Agent": "codedeploy-pretraffic-hook"},
    "multiValueHeaders": {"Accept": ["application/json"], "User-Agent": ["codedeploy-pretraffic-hook"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "resourcePath": "/health",
        "httpMethod": "GET",
        "path": "/pretraffic/health",
        "stage": "pretraffic",
        "requestId": "codedeploy-pretraffic-hook",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "codedeploy-pretraffic-hook"},
    },
    "body": None,
    "isBase64Encoded": False,
}

# How much of a failing function's answer goes into the log line.
_EXCERPT = 500

# A failing function's answer (its error message, its response body) can quote what it was
# handling: e-mail addresses, and numbers of four digits or more however grouped (phone, account,
# card numbers, PINs), are masked before it is logged. Cruder than the app's redaction, which needs
# pydantic (domain.models), where this module is packaged with nothing beyond boto3. A duration
# ("Task timed out after 30.00 seconds") is the diagnosis itself, and no customer's: it is kept.
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+")
_NUMBER = re.compile(r"\d(?:[\s().-]?\d){3,}")
_DURATION = re.compile(r"\d+(?:\.\d+)?")
_TIME_UNIT = re.compile(r"\s*(?:seconds?|secs?|ms|milliseconds?)\b")


def _masked(text: str) -> str:
    def number(match: re.Match[str]) -> str:
        # One plain number, followed by its unit: a card number followed by "seconds" is still masked.
        is_duration = _DURATION.fullmatch(match.group()) and _TIME_UNIT.match(match.string, match.end())
        return match.group() if is_duration else "<NUMBER>"

    return _NUMBER.sub(number, _EMAIL.sub("<EMAIL>", text))


def _excerpt(payload: bytes) -> str:
    # Masked before it is cut: a value cut in two could no longer be recognised.
    return _masked(payload[: _EXCERPT * 4].decode("utf-8", errors="replace"))[:_EXCERPT]


# Invoking a version: each check event is answered as soon as the function has started (at most 10 s of
# init), so 25 s leaves room for a cold start.
_INVOKE_CONNECT_SECONDS, _INVOKE_READ_SECONDS, _INVOKE_ATTEMPTS = 3, 25, 2
# A check starts only with this much time left: its slowest, every attempt timing out.
CHECK_WORST_CASE_SECONDS = _INVOKE_ATTEMPTS * (_INVOKE_CONNECT_SECONDS + _INVOKE_READ_SECONDS)
# Reporting to CodeDeploy, at its slowest: kept free, since a hook that never reports holds the
# deployment for CodeDeploy's one-hour hook timeout.
_REPORT_CONNECT_SECONDS, _REPORT_READ_SECONDS, _REPORT_ATTEMPTS = 3, 5, 3
REPORT_RESERVE_SECONDS = _REPORT_ATTEMPTS * (_REPORT_CONNECT_SECONDS + _REPORT_READ_SECONDS) + 3


@dataclass(frozen=True)
class CheckResult:
    target: str
    function_arn: str
    kind: CheckKind
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "function": self.function_arn,
            "kind": self.kind,
            "ok": self.ok,
            "detail": self.detail,
        }


def _client_config(connect: float, read: float, attempts: int) -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=connect, read_timeout=read, retries={"mode": "standard", "total_max_attempts": attempts}
    )


def _lambda_client() -> Any:
    import boto3

    return boto3.client(
        "lambda", config=_client_config(_INVOKE_CONNECT_SECONDS, _INVOKE_READ_SECONDS, _INVOKE_ATTEMPTS)
    )


def _codedeploy_client() -> Any:
    import boto3

    return boto3.client(
        "codedeploy", config=_client_config(_REPORT_CONNECT_SECONDS, _REPORT_READ_SECONDS, _REPORT_ATTEMPTS)
    )


def _read_payload(response: Mapping[str, Any]) -> bytes:
    payload = response.get("Payload")
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    data = payload.read()
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


def check_health(lambda_client: Any, target: str, function_arn: str) -> CheckResult:
    """Invoke the version with GET /health; it must return a proxy response with statusCode 200."""
    response = lambda_client.invoke(
        FunctionName=function_arn,
        InvocationType="RequestResponse",
        Payload=json.dumps(HEALTH_EVENT).encode("utf-8"),
    )
    payload = _read_payload(response)
    excerpt = _excerpt(payload)
    if response.get("FunctionError"):
        return CheckResult(
            target, function_arn, "health", False, f"FunctionError {response['FunctionError']}: {excerpt}"
        )
    try:
        answer = json.loads(payload) if payload else None
    except ValueError:
        return CheckResult(target, function_arn, "health", False, f"answer is not JSON: {excerpt}")
    status = answer.get("statusCode") if isinstance(answer, dict) else None
    if status != 200:
        return CheckResult(
            target, function_arn, "health", False, f"GET /health answered statusCode {status}: {excerpt}"
        )
    return CheckResult(target, function_arn, "health", True, "GET /health answered 200")


def check_start(lambda_client: Any, target: str, function_arn: str) -> CheckResult:
    """Invoke the version with its no-op event: it must answer without a FunctionError (an init
    failure, such as invalid settings or a model without a price, is one)."""
    response = lambda_client.invoke(
        FunctionName=function_arn,
        InvocationType="RequestResponse",
        Payload=json.dumps(START_EVENTS[target]).encode("utf-8"),
    )
    if response.get("FunctionError"):
        excerpt = _excerpt(_read_payload(response))
        return CheckResult(
            target, function_arn, "start", False, f"FunctionError {response['FunctionError']}: {excerpt}"
        )
    return CheckResult(target, function_arn, "start", True, "started and answered the check event")


def run_checks(
    lambda_client: Any,
    environ: Mapping[str, str],
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[CheckResult]:
    """One result per configured target; a failed invoke call is a failed check, not an exception.

    With a `deadline` (a `clock` value), a check that could not finish by then, at its slowest, is
    failed without being run: the hook must keep the time to report.
    """
    results = []
    for target, kind in TARGETS.items():
        function_arn = environ.get(target, "").strip()
        if not function_arn:
            results.append(CheckResult(target, "", kind, False, f"{target} is not set"))
            continue
        if deadline is not None and deadline - clock() < CHECK_WORST_CASE_SECONDS:
            results.append(CheckResult(target, function_arn, kind, False, "not checked: the hook ran out of time"))
            continue
        try:
            if kind == "health":
                result = check_health(lambda_client, target, function_arn)
            else:
                result = check_start(lambda_client, target, function_arn)
        except Exception as exc:  # any failure to invoke fails the deployment, with the reason logged
            failure = _masked(f"{type(exc).__name__}: {exc}")
            result = CheckResult(target, function_arn, kind, False, f"invoke failed: {failure}")
        results.append(result)
    return results


def handle(
    event: Mapping[str, Any],
    *,
    codedeploy_client: Any = None,
    lambda_client: Any = None,
    environ: Mapping[str, str] | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run the checks, by `deadline` if given, and report the verdict to CodeDeploy. Clients are
    injectable for tests."""
    deployment_id = event.get("DeploymentId")
    execution_id = event.get("LifecycleEventHookExecutionId")
    if not deployment_id or not execution_id:
        # Not a CodeDeploy lifecycle event: there is nobody to report to.
        raise ValueError("event needs DeploymentId and LifecycleEventHookExecutionId (is this a CodeDeploy hook call?)")

    env = os.environ if environ is None else environ
    _apply_log_level(env)
    results: list[CheckResult] = []
    try:
        client = lambda_client if lambda_client is not None else _lambda_client()
        results = run_checks(client, env, deadline=deadline, clock=clock)
        status: HookStatus = "Succeeded" if results and all(r.ok for r in results) else "Failed"
    except Exception:  # e.g. no client could be built: still report, or CodeDeploy waits an hour
        logger.exception("pre-traffic checks could not run")
        status = "Failed"

    for result in results:
        log = logger.info if result.ok else logger.error
        log(
            "check %s %s (%s): %s",
            result.target,
            "passed" if result.ok else "FAILED",
            result.function_arn,
            result.detail,
        )

    codedeploy = codedeploy_client if codedeploy_client is not None else _codedeploy_client()
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id,
        lifecycleEventHookExecutionId=execution_id,
        status=status,
    )
    logger.info("deployment %s: reported %s", deployment_id, status)
    return {"status": status, "checks": [r.as_dict() for r in results]}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    return handle(event, deadline=time.monotonic() + remaining - REPORT_RESERVE_SECONDS)
