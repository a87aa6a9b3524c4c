"""The OpenAPI 3 description of the ticket API, generated from the same pydantic models the
handler validates with, so the document cannot drift from the code."""

from __future__ import annotations

import copy
import functools
import re
import threading
from typing import Any

from domain.models import IDENTIFIER_MAX_LENGTH, IDENTIFIER_PATTERN, FeedbackSubmission, NewTicket, RoutingDecision
from handlers import __version__
from handlers.validation import MAX_BODY_BYTES

_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _schema(model: Any, **kwargs: Any) -> dict[str, Any]:
    return dict(model.model_json_schema(ref_template="#/components/schemas/{model}", **kwargs))


def _json_content(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid input; `errors` names each field at fault",
        403: "Missing or wrong x-api-key",
        404: "Not found",
        409: "The ticket_id is being accepted by a concurrent request, or was used for another ticket",
        413: f"Body larger than {MAX_BODY_BYTES} bytes",
        415: "Content-Type is not application/json",
        500: "The stored decision for this ticket cannot be read and needs repair",
        501: "Not enabled on this deployment (no decisions table or feedback store configured)",
        503: "A dependency is unavailable; retry",
    }
    responses: dict[str, Any] = {
        str(code): {"description": reasons[code], "content": _json_content("Error")} for code in codes
    }
    # When to retry, in seconds: every 503 says it (API Gateway's own too), and so does a 409 for a
    # ticket another request is still accepting (not one for a ticket_id used for another ticket).
    for code in (409, 503):
        if str(code) in responses:
            responses[str(code)]["headers"] = {"Retry-After": _RETRY_AFTER}
    return responses


_RETRY_AFTER: dict[str, Any] = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "integer", "minimum": 1},
}


_BUILDING = threading.Lock()


def openapi_document() -> dict[str, Any]:
    """The document, built once. Its models build their schemas on first use (`defer_build`) and
    pydantic's lazy build is not thread-safe: `serve`'s first requests, on several threads, saw a
    half-built schema (an AssertionError, answered 500). Each caller gets a copy of its own."""
    with _BUILDING:
        return copy.deepcopy(_document())


@functools.cache
def _document() -> dict[str, Any]:
    components: dict[str, Any] = {
        "NewTicket": _schema(NewTicket),
        "Feedback": _schema(FeedbackSubmission),
        "Accepted": {
            "type": "object",
            "required": ["ticket_id", "correlation_id", "status"],
            "properties": {
                "ticket_id": {"type": "string"},
                "correlation_id": {"type": "string"},
                "status": {"type": "string", "enum": ["accepted"]},
            },
        },
        "FeedbackRecorded": {
            "type": "object",
            "required": ["ticket_id", "rerouted", "status"],
            "properties": {
                "ticket_id": {"type": "string"},
                "rerouted": {"type": "boolean", "description": "the correct team differs from the decision's"},
                "status": {"type": "string", "enum": ["recorded"]},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "version"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}, "version": {"type": "string"}},
        },
        "Error": _ERROR,
    }
    decision = _schema(RoutingDecision, mode="serialization")
    components.update(decision.pop("$defs", {}))
    components["RoutingDecision"] = decision
    ticket_id_param = {
        "name": "ticket_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": IDENTIFIER_PATTERN, "maxLength": IDENTIFIER_MAX_LENGTH},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ticket-router API", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/tickets": {
                "post": {
                    "operationId": "submitTicket",
                    "requestBody": {"required": True, "content": _json_content("NewTicket")},
                    "responses": {
                        "202": {"description": "Accepted for routing", "content": _json_content("Accepted")},
                        **_errors(400, 403, 409, 413, 415, 503),
                    },
                }
            },
            "/tickets/{ticket_id}": {
                "get": {
                    "operationId": "getDecision",
                    "parameters": [ticket_id_param],
                    "responses": {
                        "200": {"description": "The routing decision", "content": _json_content("RoutingDecision")},
                        **_errors(400, 403, 404, 500, 501, 503),
                    },
                }
            },
            "/tickets/{ticket_id}/feedback": {
                "post": {
                    "operationId": "recordFeedback",
                    "parameters": [ticket_id_param],
                    "requestBody": {"required": True, "content": _json_content("Feedback")},
                    "responses": {
                        "201": {"description": "Correction recorded", "content": _json_content("FeedbackRecorded")},
                        **_errors(400, 403, 404, 413, 415, 500, 501, 503),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "Service is up", "content": _json_content("Health")},
                        **_errors(403),
                    },
                }
            },
        },
    }


def path_pattern(template: str) -> re.Pattern[str]:
    """A path of the document ("/tickets/{ticket_id}") as a pattern of the still-encoded paths it names."""
    return re.compile("/".join("[^/]+" if part.startswith("{") else re.escape(part) for part in template.split("/")))


@functools.cache
def api_routes() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """Each path of the API, as a `path_pattern`, with the methods the handler answers there."""
    return tuple(
        (path_pattern(template), tuple(method.upper() for method in operations))
        for template, operations in openapi_document()["paths"].items()
    )


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods the handler answers at `path`; none when no route has it."""
    return next((methods for pattern, methods in api_routes() if pattern.fullmatch(path)), ())
