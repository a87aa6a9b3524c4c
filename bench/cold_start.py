"""Cold start: import time of each handler module in a fresh interpreter, and the orchestrator's
whole Lambda init (import + wiring the hybrid engine with Strands, numpy and boto3 clients).

Each figure is the median of several fresh processes. The baseline is a fresh interpreter that
imports nothing, so the ratio survives a slow or busy machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

RUNS = 7
HANDLERS = ("handlers.ingestion", "handlers.ticketing_update", "handlers.orchestrator")
TARGETS_MS = {"handlers.ingestion": 250, "handlers.ticketing_update": 250, "orchestrator_init_hybrid": 1000}

_TIMED_IMPORT = "import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
_ORCHESTRATOR_INIT = (
    "import time; t = time.perf_counter()\n"
    "import handlers.orchestrator as o\n"
    "deps = o.build_orchestrator_deps()\n"
    "assert type(deps.engine).__name__ == 'HybridEngine'\n"
    "print((time.perf_counter() - t) * 1000)\n"
)
# What the orchestrator's environment looks like in Lambda; nothing is called during init.
_LAMBDA_ENV = {
    "ROUTING_DECISIONS_TABLE": "bench-decisions",
    "CUSTOMER_DB_ENDPOINT": "http://127.0.0.1:9",
    "SERVICE_STATUS_ENDPOINT": "http://127.0.0.1:9",
    "CUSTOMER_CACHE_TABLE": "bench-cache",
    "ROUTING_ENGINE": "hybrid",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}


def _fresh(code: str, env: dict[str, str] | None = None) -> float:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return float(result.stdout.strip().splitlines()[-1])


def run(runs: int = RUNS) -> dict[str, Any]:
    baseline = statistics.median(_fresh(_TIMED_IMPORT.format(module="json")) for _ in range(runs))
    interpreter = statistics.median(
        _wall(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(runs)
    )
    out: dict[str, Any] = {"runs": runs, "interpreter_start_ms": round(interpreter, 1)}
    for module in HANDLERS:
        ms = statistics.median(_fresh(_TIMED_IMPORT.format(module=module)) for _ in range(runs))
        out[module] = {"import_ms": round(ms, 1), "target_ms": TARGETS_MS.get(module)}
    init = statistics.median(_fresh(_ORCHESTRATOR_INIT, _LAMBDA_ENV) for _ in range(runs))
    out["orchestrator_init_hybrid"] = {"init_ms": round(init, 1), "target_ms": TARGETS_MS["orchestrator_init_hybrid"]}
    out["baseline_import_json_ms"] = round(baseline, 2)
    return out


def _wall(fn: Any) -> float:
    import time

    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
