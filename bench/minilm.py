"""Classifier backends on banking77: n-gram (default, with and without its static-vector member)
vs MiniLM (ONNX) vs their ensemble.

    python -m bench.minilm                 # split run + all-of-train run (~45 min on 2 CPU cores)
    python -m bench.minilm --skip-full     # only the stratified 85/15 split run

Trains each backend on a stratified 85% of banking77 train.csv (seed 13) and evaluates it on the
other 15%: accuracy, macro-F1, top-2 accuracy, log-loss. Then measures, in a fresh process pinned
to one core with onnxruntime and BLAS at one thread: texts/s one at a time (`classify`) and batched
(`probabilities_batch`), latency percentiles, and cold start (import + load + first text).
Artifact sizes are on-disk bytes. Finally it retrains the ensemble on all of train.csv with the
split run's mixing weight and int8 decision and saves it to .ticket-router/models/banking77-ensemble
(the artifact to evaluate on the official test split, which nothing here reads).

Results: bench/out/minilm.json and a table on stdout. The data is read where it lies
(../shared/data/banking77, CC BY 4.0); nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from adapters.classifier.training import TrainingExample

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"
OUT = Path(__file__).parent / "out"
RESULTS = OUT / "minilm.json"
MODELS = OUT / "models"
FULL_MODEL_DIR = ROOT / ".ticket-router" / "models" / "banking77-ensemble"
SPLIT_SEED = 13
VALIDATION_FRACTION = 0.15


def load_banking77(path: Path | None = None) -> list[TrainingExample]:
    with (path or BANKING77 / "train.csv").open(encoding="utf-8", newline="") as handle:
        return [TrainingExample(row["text"], row["category"]) for row in csv.DictReader(handle)]


def stratified_split(
    examples: list[TrainingExample], fraction: float = VALIDATION_FRACTION, seed: int = SPLIT_SEED
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """Hold out `fraction` of every label (at least one example), reproducibly."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        by_label[example.label].append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        held.update(indices[: max(1, round(len(indices) * fraction))])
    train = [e for i, e in enumerate(examples) if i not in held]
    validation = [e for i, e in enumerate(examples) if i in held]
    return train, validation


def dir_size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 2)


# --- measurements in a fresh, single-core process -------------------------------------------


def _pinned(command: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *command] if shutil.which("taskset") else command


def _single_core_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


