"""The HTTP adapters over real sockets: fake servers on 127.0.0.1 with injected faults.

Backoff waits go through an injected `sleep` that records them, so no test really waits; the
only real time spent is the short client timeout of the "hung server" cases.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from adapters.http.customer_db import HttpCustomerDirectory
from adapters.http.retry import parse_retry_after
from adapters.http.service_status import HttpServiceStatusProvider
from adapters.http.ticketing import HttpTicketingSystem
from domain.errors import ConfigurationError, EvidenceUnavailable, SyncRejected, SyncUnavailable
from domain.models import AccountType, CustomerProfile, OutageStatus
from domain.ticketing import routing_update_payload
from tests.http_servers import (
    FakeCustomerDb,
    FakeServiceStatusApi,
    FakeTicketingSystem,
    Fault,
    Reply,
    TlsRecordSpoiler,
)
from tests.integration.conftest import NOW, a_decision

SHORT_TIMEOUT = 0.2  # for the hung-server cases; the servers hang far longer (until they stop)
API_KEY = "ticketing-key-0123456789"


def closed_port_url() -> str:
    """A URL nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- customer DB --------------------------------------------------------------------------------


@pytest.fixture
def customer_db() -> Iterator[FakeCustomerDb]:
    customers: list[dict[str, Any]] = [
        {"customer_id": "CUST-1001", "is_vip": True, "account_type": "Enterprise", "services": ["SVC001"]},
        {"customer_id": "acme/east+1", "account_type": "Business"},
    ]
    with FakeCustomerDb(customers) as server:
        yield server


def test_customer_profile_is_read_from_the_customer_db(customer_db: FakeCustomerDb) -> None:
    # Given a known customer
    directory = HttpCustomerDirectory(customer_db.url + "/")

    # When the profile is asked for
    profile = directory.get_profile("CUST-1001")

    # Then it is the DB's profile, fetched with one GET on /customers/{id}
    assert profile == CustomerProfile(
        customer_id="CUST-1001", is_vip=True, account_type=AccountType.ENTERPRISE, services=("SVC001",)
    )
    assert [(r.method, r.path) for r in customer_db.requests] == [("GET", "/customers/CUST-1001")]


def test_customer_ids_are_url_quoted(customer_db: FakeCustomerDb) -> None:
    # Given an id with characters that mean something in a URL
    directory = HttpCustomerDirectory(customer_db.url)

    # When it is looked up
    profile = directory.get_profile("acme/east+1")

    # Then it travels as one quoted path segment and finds its customer
    assert profile.account_type is AccountType.BUSINESS
    assert customer_db.requests[0].path == "/customers/acme%2Feast%2B1"


@pytest.mark.parametrize("customer_id", ["..", "."])
def test_a_dot_segment_id_is_no_customer_and_addresses_nothing(customer_db: FakeCustomerDb, customer_id: str) -> None:
    # Given / When an id that URL resolution would turn into "this" or "the parent" segment
    profile = HttpCustomerDirectory(customer_db.url).get_profile(customer_id)

    # Then it is an unknown customer, and nothing was asked of another resource
    assert profile == CustomerProfile.unknown(customer_id)
    assert customer_db.requests == []


def test_an_unknown_customer_gets_the_unprivileged_default_profile(customer_db: FakeCustomerDb) -> None:
    # Given / When a customer the DB answers 404 for
    profile = HttpCustomerDirectory(customer_db.url).get_profile("CUST-404")

    # Then
    assert profile == CustomerProfile.unknown("CUST-404")


def test_a_profile_without_customer_id_gets_the_requested_one(customer_db: FakeCustomerDb) -> None:
    # Given a DB answering without the id field
    customer_db.customers["CUST-2"] = {"is_vip": True}
    customer_db.customers["CUST-2"].pop("customer_id", None)

    # When / Then the requested id fills it in
    assert HttpCustomerDirectory(customer_db.url).get_profile("CUST-2").customer_id == "CUST-2"


def test_a_profile_of_another_customer_raises_evidence_unavailable(customer_db: FakeCustomerDb) -> None:
    # Given a DB answering the lookup of CUST-1 with the profile of a VIP, CUST-1001
    customer_db.customers["CUST-1"] = customer_db.customers["CUST-1001"]

    # When / Then the answer is refused as any invalid one is, rather than lend CUST-1 a VIP's privileges
    with pytest.raises(EvidenceUnavailable, match=r"CUST-1001.*CUST-1"):
        HttpCustomerDirectory(customer_db.url).get_profile("CUST-1")


def test_a_profile_under_the_ids_canonical_spelling_is_the_customers_own(customer_db: FakeCustomerDb) -> None:
    # Given a DB that finds the VIP CUST-1001 when asked for cust-1001, and answers with its own spelling
    customer_db.customers["cust-1001"] = customer_db.customers["CUST-1001"]

    # When the customer is looked up as the ticket spells the id
    profile = HttpCustomerDirectory(customer_db.url).get_profile("cust-1001")

    # Then it is that customer's profile, under the ticket's spelling, VIP status and all
    assert (profile.customer_id, profile.is_vip) == ("cust-1001", True)


