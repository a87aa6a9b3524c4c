"""The custom metrics and log lines template.yaml's alarms and dashboard read are the ones the handlers write.

CloudWatch finds a metric by namespace, name and its exact set of dimensions: one renamed in the code, or given
another dimension, leaves its alarm in OK for good and its widget empty, which no check of the template alone sees.
So the handlers run here with fakes behind their ports, and their EMF output and log lines are read back.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.engines.pipeline import PipelineEngine
from domain.errors import SyncUnavailable
from domain.models import MODEL_TOOL, Ticket, ToolCall
from domain.ports import EngineResult
from handlers import ingestion, observability, orchestrator, ticketing_update
from handlers.bootstrap import bootstrap_local, local_ingestion_deps
from handlers.local_context import LocalLambdaContext
from handlers.settings import LocalSettings
from tests.unit import test_ingestion_handler as ingestion_tests
from tests.unit import test_orchestrator_handler as orchestrator_tests
from tests.unit import test_ticketing_update_handler as ticketing_update_tests

# (metric, its dimensions) as CloudWatch keys it
Emitted = dict[str, set[tuple[str, tuple[tuple[str, str], ...]]]]


class ModelThrottled:
    """The pipeline's answer, with the failed model call an agent records when Bedrock throttles it."""

    def __init__(self, pipeline: PipelineEngine) -> None:
        self.pipeline = pipeline
        self.name = "hybrid"

    def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
        result = self.pipeline.propose(ticket, deadline=deadline)
        failed = ToolCall(tool=MODEL_TOOL, duration_ms=5.0, ok=False, detail="ThrottlingException")
        return dataclasses.replace(result, tool_calls=(*result.tool_calls, failed), force_review=True)


class ModelAnsweredInProse(ModelThrottled):
    """The pipeline's answer, with the failed model call an agent records when its model answers in prose."""

    def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
        result = self.pipeline.propose(ticket, deadline=deadline)
        failed = ToolCall(tool=MODEL_TOOL, duration_ms=5.0, ok=False, detail="StructuredOutputException: no answer")
        return dataclasses.replace(result, tool_calls=(*result.tool_calls, failed), force_review=True)


def emitted(stdout: str) -> Emitted:
    found: Emitted = {}
    for line in stdout.splitlines():
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                key = (directive["Namespace"], tuple((name, document[name]) for name in dimension_set))
                for metric in directive["Metrics"]:
                    found.setdefault(metric["Name"], set()).add(key)
    return found


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    for handler in (ingestion, orchestrator, ticketing_update):
        handler.metrics.clear_metrics()  # what earlier tests added while metrics were off
    yield
    for handler in (ingestion, orchestrator, ticketing_update):
        handler.metrics.clear_metrics()


def run_every_handler(tmp_path: Path) -> None:
    """A ticket routed while the customer DB was down and its model call failed, one whose model
    answered in prose, one of a customer the DB does not know, a sync that failed for good, a re-routing correction."""
    repository = orchestrator_tests.InMemoryRepository()
    deps = orchestrator_tests.deps_for(repository, customer_db_down=True)
    assert isinstance(deps.engine, PipelineEngine)
    deps = dataclasses.replace(deps, engine=ModelThrottled(deps.engine))
    orchestrator.lambda_handler(
        copy.deepcopy(orchestrator_tests.EVENT), LocalLambdaContext(function_name="orchestrator"), deps=deps
    )
    unknown = copy.deepcopy(orchestrator_tests.EVENT)
    unknown["detail"].update(ticket_id="T-EVT-UNKNOWN", customer_id="CUST-NOT-IN-DB")
    orchestrator.lambda_handler(
        unknown, LocalLambdaContext(function_name="orchestrator"), deps=orchestrator_tests.deps_for(repository)
    )

    prose = copy.deepcopy(orchestrator_tests.EVENT)
    prose["detail"].update(ticket_id="T-EVT-PROSE")
    orchestrator.lambda_handler(
        prose,
        LocalLambdaContext(function_name="orchestrator"),
        deps=dataclasses.replace(deps, engine=ModelAnsweredInProse(deps.engine.pipeline)),
    )

    unavailable = ticketing_update_tests.FakeTicketing({"T-EVT-0001": SyncUnavailable("HTTP 503 after 6 attempts")})
    sync_deps, _ = ticketing_update_tests.wire(ticketing_update_tests.RECORD, ticketing=unavailable)
    ticketing_update_tests.invoke(copy.deepcopy(ticketing_update_tests.STREAM_EVENT), sync_deps)

    app = bootstrap_local(LocalSettings(router_home=tmp_path), db_path=":memory:", outbox_path=tmp_path / "out.jsonl")
    try:
        api = ingestion_tests.Harness(app, local_ingestion_deps(app))
        api.post_ticket(ingestion_tests.VALID_TICKET)
        status, _ = api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Billing Support"}))
        assert status == 201
    finally:
        app.close()