def measure(model_dir: Path, mode: str, n_texts: int) -> dict[str, Any]:
    """Run `--measure` in a child process pinned to one core; returns its JSON."""
    command = _pinned([sys.executable, "-m", "bench.minilm", "--measure", str(model_dir), mode, str(n_texts)])
    result = subprocess.run(command, cwd=ROOT, env=_single_core_env(), capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _measure_child(model_dir: Path, mode: str, n_texts: int) -> dict[str, Any]:
    # The first validation texts of the split, read where they lie: no copy of the data is written.
    texts = [e.text for e in stratified_split(load_banking77())[1][:n_texts]]
    started = time.perf_counter()
    from adapters.classifier.loader import load_classifier

    if mode == "ngram":
        classifier: Any = load_classifier(model_dir)
    else:
        from adapters.classifier.minilm import MiniLMClassifier

        classifier = MiniLMClassifier.load(model_dir, threads=1)
        if mode == "minilm" and classifier.ngram is not None:  # the encoder alone, from an ensemble artifact
            classifier = MiniLMClassifier(labels=classifier.labels, logits=classifier._logits)
        elif mode.startswith("onnx:"):  # another ONNX file beside the artifact (the fp32 export)
            import onnxruntime

            from adapters.classifier.minilm import OnnxLogits

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(model_dir / mode.split(":", 1)[1]), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = classifier._logits.tokenizer
            classifier = MiniLMClassifier(labels=classifier.labels, logits=OnnxLogits(session, tokenizer))
    classifier.classify(texts[0])
    cold_start_s = time.perf_counter() - started

    latencies = []
    for text in texts:
        t0 = time.perf_counter()
        classifier.classify(text)
        latencies.append(time.perf_counter() - t0)
    result = {
        "cold_start_s": round(cold_start_s, 3),
        "texts": len(texts),
        "single_texts_per_s": round(len(texts) / sum(latencies), 1),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)) * 1000, 2),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)) * 1000, 2),
    }
    if hasattr(classifier, "probabilities_batch"):
        t0 = time.perf_counter()
        classifier.probabilities_batch(texts)
        result["batched_texts_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
    return result


# --- the benchmark ----------------------------------------------------------------------------


def _ngram_probabilities(classifier: Any, examples: list[TrainingExample]) -> np.ndarray:
    return np.stack([classifier.probabilities(e.text) for e in examples])


def run(*, epochs: int | None, full: bool, speed_texts: int, progress: bool = True) -> dict[str, Any]:
    from adapters.classifier.metrics import classification_metrics
    from adapters.classifier.minilm_training import DEFAULT_EPOCHS, fit_minilm_classifier
    from adapters.classifier.static_vectors import DEFAULT_TABLE, table_path
    from adapters.classifier.training import fit_ngram_classifier
    from bench.common import machine

    say = print if progress else (lambda _msg: None)
    epochs = epochs or DEFAULT_EPOCHS
    examples = load_banking77()
    train, validation = stratified_split(examples)
    labels = sorted({e.label for e in examples})
    y_val = np.array([labels.index(e.label) for e in validation])
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "dataset": {
            "name": "banking77",
            "source": "train.csv (CC BY 4.0)",
            "rows": len(examples),
            "labels": len(labels),
            "split": f"stratified {1 - VALIDATION_FRACTION:.0%}/{VALIDATION_FRACTION:.0%}, seed {SPLIT_SEED}",
            "n_train": len(train),
            "n_validation": len(validation),
        },
        "machine": {**machine(), "load_average_at_start": os.getloadavg()},
        "backends": {},
    }

    # n-gram: the default (with its static-vector member) and the n-gram model alone
    ngram_train_s = 0.0
    for backend, table in (("ngram", DEFAULT_TABLE), ("ngram-plain", None)):
        say(f"{backend}: training on the split ...")
        t0 = time.perf_counter()
        model = fit_ngram_classifier(train, static_vectors=table, metadata={"name": f"banking77-{backend}-split"})
        train_s = time.perf_counter() - t0
        model_dir = MODELS / f"{backend}-split"
        model.save(model_dir, model.metadata)
        results["backends"][backend] = {
            "validation": classification_metrics(_ngram_probabilities(model, validation), y_val),
            "train_seconds_split": round(train_s, 1),
            "artifact_mb": dir_size_mb(model_dir),
        }
        if table is not None:  # the ensemble's n-gram member is this one
            ngram_train_s = train_s
    results["backends"]["ngram"]["static_table_mb"] = dir_size_mb(table_path(DEFAULT_TABLE))

    # MiniLM and the ensemble, from one training run
    say(f"MiniLM: fine-tuning on the split for {epochs} epochs ...")
    split_dir = MODELS / "ensemble-split"
    summary = fit_minilm_classifier(
        train, validation, model_dir=split_dir, epochs=epochs, ensemble=True, keep_unquantized=True, progress=say
    )
    val = summary["validation"]
    sizes = summary["sizes"]
    results["backends"]["minilm"] = {
        "validation": val["minilm"],
        "validation_fp32": val["minilm_fp32"],
        "validation_int8": val["minilm_int8"],
        "quantized": summary["quantized"],
        "train_seconds_split": summary["training_seconds"],
        "epoch_curve": summary["epoch_curve"],
        "artifact_mb": round(sizes["onnx_mb"] + sizes["tokenizer_mb"], 2),
        "onnx_fp32_mb": sizes["onnx_fp32_mb"],
        "onnx_int8_mb": sizes["onnx_int8_mb"],
    }
    results["backends"]["ensemble"] = {
        "validation": val["ensemble"],
        "weight": json.loads((split_dir / "metadata.json").read_text())["ensemble"]["weight"],
        "train_seconds_split": round(summary["training_seconds"] + ngram_train_s, 1),
        "artifact_mb": sizes["total_mb"],
    }
    measure_speeds(results, speed_texts)
    _save(results)

    if full:
        weight = results["backends"]["ensemble"]["weight"]
        say(f"ensemble: retraining on all {len(examples)} rows (w={weight}, int8={summary['quantized']}) ...")
        t0 = time.perf_counter()
        full_ngram = fit_ngram_classifier(examples)
        ngram_full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        full_summary = fit_minilm_classifier(
            examples,
            [],
            model_dir=FULL_MODEL_DIR,
            epochs=epochs,
            ensemble=True,
            ensemble_weight=weight,
            quantize=summary["quantized"],
            metadata={"name": "banking77-ensemble", "source": "banking77 train.csv (all rows)"},
            progress=say,
        )
        results["full_train"] = {
            "rows": len(examples),
            "ngram_train_seconds": round(ngram_full_s, 1),
            "minilm_train_seconds": full_summary["training_seconds"],
            "minilm_seconds_per_epoch": full_summary["seconds_per_epoch"],
            "ensemble_wall_seconds": round(time.perf_counter() - t0, 1),
            "epochs": epochs,
            "model_dir": str(FULL_MODEL_DIR.relative_to(ROOT)),
            "artifact_mb": dir_size_mb(FULL_MODEL_DIR),
        }
        del full_ngram
    results["machine"]["load_average_at_end"] = os.getloadavg()
    _save(results)
    return results