def test_a_redirected_lookup_is_not_followed(customer_db: FakeCustomerDb) -> None:
    # Given a DB redirecting the lookup with a large body (requests would read a redirect's body
    # whole, past the 1 MB cap, before following it)
    customer_db.add_fault(Fault(Reply(302, b"x" * 2_000_000, {"Location": "/customers/CUST-1001"})))

    # When / Then the lookup fails naming where it was sent, after that one request
    with pytest.raises(EvidenceUnavailable, match=r"HTTP 302.* to /customers/CUST-1001"):
        HttpCustomerDirectory(customer_db.url).get_profile("CUST-1001")
    assert customer_db.lookups_of("CUST-1001") == 1


def test_one_server_error_is_retried_once_at_once(customer_db: FakeCustomerDb) -> None:
    # Given a DB failing once with 503
    customer_db.fail_next(1, status=503)

    # When / Then the lookup still succeeds, after exactly two requests
    assert HttpCustomerDirectory(customer_db.url).get_profile("CUST-1001").is_vip
    assert customer_db.lookups_of("CUST-1001") == 2


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda s: s.fail_next(None, status=500), id="5xx-every-time"),
        pytest.param(lambda s: s.reject_next(1, status=400), id="400"),
        pytest.param(lambda s: s.reject_next(1, status=403), id="403"),
        pytest.param(lambda s: s.malformed_next(1), id="invalid-json"),
        pytest.param(lambda s: s.hang_next(1), id="hang-past-timeout"),
    ],
)
def test_customer_db_failures_raise_evidence_unavailable(customer_db: FakeCustomerDb, fault: Any) -> None:
    # Given a misbehaving customer DB
    fault(customer_db)
    directory = HttpCustomerDirectory(customer_db.url, timeout=SHORT_TIMEOUT)

    # When / Then the lookup fails with the domain error
    with pytest.raises(EvidenceUnavailable, match="CUST-1001"):
        directory.get_profile("CUST-1001")


def test_a_timeout_is_not_retried(customer_db: FakeCustomerDb) -> None:
    # Given a DB that hangs past the client timeout
    customer_db.hang_next(None)

    # When the lookup times out
    with pytest.raises(EvidenceUnavailable):
        HttpCustomerDirectory(customer_db.url, timeout=SHORT_TIMEOUT).get_profile("CUST-1001")

    # Then it was tried once: a second wait would double the routing latency
    assert customer_db.lookups_of("CUST-1001") == 1


def test_an_invalid_profile_raises_evidence_unavailable(customer_db: FakeCustomerDb) -> None:
    # Given a DB answering with a profile the domain rejects
    customer_db.customers["CUST-BAD"] = {"customer_id": "CUST-BAD", "lifetime_value": -5}

    # When / Then
    with pytest.raises(EvidenceUnavailable, match="invalid profile"):
        HttpCustomerDirectory(customer_db.url).get_profile("CUST-BAD")


def test_a_body_trickling_in_past_the_timeout_is_evidence_unavailable(customer_db: FakeCustomerDb) -> None:
    # Given a DB that sends each byte of the profile well within the timeout, the whole far past it
    customer_db.drip_next(1, seconds_per_byte=SHORT_TIMEOUT / 4)

    # When / Then the lookup gives up as for a hung server, rather than waiting for every byte
    with pytest.raises(EvidenceUnavailable, match="CUST-1001"):
        HttpCustomerDirectory(customer_db.url, timeout=SHORT_TIMEOUT).get_profile("CUST-1001")


# Each evidence lookup: a new server answering it, and the lookup of CUST-1001 or SVC001 on it.
LOOKUPS = [
    pytest.param(
        lambda: FakeCustomerDb([{"customer_id": "CUST-1001", "is_vip": True}]),
        lambda url: HttpCustomerDirectory(url, timeout=SHORT_TIMEOUT).get_profile("CUST-1001"),
        id="customer-db",
    ),
    pytest.param(
        lambda: FakeServiceStatusApi([{"outage_id": "O-1", "service_id": "SVC001", "status": "active"}]),
        lambda url: HttpServiceStatusProvider(url, timeout=SHORT_TIMEOUT).get_status(["SVC001"]),
        id="service-status",
    ),
]


@pytest.mark.parametrize(("new_server", "lookup"), LOOKUPS)
def test_headers_trickling_in_past_the_timeout_are_evidence_unavailable(new_server: Any, lookup: Any) -> None:
    with new_server() as server:
        # Given a server whose answer's status line and headers come a byte at a time, each well
        # within the timeout, the whole far past it (the body would then come at once)
        server.drip_next(None, seconds_per_byte=SHORT_TIMEOUT / 8, headers=True)

        # When / Then the lookup gives up as for a hung server, rather than take the answer once complete
        with pytest.raises(EvidenceUnavailable, match="no complete answer within"):
            lookup(server.url)


