"""MiniLM sentence-encoder classifier (optionally mixed with the n-gram model), run with onnxruntime.

Inference needs numpy, onnxruntime and tokenizers (the `minilm` extra), never torch; both heavy
imports happen when a model is loaded, so importing this module is cheap. `minilm_training.py`
writes the artifact:

    metadata.json   {"format": 1, "backend": "minilm" | "ensemble", "labels", "max_seq_len",
                     "ensemble": {"weight": w, "ngram_dir": "ngram"} | null, ...}
    model.onnx      inputs input_ids, attention_mask [batch, sequence] int64 -> logits [batch, labels]
    tokenizer.json  WordPiece tokenizer of the base model
    ngram/          (ensemble) an n-gram artifact; p = w * p_minilm + (1 - w) * p_ngram
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from domain.errors import ClassifierUnavailable
from domain.models import CONFIDENCE_DECIMALS, CategoryScore, IssueClassification

ARTIFACT_FORMAT = 1
BACKENDS = ("minilm", "ensemble")
METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
NGRAM_SUBDIR = "ngram"
UNQUANTIZED_ONNX_FILE = "model.fp32.onnx"
# Every entry a MiniLM or ensemble artifact may have: what a retrain of any backend replaces.
MINILM_ARTIFACT_ENTRIES = (METADATA_FILE, ONNX_FILE, TOKENIZER_FILE, NGRAM_SUBDIR, UNQUANTIZED_ONNX_FILE)
INSTALL_HINT = "pip install 'ticket-router[minilm]'"
# Texts are sorted by length and run 16 at a time: on one core that was 1.4x the throughput of
# one-by-one, while batches of 64 (more padding, larger activations) were no faster than one-by-one.
DEFAULT_BATCH_SIZE = 16
# probabilities_batch hands the encoder at most this many texts per call, bounding memory.
DEFAULT_CHUNK_SIZE = 2048


class ProbabilityModel(Protocol):
    """What the ensemble needs from its second member (NgramClassifier satisfies it)."""

    labels: list[str]

    def probabilities(self, text: str) -> np.ndarray: ...


LogitsFn = Callable[[Sequence[str]], np.ndarray]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [n, labels] logits (or of one [labels] vector)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True), dtype=np.float32)


def mix_probabilities(p_minilm: np.ndarray, p_ngram: np.ndarray, weight: float) -> np.ndarray:
    """w * p_minilm + (1 - w) * p_ngram: a convex mix, so rows still sum to one."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"mixing weight {weight} is outside [0, 1]")
    return np.asarray(weight * p_minilm + (1.0 - weight) * p_ngram, dtype=np.float32)


def _missing(package: str) -> ClassifierUnavailable:
    return ClassifierUnavailable(f"the MiniLM classifier needs the {package} package: {INSTALL_HINT}")


