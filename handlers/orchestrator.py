"""EventBridge TicketReceived -> orchestrator Lambda: route the ticket and store the decision.

A redelivered event finds the stored decision and does nothing more, so EventBridge's
at-least-once delivery never yields a second decision or a second model bill.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from adapters.engines.agent import answered_without_a_routing, stopped_by_the_engine
from domain.models import MODEL_TOOL, Ticket, TicketReceived, ToolCall
from domain.services import route_ticket
from domain.toolkit import EVIDENCE_LOOKUP_TOOLS, customer_not_found
from handlers.bootstrap import OrchestratorDeps, build_orchestrator_deps, invocation_deadline
from handlers.observability import METRICS_NAMESPACE, SERVICE_NAME, build_logger
from handlers.settings import running_in_lambda

logger: Logger = build_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)

# Leave time to store the decision after the engine gives up: one DynamoDB write, retry included.
DEADLINE_MARGIN_SECONDS = AWS_CALL_WORST_CASE_SECONDS
# The CodeDeploy PreTraffic hook's event (handlers/codedeploy_hook.py): answered once the version has
# started, which is what the hook checks, without routing anything. No rule routes it here.
PRETRAFFIC_CHECK = {"source": "codedeploy.pretraffic", "detail-type": "PreTrafficCheck"}

_deps: OrchestratorDeps | None = build_orchestrator_deps() if running_in_lambda() else None


def _model_api_failed(call: ToolCall) -> bool:
    """A model call that failed at the provider. The agent's own stop (its call budget spent, or too
    little time left to start a call) is not one: counted, it raised the Bedrock errors alarm for a
    model that loops on tools, or for slow lookups that left no time, with Bedrock never at fault.
    Nor is a model that answered, but not with a routing (prose, or output past its token limit)."""
    return (
        call.is_model_call
        and not call.ok
        and not (stopped_by_the_engine(call.detail) or answered_without_a_routing(call.detail))
    )


def _answered_without_a_routing(call: ToolCall) -> bool:
    """The agent's model answered, but in prose (even once the answer tool was forced) or past its
    output token limit: what a broken prompt looks like, with Bedrock never at fault."""
    return call.tool == MODEL_TOOL and not call.ok and answered_without_a_routing(call.detail)


class InvalidEvent(ValueError):
    """The event is not a TicketReceived; raising sends it to the DLQ for a person to look at."""


def _parse(event: dict[str, Any]) -> tuple[TicketReceived, Ticket]:
    """The event and its ticket. Both checks raise InvalidEvent naming only the fields at fault:
    pydantic's own message quotes the input, the customer's text, into logs and the failure queue."""
    if event.get("detail-type") not in (None, "TicketReceived"):
        raise InvalidEvent(f"unexpected detail-type {event.get('detail-type')!r}")
    try:
        received = TicketReceived.model_validate(event.get("detail"))
        # The envelope's fields are plain strings; the ticket's own limits (id shape, lengths,
        # text) are checked here too, so a bad ticket is not retried for nothing.
        return received, received.to_ticket()
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "detail" for e in exc.errors())
        raise InvalidEvent(f"TicketReceived detail is invalid at: {fields}") from None


# The response is left out of the trace: it can carry a ticket's or a decision's text.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: OrchestratorDeps | None = None
) -> dict[str, Any]:
    resolved = deps or _deps or build_orchestrator_deps()
    if all(event.get(key) == value for key, value in PRETRAFFIC_CHECK.items()):
        logger.info("pre-traffic check: started", extra={"engine": resolved.engine.name})
        return {"status": "started"}
    received, ticket = _parse(event)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    log_keys = {"ticket_id": received.ticket_id, "correlation_id": received.correlation_id}
    # The evidence lookups are held to the deadline too (lookups_by_invocation_deadline): one that
    # hangs is given up on, and the ticket routed without that evidence, in time to be stored.
    with invocation_deadline(deadline):
        outcome = route_ticket(
            ticket,
            correlation_id=received.correlation_id,
            engine=resolved.engine,
            repository=resolved.repository,
            taxonomy=resolved.taxonomy,
            clock=resolved.clock,
            deadline=deadline,
        )
    decision = outcome.decision
    if outcome.created:
        metrics.add_metric(name="TicketsProcessed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ProcessingTime", unit=MetricUnit.Milliseconds, value=decision.processing_time_ms)
        metrics.add_metric(name="ConfidenceScore", unit=MetricUnit.NoUnit, value=decision.confidence_score)
        metrics.add_metric(
            name="ManualReviewRate", unit=MetricUnit.Percent, value=100.0 if decision.requires_manual_review else 0.0
        )
        metrics.add_metric(name="CostPerTicket", unit=MetricUnit.NoUnit, value=decision.cost_usd)
        if any(_model_api_failed(call) for call in decision.tool_calls):
            metrics.add_metric(name="BedrockAPIErrors", unit=MetricUnit.Count, value=1)
        if any(call.tool == MODEL_TOOL for call in decision.tool_calls):
            # Read against each other: the alarm is on the share of the tickets the model was asked about.
            metrics.add_metric(name="ModelConsulted", unit=MetricUnit.Count, value=1)
            if any(_answered_without_a_routing(call) for call in decision.tool_calls):
                metrics.add_metric(name="ModelAnswersWithoutRouting", unit=MetricUnit.Count, value=1)
        if any(call.tool in EVIDENCE_LOOKUP_TOOLS and not call.ok for call in decision.tool_calls):
            metrics.add_metric(name="EvidenceUnavailable", unit=MetricUnit.Count, value=1)
        if customer_not_found(decision.tool_calls):
            # Read against TicketsProcessed: the alarm is on the share, as a few are new customers.
            metrics.add_metric(name="UnknownCustomers", unit=MetricUnit.Count, value=1)
        logger.info(
            "ticket routed",
            extra={
                **log_keys,
                "assigned_team": decision.assigned_team,
                "priority_level": decision.priority_level.value,
                "requires_manual_review": decision.requires_manual_review,
                "engine": decision.engine,
            },
        )
    else:
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        logger.info("duplicate delivery: decision already stored", extra=log_keys)
    return {
        "ticket_id": decision.ticket_id,
        "created": outcome.created,
        "assigned_team": decision.assigned_team,
        "priority_level": decision.priority_level.value,
        "requires_manual_review": decision.requires_manual_review,
    }
