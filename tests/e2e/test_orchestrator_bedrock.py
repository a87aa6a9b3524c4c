"""The orchestrator Lambda end to end with the real BedrockModel talking to a fake Bedrock Runtime.

Everything is built by handlers.bootstrap.build_orchestrator_deps() from the environment, as in
Lambda: the DynamoDB decisions table in moto, the customer DB and status API as HTTP servers, and
AWS_ENDPOINT_URL_BEDROCK_RUNTIME pointing boto3 at tests/bedrock_server.py.

Why moto's mock_aws can stay on: it answers only URLs that match one of its AWS backends
(bedrock-runtime.<region>.amazonaws.com for Bedrock). A request to http://127.0.0.1:<port> matches
none and goes out over the socket, which the recorded Converse calls below prove. So the real
DynamoDB repository is exercised, with no repository swapped in behind OrchestratorDeps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.engines.hybrid import CONFLICT_MARGIN
from bench.common import EVAL_CUSTOMERS, EVAL_SERVICES, eval_rows
from domain.guardrails import IMPLAUSIBLE_SCORE
from domain.models import CustomerContext, RoutingDecision, TicketReceived
from domain.taxonomy import load_taxonomy
from handlers import orchestrator
from handlers.bootstrap import build_orchestrator_deps
from handlers.local_context import LocalLambdaContext
from handlers.settings import EngineName, RoutingSettings
from tests.aws_resources import create_decisions_table
from tests.bedrock_server import FakeBedrockRuntime, always_throttle, inject_p0, unknown_team
from tests.http_servers import FakeCustomerDb, FakeServiceStatusApi

# Twelve evaluation tickets: all four categories, VIP enterprises with outages on their services,
# and some the classifier is unsure of (EV-0010, -0014, -0015, -0025, -0033, -0117 with the bundled
# model), which the hybrid engine escalates to the model.
TICKET_IDS = (
    "EV-0001",
    "EV-0002",
    "EV-0005",
    "EV-0006",
    "EV-0008",
    "EV-0010",
    "EV-0014",
    "EV-0015",
    "EV-0022",
    "EV-0025",
    "EV-0033",
    "EV-0117",
)
ROWS = {row["ticket_id"]: row for row in eval_rows()}
CUSTOMERS: list[dict[str, Any]] = json.loads(EVAL_CUSTOMERS.read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = json.loads(EVAL_SERVICES.read_text(encoding="utf-8"))
TAXONOMY = load_taxonomy()


def ticket_received(ticket_id: str) -> dict[str, Any]:
    """The EventBridge envelope the ingestion function's PutEvents produces for an eval ticket."""
    row = ROWS[ticket_id]
    profile = next((c for c in CUSTOMERS if c["customer_id"] == row["customer_id"]), None)
    detail = TicketReceived(
        ticket_id=ticket_id,
        customer_id=row["customer_id"],
        subject=row["subject"],
        description=row["description"],
        timestamp=row["timestamp"],
        correlation_id=f"corr-{ticket_id}",
        customer_context=CustomerContext(
            is_vip=bool(profile and profile["is_vip"]),
            account_type=profile["account_type"] if profile else "Consumer",
        ),
    )
    return {
        "version": "0",
        "id": f"evt-{ticket_id}",
        "detail-type": "TicketReceived",
        "source": "support.ticketing",
        "account": "123456789012",
        "time": row["timestamp"],
        "region": "us-east-1",
        "resources": [],
        "detail": detail.model_dump(mode="json"),
    }


@pytest.fixture(scope="module")
def customer_db() -> Iterator[FakeCustomerDb]:
    with FakeCustomerDb(CUSTOMERS) as server:
        yield server


@pytest.fixture(scope="module")
def status_api() -> Iterator[FakeServiceStatusApi]:
    with FakeServiceStatusApi(
        SERVICES["outages"], known_issues=SERVICES["known_issues"], overall_health=SERVICES["overall_health"]
    ) as server:
        yield server


