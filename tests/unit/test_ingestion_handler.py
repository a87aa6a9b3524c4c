"""The ingestion handler (API Gateway -> Lambda) with the local adapters injected.

Every request goes through `ingestion.lambda_handler` exactly as API Gateway would send it; the
decision store is an in-memory SQLite database and the bus delivers in-process, so a POST is
routed before the handler returns and a GET can see the decision at once.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from adapters.local.idempotency import SqliteIdempotencyLayer
from domain.errors import PublishFailed
from domain.models import (
    DECISION_RETENTION_DAYS,
    MAX_DESCRIPTION_CHARS,
    MAX_SUBJECT_CHARS,
    CustomerProfile,
    Ticket,
    TicketReceived,
)
from handlers import __version__, ingestion
from handlers.bootstrap import (
    PUBLISH_RESERVE_SECONDS,
    IngestionDeps,
    LocalApp,
    bootstrap_local,
    build_acceptor,
    local_ingestion_deps,
)
from handlers.local_context import LocalLambdaContext
from handlers.settings import LocalSettings
from handlers.validation import MAX_BODY_BYTES

EVENTS = Path(__file__).parents[2] / "events"
POST_EVENT: dict[str, Any] = json.loads((EVENTS / "api_post_ticket.json").read_text())
JSON_HEADERS = {"Content-Type": "application/json", "x-api-key": "local-dev-key-0123456789"}
# CUST-1001 is a VIP enterprise customer of the sample data, with an active outage on SVC001.
VALID_TICKET: dict[str, Any] = {
    "ticket_id": "T-100",
    "customer_id": "CUST-1001",
    "subject": "Fibre link down at HQ",
    "description": "Our primary fibre circuit SVC001 went down, 300 staff offline.",
    "timestamp": "2026-11-24T08:20:00Z",
}


class Harness:
    """Sends API Gateway events to the handler and remembers what the bus delivered."""

    def __init__(self, app: LocalApp, deps: IngestionDeps) -> None:
        self.app = app
        self.deps = deps
        self.published: list[TicketReceived] = []
        app.bus.subscribe(self.published.append)
        # The function's time each request starts with, as its Lambda context tells it.
        self.function_timeout_seconds = 30.0
        self.last_headers: dict[str, list[str]] = {}

    def request(
        self,
        method: str,
        path: str,
        body: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        is_base64: bool = False,
        unavailable_ok: bool = False,
        expected_5xx: int | None = None,
    ) -> tuple[int, Any]:
        event = copy.deepcopy(POST_EVENT)
        chosen = JSON_HEADERS if headers is None else headers
        event.update(
            {
                "resource": path,
                "path": path,
                "httpMethod": method,
                "headers": dict(chosen),
                "multiValueHeaders": {k: [v] for k, v in chosen.items()},
                "body": body,
                "isBase64Encoded": is_base64,
            }
        )
        event["requestContext"].update({"resourcePath": path, "httpMethod": method, "path": f"/dev{path}"})
        context = LocalLambdaContext(function_name="ingestion", timeout_seconds=self.function_timeout_seconds)
        result = ingestion.lambda_handler(event, context, deps=self.deps)
        self.last_headers = result.get("multiValueHeaders") or {}
        status = int(result["statusCode"])
        raw = result.get("body") or ""
        # The contract of every test here: the API never fails with a 5xx, never leaks a traceback;
        # only a test of a store or bus outage may see the 503 that tells the client to retry, and
        # a test of a deployment without a feature the 501 that says so.
        assert status < 500 or (unavailable_ok and status == 503) or status == expected_5xx, raw
        assert "Traceback" not in raw
        return status, json.loads(raw) if raw else None

    def post_ticket(self, document: Any, *, unavailable_ok: bool = False) -> tuple[int, Any]:
        return self.request("POST", "/tickets", json.dumps(document), unavailable_ok=unavailable_ok)


def emitted_metrics(stdout: str) -> dict[str, Any]:
    """Metric values in the EMF lines a handler printed."""
    found: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[definition["Name"]] = document[definition["Name"]]
    return found


class UnreachableIdempotencyStore(SqliteIdempotencyLayer):
    def _put_record(self, data_record: Any) -> None:
        raise sqlite3.OperationalError("unable to open database file")


class CompletionFailsIdempotencyStore(SqliteIdempotencyLayer):
    """Takes the in-progress record, then fails to mark it complete `failures` times: the store
    went away mid-request."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def _update_record(self, data_record: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        super()._update_record(data_record)


class ExpiryRecordingIdempotencyStore(SqliteIdempotencyLayer):
    def __init__(self) -> None:
        super().__init__()
        self.expiries: list[int] = []

    def _update_record(self, data_record: Any) -> None:
        self.expiries.append(data_record.expiry_timestamp)
        super()._update_record(data_record)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Harness]:
    settings = LocalSettings(router_home=tmp_path)
    app = bootstrap_local(settings, db_path=":memory:", outbox_path=tmp_path / "outbox.jsonl")
    yield Harness(app, local_ingestion_deps(app))
    app.close()


# --- POST /tickets ------------------------------------------------------------------------------


