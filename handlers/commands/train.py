"""`ticket-router train`: fit a classifier on an organisation's own labelled tickets."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.errors import ConfigurationError
from handlers.commands.arguments import path_argument, real_number, whole_number
from handlers.labelled_data import (
    add_column_arguments,
    columns_from_args,
    read_labelled,
    report_problems,
)
from handlers.output_paths import OutputPathError, check_writable, same_file
from handlers.settings import LocalSettings, load_settings

MIN_EXAMPLES_PER_LABEL = 10
DEFAULT_C = 20.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a classifier on labelled tickets (CSV or JSONL)")
    parser.add_argument("--data", type=path_argument, required=True, help="labelled tickets, CSV or JSON Lines")
    add_column_arguments(parser)
    parser.add_argument(
        "--model-dir",
        type=path_argument,
        help="where to write the model (default: a new folder in ROUTER_HOME/models, .ticket-router/models unset)",
    )
    parser.add_argument(
        "--backend",
        choices=("ngram", "minilm", "ensemble"),
        default="ngram",
        help="ngram: numpy-only (default); minilm/ensemble: ONNX MiniLM, needs `make minilm-train` to train",
    )
    parser.add_argument("--validation-split", type=float, default=0.15, help="share held out to measure (0.15)")
    parser.add_argument("--seed", type=whole_number(0), default=13, help="random seed, 0 or more (default 13)")
    parser.add_argument(
        "--c",
        type=real_number(0, above_low=True),
        default=None,
        help="ngram: regularisation strength C, above 0 (default 20)",
    )
    parser.add_argument(
        "--no-static-vectors",
        dest="static_vectors",
        action="store_false",
        help="ngram: leave out the static MiniLM word-vector member (smaller, faster, less accurate)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "int8", "fp32"),
        default="auto",
        help="minilm/ensemble: auto ships int8 (4x smaller, 2x faster) unless it costs over 0.3 points on "
        "validation; fp32 when accuracy matters more than size",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="minilm/ensemble: torch threads for fine-tuning (default 1, fastest on a shared machine; "
        "give a dedicated machine its core count)",
    )
    parser.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        help="ship the model trained on the split instead of retraining on every row (half the time, less data)",
    )
    parser.set_defaults(func=run)


def _require_minilm_training_stack(backend: str) -> None:
    """Refuse before reading any data, rather than fail minutes in when torch is first imported."""
    from adapters.classifier.minilm_training import missing_training_modules

    missing = missing_training_modules()
    if missing:
        raise ConfigurationError(
            f"--backend {backend} needs the MiniLM training packages, missing here: {', '.join(missing)}. "
            "Install them with `make minilm-train` (CPU torch first, then the minilm-train extra)"
        )


def _require_ngram_features(path: Path, texts: list[str]) -> None:
    """The n-gram model reads only a-z and 0-9 (accents folded): refuse text with none of them
    rather than let scikit-learn fail on an empty matrix."""
    from adapters.classifier.ngram import FeaturizerConfig, feature_hashes

    config = FeaturizerConfig()
    if not any(feature_hashes(text, config)[0] for text in texts):
        raise ConfigurationError(
            f"{path}: no usable text features: the n-gram model reads latin letters and digits, "
            "and the training texts have none"
        )


def _require_data_outside_artifact(data: Path, model_dir: Path) -> None:
    """Saving replaces these entries of the model directory: a data file among them would be lost."""
    from adapters.classifier.minilm import MINILM_ARTIFACT_ENTRIES
    from adapters.classifier.ngram import ARTIFACT_ENTRIES

    for name in dict.fromkeys((*ARTIFACT_ENTRIES, *MINILM_ARTIFACT_ENTRIES)):
        entry = model_dir / name
        if same_file(data, entry) or (entry.is_dir() and data.resolve().is_relative_to(entry.resolve())):
            raise OutputPathError(
                f"--data {data} is the model's {name} in --model-dir {model_dir}, which training replaces; "
                "refusing to write over it"
            )


def text_key(text: str) -> str:
    """Texts with the same key are alike to the model: the n-gram model's words (case, accents and
    digits folded), else, for text with no such words, the text itself."""
    from adapters.classifier.ngram import text_tokens

    return " ".join(text_tokens(text)) or " ".join(text.casefold().split())


def duplicate_texts(texts: list[str]) -> int:
    """How many texts repeat an earlier one (by `text_key`)."""
    return len(texts) - len({text_key(text) for text in texts})


def stratified_split(texts: list[str], labels: list[str], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices for train and validation, the same share of each label held out.

    Texts alike to the model (template tickets, one ticket exported twice) stay on one side: a copy
    on each would be graded on a text trained on, and flatter the validation figures.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for index, text in enumerate(texts):
        groups[text_key(text)].append(index)
    # A group counts under its first row's label: copies that disagree on the label go together too.
    by_label: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups.values():
        by_label[labels[group[0]]].append(group)
    rng = random.Random(seed)
    train, validation = [], []
    for label_groups in by_label.values():
        rng.shuffle(label_groups)
        rows = sum(len(group) for group in label_groups)
        target = round(rows * share) if rows >= 5 else 0
        held = 0
        for group in label_groups:
            # A group too big for what is left is passed over for smaller ones, not split. Copies
            # that disagree on the label are trained on: held out, they could take away the only
            # rows of a label, and training would have one label fewer, or one alone.
            if held + len(group) <= target and len({labels[i] for i in group}) == 1:
                validation.extend(group)
                held += len(group)
            else:
                train.extend(group)
    return sorted(train), sorted(validation)


def run(args: argparse.Namespace) -> int:
    from adapters.classifier.training import TrainingExample
    from handlers.evaluation import auto_route_threshold

    if not 0.0 <= args.validation_split < 0.9:
        raise ConfigurationError("--validation-split must be between 0 and 0.9")
    if args.backend == "ngram" and (args.precision != "auto" or args.threads is not None):
        option = "--precision" if args.precision != "auto" else "--threads"
        raise ConfigurationError(f"{option} applies to --backend minilm or ensemble, not ngram")
    if args.backend != "ngram" and (args.c is not None or not args.static_vectors):
        # The ensemble's n-gram member is trained with the defaults: taking the option silently
        # would ship a model other than the one asked for.
        option = "--c" if args.c is not None else "--no-static-vectors"
        raise ConfigurationError(f"{option} applies to --backend ngram, not {args.backend}")
    if args.threads is not None and args.threads < 1:
        raise ConfigurationError("--threads must be at least 1")
    if args.backend != "ngram":
        _require_minilm_training_stack(args.backend)
    # Read before training starts: a broken taxonomy should fail in a second, not after the fit.
    threshold = auto_route_threshold()
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Under ROUTER_HOME, where the other commands keep their state: one who set it looks for the
    # model there, not in whichever directory the command happened to run from.
    model_dir = args.model_dir or (
        load_settings(LocalSettings).router_home / "models" / f"{args.data.stem}-{args.backend}-{version}"
    )
    check_writable(model_dir, "--model-dir", directory=True)
    _require_data_outside_artifact(args.data, model_dir)
    data = read_labelled(args.data, columns_from_args(args), args.label_column)
    report_problems(args.data, data.problems)
    counts = data.label_counts()
    if len(counts) < 2:
        raise ConfigurationError(f"{args.data}: training needs at least two labels, found {len(counts)}")
    # Distinct texts, as the split counts them: ten copies of one template ticket teach the model
    # one example, and would hide that the label is thin.
    distinct: dict[str, set[str]] = defaultdict(set)
    for text, label in zip(data.texts, data.labels, strict=True):
        distinct[label].add(text_key(text))
    for label, texts in sorted(distinct.items(), key=lambda kv: len(kv[1])):
        if len(texts) < MIN_EXAMPLES_PER_LABEL:
            copies = f" ({counts[label]} rows)" if counts[label] > len(texts) else ""
            print(
                f"ticket-router: warning: label {label!r} has only {len(texts)} distinct text(s){copies}; "
                f"expect poor recall below {MIN_EXAMPLES_PER_LABEL}",
                file=sys.stderr,
            )
    examples = [TrainingExample(t, label) for t, label in zip(data.texts, data.labels, strict=True)]
    train_idx, val_idx = stratified_split(data.texts, data.labels, args.validation_split, args.seed)
    duplicates = duplicate_texts(data.texts)
    if duplicates:
        print(
            f"ticket-router: {duplicates} ticket(s) repeat the text of another (case, accents and digits aside); "
            "each text is kept on one side of the validation split",
            file=sys.stderr,
        )
    if args.backend in ("ngram", "ensemble"):
        _require_ngram_features(args.data, [data.texts[i] for i in train_idx])
    source = {
        "version": version,
        "source_file": args.data.name,
        "label_column": args.label_column,
        "text_columns": columns_from_args(args).describe(),
        # For `evaluate`, to read a file's text as training read it.
        "text_column_names": columns_from_args(args).names(),
        "skipped_rows": len(data.problems),
        "duplicate_texts": duplicates,
    }
    if args.backend == "ngram":
        metrics = _train_ngram(
            examples,
            train_idx,
            val_idx,
            model_dir,
            DEFAULT_C if args.c is None else args.c,
            args.static_vectors,
            args.seed,
            args.refit,
            source,
            threshold,
        )
    else:
        quantize = {"auto": None, "int8": True, "fp32": False}[args.precision]
        metrics = _train_minilm(
            examples,
            train_idx,
            val_idx,
            model_dir,
            args.backend,
            args.seed,
            args.refit,
            source,
            threshold,
            quantize,
            args.threads,
        )
    # Without a refit the shipped model is the split run's, which never saw the held-out rows.
    trained_on = len(train_idx) if val_idx and not args.refit else len(examples)
    print(f"Trained {args.backend} model on {trained_on} tickets, {len(counts)} labels -> {model_dir}")
    if metrics:
        print(
            f"Validation ({len(val_idx)} held out): accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, "
            f"auto-routed at confidence >= {metrics['auto_route_threshold']:.2f}: {metrics['auto_route_rate']:.1%}"
            + (
                f" at {metrics['auto_route_accuracy']:.1%} accuracy"
                if metrics["auto_route_accuracy"] is not None
                else ""
            )
        )
    return 0


def _train_ngram(
    examples: list[Any],
    train_idx: list[int],
    val_idx: list[int],
    model_dir: Path,
    c: float,
    static_vectors: bool,
    seed: int,
    refit: bool,
    source: dict[str, Any],
    threshold: float,
) -> dict[str, Any] | None:
    from adapters.classifier.static_vectors import DEFAULT_TABLE
    from adapters.classifier.training import (
        DEFAULT_STATIC_WEIGHT,
        fit_ngram_classifier,
        tune_static_weight,
        with_static_weight,
    )
    from handlers.evaluation import evaluate_classifier

    table = DEFAULT_TABLE if static_vectors else None
    metrics = None
    weight, weight_source = DEFAULT_STATIC_WEIGHT, "default"
    if val_idx:
        validation = [examples[i] for i in val_idx]
        held_out = fit_ngram_classifier(
            [examples[i] for i in train_idx], regularisation_c=c, static_vectors=table, seed=seed
        )
        if held_out.static is not None:
            weight, weight_source = tune_static_weight(held_out, validation)
            with_static_weight(held_out, weight)
        metrics = evaluate_classifier(
            held_out, [e.text for e in validation], [e.label for e in validation], threshold=threshold
        ).summary()
        if not refit:
            held_out.metadata.update({**source, "validation": metrics, "static_weight_source": weight_source})
            held_out.save(model_dir, held_out.metadata)
            return metrics
    # The shipped model learns from every row; the held-out figures describe how it generalises.
    final = fit_ngram_classifier(
        examples,
        regularisation_c=c,
        static_vectors=table,
        static_weight=weight,
        seed=seed,
        metadata={
            **source,
            "validation": metrics,
            "static_weight_source": weight_source if table else None,
        },
    )
    final.save(model_dir, final.metadata)
    return metrics


def _train_minilm(
    examples: list[Any],
    train_idx: list[int],
    val_idx: list[int],
    model_dir: Path,
    backend: str,
    seed: int,
    refit: bool,
    source: dict[str, Any],
    threshold: float,
    quantize: bool | None = None,
    threads: int | None = None,
) -> dict[str, Any] | None:
    # The module itself is light; torch and the rest load inside fit_minilm_classifier.
    from adapters.classifier import minilm_training
    from adapters.classifier.loader import load_classifier
    from handlers.evaluation import evaluate_classifier

    ensemble = backend == "ensemble"
    validation = [examples[i] for i in val_idx]

    def progress(message: str) -> None:
        # Fine-tuning takes minutes per epoch: say where it is rather than sit silent.
        print(f"ticket-router: {message}", file=sys.stderr, flush=True)

    refit = refit and bool(validation)
    with tempfile.TemporaryDirectory(prefix="ticket-router-split-") as scratch:
        split_dir = Path(scratch) / "split" if refit else model_dir
        split_run: dict[str, Any] = minilm_training.fit_minilm_classifier(
            [examples[i] for i in train_idx],
            validation,
            model_dir=split_dir,
            ensemble=ensemble,
            metadata=source,
            seed=seed,
            quantize=quantize,
            threads=threads,
            progress=progress,
        )
        if not validation:
            return None
        held_out = load_classifier(split_dir)
        metrics = evaluate_classifier(
            held_out, [e.text for e in validation], [e.label for e in validation], threshold=threshold
        ).summary()
        if not refit:
            # The split run's artifact is the one shipped: it keeps the figures printed, as a refit's does.
            _record_evaluation(model_dir, metrics)
            return metrics
    progress(
        f"held-out accuracy {metrics['accuracy']:.3f} with {len(train_idx)} rows; "
        f"retraining on all {len(examples)} with the same recipe"
    )
    # The split run chose the mixing weight and int8 vs fp32; the refit reuses both, as it has no
    # held-out rows to choose them with.
    minilm_training.fit_minilm_classifier(
        examples,
        [],
        model_dir=model_dir,
        ensemble=ensemble,
        metadata=source,
        seed=seed,
        ensemble_weight=split_run["ensemble"]["weight"] if ensemble else None,
        quantize=bool(split_run["quantized"]),
        threads=threads,
        held_out_metrics={**split_run["validation"], "evaluation": metrics},
        progress=progress,
    )
    return metrics


def _record_evaluation(model_dir: Path, metrics: dict[str, Any]) -> None:
    """Add the held-out auto-route figures (and the threshold they were measured at) to a trained
    artifact's metadata, under "validation" as a refit stores them."""
    import json

    from adapters.atomic_files import atomic_write
    from adapters.classifier.ngram import METADATA_FILE, read_metadata

    metadata = read_metadata(model_dir)
    metadata["validation"] = {**(metadata.get("validation") or {}), "evaluation": metrics}
    with atomic_write(model_dir / METADATA_FILE, encoding="utf-8") as handle:
        handle.write(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
