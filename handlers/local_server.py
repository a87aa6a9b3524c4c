"""`ticket-router serve`: the API on this machine, as `sam local start-api` would serve it.

Each HTTP request becomes an API Gateway REST proxy event and goes to the very same ingestion
handler, with local adapters injected. The API key is checked here as API Gateway checks it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hmac
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from handlers import ingestion
from handlers.bootstrap import IngestionDeps
from handlers.local_context import LocalLambdaContext
from handlers.validation import MAX_BODY_BYTES

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _json_response(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["Content-Length"] = environ["CONTENT_LENGTH"]
    return headers


class ApiGatewayWsgiApp:
    """WSGI application that speaks API Gateway's proxy protocol to the ingestion handler."""

    def __init__(self, deps: IngestionDeps, api_key: str, *, stage: str = "local") -> None:
        self.deps = deps
        self._api_key = api_key.encode()
        self.stage = stage
        # The Powertools resolver keeps per-request state on a module-level object: one request
        # at a time through it. Requests take well under a millisecond; routing runs elsewhere.
        self._lock = threading.Lock()
        # Built before any request thread exists: building it needs the models' schemas, which the
        # handler builds too, under `_lock`, while the 405 check runs outside it.
        _routes()

    def _authorised(self, headers: dict[str, str]) -> bool:
        supplied = headers.get("X-Api-Key", "").encode()
        return hmac.compare_digest(supplied, self._api_key)

    def _event(self, environ: dict[str, Any], headers: dict[str, str], body: bytes) -> dict[str, Any]:
        try:
            text: str | None = body.decode("utf-8")
            is_base64 = False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        path = _encoded_path(environ)
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)) or None
        method = environ["REQUEST_METHOD"]
        return {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1")},
            },
            "body": text if body else None,
            "isBase64Encoded": is_base64,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self._respond(environ, start_response)
        if environ["REQUEST_METHOD"] == "HEAD":
            # A response to HEAD has headers only (RFC 9110 9.3.2), and waitress sends whatever
            # the app returns: on a kept-alive connection the client would read the body as the
            # start of its next response.
            return []
        return body

    def _respond(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        headers = _headers(environ)
        path = environ.get("PATH_INFO") or "/"
        method = environ["REQUEST_METHOD"]
        allowed = _allowed_methods(_encoded_path(environ))
        if allowed and method not in allowed:
            # The route exists: "no route" (404) would send the caller looking for a mistyped path.
            payload = json.dumps({"message": f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}"})
            start_response(
                "405 Method Not Allowed",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload.encode()))),
                    ("Allow", ", ".join(allowed)),
                ],
            )
            return [payload.encode()]
        if method == "HEAD":
            # Answered as GET (RFC 9110 9.3.2), its body left out by __call__: `curl -I /health` probes.
            environ = {**environ, "REQUEST_METHOD": "GET"}
        if path == "/openapi.json" and environ["REQUEST_METHOD"] == "GET":
            return self._openapi(start_response)
        if not self._authorised(headers):
            return _json_response(start_response, 403, {"message": "Forbidden"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _json_response(start_response, 400, {"message": "Content-Length is not a number"})
        if length > MAX_BODY_BYTES:
            return _json_response(
                start_response, 413, {"message": f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}"}
            )
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        event = self._event(environ, headers, body)
        with self._lock:
            result = ingestion.lambda_handler(event, LocalLambdaContext(function_name="ingestion"), deps=self.deps)
        payload = result.get("body") or ""
        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        response_headers = [(k, v) for k, vs in (result.get("multiValueHeaders") or {}).items() for v in vs]
        response_headers += [(k, v) for k, v in (result.get("headers") or {}).items()]
        response_headers = [(k, v) for k, v in response_headers if k.lower() != "content-length"]
        response_headers.append(("Content-Length", str(len(raw))))
        status = int(result["statusCode"])
        start_response(f"{status} {HTTPStatus(status).phrase}", response_headers)
        return [raw]

    def _openapi(self, start_response: StartResponse) -> list[bytes]:
        from handlers.openapi import openapi_document

        return _json_response(start_response, 200, openapi_document())


@functools.cache
def _routes() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """Each path of the API, as a pattern of its still-encoded form, with the methods it answers."""
    from handlers.openapi import api_routes, path_pattern

    routes = [(path_pattern("/openapi.json"), ("GET",)), *api_routes()]
    return tuple((pattern, (*methods, "HEAD") if "GET" in methods else methods) for pattern, methods in routes)


def _allowed_methods(path: str) -> tuple[str, ...]:
    """The methods answered at `path`; none when no route has it (404, from the handler)."""
    return next((methods for pattern, methods in _routes() if pattern.fullmatch(path)), ())


def _encoded_path(environ: dict[str, Any]) -> str:
    """The path as API Gateway's REST API hands it to Lambda: still percent-encoded, so that the
    handler decodes it once, here as there (`/tickets/a%2Fb` is an invalid id, not another route)."""
    raw = environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        # urlsplit reads "//x/tickets" as host "x" and path "/tickets": another resource answered.
        return raw.partition("?")[0].partition("#")[0]
    if raw:  # the absolute form, "http://host/path"
        return urlsplit(raw).path or "/"
    # PEP 3333's PATH_INFO is already decoded, one Latin-1 code point per byte: encode it again.
    decoded = environ.get("PATH_INFO") or "/"
    with contextlib.suppress(UnicodeEncodeError):
        decoded = decoded.encode("latin-1").decode("utf-8", "replace")
    return quote(decoded, safe="/:@+-._~!$&'()*,;=")