def test_a_valid_ticket_is_accepted_published_and_routed(api: Harness) -> None:
    # Given a valid ticket
    # When it is posted
    status, body = api.post_ticket(VALID_TICKET)
    # Then it is accepted with a correlation id, one event is published and one decision stored
    assert status == 202
    assert body["ticket_id"] == "T-100"
    assert body["status"] == "accepted"
    assert body["correlation_id"]
    assert [e.ticket_id for e in api.published] == ["T-100"]
    assert api.published[0].correlation_id == body["correlation_id"]
    assert api.published[0].customer_context.is_vip
    assert api.app.repository.count() == 1


def test_the_tickets_channel_travels_with_its_event_to_the_router(api: Harness) -> None:
    # Given a ticket that came in by phone
    # When it is posted
    status, _ = api.post_ticket({**VALID_TICKET, "channel": "phone"})
    # Then the published event, and the ticket the orchestrator reads from it, say so
    assert status == 202
    (event,) = api.published
    assert (event.channel, event.to_ticket().channel) == ("phone", "phone")
    # And an event published without one (by an earlier version) is read as a web ticket
    earlier = TicketReceived.model_validate(event.model_dump(mode="json", exclude={"channel"}))
    assert earlier.to_ticket().channel == "web"


def test_a_ticket_without_an_id_gets_one_assigned(api: Harness) -> None:
    # Given a ticket that leaves the id (and timestamp) to us
    document = {k: v for k, v in VALID_TICKET.items() if k not in ("ticket_id", "timestamp")}
    # When it is posted
    status, body = api.post_ticket(document)
    # Then an id is assigned and the decision is stored under it
    assert status == 202
    assert body["ticket_id"].startswith("TKT-")
    assert api.app.repository.get(body["ticket_id"]) is not None


def test_posting_the_same_ticket_twice_answers_the_same_and_publishes_once(api: Harness) -> None:
    # Given a ticket that was accepted once
    _, first = api.post_ticket(VALID_TICKET)
    # When the client posts it again (a retry after a lost answer)
    status, second = api.post_ticket(VALID_TICKET)
    # Then the answer repeats the first one, and nothing more is published or stored
    assert status == 202
    assert second == first
    assert len(api.published) == 1
    assert api.app.repository.count() == 1


def test_another_ticket_under_a_used_ticket_id_is_refused_not_dropped(api: Harness) -> None:
    # Given a ticket that was accepted once
    _, first = api.post_ticket(VALID_TICKET)
    # When a different ticket arrives under the same ticket_id
    status, body = api.post_ticket({**VALID_TICKET, "description": "A different problem altogether."})
    # Then it is refused as a conflict naming ticket_id, and only the first was published
    assert status == 409
    assert body["errors"] == [{"field": "ticket_id", "message": "already used"}]
    assert len(api.published) == 1
    # And a retry of the first ticket, stamped anew, still gets the first answer
    status, retry = api.post_ticket({k: v for k, v in VALID_TICKET.items() if k != "timestamp"})
    assert (status, retry) == (202, first)


def test_another_ticket_under_an_id_route_stored_is_refused_by_the_local_api(api: Harness) -> None:
    # Given ticket T-100 routed as `route --db` routes, leaving no idempotency record
    api.app.submit(Ticket.model_validate(VALID_TICKET))
    # When another ticket, and then the same one, are posted under its id
    other, body = api.post_ticket({**VALID_TICKET, "description": "A different problem altogether."})
    same, _ = api.post_ticket(VALID_TICKET)
    # Then the other is refused naming the id, rather than answered 202 and dropped as routed,
    # and the same one is accepted again without a second decision
    assert other == 409 and body["errors"] == [{"field": "ticket_id", "message": "already used"}]
    assert same == 202
    assert api.app.repository.count() == 1


def test_another_ticket_under_the_id_of_a_ticket_route_kept_is_refused_by_the_local_api(api: Harness) -> None:
    # Given ticket T-100 kept unrouted as `route --db` keeps it when the model is down, leaving no
    # idempotency record
    kept = TicketReceived.model_validate(
        {**VALID_TICKET, "correlation_id": "corr-1", "customer_context": {"is_vip": True, "account_type": "Enterprise"}}
    )
    api.app.repository.park(kept, "ModelDown", kept.timestamp)
    # When another ticket is posted under its id
    status, body = api.post_ticket({**VALID_TICKET, "description": "A different problem altogether."})
    # Then it is refused naming the id, and the kept ticket still waits to be routed as it was
    assert status == 409 and body["errors"] == [{"field": "ticket_id", "message": "already used"}]
    assert api.published == []
    assert api.app.repository.parked(limit=10) == [kept]
    assert api.app.repository.get("T-100") is None


def test_an_unavailable_idempotency_store_is_a_503_and_publishes_nothing(api: Harness) -> None:
    # Given an idempotency store that cannot be reached
    accept, config = build_acceptor(api.app.customers, api.app.bus, UnreachableIdempotencyStore())
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    # When a ticket is posted
    status, body = api.post_ticket(VALID_TICKET, unavailable_ok=True)
    # Then the client is told to retry, and nothing was published
    assert status == 503 and "retry" in body["message"]
    assert api.published == []