def measure_speeds(results: dict[str, Any], n_texts: int) -> None:
    """Single-core speed of each backend's split artifact (`--remeasure` reruns only this)."""
    backends = results["backends"]
    ngram_dir, split_dir = MODELS / "ngram-split", MODELS / "ensemble-split"
    backends["ngram"]["speed_1_core"] = measure(ngram_dir, "ngram", n_texts)
    if "ngram-plain" in backends:
        backends["ngram-plain"]["speed_1_core"] = measure(MODELS / "ngram-plain-split", "ngram", n_texts)
    backends["minilm"]["speed_1_core"] = measure(split_dir, "minilm", n_texts)
    if (split_dir / "model.fp32.onnx").is_file():
        backends["minilm"]["speed_1_core_fp32"] = measure(split_dir, "onnx:model.fp32.onnx", n_texts)
    backends["ensemble"]["speed_1_core"] = measure(split_dir, "ensemble", n_texts)
    results["machine"]["load_average_at_speed_runs"] = os.getloadavg()


def _save(results: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def table(results: dict[str, Any]) -> str:
    header = (
        f"{'backend':<10} {'acc':>6} {'macroF1':>7} {'top2':>6} {'MB':>6} "
        f"{'1-by-1/s':>8} {'batch/s':>8} {'p50 ms':>7} {'cold s':>6} {'train s':>8}"
    )
    lines = [header, "-" * len(header)]
    for name, row in results["backends"].items():
        v, s = row["validation"], row["speed_1_core"]
        lines.append(
            f"{name:<10} {v['accuracy']:>6.2%} {v['macro_f1']:>7.4f} {v['top2_accuracy']:>6.2%} "
            f"{row['artifact_mb']:>6.1f} {s['single_texts_per_s']:>8.1f} {s.get('batched_texts_per_s', '-'):>8} "
            f"{s['latency_ms_p50']:>7.2f} {s['cold_start_s']:>6.2f} {row['train_seconds_split']:>8.1f}"
        )
    minilm = results["backends"].get("minilm")
    if minilm:
        lines.append(
            f"MiniLM fp32 {minilm['onnx_fp32_mb']} MB acc {minilm['validation_fp32']['accuracy']:.2%} "
            f"({minilm.get('speed_1_core_fp32', {}).get('single_texts_per_s')}/s) vs int8 {minilm['onnx_int8_mb']} MB "
            f"acc {minilm['validation_int8']['accuracy']:.2%}; shipped: {'int8' if minilm['quantized'] else 'fp32'}"
        )
    if "full_train" in results:
        full = results["full_train"]
        lines.append(
            f"all {full['rows']} rows: n-gram {full['ngram_train_seconds']} s, MiniLM {full['minilm_train_seconds']} s "
            f"({full['epochs']} epochs); ensemble saved to {full['model_dir']} ({full['artifact_mb']} MB)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="MiniLM epochs (default: the training default)")
    parser.add_argument("--skip-full", action="store_true", help="skip retraining on all of train.csv")
    parser.add_argument("--speed-texts", type=int, default=500, help="validation texts timed per backend")
    parser.add_argument("--table", action="store_true", help="print the table of the last results and exit")
    parser.add_argument("--remeasure", action="store_true", help="rerun only the speed runs on the saved artifacts")
    parser.add_argument("--measure", nargs=3, metavar=("MODEL_DIR", "MODE", "N_TEXTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        model_dir, mode, n_texts = args.measure
        print(json.dumps(_measure_child(Path(model_dir), mode, int(n_texts))))
        return
    if args.remeasure:
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
        measure_speeds(results, args.speed_texts)
        _save(results)
        print(table(results))
        return
    if args.table:
        print(table(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return
    results = run(epochs=args.epochs, full=not args.skip_full, speed_texts=args.speed_texts)
    print(table(results))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
