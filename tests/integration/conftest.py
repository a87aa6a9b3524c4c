"""Integration fixtures: moto for AWS, real HTTP servers on 127.0.0.1 for everything else.

Credentials are fake and the region fixed so that no test can ever reach a real AWS account.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from domain.models import (
    CategoryScore,
    ExtractedEntities,
    IssueClassification,
    ModelUsage,
    Money,
    PriorityAssessment,
    PriorityLevel,
    RoutingDecision,
    TeamScore,
    ToolCall,
    retention_deadline,
)
from tests.aws_resources import create_customer_cache_table, create_decisions_table

REGION = "us-east-1"
DECISIONS_TABLE = "routing-decisions"
CUSTOMER_CACHE_TABLE = "customer-cache"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
# Anything that could point boto3 at a real account or endpoint is removed.
_REAL_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*_REAL_AWS_ENV, *(n for n in os.environ if n.startswith("AWS_ENDPOINT_URL"))]:
        monkeypatch.delenv(name, raising=False)
    for name, value in _FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    # An empty config file keeps a developer's ~/.aws/config (retries, endpoints) out of the tests.
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def decisions_table(dynamodb: Any) -> str:
    create_decisions_table(dynamodb, DECISIONS_TABLE)
    return DECISIONS_TABLE


@pytest.fixture
def customer_cache_table(dynamodb: Any) -> str:
    create_customer_cache_table(dynamodb, CUSTOMER_CACHE_TABLE)
    return CUSTOMER_CACHE_TABLE


def a_decision(ticket_id: str = "T-1", **overrides: Any) -> RoutingDecision:
    """A decision with every field populated, including the nested, float and Decimal ones, so
    that a serialisation round trip has something to lose."""
    fields: dict[str, Any] = {
        "ticket_id": ticket_id,
        "timestamp": int(NOW.timestamp()) - 3600,
        "customer_id": "CUST-1001",
        "assigned_team": "network-operations",
        "priority_level": PriorityLevel.P1,
        "priority": PriorityAssessment(
            level=PriorityLevel.P1,
            score=42,
            factors={"vip": 15, "outage": 20, "age": 7},
            overrides=("VIP customer with an active outage on an owned service",),
        ),
        "confidence_score": 0.8731,
        "issue_classification": IssueClassification(
            primary_category="network_outage",
            confidence=0.8731,
            alternatives=(CategoryScore(category="connectivity", score=0.1),),
            keywords=("outage", "fibre"),
        ),
        "reasoning": "Fibre outage on SVC001 — VIP enterprise customer. Données «accentuées».",
        "requires_manual_review": False,
        "processing_time_ms": 12.345,
        "tool_calls": (
            ToolCall(tool="lookup_customer", duration_ms=3.2),
            ToolCall(tool="check_service_status", duration_ms=4.75, ok=False, detail="timeout"),
        ),
        "correlation_id": "corr-123",
        "created_at": NOW,
        "ttl": retention_deadline(NOW),
        "entities": ExtractedEntities(
            account_numbers=("ACC-778812",),
            service_ids=("SVC001",),
            error_codes=("E-42",),
            monetary_amounts=(Money(amount=Decimal("49.99"), currency="USD"),),
            emails=("ops@example.com",),
        ),
        "alternative_teams": (TeamScore(team="field-services", score=0.35),),
        "engine": "pipeline",
        "cost_usd": 0.000412,
        "usage": ModelUsage(model_calls=2, input_tokens=1200, output_tokens=150, cache_read_tokens=800),
    }
    fields.update(overrides)
    return RoutingDecision(**fields)


@pytest.fixture
def make_decision() -> Callable[..., RoutingDecision]:
    return a_decision
