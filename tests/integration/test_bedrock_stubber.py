"""The production BedrockModel (built by handlers.model_factory) under botocore's Stubber.

The real client config, request formatting, structured-output loop and error mapping all run;
only the HTTP exchange is replaced. Stubber answers before botocore's retry handler, so one stubbed
error is one failed model call (the fake-server e2e test covers the retry count).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.stub import Stubber

from adapters.clock import FixedClock
from adapters.engines.pipeline import PipelineEngine
from domain.costs import DEFAULT_PRICES, PER_MILLION, ModelPrice
from domain.errors import ConfigurationError
from domain.models import ModelUsage, RoutingDecision
from domain.ports import RoutingEngine
from domain.services import route_ticket
from domain.taxonomy import load_taxonomy
from domain.toolkit import RoutingToolkit
from handlers import orchestrator
from handlers.bootstrap import OrchestratorDeps
from handlers.local_context import LocalLambdaContext
from handlers.model_factory import build_model, build_model_engine
from handlers.settings import EngineName, RoutingSettings
from tests.builders import (
    NOW,
    FakeCustomers,
    FakeServiceStatus,
    FixedClassifier,
    InMemoryRepository,
    a_customer,
    a_ticket,
)

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
TAXONOMY = load_taxonomy()
CLOCK = FixedClock(NOW)
BILLING_TICKET = "They charged me a $50 reconnection fee although the bank bounced the payment by mistake."
ANSWER_TOOLS = {
    "classify_issue",
    "extract_entities",
    "check_vip_status",
    "check_service_status",
    "calculate_priority",
    "route_to_team",
    "get_historical_context",
    "RoutingAnswer",
}


@dataclass
class Rig:
    engine: RoutingEngine
    stubber: Stubber
    repository: InMemoryRepository
    sent: list[dict[str, Any]] = field(default_factory=list)

    def route(self, ticket_id: str = "T-STUB-1") -> RoutingDecision:
        ticket = a_ticket(ticket_id, subject="Reconnection fee", description=BILLING_TICKET)
        with self.stubber:
            outcome = route_ticket(
                ticket,
                correlation_id="c-1",
                engine=self.engine,
                repository=self.repository,
                taxonomy=TAXONOMY,
                clock=CLOCK,
            )
        return outcome.decision


NOVA_PRO_PRICE = ModelPrice(input=0.8, output=3.2, cache_read=0.2, cache_write=0.8)


def rig(engine: EngineName = "hybrid", *, model_id: str = SONNET, prices: dict[str, ModelPrice] | None = None) -> Rig:
    """The engine as production wires it, with the real BedrockModel's client under a Stubber.

    The classifier is unsure (0.55, runner-up 0.45), so the hybrid engine consults the model.
    """
    settings = RoutingSettings(
        routing_engine=engine, model_provider="bedrock", bedrock_model_id=model_id, model_prices=prices or {}
    )
    model, priced_as = build_model(settings)
    repository = InMemoryRepository()
    toolkit = RoutingToolkit(
        taxonomy=TAXONOMY,
        classifier=FixedClassifier("Billing Dispute", 0.55, runner_up="Account Access"),
        customers=FakeCustomers(a_customer("C-1")),
        service_status=FakeServiceStatus(),
        history=repository,
        clock=CLOCK,
    )
    built = build_model_engine(
        settings, toolkit=toolkit, pipeline=PipelineEngine(toolkit), model=model, model_id=priced_as
    )
    result = Rig(engine=built, stubber=Stubber(model.client), repository=repository)
    # What the client was asked to send, after Strands formatted it (validated by the Stubber too).
    model.client.meta.events.register(
        "before-parameter-build.bedrock-runtime.Converse",
        lambda params, **_: result.sent.append(copy.deepcopy(params)),
    )
    return result


def converse(content: list[dict[str, Any]], stop_reason: str, **usage: int) -> dict[str, Any]:
    tokens = {"inputTokens": 0, "outputTokens": 0, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0} | usage
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {**tokens, "totalTokens": sum(tokens.values())},
        "metrics": {"latencyMs": 321},
    }


def routing_answer(category: str, team: str, confidence: float, **usage: int) -> dict[str, Any]:
    answer = {
        "category": category,
        "team": team,
        "confidence": confidence,
        "reasoning": "A disputed reconnection fee: billing.",
        "alternatives": [{"category": "Account Access", "score": 0.05}],
    }
    return converse(
        [{"toolUse": {"toolUseId": "tooluse_1", "name": "RoutingAnswer", "input": answer}}], "tool_use", **usage
    )


def sonnet_cost(usage: ModelUsage) -> float:
    price = DEFAULT_PRICES["claude-sonnet-4-5"]
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * price.cache_read
        + usage.cache_write_tokens * price.cache_write
    ) / PER_MILLION


def emitted_metric(stdout: str, name: str) -> float:
    """The sum of one metric over the EMF documents Powertools printed."""
    total = 0.0
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line).get(name, 0)
            total += sum(value) if isinstance(value, list) else value
    return total


def model_calls(decision: RoutingDecision) -> list[Any]:
    return [c for c in decision.tool_calls if c.tool == "model"]


# --- (a) success ----------------------------------------------------------------------------------


def test_the_models_answer_decides_and_its_reported_usage_is_priced_exactly() -> None:
    # Given the hybrid engine, an unsure classifier, and Bedrock answering with a RoutingAnswer
    r = rig("hybrid")
    r.stubber.add_response(
        "converse",
        routing_answer(
            "Billing Dispute", "Billing Support", 0.92, inputTokens=412, outputTokens=87, cacheReadInputTokens=1530
        ),
    )
    # When the ticket is routed
    decision = r.route()
    # Then the model's answer decides, and nobody needs to look
    assert (decision.assigned_team, decision.engine, decision.requires_manual_review) == (
        "Billing Support",
        "hybrid",
        False,
    )
    assert decision.confidence_score == 0.92
    assert "A disputed reconnection fee: billing." in decision.reasoning
    # And the tokens are Bedrock's, priced at Sonnet 4.5's $3 / $15 / $0.30 per million
    expected_usage = ModelUsage(model_calls=1, input_tokens=412, output_tokens=87, cache_read_tokens=1530)
    assert decision.usage == expected_usage
    assert decision.cost_usd == round(sonnet_cost(expected_usage), 6) == 0.003
    assert [c.ok for c in model_calls(decision)] == [True]
    r.stubber.assert_no_pending_responses()


def test_the_request_carries_the_production_inference_config_tools_and_prompt_cache_point() -> None:
    # Given the agent engine built from the production settings
    r = rig("agent")
    r.stubber.add_response("converse", routing_answer("Billing Dispute", "Billing Support", 0.9, inputTokens=10))
    # When one ticket is routed
    r.route()
    # Then one Converse request went out, with temperature 0.1 and the configured token cap
    assert len(r.sent) == 1
    request = r.sent[0]
    assert request["modelId"] == SONNET
    assert request["inferenceConfig"] == {"maxTokens": 600, "temperature": 0.1}
    # And the seven tools plus the answer schema are offered, the model free to choose
    assert {t["toolSpec"]["name"] for t in request["toolConfig"]["tools"] if "toolSpec" in t} == ANSWER_TOOLS
    assert request["toolConfig"]["toolChoice"] == {"auto": {}}
    # And the static system prompt ends with a cache point, so later tickets read it from the cache
    assert request["system"][0]["text"].startswith("You route telecom support tickets")
    assert request["system"][-1] == {"cachePoint": {"type": "default"}}
    # And the ticket travels inside the untrusted <ticket> block with the evidence after it
    prompt = request["messages"][0]["content"][0]["text"]
    assert prompt.startswith('<ticket id="T-STUB-1"') and "- text classifier: Billing Dispute 0.55" in prompt


@pytest.mark.parametrize(
    "model_id",
    [
        "amazon.nova-pro-v1:0",
        # Claude models Bedrock has no prompt caching for
        "anthropic.claude-3-haiku-20240307-v1:0",
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-v2:1",
    ],
)
def test_no_prompt_cache_point_is_sent_to_a_model_without_prompt_caching(model_id: str) -> None:
    # Given the same factory pointed at a model without prompt caching on Bedrock (CacheConfig "auto"
    # must leave it alone)
    r = rig("agent", model_id=model_id, prices={model_id: NOVA_PRO_PRICE})
    r.stubber.add_response("converse", routing_answer("Billing Dispute", "Billing Support", 0.9, inputTokens=10))
    # When a ticket is routed
    r.route()
    # Then the request has no cache point anywhere (Bedrock would reject one for this model)
    assert "cachePoint" not in json.dumps(r.sent[0])


@pytest.mark.parametrize(
    "model_id",
    ["us.anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0", SONNET],
)
def test_a_claude_model_with_prompt_caching_gets_the_cache_point(model_id: str) -> None:
    r = rig("agent", model_id=model_id, prices={model_id: NOVA_PRO_PRICE})
    r.stubber.add_response("converse", routing_answer("Billing Dispute", "Billing Support", 0.9, inputTokens=10))
    r.route()
    assert r.sent[0]["system"][-1] == {"cachePoint": {"type": "default"}}


def test_a_model_without_a_known_price_is_refused_at_start_up_rather_than_billed_as_free() -> None:
    # Given a model the built-in price table does not know, and no MODEL_PRICES for it
    # When the engine is built / Then it refuses, saying how to give the price
    with pytest.raises(
        ConfigurationError, match=r"no price is known for model 'amazon\.nova-pro-v1:0': set MODEL_PRICES"
    ):
        rig("agent", model_id="amazon.nova-pro-v1:0")


def test_model_prices_from_the_environment_price_the_tickets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given MODEL_PRICES naming the model, as a deployment sets it
    monkeypatch.setenv("MODEL_PRICES", json.dumps({"amazon.nova-pro": NOVA_PRO_PRICE.model_dump()}))
    settings = RoutingSettings(routing_engine="agent", bedrock_model_id="amazon.nova-pro-v1:0")
    # When a ticket is routed with 1M input and 1M output tokens
    r = rig("agent", model_id="amazon.nova-pro-v1:0", prices=settings.model_prices)
    r.stubber.add_response(
        "converse",
        routing_answer("Billing Dispute", "Billing Support", 0.9, inputTokens=1_000_000, outputTokens=1_000_000),
    )
    decision = r.route()
    # Then it costs what the price says: 0.8 + 3.2 dollars
    assert decision.cost_usd == pytest.approx(4.0)


# --- (b) throttling -------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["hybrid", "agent"])
def test_throttling_falls_back_to_the_pipeline_flags_review_and_counts_a_bedrock_error(
    engine: EngineName, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Bedrock answering ThrottlingException, behind the orchestrator Lambda handler
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # metrics on, whatever ran before
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    r = rig(engine)
    r.stubber.add_client_error(
        "converse", service_error_code="ThrottlingException", service_message="Too many requests", http_status_code=429
    )
    deps = OrchestratorDeps(engine=r.engine, repository=r.repository, taxonomy=TAXONOMY, clock=CLOCK)
    event = {
        "detail-type": "TicketReceived",
        "source": "support.ticketing",
        "detail": {
            "ticket_id": "T-THROTTLED",
            "customer_id": "C-1",
            "subject": "Reconnection fee",
            "description": BILLING_TICKET,
            "timestamp": "2026-11-24T11:00:00Z",
            "correlation_id": "c-throttle",
            "customer_context": {"is_vip": False, "account_type": "Consumer"},
        },
    }
    # When the orchestrator handles the ticket
    with r.stubber:
        result = orchestrator.lambda_handler(event, LocalLambdaContext(function_name="orchestrator"), deps=deps)
    # Then the pipeline's team stands, and a person is asked to look
    assert (result["created"], result["assigned_team"], result["requires_manual_review"]) == (
        True,
        "Billing Support",
        True,
    )
    decision = r.repository.get("T-THROTTLED")
    assert decision is not None and decision.engine == engine
    # And the failed model call is on the record, with no tokens billed for it
    [failed] = model_calls(decision)
    assert not failed.ok and failed.detail.startswith("ModelThrottledException")
    assert decision.usage == ModelUsage(model_calls=1)
    assert decision.cost_usd == 0.0
    assert "Model unavailable (ModelThrottledException)" in decision.reasoning
    # And the handler's EMF output counts one BedrockAPIErrors
    assert emitted_metric(capsys.readouterr().out, "BedrockAPIErrors") == 1
    r.stubber.assert_no_pending_responses()


# --- (c) malformed output -------------------------------------------------------------------------


def test_text_instead_of_the_answer_even_when_forced_falls_back_and_both_calls_are_billed() -> None:
    # Given a model that chats instead of calling RoutingAnswer, twice
    r = rig("hybrid")
    r.stubber.add_response(
        "converse",
        converse(
            [{"text": "Looks like billing to me."}],
            "end_turn",
            inputTokens=500,
            outputTokens=8,
            cacheWriteInputTokens=1400,
        ),
    )
    r.stubber.add_response(
        "converse",
        converse(
            [{"text": "Billing, as I said."}], "end_turn", inputTokens=530, outputTokens=6, cacheReadInputTokens=1400
        ),
    )
    # When the ticket is routed
    decision = r.route()
    # Then the second request forced the answer tool (Strands' structured-output retry)
    assert len(r.sent) == 2
    assert r.sent[1]["toolConfig"]["toolChoice"] == {"tool": {"name": "RoutingAnswer"}}
    # And the pipeline's answer stands, flagged for review
    assert (decision.assigned_team, decision.requires_manual_review) == ("Billing Support", True)
    [failed] = model_calls(decision)
    assert not failed.ok and failed.detail.startswith("StructuredOutputException")
    # And both answered calls are billed on the decision, since Bedrock bills them
    expected_usage = ModelUsage(
        model_calls=2, input_tokens=1030, output_tokens=14, cache_read_tokens=1400, cache_write_tokens=1400
    )
    assert decision.usage == expected_usage
    assert decision.cost_usd == round(sonnet_cost(expected_usage), 6)
    r.stubber.assert_no_pending_responses()


def test_an_answer_cut_off_at_max_tokens_falls_back_without_raising() -> None:
    # Given a model that runs out of output tokens mid-answer
    r = rig("agent")
    r.stubber.add_response(
        "converse",
        converse([{"text": "Let me think about this at length"}], "max_tokens", inputTokens=480, outputTokens=600),
    )
    # When the ticket is routed
    decision = r.route()
    # Then the decision is the pipeline's, stored and flagged, and the call is billed
    assert r.repository.get("T-STUB-1") == decision
    assert (decision.assigned_team, decision.requires_manual_review) == ("Billing Support", True)
    [failed] = model_calls(decision)
    assert not failed.ok and failed.detail.startswith("MaxTokensReachedException")
    assert decision.usage == ModelUsage(model_calls=1, input_tokens=480, output_tokens=600)
    assert decision.cost_usd == round(sonnet_cost(decision.usage), 6)


def test_an_answer_that_breaks_the_schema_is_refused_and_never_reaches_the_decision() -> None:
    # Given a model whose RoutingAnswer is invalid (confidence 7), then gives up with text twice
    r = rig("agent")
    r.stubber.add_response("converse", routing_answer("Network Outage", "Network Operations", 7.0, inputTokens=400))
    r.stubber.add_response("converse", converse([{"text": "Sorry."}], "end_turn", inputTokens=450))
    r.stubber.add_response("converse", converse([{"text": "Sorry again."}], "end_turn", inputTokens=470))
    # When the ticket is routed
    decision = r.route()
    # Then the validation error went back to the model as a tool result
    tool_results = [b["toolResult"] for m in r.sent[1]["messages"] for b in m["content"] if "toolResult" in b]
    assert tool_results and tool_results[0]["status"] == "error"
    # And the invalid answer left no trace on the routing: the pipeline's stands, flagged
    assert (decision.assigned_team, decision.requires_manual_review) == ("Billing Support", True)
    assert decision.usage.model_calls == 3 and decision.usage.input_tokens == 1320
