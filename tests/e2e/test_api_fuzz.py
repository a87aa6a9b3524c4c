"""Hostile input at the HTTP API: schema-driven fuzzing (schemathesis) and property tests
(hypothesis) against the real WSGI app that `ticket-router serve` runs. Never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.commands.serve import build_wsgi_app
from handlers.local_server import ApiGatewayWsgiApp
from handlers.settings import LocalSettings

API_KEY = "fuzz-key-0123456789abcdef"


@contextmanager
def _app(home: Path) -> Iterator[ApiGatewayWsgiApp]:
    wsgi, runtime, _ = build_wsgi_app(LocalSettings(router_home=home, router_api_key=API_KEY))
    try:
        yield wsgi
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def wsgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiGatewayWsgiApp]:
    with _app(tmp_path_factory.mktemp("fuzz")) as app:
        yield app


@pytest.mark.parametrize("operation_index", range(4))
def test_no_server_errors_for_any_schema_derived_request(wsgi: ApiGatewayWsgiApp, operation_index: int) -> None:
    """Every operation of the published OpenAPI document, positive and negative cases alike."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", wsgi)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4
    operation = operations[operation_index]

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.headers = {**(case.headers or {}), "x-api-key": API_KEY}
        response = case.call()
        assert response.status_code < 500, response.text
        assert "Traceback" not in response.text

    check()


def _call(wsgi: ApiGatewayWsgiApp, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    import io

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"},
    }
    if "Content-Type" in headers:
        environ["CONTENT_TYPE"] = headers["Content-Type"]
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"] = int(status.split(maxsplit=1)[0])

    payload = b"".join(wsgi(environ, start_response))
    return captured["status"], payload


JSON_HEADERS = {"Content-Type": "application/json", "x-api-key": API_KEY}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@given(body=st.binary(max_size=2048))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_bytes_get_a_4xx_naming_the_problem(wsgi: ApiGatewayWsgiApp, body: bytes) -> None:
    status, payload = _call(wsgi, "POST", "/tickets", body, JSON_HEADERS)
    assert status in {202, 400, 409, 413, 415}
    if status != 202:
        assert json.loads(payload)["message"]


@given(
    document=st.dictionaries(
        st.sampled_from(
            ["ticket_id", "customer_id", "subject", "description", "timestamp", "channel", "priority", "vip"]
        ),
        json_values,
        max_size=7,
    )
)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_json_objects_are_accepted_or_rejected_by_field(
    wsgi: ApiGatewayWsgiApp, document: dict[str, Any]
) -> None:
    status, payload = _call(wsgi, "POST", "/tickets", json.dumps(document).encode(), JSON_HEADERS)
    assert status in {202, 400, 409}, payload
    body = json.loads(payload)
    if status == 400:
        # Field problems are listed one by one; a body-level problem (e.g. Infinity) has its message.
        assert body["message"]
        assert all(error["field"] and error["message"] for error in body.get("errors", []))


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"customer_id": ' + b"[" * 5000 + b"]" * 5000 + b"}", JSON_HEADERS, 400, "nested"),
        (
            b'{"customer_id": "c", "description": "x", "subject": ' + b"[" * 20 + b"]" * 20 + b"}",
            JSON_HEADERS,
            400,
            "nested",
        ),
        (b'{"customer_id": "c", "description": "x", "ticket_id": ' + b"9" * 10000 + b"}", JSON_HEADERS, 400, "JSON"),
        (b'{"customer_id": "c", "description": "' + b"a" * 300_000 + b'"}', JSON_HEADERS, 413, "limit"),
        (b'{"customer_id": "c", "description": "\xff\xfe"}', JSON_HEADERS, 400, "UTF-8"),
        (
            b'{"customer_id": "c", "description": "x"}',
            {"Content-Type": "text/plain", "x-api-key": API_KEY},
            415,
            "Content-Type",
        ),
        (b'{"customer_id": "c", "description": NaN}', JSON_HEADERS, 400, "JSON"),
        (b"[1, 2, 3]", JSON_HEADERS, 400, "object"),
        (b'{"customer_id": "c", "description": "x", "extra": true}', JSON_HEADERS, 400, "extra"),
        (
            b'{"customer_id": "c", "description": "x"}',
            {"Content-Type": "application/json", "x-api-key": "nope"},
            403,
            "Forbidden",
        ),
    ],
)
def test_hostile_bodies(
    wsgi: ApiGatewayWsgiApp, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    got, payload = _call(wsgi, "POST", "/tickets", body, headers)
    assert got == status
    assert message in payload.decode()
