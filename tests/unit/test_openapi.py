"""The OpenAPI document lists every status a route of the ingestion handler answers with."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate

from handlers import __version__
from handlers.openapi import openapi_document

INGESTION = Path(__file__).parents[2] / "handlers" / "ingestion.py"


def statuses_returned_by_each_route() -> dict[tuple[str, str], set[int]]:
    """(method, OpenAPI path) -> the literal statuses its function passes to `_json`."""
    routes: dict[tuple[str, str], set[int]] = {}
    for node in ast.parse(INGESTION.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
                continue
            if not (isinstance(decorator.func.value, ast.Name) and decorator.func.value.id == "app"):
                continue
            if decorator.func.attr not in {"get", "post"}:
                continue
            path = re.sub(r"<(\w+)>", r"{\1}", ast.literal_eval(decorator.args[0]))
            routes[(decorator.func.attr, path)] = {
                call.args[0].value
                for call in ast.walk(node)
                if isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "_json"
                and isinstance(call.args[0], ast.Constant)
            }
    return routes


def test_every_status_a_route_returns_is_documented() -> None:
    # Given the statuses each route of the handler returns
    routes = statuses_returned_by_each_route()
    assert ("post", "/tickets/{ticket_id}/feedback") in routes
    # When the OpenAPI document is built
    paths = openapi_document()["paths"]
    # Then each of those statuses has a response there
    undocumented = {
        (method, path): sorted(str(code) for code in codes if str(code) not in paths[path][method]["responses"])
        for (method, path), codes in routes.items()
        if path in paths
    }
    assert {route: codes for route, codes in undocumented.items() if codes} == {}


def test_every_answer_that_tells_the_client_to_retry_documents_when() -> None:
    # Given the document the API serves
    paths = openapi_document()["paths"]
    # When its 503 and 409 answers are read
    retry_answers = {
        (method, path, code): response
        for path, operations in paths.items()
        for method, operation in operations.items()
        for code, response in operation["responses"].items()
        if code in ("409", "503")
    }
    # Then each declares the Retry-After header the handler (or API Gateway) sends with it
    assert ("post", "/tickets", "409") in retry_answers
    assert {key for key, response in retry_answers.items() if "Retry-After" not in response.get("headers", {})} == set()


def test_the_document_is_valid_openapi_of_the_version_it_declares() -> None:
    # Given the document the API serves at /openapi.json
    document = openapi_document()
    # When / Then it validates against the OpenAPI schema of the version it declares (3.1 allows
    # the `{"type": "null"}` that optional fields use; 3.0 does not)
    validate(document)
    assert document["openapi"].startswith("3.1.")


def test_the_feedback_and_health_answers_match_their_documented_schemas() -> None:
    # Given the documented schemas of a recorded correction and of the health check
    schemas = openapi_document()["components"]["schemas"]
    # When / Then the bodies the handler sends validate against them
    jsonschema.validate({"ticket_id": "T-1", "rerouted": True, "status": "recorded"}, schemas["FeedbackRecorded"])
    jsonschema.validate({"status": "ok", "version": __version__}, schemas["Health"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ticket_id": "T-1", "status": "recorded"}, schemas["FeedbackRecorded"])
