"""`make bench`: every benchmark, one results file, one table, and the README's Performance section.

Each figure is a median over repeated runs. Figures that depend on the machine's speed also appear
as a ratio to a baseline measured in the same run (parsing and validating the same tickets), which
is what to compare across machines.
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import machine, ticket_stream

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
README = ROOT / "README.md"
COMMAND = "make bench"


def _section(name: str, fn: Callable[[], Any], results: dict[str, Any]) -> None:
    print(f"[bench] {name} ...", flush=True)
    started = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"[bench] {name} done in {time.perf_counter() - started:.1f}s", flush=True)


def cli_route(count: int = 5000, repeats: int = 3) -> dict[str, Any]:
    """`ticket-router route` end to end (process start, file parsing, SQLite store, outbox)."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tickets = Path(tmp) / "tickets.jsonl"
        tickets.write_text("".join(json.dumps(t) + "\n" for t in ticket_stream(count)), encoding="utf-8")
        for i in range(repeats):
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable, "-m", "handlers.cli", "route", str(tickets), "--quiet",
                    "--now", "2026-11-24T12:00:00Z", "--db", str(Path(tmp) / f"run{i}.db"),
                    "--outbox", str(Path(tmp) / f"outbox{i}.jsonl"),
                    "--customers", str(ROOT / "bench" / "data" / "eval_customers.json"),
                    "--services", str(ROOT / "bench" / "data" / "eval_services.json"),
                ],
                cwd=ROOT, check=True, capture_output=True,
            )  # fmt: skip
            runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    return {"tickets": count, "seconds": round(seconds, 2), "tickets_per_second": round(count / seconds, 1)}


