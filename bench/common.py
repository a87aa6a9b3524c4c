"""Shared helpers for the benchmarks: machine facts, percentiles, repeated medians."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.local.files import JsonCustomerDirectory, JsonServiceStatusProvider
from domain.models import NewTicket

DATA = Path(__file__).parent / "data"
EVAL_TICKETS = DATA / "eval_tickets.jsonl"
EVAL_CUSTOMERS = DATA / "eval_customers.json"
EVAL_SERVICES = DATA / "eval_services.json"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def eval_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVAL_TICKETS.read_text(encoding="utf-8").splitlines() if line.strip()]


def ticket_stream(count: int) -> list[dict[str, Any]]:
    """`count` realistic tickets with unique ids, cycling through the evaluation set."""
    rows = eval_rows()
    out = []
    for i in range(count):
        row = dict(rows[i % len(rows)])
        row["ticket_id"] = f"B-{i:06d}"
        out.append({k: v for k, v in row.items() if k in NewTicket.model_fields})
    return out


def eval_directories() -> tuple[JsonCustomerDirectory, JsonServiceStatusProvider]:
    return JsonCustomerDirectory(EVAL_CUSTOMERS), JsonServiceStatusProvider(EVAL_SERVICES)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
