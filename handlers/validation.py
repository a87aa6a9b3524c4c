"""Turning bad input into messages that name the field at fault, for the API and the CLI alike."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from domain.errors import InvalidField

# Room for the longest ticket the model accepts, however its client writes it: JSON escapes each
# character outside ASCII as \uXXXX (six bytes), or a pair of them (twelve) beyond the BMP, as
# Python's json.dumps and requests do by default. 64 KiB refused 11,000 Chinese characters.
MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 8


class BadRequest(Exception):
    """Input the client must fix. `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def describe_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs in the words a person filling the form would use."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(record)"
        message = err["msg"]
        if err["type"] == "missing":
            message = "is required"
        elif err["type"] == "extra_forbidden":
            message = "is not a known field"
        elif err["type"] == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
            message = "must not be empty"
        elif err["type"] == "model_type":  # pydantic's own words name our class, which means nothing to a reader
            message = "must be an object"
        problems.append((field, message))
    return problems


def validation_bad_request(exc: ValidationError, what: str = "ticket") -> BadRequest:
    errors = [{"field": field, "message": message} for field, message in describe_validation_error(exc)]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return BadRequest(f"invalid {what}: {summary}", errors=errors)


def invalid_field_bad_request(exc: InvalidField, what: str = "ticket") -> BadRequest:
    # Worded as a validation error is, so that a client reads both alike.
    return BadRequest(f"invalid {what}: {exc}", errors=[{"field": exc.field, "message": exc.message}])


class _ApiGatewayProxyEvent(BaseModel):
    """What the ingestion handler's router reads of an API Gateway REST proxy event, typed as API
    Gateway sends it. API Gateway never gets it wrong; a hand-made event (`ticket-router invoke`, a
    console test event) can, and the router would then fail with a bare TypeError or KeyError."""

    model_config = ConfigDict(strict=True, extra="allow")

    httpMethod: str
    path: str
    headers: dict[str, str] | None = None
    multiValueHeaders: dict[str, list[str]] | None = None
    queryStringParameters: dict[str, str] | None = None
    multiValueQueryStringParameters: dict[str, list[str]] | None = None
    pathParameters: dict[str, str] | None = None
    body: str | None = None
    isBase64Encoded: bool | None = None
    requestContext: dict[str, Any] | None = None


def api_event_problems(event: Any) -> list[tuple[str, str]]:
    """(field, message) for each field of an API Gateway proxy event that is missing or of the
    wrong type; empty for a usable event. The event's values are never quoted: they are requests."""
    try:
        _ApiGatewayProxyEvent.model_validate(event)
    except ValidationError as exc:
        return describe_validation_error(exc)
    return []


def _depth(value: Any, limit: int) -> int:
    # Iterative so that hostile nesting cannot exhaust the stack.
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"{key!r} is given more than once")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook: a dict would keep the last of a repeated name and drop the
    others without a word (the first "description" lost, another "customer_id" taken)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise DuplicateKey(key)
        document[key] = value
    return document


def parse_json_object(
    raw: str | None,
    *,
    content_type: str | None,
    is_base64: bool = False,
    max_bytes: int = MAX_BODY_BYTES,
) -> dict[str, Any]:
    """Decode a request body into a JSON object or raise BadRequest saying exactly why not."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise BadRequest(f"Content-Type must be application/json, got {media_type or 'none'}", status=415)
    if raw is None or raw == "":
        raise BadRequest("request body is required")
    if is_base64:
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("request body is not valid base64") from exc
    else:
        data = raw.encode("utf-8", errors="surrogatepass")
    if len(data) > max_bytes:
        raise BadRequest(f"request body is {len(data)} bytes; the limit is {max_bytes}", status=413)
    try:
        # A leading byte-order mark (Windows editors, PowerShell's Out-File) is skipped, as in files:
        # JSON forbids it in a message (RFC 8259 8.1) yet allows a reader to ignore it.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        raise BadRequest(
            f"request body names {exc.key[:64]!r} more than once",
            errors=[{"field": exc.key[:64], "message": "is given more than once"}],
        ) from exc
    except RecursionError as exc:
        raise BadRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:  # NaN/Infinity, or integers too long to convert
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(document).__name__}")
    if _depth(document, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
    return document