@pytest.mark.parametrize(("new_server", "lookup"), LOOKUPS)
def test_an_answer_dropped_mid_body_is_retried_once_at_once(new_server: Any, lookup: Any) -> None:
    with new_server() as server:
        # Given a server whose first answer's connection closes halfway through the body
        server.drop_next(1)

        # When the lookup is made
        answer = lookup(server.url)

        # Then a second request brought the whole answer, the one an undisturbed lookup gets
        assert len(server.requests) == 2
        assert answer == lookup(server.url)


@pytest.mark.parametrize(("new_server", "lookup"), LOOKUPS)
def test_an_answer_dropped_mid_body_twice_is_evidence_unavailable(new_server: Any, lookup: Any) -> None:
    with new_server() as server:
        # Given a server whose answers' connections close halfway through the body, every time
        server.drop_next(None)

        # When / Then the lookup gives up after its one quick retry
        with pytest.raises(EvidenceUnavailable, match="unreadable"):
            lookup(server.url)
        assert len(server.requests) == 2


@pytest.mark.parametrize(("new_server", "lookup"), LOOKUPS)
def test_an_answer_nested_too_deep_to_decode_is_evidence_unavailable(new_server: Any, lookup: Any) -> None:
    with new_server() as server:
        # Given a server answering with JSON nested deeper than the decoder recurses, well under 1 MB
        server.add_fault(Fault(Reply(200, b"[" * 100_000, {"Content-Type": "application/json"})))

        # When / Then the lookup fails as for any answer that is not JSON, rather than crash the routing
        with pytest.raises(EvidenceUnavailable, match="invalid JSON"):
            lookup(server.url)


def test_a_huge_answer_is_evidence_unavailable_not_read_into_memory(customer_db: FakeCustomerDb) -> None:
    # Given a DB answering with a valid profile padded to several megabytes
    profile = {"customer_id": "CUST-1001", "is_vip": True, "service_plan": "x" * 5_000_000}
    customer_db.add_fault(Fault(Reply.json(profile)))

    # When / Then
    with pytest.raises(EvidenceUnavailable, match="too large"):
        HttpCustomerDirectory(customer_db.url).get_profile("CUST-1001")


def test_an_unreachable_customer_db_raises_evidence_unavailable() -> None:
    # Given / When / Then nothing listening
    with pytest.raises(EvidenceUnavailable, match="unreachable"):
        HttpCustomerDirectory(closed_port_url(), timeout=1.0).get_profile("CUST-1001")


def test_an_injected_session_is_used(customer_db: FakeCustomerDb) -> None:
    # Given a shared session carrying a header of its own
    session = requests.Session()
    session.headers["X-Caller"] = "orchestrator"

    # When the adapter uses it
    HttpCustomerDirectory(customer_db.url, session=session).get_profile("CUST-1001")

    # Then the request went out through that session
    assert customer_db.requests[0].header("X-Caller") == "orchestrator"


# --- service status -----------------------------------------------------------------------------


@pytest.fixture
def status_api() -> Iterator[FakeServiceStatusApi]:
    outages = [
        {"outage_id": "O-1", "service_id": "SVC001", "status": "investigating", "started_at": "2026-11-24T08:00:00Z"},
        {"outage_id": "O-2", "service_id": "SVC004", "status": "resolved"},
        {"outage_id": "O-3", "service_id": "SVC999", "status": "active"},
    ]
    with FakeServiceStatusApi(outages, known_issues=["Slow portal"], overall_health="Degraded") as server:
        yield server


def test_status_is_fetched_in_one_batch_for_the_asked_services(status_api: FakeServiceStatusApi) -> None:
    # Given a status API with outages on several services
    provider = HttpServiceStatusProvider(status_api.url)

    # When two services are asked about
    status = provider.get_status(["SVC001", "SVC004"])

    # Then one POST carried both ids and the answer maps onto ServiceStatus
    assert [(r.method, r.path, r.json) for r in status_api.requests] == [
        ("POST", "/status/batch", {"service_ids": ["SVC001", "SVC004"]})
    ]
    assert [(o.outage_id, o.status) for o in status.outages] == [
        ("O-1", OutageStatus.ACTIVE),
        ("O-2", OutageStatus.RESOLVED),
    ]
    assert status.outages[0].started_at is not None
    assert status.known_issues == ("Slow portal",)
    assert status.overall_health == "Degraded"