class OnnxLogits:
    """Tokenise, pad and run the exported encoder + head; returns raw logits."""

    def __init__(
        self, session: Any, tokenizer: Any = None, *, pad_id: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if self.tokenizer is None:
            raise RuntimeError("OnnxLogits was built without a tokenizer")
        return self.logits_of_ids([enc.ids for enc in self.tokenizer.encode_batch(list(texts))])

    def logits_of_ids(self, sequences: Sequence[Sequence[int]], batch_size: int | None = None) -> np.ndarray:
        batch_size = batch_size or self.batch_size
        # Sorting by length before batching keeps padding (and so wasted compute) small.
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(1, *(len(sequences[i]) for i in rows))
            ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : len(sequences[i])] = sequences[i]
                mask[r, : len(sequences[i])] = 1
            (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            if out is None:
                out = np.zeros((len(sequences), logits.shape[1]), dtype=np.float32)
            out[rows] = logits
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class MiniLMClassifier:
    """IssueClassifier backed by a fine-tuned MiniLM encoder, alone or mixed with the n-gram model."""

    def __init__(
        self,
        *,
        labels: Sequence[str],
        logits: LogitsFn,
        ngram: ProbabilityModel | None = None,
        weight: float = 1.0,
        metadata: dict[str, Any] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"mixing weight {weight} is outside [0, 1]")
        self.labels = list(labels)
        self._logits = logits
        self.ngram = ngram
        self.weight = float(weight) if ngram is not None else 1.0
        self.metadata = metadata or {}
        self.chunk_size = chunk_size
        self._ngram_order: np.ndarray | None = None
        if ngram is not None:
            if sorted(ngram.labels) != sorted(self.labels):
                raise ValueError("the n-gram model and the MiniLM model know different labels")
            position = {label: i for i, label in enumerate(ngram.labels)}
            self._ngram_order = np.array([position[label] for label in self.labels], dtype=np.int64)

    @property
    def backend(self) -> str:
        return "ensemble" if self.ngram is not None else "minilm"

    # --- persistence ------------------------------------------------------------------------

    @classmethod
    def load(cls, model_dir: str | Path, *, threads: int | None = None) -> MiniLMClassifier:
        """Read an artifact written by `fit_minilm_classifier`; `threads` caps onnxruntime's intra-op pool."""
        from adapters.classifier.ngram import NgramClassifier, _finite, _Invalid, _labels, read_metadata

        directory = Path(model_dir)
        metadata = read_metadata(directory)
        backend = metadata.get("backend")
        artifact_format = metadata.get("format")
        # `True == 1` in Python: a hand-edited `"format": true` must not pass for format 1.
        if backend not in BACKENDS or type(artifact_format) is not int or artifact_format != ARTIFACT_FORMAT:
            raise ClassifierUnavailable(
                f"{directory} holds a {backend!r} model of format {artifact_format!r}, "
                f"not a MiniLM model of format {ARTIFACT_FORMAT}"
            )
        try:
            import onnxruntime
        except ImportError as exc:
            raise _missing("onnxruntime") from exc
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise _missing("tokenizers") from exc

        # Checked as the n-gram loader checks its own (after the packages, whose absence says more):
        # a hand-edited or damaged metadata.json must fail as an unavailable model naming the
        # directory, not as a KeyError or ValueError that reads as a bug.
        try:
            labels = _labels(metadata.get("labels"))
            ensemble = metadata.get("ensemble")
            if backend == "ensemble":
                if not isinstance(ensemble, dict):
                    raise _Invalid(f"ensemble is {ensemble!r}, not an object"[:200])
                weight = _finite(ensemble.get("weight"), "ensemble.weight")
                if not 0.0 <= weight <= 1.0:
                    raise _Invalid(f"ensemble.weight must be between 0 and 1, not {weight}")
                ngram_dir = ensemble.get("ngram_dir", NGRAM_SUBDIR)
                if not isinstance(ngram_dir, str) or not ngram_dir:
                    raise _Invalid(f"ensemble.ngram_dir is {ngram_dir!r}, not a directory name"[:200])
        except _Invalid as exc:
            raise ClassifierUnavailable(f"classifier model in {directory} is invalid: {exc}") from exc

        for name in (ONNX_FILE, TOKENIZER_FILE):
            if not (directory / name).is_file():
                raise ClassifierUnavailable(f"no classifier model in {directory}: {name} is missing")
        try:
            tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=int(metadata["max_seq_len"]))
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(directory / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime and tokenizers raise their own exception types
            raise ClassifierUnavailable(f"classifier model in {directory} is unreadable: {exc}") from exc

        ngram: ProbabilityModel | None = None
        if backend == "ensemble":
            ngram = NgramClassifier.load(directory / ngram_dir)
            if sorted(ngram.labels) != sorted(labels):
                raise ClassifierUnavailable(
                    f"classifier model in {directory} is invalid: its n-gram member ({ngram_dir}) knows "
                    "other labels than metadata.json"
                )
        else:
            weight = 1.0
        onnx_info = metadata.get("onnx")
        # Dynamic int8 quantises each call's activations at one scale for the whole batch, so a
        # text's probabilities would shift with the texts batched beside it. Routing classifies one
        # ticket per call: a quantised model is run one text at a time, so that `evaluate` measures
        # the probabilities routing gets.
        quantized = isinstance(onnx_info, dict) and bool(onnx_info.get("quantized"))
        logits = OnnxLogits(session, tokenizer, batch_size=1 if quantized else DEFAULT_BATCH_SIZE)
        # One warm-up run: it checks that the graph takes our inputs and has one output per label,
        # and it spares the first ticket onnxruntime's first-run allocations.
        try:
            probe = logits(["warm-up"])
        except Exception as exc:
            raise ClassifierUnavailable(f"classifier model in {directory} does not run: {exc}") from exc
        if probe.shape != (1, len(labels)):
            raise ClassifierUnavailable(
                f"classifier model in {directory} has {probe.shape[-1]} outputs for {len(labels)} labels"
            )
        return cls(labels=labels, logits=logits, ngram=ngram, weight=weight, metadata=metadata)

    # --- inference --------------------------------------------------------------------------

    def probabilities_batch(self, texts: Sequence[str]) -> np.ndarray:
        """[n, labels] probabilities in `self.labels` order, for many texts at once.

        The encoder sorts each chunk of texts by length and runs it in small ONNX batches.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        chunks = [
            self._logits(texts[start : start + self.chunk_size]) for start in range(0, len(texts), self.chunk_size)
        ]
        probs = softmax(np.concatenate(chunks, axis=0))
        if self.ngram is None or self._ngram_order is None:
            return probs
        p_ngram = np.stack([self.ngram.probabilities(text) for text in texts])[:, self._ngram_order]
        return mix_probabilities(probs, p_ngram, self.weight)

    def probabilities(self, text: str) -> np.ndarray:
        return np.asarray(self.probabilities_batch([text])[0])

    def classify(self, text: str) -> IssueClassification:
        probs = self.probabilities(text)
        order = np.argsort(-probs, kind="stable")
        best = int(order[0])
        return IssueClassification(
            primary_category=self.labels[best],
            confidence=round(min(1.0, float(probs[best])), CONFIDENCE_DECIMALS),
            alternatives=tuple(
                CategoryScore(category=self.labels[int(i)], score=round(min(1.0, float(probs[i])), CONFIDENCE_DECIMALS))
                for i in order[1:]
            ),
            keywords=self._keywords(text, self.labels[best]),
        )

    def _keywords(self, text: str, label: str) -> tuple[str, ...]:
        # The encoder gives no cheap per-word attribution; the n-gram member of an ensemble does.
        explain = getattr(self.ngram, "vectorise", None)
        keywords = getattr(self.ngram, "_keywords", None)
        if explain is None or keywords is None or self.ngram is None:
            return ()
        _, _, tokens = explain(text)
        return tuple(keywords(tokens, self.ngram.labels.index(label)))