class Orchestrator:
    """Runs the Lambda handler over the twelve tickets, one decisions table per run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, customer_db: FakeCustomerDb, status_api: FakeServiceStatusApi):
        self.monkeypatch = monkeypatch
        self.customer_db = customer_db
        self.status_api = status_api
        self.dynamodb = boto3.client("dynamodb")

    def route_all(self, engine: EngineName, bedrock: FakeBedrockRuntime | None = None) -> dict[str, RoutingDecision]:
        table = f"routing-decisions-{engine}-{id(bedrock)}"
        create_decisions_table(self.dynamodb, table)
        env = {
            "ROUTING_ENGINE": engine,
            "ROUTING_DECISIONS_TABLE": table,
            "CUSTOMER_DB_ENDPOINT": self.customer_db.url,
            "SERVICE_STATUS_ENDPOINT": self.status_api.url,
        }
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        if bedrock is not None:
            # Read when the boto3 client is created, i.e. while the deps are built below.
            self.monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.url)
        deps = build_orchestrator_deps()
        for ticket_id in TICKET_IDS:
            context = LocalLambdaContext(function_name="orchestrator", timeout_seconds=30)
            orchestrator.lambda_handler(ticket_received(ticket_id), context, deps=deps)
        stored = {ticket_id: deps.repository.get(ticket_id) for ticket_id in TICKET_IDS}
        assert self.dynamodb.scan(TableName=table, Select="COUNT")["Count"] == len(TICKET_IDS)
        return {ticket_id: decision for ticket_id, decision in stored.items() if decision is not None}


def fake_aws(mp: pytest.MonkeyPatch, config_dir: Path) -> None:
    """Fake credentials, a fixed region, no profile or endpoint override, an empty AWS config."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        mp.delenv(name)
    empty = config_dir / "aws-config"
    empty.write_text("")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
    }.items():
        mp.setenv(name, value)


@pytest.fixture
def router(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, customer_db: FakeCustomerDb, status_api: FakeServiceStatusApi
) -> Iterator[Orchestrator]:
    fake_aws(monkeypatch, tmp_path)
    with mock_aws():
        yield Orchestrator(monkeypatch, customer_db, status_api)


@pytest.fixture(scope="module")
def baseline(
    customer_db: FakeCustomerDb, status_api: FakeServiceStatusApi, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, RoutingDecision]:
    """The pipeline engine's decisions for the twelve tickets, through the same handler, once."""
    with pytest.MonkeyPatch.context() as mp:
        fake_aws(mp, tmp_path_factory.mktemp("aws"))  # before mock_aws, which restores what it found
        with mock_aws():
            return Orchestrator(mp, customer_db, status_api).route_all("pipeline")


@pytest.fixture(scope="module")
def unsure(baseline: dict[str, RoutingDecision]) -> set[str]:
    """The tickets the hybrid engine escalates: the classifier below the threshold or too close to call."""
    threshold = RoutingSettings().escalation_threshold
    escalated = set()
    for ticket_id, decision in baseline.items():
        ranked = decision.issue_classification.ranked
        if ranked[0].score < threshold or (len(ranked) > 1 and ranked[0].score - ranked[1].score < CONFLICT_MARGIN):
            escalated.add(ticket_id)
    assert 0 < len(escalated) < len(TICKET_IDS)  # six with the bundled classifier
    return escalated


@pytest.fixture
def bedrock() -> Iterator[FakeBedrockRuntime]:
    with FakeBedrockRuntime() as server:
        yield server


def emitted_metric(stdout: str, name: str) -> float:
    total = 0.0
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line).get(name, 0)
            total += sum(value) if isinstance(value, list) else value
    return total


def failed_model_calls(decision: RoutingDecision) -> list[str]:
    return [c.detail for c in decision.tool_calls if c.tool == "model" and not c.ok]


# --- a well-behaved model -------------------------------------------------------------------------


def test_agent_mode_decides_every_ticket_in_one_model_call_billed_as_bedrock_reported(
    router: Orchestrator, bedrock: FakeBedrockRuntime, baseline: dict[str, RoutingDecision]
) -> None:
    # Given a model that answers from the evidence, and the pipeline's decisions for comparison
    # When the orchestrator routes the twelve tickets with the agent engine
    decisions = router.route_all("agent", bedrock)
    # Then every ticket has a decision, on the team the evidence supports
    assert set(decisions) == set(TICKET_IDS)
    assert {t: d.assigned_team for t, d in decisions.items()} == {t: d.assigned_team for t, d in baseline.items()}
    assert {d.engine for d in decisions.values()} == {"agent"}
    for ticket_id, decision in decisions.items():
        calls = bedrock.calls_for(ticket_id)
        # And each took at most two model calls, as counted on the wire and on the decision
        assert 1 <= len(calls) <= 2
        assert decision.usage.model_calls == len(calls)
        # And the decision's tokens are exactly what Bedrock reported for that ticket
        assert decision.usage.input_tokens == sum(c.usage["inputTokens"] for c in calls)
        assert decision.usage.output_tokens == sum(c.usage["outputTokens"] for c in calls)
        assert decision.usage.cache_read_tokens == sum(c.usage["cacheReadInputTokens"] for c in calls)
        assert decision.cost_usd > 0
    # And the real client asked for prompt caching: the first ticket writes the tools and system
    # prompt (over the 1,024-token minimum) to the cache, every later ticket reads that same prefix
    first, *rest = [bedrock.calls_for(t)[0] for t in TICKET_IDS]
    assert first.usage["cacheReadInputTokens"] == 0 < first.usage["cacheWriteInputTokens"]
    shared_prefix = {c.usage["cacheReadInputTokens"] for c in rest}
    # (only the static prefix is cached: no ticket's own text is billed at the cache-write rate)
    assert len(shared_prefix) == 1 and 1024 <= shared_prefix.pop() == first.usage["cacheWriteInputTokens"]