def test_an_empty_service_list_still_asks_for_network_wide_status(status_api: FakeServiceStatusApi) -> None:
    # Given / When no service is named
    status = HttpServiceStatusProvider(status_api.url).get_status([])

    # Then the API is still asked, and its network-wide information kept
    assert [r.json for r in status_api.requests] == [{"service_ids": []}]
    assert status.outages == ()
    assert status.overall_health == "Degraded"


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda s: s.fail_next(None, status=502), id="5xx-every-time"),
        pytest.param(lambda s: s.malformed_next(1), id="invalid-json"),
        pytest.param(lambda s: s.hang_next(1), id="hang-past-timeout"),
        pytest.param(lambda s: s.drip_next(1, seconds_per_byte=SHORT_TIMEOUT / 4), id="trickle-past-timeout"),
        pytest.param(lambda s: s.reject_next(1, status=400), id="400"),
    ],
)
def test_status_api_failures_raise_evidence_unavailable(status_api: FakeServiceStatusApi, fault: Any) -> None:
    # Given a misbehaving status API
    fault(status_api)

    # When / Then
    with pytest.raises(EvidenceUnavailable):
        HttpServiceStatusProvider(status_api.url, timeout=SHORT_TIMEOUT).get_status(["SVC001"])


class RedirectedStatusApi(FakeServiceStatusApi):
    """Behind a proxy that redirects the batch query to a summary page, healthy to any GET."""

    def __init__(self, status: int) -> None:
        super().__init__([{"outage_id": "O-1", "service_id": "SVC001", "status": "active"}])
        self.status = status

    def respond(self, request: Any) -> Reply:
        if request.method == "GET":
            return Reply.json({"outages": [], "overall_health": "Healthy"})
        return Reply(self.status, b"", {"Location": "/status/summary"})


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirected_status_query_is_not_taken_for_an_answer(status: int) -> None:
    # Given a status API whose batch query is redirected (requests would follow with a bodiless GET)
    with RedirectedStatusApi(status) as server:
        # When / Then the lookup fails naming the redirect, rather than report no outage on SVC001
        with pytest.raises(EvidenceUnavailable, match=f"HTTP {status}"):
            HttpServiceStatusProvider(server.url).get_status(["SVC001"])
        assert [r.method for r in server.requests] == ["POST"]


def test_an_unreachable_status_api_raises_evidence_unavailable() -> None:
    with pytest.raises(EvidenceUnavailable, match="unreachable"):
        HttpServiceStatusProvider(closed_port_url(), timeout=1.0).get_status(["SVC001"])


# --- ticketing system ---------------------------------------------------------------------------


