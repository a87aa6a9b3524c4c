"""Every AWS client the application builds for itself is bounded: no call may hang for botocore's
default minute, past the function's own timeout."""

from __future__ import annotations

from typing import Any

from adapters.aws.client_config import (
    AWS_CALL_WORST_CASE_SECONDS,
    AWS_CONNECT_TIMEOUT_SECONDS,
    AWS_READ_TIMEOUT_SECONDS,
    AWS_TOTAL_ATTEMPTS,
)
from handlers.bootstrap import build_ingestion_deps, build_ticketing_update_deps, idempotency_persistence
from handlers.settings import IngestionSettings, TicketingUpdateSettings

BOUNDED = (AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS, AWS_TOTAL_ATTEMPTS)


def limits(client: Any) -> tuple[float, float, int]:
    config = client.meta.config
    return config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]


def test_the_ingestion_functions_clients_are_bounded() -> None:
    # Given the ingestion function's dependencies as the composition root builds them in Lambda
    deps = build_ingestion_deps(
        IngestionSettings(
            eventbridge_bus_name="bus",
            customer_db_endpoint="https://customers.example",
            routing_decisions_table="decisions",
            customer_cache_table="cache",
            idempotency_table="idempotency",
        )
    )
    # Then every AWS client they call through is bounded, the idempotency table's included
    clients = {
        "events": deps.publisher.client,  # type: ignore[attr-defined]
        "decisions": deps.decisions.client,  # type: ignore[union-attr]
        "customer cache": deps.customers.client,  # type: ignore[attr-defined]
        "idempotency": idempotency_persistence("idempotency").client,
    }
    assert {name: limits(client) for name, client in clients.items()} == dict.fromkeys(clients, BOUNDED)


def test_the_ticketing_update_functions_clients_are_bounded() -> None:
    # Given the ticketing-update function's dependencies as the composition root builds them
    deps = build_ticketing_update_deps(
        TicketingUpdateSettings(
            routing_decisions_table="decisions",
            ticketing_system_endpoint="https://ticketing.example",
            ticketing_system_api_key_secret="ticketing/api-key",
        )
    )
    # Then the table's client and the secret's are bounded
    assert limits(deps.repository.client) == BOUNDED  # type: ignore[union-attr]
    assert limits(deps.ticketing.api_key.provider.client) == BOUNDED  # type: ignore[attr-defined]


def test_one_calls_worst_case_is_every_attempt_timing_out_after_the_longest_backoff() -> None:
    # Then it is each attempt's connect and read timeouts, and the jittered backoff's ceiling
    # between them (botocore standard mode: at most 1 s before the first retry)
    assert AWS_TOTAL_ATTEMPTS == 2
    assert AWS_CALL_WORST_CASE_SECONDS == 2 * (AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS) + 1