def artifact_sizes() -> dict[str, Any]:
    build = ROOT / ".aws-sam" / "build"
    if not (build / "template.yaml").exists():
        return {"skipped": "no .aws-sam/build: run `make sam-build` (make bench does)"}
    spec = importlib.util.spec_from_file_location("artifact_sizes", ROOT / "scripts" / "artifact_sizes.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    out = {}
    for name, properties in sorted(module.load_functions(build).items()):
        files, unzipped, zipped = module.measure(build / str(properties.get("CodeUri", name)))
        out[name] = {"files": files, "unzipped_mb": round(unzipped / 2**20, 1), "zipped_mb": round(zipped / 2**20, 1)}
    return out


def run() -> dict[str, Any]:
    from bench import aws_flow, classifier, cold_start, engines, load, pipeline

    results: dict[str, Any] = {"machine": machine(), "command": COMMAND, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    _section("pipeline", lambda: pipeline.run(count=3000, repeats=3), results)
    _section("cli_route", cli_route, results)
    _section("handlers_moto", lambda: aws_flow.run(count=500), results)
    _section("cold_start", cold_start.run, results)
    _section("artifacts", artifact_sizes, results)
    _section("http_load", lambda: load.run(burst=2000, clients=16, rate=25.0, sustained_seconds=10.0), results)
    _section("engines", engines.run, results)
    _section("classifier", classifier.run, results)
    return results


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    rows: list[tuple[str, str, str]] = []

    def add(name: str, value: Any, note: str = "") -> None:
        rows.append((name, "n/a" if value is None else str(value), note))

    p = results.get("pipeline", {})
    add("Pipeline engine, tickets/s (one core, SQLite)", _get(p, "tickets_per_second"), "target ≥ 1,000")
    add("Pipeline latency p50 / p95 / p99 (ms)", f"{_get(p, 'p50_ms')} / {_get(p, 'p95_ms')} / {_get(p, 'p99_ms')}")
    add("  ratio: routing ÷ parse-and-validate", _get(p, "ratio_route_to_parse"), "machine-independent")
    add("CLI `route` end to end, tickets/s", _get(results, "cli_route", "tickets_per_second"), "target ≥ 500")
    h = results.get("handlers_moto", {})
    for fn in ("ingestion", "orchestrator", "ticketing_update"):
        add(f"Handler warm p50 under moto: {fn} (ms)", _get(h, "handlers", fn, "p50_ms"))
    add("  moto flow reconciled (accepted = stored = synced)", _get(h, "reconciliation", "reconciled"))
    c = results.get("cold_start", {})
    add("Cold import: ingestion (ms)", _get(c, "handlers.ingestion", "import_ms"), "target < 250")
    add("Cold import: ticketing update (ms)", _get(c, "handlers.ticketing_update", "import_ms"), "target < 250")
    add("Cold import: orchestrator module (ms)", _get(c, "handlers.orchestrator", "import_ms"))
    add(
        "Orchestrator init with Strands (hybrid) (ms)", _get(c, "orchestrator_init_hybrid", "init_ms"), "target < 1,000"
    )
    for fn, sizes in (results.get("artifacts") or {}).items():
        if isinstance(sizes, dict) and "unzipped_mb" in sizes:
            add(f"Artifact {fn} unzipped / zipped (MB)", f"{sizes['unzipped_mb']} / {sizes['zipped_mb']}")
    b, s = _get(results, "http_load", "burst") or {}, _get(results, "http_load", "sustained") or {}
    add("HTTP burst: requests/s (2,000 tickets, 16 clients)", b.get("requests_per_second"))
    add("HTTP burst latency p50 / p95 / p99 (ms)", f"{b.get('p50_ms')} / {b.get('p95_ms')} / {b.get('p99_ms')}")
    add("HTTP sustained 25/s latency p50 / p99 (ms)", f"{s.get('p50_ms')} / {s.get('p99_ms')}")
    add("HTTP load reconciled, lost", f"{_get(results, 'http_load', 'reconciliation', 'reconciled')}, "
        f"{_get(results, 'http_load', 'reconciliation', 'lost')}")  # fmt: skip
    for engine, figures in (_get(results, "engines", "engines") or {}).items():
        add(
            f"Engine {engine}: model calls / $ per ticket",
            f"{figures.get('model_calls_per_ticket')} / {figures.get('cost_per_ticket_usd')}",
        )
    k = results.get("classifier", {})
    add("Classifier n-gram, telecom eval accuracy", _get(k, "ngram_telecom", "accuracy"))
    add("Classifier n-gram, training seconds (683 examples)", _get(k, "ngram_telecom", "train_seconds"))
    for variant, label in (
        ("default", "n-gram + static vectors (default)"),
        ("without_static_vectors", "n-gram alone"),
    ):
        add(
            f"Classifier {label}, BANKING77 15% split accuracy / queries/s",
            f"{_get(k, 'ngram_banking77', variant, 'accuracy')} / "
            f"{_get(k, 'ngram_banking77', variant, 'tickets_per_second')}",
        )
    for backend, figures in (_get(k, "minilm", "backends") or {}).items():
        speed = figures.get("speed_1_core") or {}
        add(
            f"Classifier {backend}: BANKING77 15% split accuracy / texts/s (one core) / MB",
            f"{_get(figures, 'validation', 'accuracy')} / {speed.get('single_texts_per_s')} / "
            f"{figures.get('artifact_mb')}",
            "from `python -m bench.minilm`",
        )
    header = f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']}. Command: `{results['command']}`."
    lines = [header, "", "| measure | value | note |", "|---|---|---|"]
    lines += [f"| {a} | {b_} | {c_} |" for a, b_, c_ in rows]
    return "\n".join(lines)


def update_readme(rendered: str) -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(r"(<!-- PERFORMANCE:START -->\n).*?(<!-- PERFORMANCE:END -->)", re.DOTALL)
    if pattern.search(text):
        README.write_text(pattern.sub(lambda m: m.group(1) + rendered + "\n" + m.group(2), text), encoding="utf-8")


def main() -> None:
    results = run()
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    rendered = table(results)
    print()
    print(rendered)
    update_readme(rendered)
    print(f"\nwrote {RESULTS.relative_to(ROOT)} and the README's Performance section")


if __name__ == "__main__":
    main()