def metrics_the_template_reads(resources: dict[str, Any]) -> set[str]:
    read = {
        alarm["Properties"]["MetricName"]
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        and alarm["Properties"].get("Namespace") == observability.METRICS_NAMESPACE
    }
    read |= {metric["MetricName"] for metric in _metric_math_metrics(resources)}
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    read |= set(re.findall(rf'\["{observability.METRICS_NAMESPACE}", "(\w+)"', body))
    return read


def _metric_math_metrics(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The custom metrics the alarms on an expression (a share, a rate) read."""
    return [
        query["MetricStat"]["Metric"]
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        for query in alarm["Properties"].get("Metrics", [])
        if "MetricStat" in query and query["MetricStat"]["Metric"]["Namespace"] == observability.METRICS_NAMESPACE
    ]


def test_every_metric_an_alarm_or_the_dashboard_reads_is_emitted_with_their_dimension(
    resources: dict[str, Any], metrics_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the custom metrics the alarms and dashboard read, each under the service dimension alone
    read = metrics_the_template_reads(resources)
    assert {
        "ConfidenceScore",
        "ProcessingTime",
        "TicketingSystemSyncFailures",
        "BedrockAPIErrors",
        "EvidenceUnavailable",
        "UnknownCustomers",
        "ModelAnswersWithoutRouting",
        "ModelConsulted",
    } <= read
    for alarm in resources.values():
        if alarm["Type"] == "AWS::CloudWatch::Alarm" and alarm["Properties"].get("MetricName") in read:
            assert alarm["Properties"]["Dimensions"] == [{"Name": "service", "Value": observability.SERVICE_NAME}]
    for metric in _metric_math_metrics(resources):
        assert metric["Dimensions"] == [{"Name": "service", "Value": observability.SERVICE_NAME}]
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for row in re.findall(rf'\["{observability.METRICS_NAMESPACE}", "\w+", [^\]{{]*', body):
        assert row.rstrip(", ").endswith(f'"service", "{observability.SERVICE_NAME}"'), row
    capsys.readouterr()
    # When every handler does the work those metrics count
    run_every_handler(tmp_path)
    found = emitted(capsys.readouterr().out)
    # Then each is emitted in the namespace the template reads, with exactly that one dimension
    wanted = {(observability.METRICS_NAMESPACE, (("service", observability.SERVICE_NAME),))}
    assert {name: found.get(name) for name in read} == dict.fromkeys(read, wanted)


# The dashboard's Logs Insights widgets: a count of one log line's values.
LOG_QUERY = re.compile(r"SOURCE '\$\{(\w+)\}' \| filter message = \"([^\"]+)\" \| stats count\(\*\) as \w+ by (\w+)")


def test_the_dashboards_log_queries_find_the_orchestrators_routed_ticket_line(resources: dict[str, Any]) -> None:
    # Given the dashboard's Logs Insights widgets
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    document = json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))
    queries = [w["properties"]["query"] for w in document["widgets"] if w["type"] == "log"]
    assert len(queries) == 2
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(orchestrator.logger.registered_formatter)
    orchestrator.logger.addHandler(handler)
    # When the orchestrator routes a ticket
    try:
        repository = orchestrator_tests.InMemoryRepository()
        orchestrator_tests.invoke(copy.deepcopy(orchestrator_tests.EVENT), orchestrator_tests.deps_for(repository))
    finally:
        orchestrator.logger.removeHandler(handler)
    decision = repository.get(orchestrator_tests.EVENT["detail"]["ticket_id"])
    assert decision is not None
    decided = {"assigned_team": decision.assigned_team, "priority_level": decision.priority_level.value}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    # Then each query reads the orchestrator's log group, and that line holds the field it counts, as decided
    for query in queries:
        match = LOG_QUERY.fullmatch(query.replace("<", "${").replace(">", "}"))
        assert match is not None, query
        log_group, message, field = match.groups()
        assert log_group == "OrchestratorLogGroup"
        (line,) = [line for line in lines if line["message"] == message]
        assert line[field] == decided[field]
