"""A corpus of prompt-injection tickets against the agent and hybrid engines, with a scripted model
that obeys whatever the ticket tells it. Priority, VIP status and team stay as the rules say."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.classifier.loader import load_classifier
from adapters.clock import FixedClock
from adapters.engines.agent import AgentEngine
from adapters.engines.hybrid import HybridEngine
from adapters.engines.pipeline import PipelineEngine
from domain.models import AccountType, RoutingDecision
from domain.services import route_ticket
from domain.taxonomy import load_taxonomy
from domain.toolkit import RoutingToolkit
from tests.builders import NOW, FakeCustomers, FakeServiceStatus, InMemoryRepository, a_customer, a_ticket
from tests.strands_fakes import TEAMS, ScriptedModel, answer, first_user_text

CORPUS = [json.loads(line) for line in (Path(__file__).parents[1] / "data" / "injection_tickets.jsonl").open()]
TAXONOMY = load_taxonomy()
CLASSIFIER = load_classifier()
TEAM_NAMES = "|".join(re.escape(t) for t in TEAMS.values())


def obeying_policy(messages: list[dict[str, Any]], tool_specs: Any) -> dict[str, Any]:
    """Does what the ticket says: the team it names, or Network Outage, at full confidence, 'P0'."""
    text = first_user_text(messages)
    named = re.search(TEAM_NAMES, text.split("Evidence:")[0])
    team = named.group(0) if named else "Network Operations"
    category = next(c for c, t in TEAMS.items() if t == team)
    return answer(category, team, confidence=1.0, reasoning="As instructed: VIP customer, priority P0.")


def route_with(engine_kind: str, item: dict[str, Any]) -> tuple[RoutingDecision, RoutingDecision]:
    """(decision by the engine under attack, decision by the pipeline) for the same ticket."""
    customers = FakeCustomers(a_customer("C-INJ", vip=False, account_type=AccountType.CONSUMER))
    decisions = []
    for kind in (engine_kind, "pipeline"):
        repo = InMemoryRepository()
        toolkit = RoutingToolkit(
            taxonomy=TAXONOMY,
            classifier=CLASSIFIER,
            customers=customers,
            service_status=FakeServiceStatus(),
            history=repo,
            clock=FixedClock(NOW),
        )
        pipeline = PipelineEngine(toolkit)
        agent = AgentEngine(
            toolkit=toolkit, pipeline=pipeline, model=ScriptedModel(obeying_policy), model_id="scripted"
        )
        engine = {"pipeline": pipeline, "agent": agent, "hybrid": HybridEngine(pipeline, agent)}[kind]
        ticket = a_ticket(item["id"], customer_id="C-INJ", subject=item["subject"], description=item["description"])
        decisions.append(
            route_ticket(
                ticket, correlation_id="c", engine=engine, repository=repo, taxonomy=TAXONOMY, clock=FixedClock(NOW)
            ).decision
        )
    return decisions[0], decisions[1]


@pytest.mark.parametrize("engine_kind", ["agent", "hybrid"])
@pytest.mark.parametrize("item", CORPUS, ids=[item["id"] for item in CORPUS])
def test_injected_ticket_keeps_rules_priority_vip_and_a_justified_team(engine_kind: str, item: dict[str, Any]) -> None:
    decision, pipeline = route_with(engine_kind, item)
    # Priority and VIP status are the rules', exactly as without any model
    assert decision.priority == pipeline.priority
    assert decision.priority.factors["customer"] == 0
    # The team is the one the ticket's real content justifies, and a person checks the ticket
    assert decision.assigned_team == TAXONOMY.team_for(item["true_category"]) == pipeline.assigned_team
    assert decision.requires_manual_review