class FakeMonotonic:
    """A monotonic clock that only moves when the adapter "sleeps": deadlines become exact."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def ticketing() -> Iterator[FakeTicketingSystem]:
    with FakeTicketingSystem(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


def ticketing_adapter(
    server: FakeTicketingSystem | str, clock: FakeMonotonic, *, rng_value: float = 1.0, **kwargs: Any
) -> HttpTicketingSystem:
    # rng 1.0 puts equal jitter at the top of its range, i.e. exactly the nominal 1, 2, 4... s.
    url = server if isinstance(server, str) else server.url
    return HttpTicketingSystem(url, lambda: API_KEY, sleep=clock.sleep, clock=clock, rng=lambda: rng_value, **kwargs)


def test_routing_update_is_put_with_auth_and_idempotency_headers(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a decision
    decision = a_decision("T-1")

    # When it is pushed
    ticketing_adapter(ticketing, clock).push_routing(decision)

    # Then one PUT delivered the routing payload with the key and the idempotency key, no waiting
    [put] = ticketing.puts
    assert put.path == "/tickets/T-1/routing"
    assert put.json == routing_update_payload(decision)
    assert put.header("Authorization") == f"Bearer {API_KEY}"
    assert put.header("Idempotency-Key") == f"T-1:{decision.timestamp}"
    assert put.header("Content-Type") == "application/json"
    assert ticketing.routing["T-1"]["assigned_team"] == decision.assigned_team
    assert clock.sleeps == []


def test_server_errors_are_retried_with_exponential_backoff_until_success(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a ticketing system failing three times
    ticketing.fail_next(2, status=503)
    ticketing.fail_next(1, status=500)

    # When a decision is pushed
    ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))

    # Then it was applied once, after waits of 1, 2 and 4 s, every attempt with the same key
    assert "T-1" in ticketing.routing
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(ticketing.puts) == 4
    assert {p.header("Idempotency-Key") for p in ticketing.puts} == {ticketing.applied_keys[0]}


def test_exhausted_retries_raise_sync_unavailable_after_capped_backoff(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a ticketing system that never recovers
    ticketing.fail_next(None, status=503)

    # When a decision is pushed with 6 retries
    with pytest.raises(SyncUnavailable, match=r"after 7 attempt\(s\).*HTTP 503"):
        ticketing_adapter(ticketing, clock, max_retries=6).push_routing(a_decision())

    # Then 7 attempts were made and the waits doubled up to the 16 s cap
    assert len(ticketing.puts) == 7
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0]
    assert ticketing.routing == {}


def test_longest_push_seconds_is_every_attempt_timing_out_after_the_longest_waits(clock: FakeMonotonic) -> None:
    # Given nothing listening and waits at the top of their jitter range
    adapter = ticketing_adapter(closed_port_url(), clock, max_retries=6, timeout=5.0)

    # When a push runs out of retries
    with pytest.raises(SyncUnavailable):
        adapter.push_routing(a_decision())

    # Then its waits plus a full timeout for each of its 7 attempts are the advertised worst case
    assert sum(clock.sleeps) + 7 * 5.0 == adapter.longest_push_seconds == 1 + 2 + 4 + 8 + 16 + 16 + 35


def test_jitter_keeps_each_wait_between_half_and_all_of_the_nominal_delay(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a failing ticketing system and the lowest possible random draw
    ticketing.fail_next(None, status=503)

    # When retries run out
    with pytest.raises(SyncUnavailable):
        ticketing_adapter(ticketing, clock, rng_value=0.0, retry_delay_base=2.0, max_retries=3).push_routing(
            a_decision()
        )

    # Then every wait is half its nominal 2, 4, 8 s
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_a_429_retry_after_longer_than_the_backoff_is_honoured(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a ticketing system asking to wait 30 s, then one asking for less than the backoff
    ticketing.throttle_next(1, retry_after="30")
    ticketing.throttle_next(1, retry_after="0")

    # When a decision is pushed
    ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))

    # Then the adapter waited 30 s, then its own 2 s, and the update landed
    assert clock.sleeps == [30.0, 2.0]
    assert "T-1" in ticketing.routing


def test_a_retry_after_dated_beyond_any_calendar_is_ignored(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a 503 whose Retry-After is an HTTP date with a year no datetime can hold
    retry_after = "Tue, 24 Nov 99999999999999999999 12:00:00 GMT"
    ticketing.add_fault(Fault(Reply.json({"error": "maintenance"}, 503, {"Retry-After": retry_after})))

    # When a decision is pushed / Then the header counts as absent, as any invalid one does
    ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))
    assert clock.sleeps == [1.0]
    assert "T-1" in ticketing.routing


def test_a_503_retry_after_is_honoured_too(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given a ticketing system in maintenance for 20 s
    ticketing.add_fault(Fault(Reply.json({"error": "maintenance"}, 503, {"Retry-After": "20"})))

    # When a decision is pushed / Then the adapter waited as asked and the update landed
    ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))
    assert clock.sleeps == [20.0]
    assert "T-1" in ticketing.routing


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda s: s.throttle_next(1, retry_after="86400"), id="429"),
        pytest.param(
            lambda s: s.add_fault(Fault(Reply.json({"error": "maintenance"}, 503, {"Retry-After": "86400"}))), id="503"
        ),
    ],
)
def test_a_retry_after_beyond_max_retry_after_ends_the_push_at_once_even_without_a_deadline(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic, fault: Any
) -> None:
    # Given a ticketing system asking to wait a day, and a push with no deadline (as `dlq replay` does)
    fault(ticketing)

    # When / Then the push is left for a later replay, naming the requested wait, without sleeping
    with pytest.raises(SyncUnavailable, match=r"86400s.*max_retry_after 300s"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))
    assert clock.sleeps == []
    assert len(ticketing.puts) == 1
    assert ticketing.routing == {}


def test_a_retry_after_up_to_max_retry_after_is_waited_in_full(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a ticketing system asking for exactly the longest wait the adapter accepts
    ticketing.throttle_next(1, retry_after="600")

    # When a decision is pushed
    ticketing_adapter(ticketing, clock, max_retry_after=600.0).push_routing(a_decision("T-1"))

    # Then the adapter waited all of it, not less, and the update landed
    assert clock.sleeps == [600.0]
    assert "T-1" in ticketing.routing


def test_a_408_request_timeout_is_retried(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given a ticketing system that times out reading one request
    ticketing.reject_next(1, status=408, message="request timeout")

    # When a decision is pushed
    ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))

    # Then it was retried after the usual backoff and applied once
    assert len(ticketing.puts) == 2
    assert clock.sleeps == [1.0]
    assert ticketing.applied_keys == [a_decision("T-1").idempotency_key]


def test_a_ticket_id_no_http_header_can_carry_is_rejected_without_a_request(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a stored decision whose ticket id, in its Idempotency-Key, has a character beyond Latin-1
    # When it is pushed / Then it is refused for good, as a push that can never be sent, not a crash
    with pytest.raises(SyncRejected, match="Idempotency-Key"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision("T-\u20ac"))
    assert ticketing.requests == []


def test_a_dot_segment_ticket_id_is_rejected_without_a_request(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a decision whose ticket id would resolve to the parent path (/tickets/../routing)
    # When it is pushed / Then it is refused for good, and no request reached any resource
    with pytest.raises(SyncRejected, match="path segment"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision(".."))
    assert ticketing.requests == []


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_a_4xx_is_a_permanent_rejection_and_is_not_retried(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic, status: int
) -> None:
    # Given a ticketing system refusing the update
    ticketing.reject_next(1, status=status, message="ticket is closed")

    # When / Then the push is rejected with the server's reason, after a single attempt
    with pytest.raises(SyncRejected, match=f"HTTP {status}.*ticket is closed"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision())
    assert len(ticketing.puts) == 1
    assert clock.sleeps == []


class RedirectingTicketingSystem(FakeTicketingSystem):
    """Behind a proxy that sends some requests to a login page, which answers any GET with 200."""

    def respond(self, request: Any) -> Reply:
        if request.method == "GET":
            return Reply(200, b"<html>sign in</html>", {"Content-Type": "text/html"})
        return super().respond(request)


@pytest.mark.parametrize("status", [301, 302, 303, 307])
def test_a_redirected_push_is_not_followed_nor_taken_for_success(clock: FakeMonotonic, status: int) -> None:
    # Given a ticketing endpoint that redirects the PUT to a page answering 200
    with RedirectingTicketingSystem(api_key=API_KEY) as ticketing:
        ticketing.add_fault(Fault(Reply(status, b"", {"Location": f"{ticketing.url}/login"})))

        # When / Then the push fails, naming where it was sent, and nothing else was requested
        with pytest.raises(SyncRejected, match=f"HTTP {status}.*/login"):
            ticketing_adapter(ticketing, clock).push_routing(a_decision("T-1"))
        assert [(r.method, r.path) for r in ticketing.requests] == [("PUT", "/tickets/T-1/routing")]
        assert clock.sleeps == []


def test_a_wrong_api_key_is_rejected(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given an adapter with a stale key
    adapter = HttpTicketingSystem(ticketing.url, lambda: "stale-key", sleep=clock.sleep, clock=clock)

    # When / Then the 401 is a permanent rejection
    with pytest.raises(SyncRejected, match="HTTP 401"):
        adapter.push_routing(a_decision())
    assert ticketing.routing == {}


class KeySource:
    """The key reader's two doors: the (possibly stale) cached key and a forced re-read."""

    def __init__(self, cached: str, fresh: str | Exception) -> None:
        self.cached = cached
        self.fresh = fresh
        self.refreshes = 0

    def __call__(self) -> str:
        return self.cached

    def refresh(self) -> str:
        self.refreshes += 1
        if isinstance(self.fresh, Exception):
            raise self.fresh
        self.cached = self.fresh
        return self.fresh


