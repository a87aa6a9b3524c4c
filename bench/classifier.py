"""Classifier training time and inference throughput per backend.

The bundled telecom model always; BANKING77 (read from ../shared, never copied) when present, on a
stratified 85/15 split of its train file. MiniLM figures come from `python -m bench.minilm`, which
trains for many minutes and is therefore not re-run here; its last results are included if found.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from adapters.classifier.default_model_builder import load_training_examples
from adapters.classifier.static_vectors import DEFAULT_TABLE
from adapters.classifier.training import TrainingExample, fit_ngram_classifier
from bench.common import eval_rows
from handlers.commands.train import stratified_split
from handlers.evaluation import evaluate_classifier

BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"
MINILM_RESULTS = Path(__file__).parent / "out" / "minilm.json"


def _telecom() -> dict[str, Any]:
    examples = load_training_examples()
    started = time.perf_counter()
    model = fit_ngram_classifier(examples)
    train_s = time.perf_counter() - started
    rows = eval_rows()
    texts = [f"{r['subject']}\n{r['description']}" if r["subject"] else r["description"] for r in rows]
    summary = evaluate_classifier(model, texts, [r["expected_category"] for r in rows]).summary()
    return {"train_examples": len(examples), "train_seconds": round(train_s, 2), "eval_set": "bench/data", **summary}


def _banking77() -> dict[str, Any] | None:
    if not BANKING77.exists():
        return None
    with BANKING77.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts, labels = [r["text"] for r in rows], [r["category"] for r in rows]
    train_idx, val_idx = stratified_split(texts, labels, 0.15, seed=13)
    train = [TrainingExample(texts[i], labels[i]) for i in train_idx]
    results: dict[str, Any] = {}
    # The default (with the static-vector member, at its default weight: nothing tuned on this
    # validation split) and the n-gram model alone, to show what the member adds and costs.
    for name, table in (("default", DEFAULT_TABLE), ("without_static_vectors", None)):
        started = time.perf_counter()
        model = fit_ngram_classifier(train, static_vectors=table)
        train_s = time.perf_counter() - started
        summary = evaluate_classifier(model, [texts[i] for i in val_idx], [labels[i] for i in val_idx]).summary()
        results[name] = {"train_examples": len(train), "train_seconds": round(train_s, 2), "validation_split": 0.15}
        results[name] |= summary
    return results


def run() -> dict[str, Any]:
    result: dict[str, Any] = {"ngram_telecom": _telecom(), "ngram_banking77": _banking77()}
    if MINILM_RESULTS.exists():
        result["minilm"] = json.loads(MINILM_RESULTS.read_text(encoding="utf-8"))
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
