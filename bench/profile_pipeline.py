"""Where the pipeline engine spends its time: `bench.pipeline.run` under pyinstrument.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m bench.profile_pipeline

Prints one line per step of docs/performance.md's profile table (the time inside each function,
summed over every ticket) and the throughput under the profiler. `--html FILE` also writes the
whole call tree.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from bench import pipeline

# (row of the table, file the function lives in, function name). The file pins the function, as
# several of them share a name with the toolkit method that calls them.
STEPS = (
    ("whole `route_ticket` loop", "domain/services.py", "route_ticket"),
    ("`classify_issue` (n-gram classifier, both members)", "domain/toolkit.py", "classify_issue"),
    ("  n-gram member: features (`vectorise`)", "adapters/classifier/ngram.py", "vectorise"),
    ("  static-vector member (`StaticMember.logits`)", "adapters/classifier/static_vectors.py", "logits"),
    ("  keywords for the reasoning (`_keywords`)", "adapters/classifier/ngram.py", "_keywords"),
    ("`extract_entities`", "domain/toolkit.py", "extract_entities"),
    ("`get_historical_context`", "domain/toolkit.py", "get_historical_context"),
    ("`calculate_priority`", "domain/toolkit.py", "calculate_priority"),
    ("storing the decision (SQLite `save`)", "adapters/local/sqlite_repository.py", "save"),
)


def _frames(frame: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every frame with its ancestors, depth first."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(frame, ())]
    while stack:
        current, ancestors = stack.pop()
        yield current, ancestors
        stack.extend((child, (*ancestors, current)) for child in current.children)


def _matches(frame: Any, file: str, function: str) -> bool:
    return frame.function == function and (frame.file_path or "").replace("\\", "/").endswith(file)


def step_seconds(root: Any) -> dict[str, float]:
    """Inclusive seconds per step; a frame inside another of the same step (recursion) counts once."""
    totals = dict.fromkeys((name for name, _, _ in STEPS), 0.0)
    for frame, ancestors in _frames(root):
        for name, file, function in STEPS:
            if _matches(frame, file, function) and not any(_matches(a, file, function) for a in ancestors):
                totals[name] += frame.time
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--html", type=Path, help="write pyinstrument's HTML call tree here")
    args = parser.parse_args()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    result = pipeline.run(count=args.tickets, repeats=1)
    root = profiler.stop().root_frame()
    if root is None:
        raise SystemExit("the profiler recorded nothing")
    report = {name: round(seconds, 2) for name, seconds in step_seconds(root).items()}
    report["throughput under the profiler (tickets/s)"] = result["tickets_per_second"]
    print(json.dumps(report, indent=2))
    if args.html:
        args.html.write_text(profiler.output_html(), encoding="utf-8")


if __name__ == "__main__":
    main()
