"""API Gateway -> ingestion Lambda: validate, enrich, publish TicketReceived, answer 202.

Also serves GET /tickets/{ticket_id}, GET /health and POST /tickets/{ticket_id}/feedback. The same
handler runs behind `ticket-router serve` with local adapters injected.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from domain.errors import DamagedRecord, InvalidField, PublishFailed, RepositoryUnavailable
from domain.models import Feedback, FeedbackSubmission, NewTicket
from domain.taxonomy import Taxonomy
from handlers import __version__
from handlers.observability import METRICS_NAMESPACE, SERVICE_NAME, build_logger
from handlers.openapi import allowed_methods
from handlers.settings import running_in_lambda
from handlers.validation import (
    BadRequest,
    api_event_problems,
    invalid_field_bad_request,
    parse_json_object,
    validation_bad_request,
)

if TYPE_CHECKING:
    from domain.ports import DecisionRepository
    from handlers.bootstrap import IngestionDeps

logger: Logger = build_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
app = APIGatewayRestResolver()


# Built once per container. In Lambda that happens here, during the init phase; elsewhere (tests,
# `ticket-router serve`) dependencies are injected per call.
def _default_deps() -> IngestionDeps:
    from handlers.bootstrap import build_ingestion_deps

    return build_ingestion_deps()


_deps: IngestionDeps | None = _default_deps() if running_in_lambda() else None


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


# Time kept back from the function's remaining time to write the answer and flush the metrics.
ANSWER_MARGIN_SECONDS = 0.5


# As API Gateway's own 503 for a throttled request (template.yaml, INTEGRATION_FAILURE).
IN_PROGRESS_RETRY_AFTER_SECONDS = "1"
STORE_BUSY_RETRY_AFTER_SECONDS = "1"


def _deadline() -> float:
    """When the answer is due (time.monotonic()), before API Gateway would answer a bare 502."""
    return time.monotonic() + app.lambda_context.get_remaining_time_in_millis() / 1000 - ANSWER_MARGIN_SECONDS


def _store_call_fits(deadline: float) -> None:
    if time.monotonic() + AWS_CALL_WORST_CASE_SECONDS > deadline:
        raise RepositoryUnavailable("too little of the function's time is left for a call to the decision store")


def _retry_shortly() -> Response:
    # Nothing was published. An in-progress idempotency record that could not be removed lapses
    # with this invocation's time: a retry after that is accepted, not refused as in progress.
    retry_after = math.ceil(app.lambda_context.get_remaining_time_in_millis() / 1000) + 1
    return _json(
        503, {"message": "could not accept the ticket right now; retry"}, headers={"Retry-After": str(retry_after)}
    )


def _current_deps() -> IngestionDeps:
    return cast("IngestionDeps", app.context["deps"])


def _decisions() -> DecisionRepository:
    decisions = _current_deps().decisions
    if decisions is None:
        raise DecisionsNotConfigured
    return decisions


class DecisionsNotConfigured(Exception):
    """This deployment has no decisions table configured (ROUTING_DECISIONS_TABLE)."""


@app.exception_handler(DecisionsNotConfigured)
def _no_decisions(exc: DecisionsNotConfigured) -> Response:
    # 501, as for feedback where it is off: no retry will find a table this deployment does not have.
    return _json(
        501, {"message": "decision lookups are not enabled on this deployment (ROUTING_DECISIONS_TABLE is unset)"}
    )


def _request_json() -> dict[str, Any]:
    event = app.current_event
    return parse_json_object(
        event.body,
        content_type=event.headers.get("content-type") or event.headers.get("Content-Type"),
        is_base64=bool(event.is_base64_encoded),
    )


@app.exception_handler(BadRequest)
def _bad_request(exc: BadRequest) -> Response:
    return _json(exc.status, exc.body())


@app.exception_handler(DamagedRecord)
def _damaged_record(exc: DamagedRecord) -> Response:
    # Not "busy, retry": no retry reads a record that needs repair, and the fault is ours.
    logger.error("stored record unreadable", extra={"error": str(exc)})
    return _json(500, {"message": "the stored record for this ticket cannot be read; it needs repair"})


@app.exception_handler(RepositoryUnavailable)
def _store_unavailable(exc: RepositoryUnavailable) -> Response:
    logger.warning("decision store unavailable", extra={"error": str(exc)})
    return _json(
        503,
        {"message": "the decision store is busy; retry shortly"},
        headers={"Retry-After": STORE_BUSY_RETRY_AFTER_SECONDS},
    )


@app.post("/tickets")
def post_ticket() -> Response:
    deps = _current_deps()
    try:
        new_ticket = NewTicket.model_validate(_request_json())
    except ValidationError as exc:
        raise validation_bad_request(exc) from exc
    try:
        ticket = new_ticket.to_ticket(deps.clock.now())
    except InvalidField as exc:
        raise invalid_field_bad_request(exc) from exc
    # Imported here: it pulls in boto3, which a cold start should only pay for when it is used.
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    deadline = _deadline()
    try:
        accepted = deps.accept(ticket=ticket.model_dump(mode="json"), deadline=deadline)
    except IdempotencyAlreadyInProgressError:
        # The other request mostly answers within a second; one that died holds the id until its
        # invocation's time is up, and a client retrying every second is refused until then.
        message = f"ticket {ticket.ticket_id} is being accepted by another request; retry"
        return _json(409, {"message": message}, headers={"Retry-After": IN_PROGRESS_RETRY_AFTER_SECONDS})
    except IdempotencyValidationError:
        message = f"ticket_id {ticket.ticket_id} was already submitted with another customer_id, subject or description"
        return _json(409, {"message": message, "errors": [{"field": "ticket_id", "message": "already used"}]})
    except IdempotencyPersistenceLayerError as exc:
        # Nothing was published (the acceptor answers 202 when only the final record failed): the
        # sender's retry is safe once the store answers again.
        logger.error("idempotency store unavailable", extra={"ticket_id": ticket.ticket_id, "error": str(exc)})
        return _retry_shortly()
    except PublishFailed as exc:
        # Nothing was recorded, so the sender's retry is safe and nothing is lost.
        logger.error("ticket not published", extra={"ticket_id": ticket.ticket_id, "error": str(exc)})
        return _retry_shortly()
    logger.info("ticket accepted", extra={"ticket_id": accepted["ticket_id"]})
    return _json(202, accepted)


def _checked_ticket_id(path_segment: str) -> str:
    # A REST API hands the path over still percent-encoded (`serve` does the same), and clients
    # encode ':', '@' and '+' (encodeURIComponent does): decoded once, here.
    ticket_id = unquote(path_segment)
    try:
        return (
            NewTicket.model_validate({"ticket_id": ticket_id, "customer_id": "x", "description": "x"}).ticket_id or ""
        )
    except ValidationError as exc:
        raise BadRequest(f"ticket_id {ticket_id[:64]!r} is not a valid ticket id") from exc


@app.get("/tickets/<ticket_id>")
def get_ticket(ticket_id: str) -> Response:
    ticket_id = _checked_ticket_id(ticket_id)
    decisions = _decisions()
    _store_call_fits(_deadline())
    decision = decisions.get(ticket_id)
    if decision is None:
        return _json(404, {"message": f"no decision for ticket {ticket_id} (yet)"})
    return _json(200, decision.model_dump(mode="json"))


@app.post("/tickets/<ticket_id>/feedback")
def post_feedback(ticket_id: str) -> Response:
    deps = _current_deps()
    ticket_id = _checked_ticket_id(ticket_id)
    if deps.feedback is None:
        return _json(501, {"message": "feedback is not enabled on this deployment"})
    body = _request_json()
    # Three calls to the store in all (the read here, then the store's own read and write), each
    # started only while its worst case still ends before the answer is due: one that does not
    # would have API Gateway answer a bare 502, not knowing whether the correction was recorded.
    deadline = _deadline()
    decisions = _decisions()
    _store_call_fits(deadline)
    decision = decisions.get(ticket_id)
    if decision is None:
        return _json(404, {"message": f"no decision for ticket {ticket_id}"})
    try:
        feedback = FeedbackSubmission.model_validate(body).to_feedback(ticket_id, deps.clock.now())
    except ValidationError as exc:
        raise validation_bad_request(exc, "feedback") from exc
    if deps.taxonomy is not None:
        feedback = _check_against_taxonomy(feedback, deps.taxonomy)
    previous = deps.feedback.record(feedback, deadline=deadline)
    rerouted = feedback.correct_team != decision.assigned_team
    was_rerouted = previous is not None and previous.correct_team != decision.assigned_team
    if rerouted != was_rerouted:
        # RoutingAccuracy is the share of decisions not re-routed, the latest correction of each
        # deciding (as `feedback stats` counts): the dashboard divides the sum of this count by
        # TicketsProcessed, so a correction that undoes a re-route takes it back. A 0/100 per
        # feedback would average over reviewed decisions only, and agents mostly write when a
        # ticket was wrong.
        metrics.add_metric(name="TicketsRerouted", unit=MetricUnit.Count, value=1 if rerouted else -1)
    return _json(201, {"ticket_id": ticket_id, "rerouted": rerouted, "status": "recorded"})


def _check_against_taxonomy(feedback: Feedback, taxonomy: Taxonomy) -> Feedback:
    """Corrections become training data, so one that contradicts the taxonomy is refused, and a
    known category is stored under the taxonomy's own spelling ("network outage" would otherwise
    become a label of its own). A category the taxonomy does not know may still be a trained
    model's label, and is kept as written."""
    if feedback.correct_team not in taxonomy.teams:
        raise BadRequest(
            f"correct_team: {feedback.correct_team!r} is not a team of the taxonomy",
            errors=[{"field": "correct_team", "message": f"must be one of {', '.join(taxonomy.teams)}"}],
        )
    category = taxonomy.find_category(feedback.correct_category) if feedback.correct_category else None
    if category is not None and category.team != feedback.correct_team:
        message = f"category {category.name!r} is handled by {category.team!r}, not {feedback.correct_team!r}"
        raise BadRequest(f"correct_category: {message}", errors=[{"field": "correct_category", "message": message}])
    if category is not None:
        return feedback.model_copy(update={"correct_category": category.name})
    return feedback


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@app.not_found
def _not_found(exc: Exception) -> Response:
    method, path = app.current_event.http_method, app.current_event.path
    # Deployed (and under `sam local start-api`), API Gateway refuses a method no route has before
    # this runs; a direct invoke does not, and "no route" (404) would send the caller looking for a
    # mistyped path. As `serve`.
    allowed = allowed_methods(path)
    if method.upper() in allowed:
        # The path has a route's shape, yet no route took it: its ticket id holds a character no
        # route's parameter takes ('"', '`'), none of which a ticket id may hold. The id is at fault.
        try:
            _checked_ticket_id(path.split("/")[2])
        except BadRequest as bad_id:
            return _bad_request(bad_id)
    elif allowed:
        message = f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}"
        return _json(405, {"message": message}, headers={"Allow": ", ".join(allowed)})
    return _json(404, {"message": f"no route for {method} {path}"})


# The response is left out of the trace: it can carry a ticket's or a decision's text.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext, deps: IngestionDeps | None = None) -> dict[str, Any]:
    resolved = deps or _deps or _default_deps()
    resolved.register_context(context)
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    problems = api_event_problems(event)
    if problems:
        # API Gateway never sends such an event; a hand-made one (a console test event) gets the
        # fields at fault, where the router would crash and its caller see an unexplained 502.
        errors = [{"field": field, "message": message} for field, message in problems]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        logger.warning("malformed API Gateway event", extra={"problems": summary})
        message = f"the event is not an API Gateway (REST proxy) request: {summary}"
        return {
            "statusCode": 400,
            "body": json.dumps({"message": message, "errors": errors}),
            "isBase64Encoded": False,
            "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        }
    app.append_context(deps=resolved)
    return app.resolve(event, context)