def key_adapter(server: FakeTicketingSystem, clock: FakeMonotonic, keys: KeySource) -> HttpTicketingSystem:
    return HttpTicketingSystem(server.url, keys, refresh_api_key=keys.refresh, sleep=clock.sleep, clock=clock)


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(lambda s: None, id="401-from-the-key-check"),
        pytest.param(lambda s: s.reject_next(1, status=403, message="forbidden"), id="403"),
    ],
)
def test_a_refused_key_is_refetched_once_and_the_push_retried_at_once(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic, refusal: Any
) -> None:
    # Given a key rotated in the secret store while the adapter still holds the old one cached
    refusal(ticketing)
    keys = KeySource(cached="old-key-before-rotation", fresh=API_KEY)

    # When a decision is pushed
    key_adapter(ticketing, clock, keys).push_routing(a_decision("T-1"))

    # Then the key was re-read once and the second request, sent without waiting, carried the new key
    assert "T-1" in ticketing.routing
    assert [p.header("Authorization") for p in ticketing.puts] == [
        "Bearer old-key-before-rotation",
        f"Bearer {API_KEY}",
    ]
    assert keys.refreshes == 1
    assert clock.sleeps == []


def test_a_refused_key_that_is_unchanged_after_refetch_is_a_permanent_rejection(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a key that is wrong in the secret store itself
    keys = KeySource(cached="wrong-key", fresh="wrong-key")

    # When / Then the refetch finds nothing new: rejected for good, without sending the same request again
    with pytest.raises(SyncRejected, match="HTTP 401"):
        key_adapter(ticketing, clock, keys).push_routing(a_decision())
    assert len(ticketing.puts) == 1
    assert keys.refreshes == 1


def test_a_refetched_key_that_is_refused_too_is_a_permanent_rejection(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a secret store that holds another key the ticketing system refuses as well
    keys = KeySource(cached="old-key", fresh="new-but-also-wrong-key")

    # When / Then the push is rejected after the one retry with the new key, and the key read only once more
    with pytest.raises(SyncRejected, match="HTTP 401"):
        key_adapter(ticketing, clock, keys).push_routing(a_decision())
    assert [p.header("Authorization") for p in ticketing.puts] == ["Bearer old-key", "Bearer new-but-also-wrong-key"]
    assert keys.refreshes == 1
    assert ticketing.routing == {}


def test_a_refused_key_that_cannot_be_refetched_leaves_the_push_for_a_replay(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a refused key and a secret store that cannot be read right now
    keys = KeySource(cached="old-key", fresh=ConfigurationError("cannot read secret ticketing/api-key: Throttling"))

    # When / Then the push is retry-later rather than rejected for good
    with pytest.raises(SyncUnavailable, match=r"HTTP 401.*Throttling"):
        key_adapter(ticketing, clock, keys).push_routing(a_decision())
    assert len(ticketing.puts) == 1


def test_an_error_body_trickling_in_does_not_hold_the_push_past_its_timeout(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a ticketing system whose 400 answer trickles in, each byte within the timeout
    ticketing.add_fault(
        Fault(dataclasses.replace(Reply.json({"error": "closed " * 20}, 400), seconds_per_byte=SHORT_TIMEOUT / 4))
    )

    # When / Then the push is still rejected, with the status, without reading the whole body
    with pytest.raises(SyncRejected, match="HTTP 400") as raised:
        ticketing_adapter(ticketing, clock, timeout=SHORT_TIMEOUT).push_routing(a_decision())
    assert "closed closed closed closed closed" not in str(raised.value)


def test_headers_trickling_in_past_the_timeout_do_not_hold_the_push(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a ticketing system whose every answer's status line and headers come a byte at a time,
    # each well within the timeout, the whole far past it
    ticketing.drip_next(None, seconds_per_byte=SHORT_TIMEOUT / 8, headers=True)

    # When / Then the attempt is cut off as for a hung server, rather than counted as delivered
    with pytest.raises(SyncUnavailable, match="Timeout: no complete answer within"):
        ticketing_adapter(ticketing, clock, timeout=SHORT_TIMEOUT, max_retries=0).push_routing(a_decision())


def test_answers_are_read_to_the_end_so_pushes_and_lookups_keep_one_connection(
    ticketing: FakeTicketingSystem, customer_db: FakeCustomerDb, clock: FakeMonotonic
) -> None:
    # Given adapters whose answers' bodies they do not need (a push's 200, an unknown customer's 404)
    pusher = ticketing_adapter(ticketing, clock)
    directory = HttpCustomerDirectory(customer_db.url)

    # When each is used three times
    for n in range(3):
        pusher.push_routing(a_decision(f"T-{n}"))
        directory.get_profile("CUST-404")

    # Then each kept one connection alive rather than reconnecting per request
    assert len({r.client for r in ticketing.requests}) == 1
    assert len({r.client for r in customer_db.requests}) == 1


def test_a_hung_request_times_out_and_is_retried(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given a ticketing system that hangs once past the client timeout
    ticketing.hang_next(1)

    # When a decision is pushed
    ticketing_adapter(ticketing, clock, timeout=SHORT_TIMEOUT).push_routing(a_decision("T-1"))

    # Then the second attempt, with the same idempotency key, applied the update
    assert len(ticketing.puts) == 2
    assert ticketing.puts[0].header("Idempotency-Key") == ticketing.puts[1].header("Idempotency-Key")
    assert "T-1" in ticketing.routing
    assert clock.sleeps == [1.0]


def test_connection_errors_are_retried_then_reported_unavailable(clock: FakeMonotonic) -> None:
    # Given nothing listening
    adapter = ticketing_adapter(closed_port_url(), clock, max_retries=2)

    # When / Then every attempt fails to connect and the push is left for a replay
    with pytest.raises(SyncUnavailable, match="ConnectionError"):
        adapter.push_routing(a_decision())
    assert clock.sleeps == [1.0, 2.0]


def test_no_wait_crosses_the_deadline(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given a failing ticketing system and 5 s left
    ticketing.fail_next(None, status=503)
    deadline = clock() + 5.0

    # When a decision is pushed
    with pytest.raises(SyncUnavailable, match="deadline"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision(), deadline=deadline)

    # Then it waited 1 + 2 s and gave up rather than wait 4 s more past the deadline
    assert clock.sleeps == [1.0, 2.0]
    assert len(ticketing.puts) == 3
    assert clock() < deadline


def test_a_retry_after_past_the_deadline_stops_at_once(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given a 429 asking for 60 s with only 10 s left
    ticketing.throttle_next(1, retry_after="60")

    # When / Then the adapter gives up without sleeping
    with pytest.raises(SyncUnavailable, match="deadline"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision(), deadline=clock() + 10.0)
    assert clock.sleeps == []
    assert len(ticketing.puts) == 1


def test_no_wait_is_made_for_a_retry_the_time_left_after_it_could_not_fit(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a 429 asking for 9.5 s with 10 s left: the retry would then have half a second
    ticketing.throttle_next(1, retry_after="9.5")

    # When / Then the adapter gives up at once rather than wait for a retry with no time to answer
    with pytest.raises(SyncUnavailable, match="deadline"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision(), deadline=clock() + 10.0)
    assert clock.sleeps == []
    assert len(ticketing.puts) == 1


def test_a_passed_deadline_sends_nothing(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given / When a push whose deadline has already passed
    with pytest.raises(SyncUnavailable, match="no time left"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision(), deadline=clock() - 0.1)

    # Then nothing was sent
    assert ticketing.requests == []


class TimeoutRecordingSession(requests.Session):
    """A real session that notes the timeout each request was given."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[Any] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # A urllib3 Timeout, carrying the request's deadline: its connect timeout is the per-wait one.
        self.timeouts.append(kwargs["timeout"].connect_timeout)
        return super().request(method, url, *args, **kwargs)


def test_near_its_deadline_a_push_gives_each_wait_a_third_of_the_time_left(
    ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given a push with 3 s left before its deadline, and one with no deadline
    session = TimeoutRecordingSession()
    adapter = ticketing_adapter(ticketing, clock, session=session, timeout=5.0)
    # When both are made
    adapter.push_routing(a_decision("T-1"), deadline=clock() + 3.0)
    adapter.push_routing(a_decision("T-2"))
    # Then the first request's timeout, which bounds the connection, the answer and its body each,
    # adds up to no more than the time left; without a deadline each wait gets the full timeout
    assert session.timeouts == [1.0, 5.0]
    assert sorted(ticketing.routing) == ["T-1", "T-2"]


def test_pushing_the_same_decision_twice_is_applied_once(ticketing: FakeTicketingSystem, clock: FakeMonotonic) -> None:
    # Given a decision pushed once (e.g. a stream record redelivered after a crash)
    decision = a_decision("T-1")
    adapter = ticketing_adapter(ticketing, clock)
    adapter.push_routing(decision)

    # When it is pushed again
    adapter.push_routing(decision)

    # Then both requests carried one idempotency key and the server applied it once
    assert len(ticketing.puts) == 2
    assert ticketing.applied_keys == [decision.idempotency_key]


def test_retry_after_accepts_an_http_date() -> None:
    # Given / When a Retry-After given as an HTTP date 90 s ahead / Then it is 90 s
    assert parse_retry_after("Tue, 24 Nov 2026 12:01:30 GMT", now=lambda: NOW) == 90.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0


# --- answers broken at the TLS layer ------------------------------------------------------------


def test_an_answer_broken_mid_body_by_tls_is_evidence_unavailable_not_a_crash() -> None:
    # Given a customer DB and a status API whose answers are cut by a corrupt TLS record
    with TlsRecordSpoiler() as server:
        directory = HttpCustomerDirectory(server.url, session=server.session)
        status = HttpServiceStatusProvider(server.url, session=server.session)

        # When / Then each lookup fails as any unreadable answer does, which the routing degrades on
        with pytest.raises(EvidenceUnavailable, match="CUST-1001"):
            directory.get_profile("CUST-1001")
        with pytest.raises(EvidenceUnavailable, match="service status"):
            status.get_status(["SVC001"])


@pytest.mark.parametrize(("status", "outcome"), [(200, None), (422, SyncRejected)])
def test_a_push_answer_broken_mid_body_by_tls_is_judged_by_its_status(
    status: int, outcome: type[Exception] | None, clock: FakeMonotonic
) -> None:
    # Given a ticketing system whose answer is cut by a corrupt TLS record after its status line
    with TlsRecordSpoiler(status) as server:
        adapter = HttpTicketingSystem(
            server.url, lambda: API_KEY, session=server.session, max_retries=0, sleep=clock.sleep, clock=clock
        )

        # When a decision is pushed / Then the status decides, as for any body that cannot be read
        if outcome is None:
            adapter.push_routing(a_decision())
        else:
            with pytest.raises(outcome, match=f"HTTP {status}"):
                adapter.push_routing(a_decision())


# --- error answers ------------------------------------------------------------------------------


def test_an_error_answer_in_a_charset_python_does_not_know_is_still_quoted(
    customer_db: FakeCustomerDb, status_api: FakeServiceStatusApi, ticketing: FakeTicketingSystem, clock: FakeMonotonic
) -> None:
    # Given three services whose error answers name a charset no codec has
    refusal = Fault(Reply(400, b"bad request", {"Content-Type": "text/plain; charset=x-no-such-charset"}))
    for server in (customer_db, status_api, ticketing):
        server.add_fault(refusal)

    # When / Then each failure is the adapter's own, quoting the answer as best it can
    with pytest.raises(EvidenceUnavailable, match="HTTP 400: bad request"):
        HttpCustomerDirectory(customer_db.url).get_profile("CUST-1001")
    with pytest.raises(EvidenceUnavailable, match="HTTP 400: bad request"):
        HttpServiceStatusProvider(status_api.url).get_status(["SVC001"])
    with pytest.raises(SyncRejected, match="HTTP 400: bad request"):
        ticketing_adapter(ticketing, clock).push_routing(a_decision())
