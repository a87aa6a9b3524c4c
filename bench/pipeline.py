"""Pipeline engine in-process: tickets/s on one core and latency per ticket.

The baseline is parsing and validating the same tickets, so the ratio survives a noisy machine.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from adapters.classifier.loader import load_classifier
from adapters.clock import FixedClock
from adapters.engines.pipeline import PipelineEngine
from adapters.local.sqlite_repository import SqliteDecisionRepository
from bench.common import eval_directories, percentile, ticket_stream
from domain.models import NewTicket
from domain.services import route_ticket
from domain.taxonomy import load_taxonomy
from domain.toolkit import RoutingToolkit

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def run(count: int = 3000, repeats: int = 3) -> dict[str, Any]:
    rows = ticket_stream(count)
    taxonomy = load_taxonomy()
    classifier = load_classifier()
    customers, services = eval_directories()
    clock = FixedClock(NOW)

    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        started = time.perf_counter()
        tickets = [NewTicket.model_validate(r).to_ticket(NOW) for r in rows]
        parse_s = time.perf_counter() - started

        repository = SqliteDecisionRepository(":memory:")
        engine = PipelineEngine(
            RoutingToolkit(
                taxonomy=taxonomy,
                classifier=classifier,
                customers=customers,
                service_status=services,
                history=repository,
                clock=clock,
            )
        )
        latencies = []
        started = time.perf_counter()
        for ticket in tickets:
            t0 = time.perf_counter()
            route_ticket(
                ticket, correlation_id="bench", engine=engine, repository=repository, taxonomy=taxonomy, clock=clock
            )
            latencies.append((time.perf_counter() - t0) * 1000)
        route_s = time.perf_counter() - started
        repository.close()
        result = {
            "tickets": count,
            "tickets_per_second": round(count / route_s, 1),
            "p50_ms": round(percentile(latencies, 50), 3),
            "p95_ms": round(percentile(latencies, 95), 3),
            "p99_ms": round(percentile(latencies, 99), 3),
            "parse_validate_per_ticket_ms": round(parse_s / count * 1000, 4),
            "ratio_route_to_parse": round(route_s / parse_s, 1),
        }
        runs.append(result)
    # The median run by throughput, all of its figures together.
    median_run = sorted(runs, key=lambda r: r["tickets_per_second"])[len(runs) // 2]
    return {**median_run, "repeats": repeats}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