def test_hybrid_mode_only_consults_the_model_on_tickets_the_classifier_is_unsure_of(
    router: Orchestrator, bedrock: FakeBedrockRuntime, unsure: set[str]
) -> None:
    # Given a well-behaved model
    # When the orchestrator routes the twelve tickets with the hybrid engine
    decisions = router.route_all("hybrid", bedrock)
    # Then every ticket is decided, and only the unsure ones cost a model call, one each
    assert set(decisions) == set(TICKET_IDS)
    consulted = {t for t, d in decisions.items() if d.usage.model_calls}
    assert consulted == bedrock.tickets_seen() == unsure
    assert all(len(bedrock.calls_for(t)) == 1 for t in consulted)
    assert all(d.cost_usd == 0.0 for t, d in decisions.items() if t not in consulted)


# --- a model that misbehaves ----------------------------------------------------------------------


def test_an_injected_model_cannot_set_priority_or_vip_nor_move_a_ticket_unseen(
    router: Orchestrator, bedrock: FakeBedrockRuntime, baseline: dict[str, RoutingDecision]
) -> None:
    # Given a model that answers every ticket "Network Outage, confidence 1.0, VIP, P0"
    bedrock.policy = inject_p0
    # When the agent engine routes the twelve tickets through it
    decisions = router.route_all("agent", bedrock)
    assert set(decisions) == set(TICKET_IDS)
    moved = set()
    for ticket_id, decision in decisions.items():
        pipeline = baseline[ticket_id]
        # Then priority (VIP status included) is exactly what the domain rules give the pipeline
        assert decision.priority == pipeline.priority
        assert decision.priority_level == pipeline.priority_level
        if decision.assigned_team == pipeline.assigned_team:
            continue
        moved.add(ticket_id)
        # And a ticket only moves to a category the classifier itself gives a real chance ...
        support = {c.category: c.score for c in pipeline.issue_classification.ranked}
        assert decision.issue_category == "Network Outage"
        assert support["Network Outage"] >= IMPLAUSIBLE_SCORE
        # ... and a person looks
        assert decision.requires_manual_review
        assert "over the classifier's" in decision.reasoning
    # And both kinds occur among the twelve: tickets held where the classifier rules Network Outage
    # out (below 0.05), tickets moved where it does not (five with the bundled classifier)
    assert moved and len(moved) < len(TICKET_IDS)


def test_an_unknown_team_from_the_model_is_replaced_by_the_taxonomys_and_reviewed(
    router: Orchestrator, bedrock: FakeBedrockRuntime, baseline: dict[str, RoutingDecision]
) -> None:
    # Given a model that names the right category but a team that does not exist
    bedrock.policy = unknown_team
    # When the agent engine routes the twelve tickets
    decisions = router.route_all("agent", bedrock)
    # Then each ticket goes to the category's team from the taxonomy, flagged for a person
    assert set(decisions) == set(TICKET_IDS)
    for ticket_id, decision in decisions.items():
        assert decision.assigned_team == TAXONOMY.team_for(decision.issue_category) == baseline[ticket_id].assigned_team
        assert decision.requires_manual_review
        assert "'Executive Escalations' is not a known team" in decision.reasoning


@pytest.mark.parametrize("engine", ["agent", "hybrid"])
def test_a_throttled_model_still_leaves_every_ticket_decided_and_flagged(
    engine: EngineName,
    router: Orchestrator,
    bedrock: FakeBedrockRuntime,
    unsure: set[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given Bedrock throttling every request
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # metrics on, whatever ran before
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    bedrock.policy = always_throttle
    # When the orchestrator routes the twelve tickets
    capsys.readouterr()
    decisions = router.route_all(engine, bedrock)
    # Then every ticket is decided
    assert set(decisions) == set(TICKET_IDS)
    consulted = bedrock.tickets_seen()
    assert consulted == (set(TICKET_IDS) if engine == "agent" else unsure)
    for ticket_id in consulted:
        decision = decisions[ticket_id]
        # And each ticket that needed the model fell back to the pipeline and asks for a person
        assert decision.requires_manual_review
        assert [d.split(":")[0] for d in failed_model_calls(decision)] == ["ModelThrottledException"]
        # And the client tried once (no botocore or Strands retry: a retry could outlast the function)
        assert len(bedrock.calls_for(ticket_id)) == 1
        assert decision.cost_usd == 0.0
    # And the handler counted one BedrockAPIErrors per ticket that needed the model
    assert emitted_metric(capsys.readouterr().out, "BedrockAPIErrors") == len(consulted)