class UndeletableIdempotencyStore(SqliteIdempotencyLayer):
    """Cannot remove a record: an in-progress one is left behind when the request fails."""

    def _delete_record(self, data_record: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")


class UnreachableBus:
    def publish_ticket_received(self, event: TicketReceived) -> None:
        raise PublishFailed(f"{event.ticket_id}: EventBridge unreachable")


def test_a_ticket_still_being_accepted_is_a_409_that_says_when_to_retry(api: Harness) -> None:
    # Given a request that failed to publish and could not remove its in-progress record
    accept, config = build_acceptor(api.app.customers, UnreachableBus(), UndeletableIdempotencyStore())
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    assert api.post_ticket(VALID_TICKET, unavailable_ok=True)[0] == 503
    # When the ticket is posted again while that record holds its id
    status, body = api.post_ticket(VALID_TICKET)
    # Then the conflict tells the client when to retry, as a client reads a 503 (API Gateway's own
    # busy answer included)
    assert status == 409 and "retry" in body["message"]
    assert api.last_headers["Retry-After"] == ["1"]


def test_a_ticket_published_before_its_idempotency_record_failed_is_still_accepted(api: Harness) -> None:
    # Given an idempotency store that fails for good once the ticket is published
    accept, config = build_acceptor(api.app.customers, api.app.bus, CompletionFailsIdempotencyStore(failures=2))
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    # When a ticket is posted
    status, body = api.post_ticket(VALID_TICKET)
    # Then the client is told the truth: it was accepted (and routed), not "retry"
    assert (status, body["ticket_id"], body["status"]) == (202, "T-100", "accepted")
    assert [e.ticket_id for e in api.published] == ["T-100"]
    assert api.app.repository.get("T-100") is not None


def test_a_record_left_incomplete_by_one_failure_is_completed_so_the_id_stays_guarded(api: Harness) -> None:
    # Given an idempotency store that fails once, just after the ticket is published
    accept, config = build_acceptor(api.app.customers, api.app.bus, CompletionFailsIdempotencyStore(failures=1))
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    _, first = api.post_ticket(VALID_TICKET)
    # When another ticket comes under the same id, and the first one is retried
    other, _ = api.post_ticket({**VALID_TICKET, "description": "A different problem altogether."})
    retry, again = api.post_ticket(VALID_TICKET)
    # Then the record was completed: the other is refused, the retry gets the first answer
    assert (other, retry, again) == (409, 202, first)
    assert len(api.published) == 1


def test_a_used_ticket_id_is_remembered_as_long_as_its_decision_is_kept(api: Harness) -> None:
    # Given the idempotency store the acceptor writes to
    store = ExpiryRecordingIdempotencyStore()
    accept, config = build_acceptor(api.app.customers, api.app.bus, store)
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    # When a ticket is accepted
    before = int(time.time())
    assert api.post_ticket(VALID_TICKET)[0] == 202
    # Then its record outlives the decision's retention: a reuse of the id with another ticket is a
    # 409 for as long as the orchestrator would otherwise drop it as already routed
    decision = api.app.repository.get("T-100")
    assert decision is not None
    assert len(store.expiries) == 1
    assert store.expiries[0] >= max(decision.ttl, before + DECISION_RETENTION_DAYS * 86_400)


class SlowCustomerDirectory:
    """A customer DB that answers (a VIP profile) only after `seconds`, or once released."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.released = threading.Event()

    def get_profile(self, customer_id: str) -> CustomerProfile:
        self.released.wait(self.seconds)
        return CustomerProfile(customer_id=customer_id, is_vip=True, account_type="Enterprise")


class CountingCompletionFailsStore(CompletionFailsIdempotencyStore):
    def __init__(self, failures: int) -> None:
        super().__init__(failures)
        self.completions_tried = 0

    def _update_record(self, data_record: Any) -> None:
        self.completions_tried += 1
        super()._update_record(data_record)


class SlowBus:
    """Publishes to `bus` after `seconds`: an EventBridge call that is slow to answer."""

    def __init__(self, bus: Any, seconds: float) -> None:
        self.bus = bus
        self.seconds = seconds

    def publish_ticket_received(self, event: TicketReceived) -> None:
        time.sleep(self.seconds)
        self.bus.publish_ticket_received(event)


def test_a_customer_db_that_hangs_does_not_hold_the_answer_past_the_functions_time(api: Harness) -> None:
    # Given a customer DB that takes longer to answer than the function has left once publishing
    # is provided for
    customers = SlowCustomerDirectory(seconds=3.0)
    accept, config = build_acceptor(customers, api.app.bus, SqliteIdempotencyLayer())
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    api.function_timeout_seconds = PUBLISH_RESERVE_SECONDS + ingestion.ANSWER_MARGIN_SECONDS + 1.0
    try:
        # When a ticket is posted
        status, _ = api.post_ticket(VALID_TICKET)
    finally:
        customers.released.set()
    # Then it is accepted without waiting for the lookup: published as an unknown customer's ticket
    # (the orchestrator looks the customer up again)
    assert status == 202
    (event,) = api.published
    assert not event.customer_context.is_vip


class CountingDeletesStore(SqliteIdempotencyLayer):
    def __init__(self) -> None:
        super().__init__()
        self.deletes_tried = 0

    def _delete_record(self, data_record: Any) -> None:
        self.deletes_tried += 1
        super()._delete_record(data_record)


def test_an_unpublished_tickets_record_is_left_to_lapse_when_removing_it_could_outlast_the_function(
    api: Harness,
) -> None:
    # Given a request left with less time than a publish, or removing its in-progress record, may
    # take (its first write to the store was slow)
    store = CountingDeletesStore()
    accept, config = build_acceptor(api.app.customers, api.app.bus, store)
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    api.function_timeout_seconds = 1.0
    # When a ticket is posted
    status, body = api.post_ticket(VALID_TICKET, unavailable_ok=True)
    # Then the client is told to retry without the removal being waited on: API Gateway would
    # otherwise answer a bare 502 in the handler's place
    assert status == 503 and "retry" in body["message"]
    assert store.deletes_tried == 0
    assert api.published == []
    # And the record lapses with the function's time: the retry, when the answer said, is accepted
    time.sleep(int(api.last_headers["Retry-After"][0]))
    api.function_timeout_seconds = 30.0
    status, body = api.post_ticket(VALID_TICKET)
    assert (status, body["status"]) == (202, "accepted")
    assert [e.ticket_id for e in api.published] == ["T-100"]


class SlowlyFailingCompletionStore(CountingCompletionFailsStore):
    """Fails to mark the record complete once, and only after `seconds`: a write timing out."""

    def __init__(self, seconds: float) -> None:
        super().__init__(failures=1)
        self.seconds = seconds

    def _update_record(self, data_record: Any) -> None:
        if self.failures > 0:
            time.sleep(self.seconds)
        super()._update_record(data_record)


def test_an_incomplete_record_is_not_retried_when_the_retry_could_outlast_the_function(api: Harness) -> None:
    # Given a write completing the idempotency record that fails slowly, leaving less time than
    # another try at it could take
    store = SlowlyFailingCompletionStore(seconds=1.5)
    accept, config = build_acceptor(api.app.customers, api.app.bus, store)
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    api.function_timeout_seconds = PUBLISH_RESERVE_SECONDS + ingestion.ANSWER_MARGIN_SECONDS + 1.0
    # When a ticket is posted
    status, body = api.post_ticket(VALID_TICKET)
    # Then it is accepted, as it was published, without waiting on another write of the record
    assert (status, body["status"]) == (202, "accepted")
    assert [e.ticket_id for e in api.published] == ["T-100"]
    assert store.completions_tried == 1


def test_a_published_ticket_is_accepted_without_a_record_write_that_could_outlast_the_function(
    api: Harness,
) -> None:
    # Given a publish slow enough that completing the idempotency record afterwards could outlast
    # the function, were the write as slow as an AWS call may be
    store = CountingCompletionFailsStore(failures=0)
    accept, config = build_acceptor(api.app.customers, SlowBus(api.app.bus, seconds=1.5), store)
    api.deps = dataclasses.replace(api.deps, accept=accept, idempotency_config=config)
    api.function_timeout_seconds = PUBLISH_RESERVE_SECONDS + ingestion.ANSWER_MARGIN_SECONDS + 1.0
    # When a ticket is posted
    status, body = api.post_ticket(VALID_TICKET)
    # Then the client is told it was accepted, the write not started: API Gateway would otherwise
    # answer a bare 502 for a published ticket
    assert (status, body["status"]) == (202, "accepted")
    assert [e.ticket_id for e in api.published] == ["T-100"]
    assert store.completions_tried == 0


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            {"description": "no customer here"},
            {"customer_id": "is required"},
            id="missing-customer_id",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": ""},
            {"description": "must not be empty"},
            id="empty-description",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "   "},
            {"description": "must not be empty"},
            id="blank-description",
        ),
        pytest.param(
            # Zero-width spaces, bidi marks and a NUL: nothing a person or a model could read.
            {"customer_id": "C-1", "description": "\u200b\u200f \u200e\x00"},
            {"description": "must not be empty"},
            id="invisible-description",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "d", "priority": "P0"},
            {"priority": "is not a known field"},
            id="extra-field",
        ),
        pytest.param(
            {"customer_id": 1001, "description": ["not", "text"], "subject": {"a": 1}},
            {"customer_id": None, "description": None, "subject": None},
            id="wrong-types",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "d", "timestamp": "yesterday"},
            {"timestamp": None},
            id="timestamp-not-iso",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "d", "timestamp": "2026-13-01T00:00:00Z"},
            {"timestamp": None},
            id="timestamp-impossible-month",
        ),
        pytest.param(
            # Valid ISO 8601, but year 0 once converted to UTC: it must not overflow into a 500.
            {"customer_id": "C-1", "description": "d", "timestamp": "0001-01-01T00:00:00+01:00"},
            {"timestamp": None},
            id="timestamp-overflows-utc",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "d", "timestamp": 1e300},
            {"timestamp": None},
            id="timestamp-huge-number",
        ),
        pytest.param(
            # A count or an empty cell read as Unix time: 1970, days old, the most age points.
            {"customer_id": "C-1", "description": "d", "timestamp": 12345},
            {"timestamp": None},
            id="timestamp-before-2000",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "d", "timestamp": "2099-01-01"},
            {"timestamp": None},
            id="timestamp-in-the-future",
        ),
        pytest.param(
            {"ticket_id": "T 1!", "customer_id": "C-1", "description": "d"},
            {"ticket_id": None},
            id="ticket_id-bad-characters",
        ),
        pytest.param(
            {"ticket_id": "T" * 129, "customer_id": "C-1", "description": "d"},
            {"ticket_id": None},
            id="ticket_id-too-long",
        ),
        pytest.param(
            # A URL path segment meaning "the parent" once pushed to the ticketing system.
            {"ticket_id": "..", "customer_id": ".", "description": "d"},
            {"ticket_id": None, "customer_id": None},
            id="ids-of-dots-only",
        ),
        pytest.param(
            {"customer_id": "C-1", "description": "d" * 20_001},
            {"description": None},
            id="description-too-long",
        ),
    ],
)
def test_an_invalid_ticket_gets_one_error_per_field_at_fault(
    api: Harness, document: dict[str, Any], expected: dict[str, str | None]
) -> None:
    # Given a ticket with exactly the faults in `expected`
    # When it is posted
    status, body = api.post_ticket(document)
    # Then it is refused with one error naming each field, and nothing is published
    assert status == 400
    errors = body["errors"]
    assert sorted(e["field"] for e in errors) == sorted(expected)
    for error in errors:
        wanted = expected[error["field"]]
        assert error["message"] if wanted is None else error["message"] == wanted
        assert error["field"] in body["message"]
    assert api.published == []
    assert api.app.repository.count() == 0


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_body_that_is_not_declared_json_is_refused_with_415(api: Harness, content_type: str | None) -> None:
    # Given a valid JSON document sent with another (or no) content type
    headers = {"x-api-key": "k"} if content_type is None else {"Content-Type": content_type}
    # When it is posted
    status, body = api.request("POST", "/tickets", json.dumps(VALID_TICKET), headers=headers)
    # Then it is refused as an unsupported media type
    assert status == 415
    assert "application/json" in body["message"]
    assert api.published == []


def test_json_with_a_charset_parameter_is_accepted(api: Harness) -> None:
    headers = {"content-type": "application/json; charset=utf-8"}
    status, _ = api.request("POST", "/tickets", json.dumps(VALID_TICKET), headers=headers)
    assert status == 202


@pytest.mark.parametrize("character", ["界", "😀"], ids=["cjk", "emoji"])
def test_the_longest_ticket_the_model_takes_is_accepted_however_its_json_escapes_it(
    api: Harness, character: str
) -> None:
    # Given a ticket of the longest subject and description, in characters JSON escapes as \uXXXX
    ticket = {
        **VALID_TICKET,
        "subject": character * MAX_SUBJECT_CHARS,
        "description": character * MAX_DESCRIPTION_CHARS,
    }
    body_text = json.dumps(ticket)
    # When it is posted, then it is accepted
    status, body = api.request("POST", "/tickets", body_text)
    assert status == 202, body


def test_a_body_over_the_size_limit_is_refused_with_413(api: Harness) -> None:
    # Given a syntactically valid ticket just over the size limit
    padding = "x" * (MAX_BODY_BYTES + 1)
    body_text = json.dumps({**VALID_TICKET, "description": padding})
    # When it is posted
    status, body = api.request("POST", "/tickets", body_text)
    # Then it is refused for its size, before any parsing or validation
    assert status == 413
    assert str(MAX_BODY_BYTES) in body["message"]
    assert api.published == []


@pytest.mark.parametrize(
    ("raw", "is_base64", "reason"),
    [
        pytest.param(
            base64.b64encode(b'{"customer_id": "C-1", "description": "caf\xe9"}').decode(),
            True,
            "UTF-8",
            id="invalid-utf8",
        ),
        pytest.param("%%% not base64 %%%", True, "base64", id="invalid-base64"),
        pytest.param('{"customer_id": "C-1", "description": ', False, "not valid JSON", id="truncated"),
        pytest.param('{"customer_id": "C-1", "description": "d", "x": NaN}', False, "not valid JSON", id="nan"),
        pytest.param("", False, "required", id="empty"),
        pytest.param(None, False, "required", id="absent"),
        pytest.param('["T-1", "C-1"]', False, "JSON object", id="array"),
        pytest.param('"just a string"', False, "JSON object", id="string"),
        pytest.param("null", False, "JSON object", id="null"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_400(
    api: Harness, raw: str | None, is_base64: bool, reason: str
) -> None:
    # Given a body that cannot be read as a JSON object
    # When it is posted
    status, body = api.request("POST", "/tickets", raw, is_base64=is_base64)
    # Then it is refused with a message saying why
    assert status == 400
    assert reason in body["message"]
    assert api.published == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param('{"customer_id": "C-1", "description": "first", "description": "second"}', "description"),
        pytest.param('{"customer_id": "C-1", "customer_id": "C-2", "description": "text"}', "customer_id"),
    ],
)
def test_a_body_naming_a_field_twice_is_refused_naming_it(api: Harness, raw: str, field: str) -> None:
    # Given a ticket whose JSON gives one field twice, with two values
    # When it is posted
    status, body = api.request("POST", "/tickets", raw)
    # Then it is refused naming the field, rather than accepted with one value silently dropped
    assert status == 400
    assert body["errors"] == [{"field": field, "message": "is given more than once"}]
    assert api.published == []


@pytest.mark.parametrize("is_base64", [False, True], ids=["text", "base64"])
def test_a_body_starting_with_a_utf8_bom_is_accepted_as_files_are(api: Harness, is_base64: bool) -> None:
    # Given a ticket saved by an editor that writes a UTF-8 byte-order mark first
    raw = "\ufeff" + json.dumps(VALID_TICKET)
    body = base64.b64encode(raw.encode("utf-8")).decode() if is_base64 else raw
    # When it is posted
    status, answer = api.request("POST", "/tickets", body, is_base64=is_base64)
    # Then it is accepted, as route reads such a file
    assert status == 202, answer
    assert answer["ticket_id"] == VALID_TICKET["ticket_id"]


def test_a_base64_encoded_valid_body_is_accepted(api: Harness) -> None:
    encoded = base64.b64encode(json.dumps(VALID_TICKET).encode()).decode()
    status, body = api.request("POST", "/tickets", encoded, is_base64=True)
    assert status == 202
    assert body["ticket_id"] == "T-100"


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_refused_with_400(api: Harness, opener: str) -> None:
    # Given 10,000 levels of nesting (small enough to pass the size limit)
    closer = "]" if opener == "[" else "}"
    raw = '{"customer_id": "C-1", "description": "d", "x": ' + opener * 10_000 + "1" + closer * 10_000 + "}"
    assert len(raw) < MAX_BODY_BYTES
    # When it is posted
    status, body = api.request("POST", "/tickets", raw)
    # Then the parser's recursion limit does not become a 500
    assert status == 400
    assert "nested" in body["message"]


def test_moderately_nested_json_is_refused_before_validation(api: Harness) -> None:
    raw = json.dumps({**VALID_TICKET, "extra": [[[[[[[[[["deep"]]]]]]]]]]})
    status, body = api.request("POST", "/tickets", raw)
    assert status == 400
    assert "nested" in body["message"]


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("1" + "0" * 5000, id="integer-5001-digits"),
        pytest.param("-" + "9" * 5000, id="negative-integer-5000-digits"),
    ],
)
def test_huge_numbers_are_refused_with_400(api: Harness, number: str) -> None:
    # Given a number far beyond Python's int-from-string digit limit
    raw = '{"customer_id": "C-1", "description": "d", "timestamp": ' + number + "}"
    # When it is posted
    status, body = api.request("POST", "/tickets", raw)
    # Then it is refused as invalid JSON rather than crashing the conversion
    assert status == 400
    assert body["message"].startswith("request body is not valid JSON")


def test_a_huge_float_is_a_field_error(api: Harness) -> None:
    raw = '{"customer_id": "C-1", "description": "d", "timestamp": 1' + "0" * 5000 + ".5}"
    status, body = api.request("POST", "/tickets", raw)
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["timestamp"]


# --- GET /tickets/{id} ----------------------------------------------------------------------------


def test_get_returns_the_stored_decision(api: Harness) -> None:
    # Given a ticket that was posted (and routed in-process)
    _, accepted = api.post_ticket(VALID_TICKET)
    # When its decision is fetched
    status, body = api.request("GET", "/tickets/T-100")
    # Then the decision is returned: the VIP's outage is a P0 for Network Operations
    assert status == 200
    assert body["ticket_id"] == "T-100"
    assert body["correlation_id"] == accepted["correlation_id"]
    assert body["assigned_team"] == "Network Operations"
    assert body["priority_level"] == "P0"
    assert body["sync_status"] == "success"


def test_get_where_no_decisions_table_is_configured_is_501_naming_the_setting(api: Harness) -> None:
    # Given a deployment without a decisions table
    api.deps = dataclasses.replace(api.deps, decisions=None)
    # When a decision is asked for
    status, body = api.request("GET", "/tickets/T-100", expected_5xx=501)
    # Then the answer says the lookup is off here, as feedback does, with no 503 inviting retries
    # that could never succeed
    assert status == 501
    assert "ROUTING_DECISIONS_TABLE" in body["message"]
    assert "Retry-After" not in api.last_headers


def test_get_of_an_unknown_ticket_is_404(api: Harness) -> None:
    status, body = api.request("GET", "/tickets/T-UNKNOWN")
    assert status == 404
    assert "T-UNKNOWN" in body["message"]


def test_a_percent_encoded_ticket_id_in_the_path_finds_its_decision(api: Harness) -> None:
    # Given a ticket whose id holds characters a client percent-encodes in a path
    assert api.post_ticket({**VALID_TICKET, "ticket_id": "ORD:1@EU+2"})[0] == 202
    # When its decision and feedback are asked for the way encodeURIComponent writes the path
    status, body = api.request("GET", "/tickets/ORD%3A1%40EU%2B2")
    feedback_status, _ = api.request(
        "POST", "/tickets/ORD%3A1%40EU%2B2/feedback", json.dumps({"correct_team": "Billing Support"})
    )
    # Then both find the ticket: a REST API passes the path on still encoded
    assert (status, body["ticket_id"]) == (200, "ORD:1@EU+2")
    assert feedback_status == 201
    assert [f.ticket_id for f in api.app.repository.feedback()] == ["ORD:1@EU+2"]


@pytest.mark.parametrize("ticket_id", ["bad!id", "T" * 200, "a,b", "T-\u00e9", "...", "T%2F1", "T%251"])
def test_get_of_an_invalid_ticket_id_is_400(api: Harness, ticket_id: str) -> None:
    status, body = api.request("GET", f"/tickets/{ticket_id}")
    assert status == 400
    assert "not a valid ticket id" in body["message"]


# --- health, unknown routes -----------------------------------------------------------------------


def test_health_reports_status_and_version(api: Harness) -> None:
    status, body = api.request("GET", "/health", headers={})
    assert status == 200
    assert body == {"status": "ok", "version": __version__}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("GET", "/tickets/T-1/x"), ("DELETE", "/tickets/T-1/feedback/x")]
)
def test_an_unknown_route_is_404(api: Harness, method: str, path: str) -> None:
    status, body = api.request(method, path)
    assert status == 404
    assert body == {"message": f"no route for {method} {path}"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/tickets/T-1", "GET"),
        ("POST", "/health", "GET"),
        ("GET", "/tickets/T-1/feedback", "POST"),
        ("PUT", "/tickets", "POST"),
    ],
)
def test_a_method_a_route_does_not_answer_is_405_naming_those_it_does(
    api: Harness, method: str, path: str, allowed: str
) -> None:
    # Given a direct invoke (or `sam local`) of a path the API has, with a method it does not answer there
    # When the handler answers, then it says which methods the path takes, as `serve` does
    status, body = api.request(method, path)
    assert status == 405
    assert body == {"message": f"{method} is not allowed on {path}; allowed: {allowed}"}
    assert api.last_headers["Allow"] == [allowed]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", '/tickets/T"1'), ("GET", "/tickets/T`1"), ("POST", "/tickets/T\\1/feedback")],
)
def test_a_ticket_id_no_route_takes_is_400_not_405_for_a_method_the_path_answers(
    api: Harness, method: str, path: str
) -> None:
    # Given a path of the API's shape whose ticket id holds a character no route's parameter takes
    status, body = api.request(method, path, json.dumps({"correct_team": "Billing Support"}))
    # Then the id is named as what is wrong, not the method the path does answer
    assert status == 400
    assert "not a valid ticket id" in body["message"]


def _sample_post_without(field: str, value: Any = ...) -> dict[str, Any]:
    event = copy.deepcopy(POST_EVENT)
    if value is ...:
        del event[field]
    else:
        event[field] = value
    return event


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param(_sample_post_without("path"), "path", id="no-path"),
        pytest.param(_sample_post_without("path", None), "path", id="path-null"),
        pytest.param(_sample_post_without("headers", "Content-Type: application/json"), "headers", id="headers-text"),
        pytest.param(_sample_post_without("headers", {"Content-Type": 5}), "headers.Content-Type", id="header-number"),
        pytest.param(_sample_post_without("multiValueHeaders", [1]), "multiValueHeaders", id="multi-headers-list"),
        pytest.param(_sample_post_without("body", {"ticket_id": "T-1"}), "body", id="body-an-object"),
        pytest.param(_sample_post_without("pathParameters", "T-1"), "pathParameters", id="path-parameters-text"),
        pytest.param(_sample_post_without("queryStringParameters", ["a"]), "queryStringParameters", id="query-a-list"),
    ],
)
def test_an_event_api_gateway_would_never_send_is_a_400_naming_the_field(
    api: Harness, event: dict[str, Any], field: str
) -> None:
    # Given the sample POST event with one field missing or of the wrong type, as a hand-made
    # console test event may have it
    # When the handler gets it
    result = ingestion.lambda_handler(event, LocalLambdaContext(function_name="ingestion"), deps=api.deps)
    # Then it answers 400 naming that field, instead of crashing in the router, and publishes nothing
    assert result["statusCode"] == 400
    body = json.loads(result["body"])
    assert [error["field"] for error in body["errors"]] == [field]
    assert field in body["message"]
    assert api.published == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/tickets/T-100", None, id="get"),
        pytest.param("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Billing Support"}), id="feedback"),
    ],
)
def test_too_little_time_for_a_store_call_is_a_503_with_retry_after_and_nothing_recorded(
    api: Harness, method: str, path: str, body: str | None
) -> None:
    # Given a routed ticket, and a request that starts with less of the function's time than one
    # call to the decision store may take (a DynamoDB call and its retry)
    assert api.post_ticket(VALID_TICKET)[0] == 202
    api.function_timeout_seconds = AWS_CALL_WORST_CASE_SECONDS
    # When the ticket's decision is read, or feedback sent on it
    status, answer = api.request(method, path, body, unavailable_ok=True)
    # Then the client is told when to retry before API Gateway would answer a bare 502, and no
    # feedback was recorded
    assert status == 503 and "retry" in answer["message"]
    assert api.last_headers["Retry-After"] == ["1"]
    assert api.app.repository.feedback() == []
    # And the retry, with time enough, is answered
    api.function_timeout_seconds = 30.0
    assert api.request(method, path, body)[0] in (200, 201)


# --- POST /tickets/{id}/feedback ------------------------------------------------------------------


def test_feedback_on_a_decision_is_recorded(api: Harness) -> None:
    # Given a routed ticket
    api.post_ticket(VALID_TICKET)
    # When an agent says it belonged to another team
    status, body = api.request(
        "POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Billing Support", "agent_id": "agent-7"})
    )
    # Then the feedback is stored and flagged as a re-route
    assert status == 201
    assert body == {"ticket_id": "T-100", "rerouted": True, "status": "recorded"}
    stored = api.app.repository.feedback()
    assert [(f.ticket_id, f.correct_team, f.agent_id) for f in stored] == [("T-100", "Billing Support", "agent-7")]


def test_feedback_confirming_the_team_is_not_a_reroute(api: Harness) -> None:
    api.post_ticket(VALID_TICKET)
    status, body = api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Network Operations"}))
    assert status == 201
    assert body["rerouted"] is False


def test_a_reroute_is_counted_for_routing_accuracy_and_a_confirmation_is_not(
    api: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a routed ticket, and metrics on
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    ingestion.metrics.clear_metrics()  # what earlier tests added while metrics were off
    api.post_ticket(VALID_TICKET)
    capsys.readouterr()
    # When one agent confirms the team and another re-routes the ticket
    api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Network Operations"}))
    confirmed = emitted_metrics(capsys.readouterr().out)
    api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Billing Support"}))
    rerouted = emitted_metrics(capsys.readouterr().out)
    # And a third agent re-routes it again, and a fourth confirms the original team after all
    api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Technical Support"}))
    rerouted_again = emitted_metrics(capsys.readouterr().out)
    api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Network Operations"}))
    confirmed_at_last = emitted_metrics(capsys.readouterr().out)
    # Then the count follows the latest correction, as `feedback stats` does: +1 when the decision
    # became re-routed, nothing while it stayed so, -1 when it was confirmed after all
    assert "TicketsRerouted" not in confirmed
    assert rerouted["TicketsRerouted"] == [1.0]
    assert "TicketsRerouted" not in rerouted_again
    assert confirmed_at_last["TicketsRerouted"] == [-1.0]
    assert "RoutingAccuracy" not in confirmed | rerouted


def test_feedback_naming_an_unknown_team_is_400(api: Harness) -> None:
    # Given a routed ticket
    api.post_ticket(VALID_TICKET)
    # When the feedback names a team the taxonomy does not have
    status, body = api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": "Sales"}))
    # Then it is refused, naming the field, and nothing is stored
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["correct_team"]
    assert api.app.repository.feedback() == []


def test_feedback_with_invalid_fields_is_400(api: Harness) -> None:
    api.post_ticket(VALID_TICKET)
    status, body = api.request("POST", "/tickets/T-100/feedback", json.dumps({"correct_team": 5}))
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["correct_team"]


@pytest.mark.parametrize(
    ("correction", "field"),
    [
        pytest.param({"correct_team": "Billing Support", "team": "x"}, "team", id="unknown-field"),
        pytest.param({"correct_team": "Billing Support", "agent_id": "a b!"}, "agent_id", id="agent-id-not-an-id"),
        pytest.param(
            {"correct_team": "Billing Support", "correct_category": "Network Outage"},
            "correct_category",
            id="category-of-another-team",
        ),
    ],
)
def test_a_correction_that_would_teach_the_model_nonsense_is_400(
    api: Harness, correction: dict[str, str], field: str
) -> None:
    # Given a routed ticket
    api.post_ticket(VALID_TICKET)
    # When a correction arrives with a field it does not know, or a category its team does not handle
    status, body = api.request("POST", "/tickets/T-100/feedback", json.dumps(correction))
    # Then it is refused naming that field, and nothing reaches the retraining data
    assert status == 400
    assert [e["field"] for e in body["errors"]] == [field]
    assert api.app.repository.feedback() == []


def test_a_correction_with_a_category_the_taxonomy_does_not_know_is_kept(api: Harness) -> None:
    # Given a routed ticket, and a deployment whose model may use finer labels than the taxonomy
    api.post_ticket(VALID_TICKET)
    # When the correction names such a label
    correction = {"correct_team": "Billing Support", "correct_category": "card_payment_fee_charged"}
    status, _ = api.request("POST", "/tickets/T-100/feedback", json.dumps(correction))
    # Then it is recorded as given
    assert status == 201
    assert [f.correct_category for f in api.app.repository.feedback()] == ["card_payment_fee_charged"]


def test_a_known_category_written_in_another_case_is_stored_as_the_taxonomy_spells_it(api: Harness) -> None:
    # Given a routed ticket
    api.post_ticket(VALID_TICKET)
    # When an agent's correction names a category in lower case
    correction = {"correct_team": "Network Operations", "correct_category": "network outage"}
    status, _ = api.request("POST", "/tickets/T-100/feedback", json.dumps(correction))
    # Then it is stored under the taxonomy's name, so retraining sees one label, not two
    assert status == 201
    assert [f.correct_category for f in api.app.repository.feedback()] == ["Network Outage"]


@pytest.mark.parametrize("ticket_id", ["T-100", "T-NONE"])
def test_feedback_where_it_is_not_enabled_is_501_whatever_the_ticket(api: Harness, ticket_id: str) -> None:
    # Given a deployment with no feedback store, and one routed ticket
    api.post_ticket(VALID_TICKET)
    api.deps = dataclasses.replace(api.deps, feedback=None)
    # When feedback is sent, on that ticket or on one never seen
    document = json.dumps({"correct_team": "Billing Support"})
    status, body = api.request("POST", f"/tickets/{ticket_id}/feedback", document, expected_5xx=501)
    # Then the answer is that feedback is off here, not that the ticket is unknown
    assert status == 501
    assert body["message"] == "feedback is not enabled on this deployment"


def test_feedback_on_an_unknown_ticket_is_404(api: Harness) -> None:
    status, body = api.request("POST", "/tickets/T-NONE/feedback", json.dumps({"correct_team": "Billing Support"}))
    assert status == 404
    assert "T-NONE" in body["message"]
    assert api.app.repository.feedback() == []
