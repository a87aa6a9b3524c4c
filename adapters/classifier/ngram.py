"""Linear classifier over hashed word and character n-grams, with numpy-only inference.

Training (scikit-learn, see `training.py`) writes a small artifact; this module reads it and
classifies with a handful of numpy operations, so a Lambda needs neither scikit-learn nor torch.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from adapters.classifier.static_vectors import (
    StaticEmbedder,
    StaticMember,
    load_table,
    log_softmax,
    mix_log_probabilities,
    with_tuned_rows,
)
from domain.errors import ClassifierUnavailable
from domain.models import CategoryScore, IssueClassification

# Format 2 adds the optional static-vector member, format 3 its fine-tuned token vectors (a reader
# of format 2 would silently use the untuned table, so it must refuse them). Models without a
# member are still written as 1, so that older readers keep loading them.
ARTIFACT_FORMAT = 1
STATIC_ARTIFACT_FORMAT = 2
TUNED_STATIC_ARTIFACT_FORMAT = 3
SUPPORTED_FORMATS = (ARTIFACT_FORMAT, STATIC_ARTIFACT_FORMAT, TUNED_STATIC_ARTIFACT_FORMAT)
WEIGHTS_FILE = "model.npz"
STATIC_WEIGHTS_FILE = "static.npz"
METADATA_FILE = "metadata.json"
DEFAULT_MODEL_DIR = Path(__file__).with_name("default_model")

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class FeaturizerConfig:
    n_features: int = 1 << 20
    char_min: int = 2
    char_max: int = 5
    word_bigrams: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features,
            "char_min": self.char_min,
            "char_max": self.char_max,
            "word_bigrams": self.word_bigrams,
        }


def normalise_text(text: str) -> str:
    # Digits are folded so that "SVC004" and "SVC117" share features; accents are folded so that
    # typed-without-accents text matches. Most tickets are ASCII and skip the Unicode work.
    folded = text.lower()
    if not folded.isascii():
        folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    return _DIGIT.sub("0", folded)


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8"))


@lru_cache(maxsize=262_144)
def _word_feature_hashes(word: str, char_min: int, char_max: int) -> tuple[int, ...]:
    # Per-word features never change, and ticket vocabularies repeat: caching them makes
    # featurisation several times faster on a warm process.
    padded = f" {word} "
    hashes = [_hash("w|" + word)]
    for n in range(char_min, char_max + 1):
        hashes.extend(_hash("c|" + padded[i : i + n]) for i in range(len(padded) - n + 1))
    return tuple(hashes)


def feature_hashes(text: str, config: FeaturizerConfig) -> tuple[list[int], list[str]]:
    """Raw hashed features of a text, and its tokens (for explaining the decision)."""
    tokens = _TOKEN.findall(normalise_text(text))
    hashes: list[int] = []
    for token in tokens:
        hashes.extend(_word_feature_hashes(token, config.char_min, config.char_max))
    if config.word_bigrams:
        hashes.extend(_hash(f"b|{a} {b}") for a, b in itertools.pairwise(tokens))
    return hashes, tokens


def term_frequencies(hashes: list[int], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique feature ids and sub-linear term frequencies (1 + log count)."""
    if not hashes:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    ids = np.asarray(hashes, dtype=np.int64) % n_features
    unique, counts = np.unique(ids, return_counts=True)
    return unique, (1.0 + np.log(counts)).astype(np.float32)


class NgramClassifier:
    """IssueClassifier backed by a trained n-gram artifact."""

    def __init__(
        self,
        *,
        labels: list[str],
        config: FeaturizerConfig,
        feature_ids: np.ndarray,
        idf: np.ndarray,
        weights: np.ndarray,
        bias: np.ndarray,
        temperature: float = 1.0,
        metadata: dict[str, Any] | None = None,
        static: StaticMember | None = None,
    ) -> None:
        self.labels = list(labels)
        self.config = config
        self.feature_ids = feature_ids.astype(np.int64)
        self.idf = idf.astype(np.float32)
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.temperature = float(temperature)
        self.metadata = metadata or {}
        self.static = static

    # --- persistence ------------------------------------------------------------------------

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> NgramClassifier:
        directory = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
        try:
            metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
            with np.load(directory / WEIGHTS_FILE) as arrays:
                data = {name: arrays[name] for name in arrays.files}
        except FileNotFoundError as exc:
            raise ClassifierUnavailable(f"no classifier model in {directory}: {exc.filename} is missing") from exc
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise ClassifierUnavailable(f"classifier model in {directory} is unreadable: {exc}") from exc
        if metadata.get("backend") != "ngram" or metadata.get("format") not in SUPPORTED_FORMATS:
            raise ClassifierUnavailable(
                f"{directory} holds a {metadata.get('backend')!r} model of format {metadata.get('format')!r}, "
                f"not an n-gram model of format {' or '.join(map(str, SUPPORTED_FORMATS))}"
            )
        static = _load_static(directory, metadata["static_vectors"]) if metadata.get("static_vectors") else None
        return cls(
            labels=metadata["labels"],
            config=FeaturizerConfig(**metadata["featurizer"]),
            feature_ids=data["feature_ids"],
            idf=data["idf"],
            weights=data["weights"],
            bias=data["bias"],
            temperature=float(metadata.get("temperature", 1.0)),
            metadata=metadata,
            static=static,
        )

    def save(self, model_dir: str | Path, metadata: dict[str, Any]) -> None:
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            directory / WEIGHTS_FILE,
            feature_ids=self.feature_ids,
            idf=self.idf,
            weights=self.weights.astype(np.float16),
            bias=self.bias,
        )
        full = {
            **metadata,
            "format": ARTIFACT_FORMAT,
            "backend": "ngram",
            "labels": self.labels,
            "featurizer": self.config.to_dict(),
            "temperature": self.temperature,
            "static_vectors": None,
        }
        if self.static is not None:
            tuned = self.static.tuned_rows is not None
            full["format"] = TUNED_STATIC_ARTIFACT_FORMAT if tuned else STATIC_ARTIFACT_FORMAT
            full["static_vectors"] = _save_static(directory, self.static)
        (directory / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    # --- inference --------------------------------------------------------------------------

    def vectorise(self, text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Rows into the weight matrix and their tf-idf values (L2-normalised), plus tokens."""
        hashes, tokens = feature_hashes(text, self.config)
        ids, tf = term_frequencies(hashes, self.config.n_features)
        positions = np.searchsorted(self.feature_ids, ids)
        positions = np.minimum(positions, len(self.feature_ids) - 1)
        known = self.feature_ids[positions] == ids
        rows = positions[known]
        values = tf[known] * self.idf[rows]
        norm = float(np.sqrt(np.dot(values, values)))
        if norm > 0:
            values = values / norm
        return rows, values, tokens

    def probabilities(self, text: str) -> np.ndarray:
        rows, values, _ = self.vectorise(text)
        return self._combine(text, values @ self.weights[rows] + self.bias)

    def ngram_probabilities(self, text: str) -> np.ndarray:
        """The n-gram member alone (no static-vector member), for tuning and diagnostics."""
        rows, values, _ = self.vectorise(text)
        return np.exp(log_softmax((values @ self.weights[rows] + self.bias) / self.temperature))

    def _combine(self, text: str, ngram_logits: np.ndarray) -> np.ndarray:
        ngram_log_p = log_softmax(ngram_logits / self.temperature)
        if self.static is None:
            return np.exp(ngram_log_p)
        static_log_p = log_softmax(self.static.logits(text))
        return mix_log_probabilities(ngram_log_p, static_log_p, self.static.weight)

    def classify(self, text: str) -> IssueClassification:
        rows, values, tokens = self.vectorise(text)
        probs = self._combine(text, values @ self.weights[rows] + self.bias)
        order = np.argsort(-probs)
        best = int(order[0])
        return IssueClassification(
            primary_category=self.labels[best],
            confidence=round(float(probs[best]), 4),
            alternatives=tuple(
                CategoryScore(category=self.labels[int(i)], score=round(float(probs[i]), 4)) for i in order[1:]
            ),
            keywords=self._keywords(tokens, best),
        )

    def _keywords(self, tokens: list[str], label_index: int, limit: int = 5) -> tuple[str, ...]:
        """The words whose own features push hardest towards the chosen label."""
        words = [t for t in dict.fromkeys(tokens) if len(t) >= 3 and not t.isdigit()]
        if not words:
            return ()
        # A word's unigram feature is the first hash _word_feature_hashes caches for it.
        ids = (
            np.fromiter(
                (_word_feature_hashes(w, self.config.char_min, self.config.char_max)[0] for w in words),
                dtype=np.int64,
                count=len(words),
            )
            % self.config.n_features
        )
        positions = np.minimum(np.searchsorted(self.feature_ids, ids), len(self.feature_ids) - 1)
        known = self.feature_ids[positions] == ids
        weights = np.where(known, self.weights[positions, label_index], 0.0)
        order = np.argsort(-weights)[:limit]
        return tuple(words[i] for i in order if weights[i] > 0)


def _save_static(directory: Path, static: StaticMember) -> dict[str, Any]:
    table = static.embedder.table
    arrays: dict[str, np.ndarray] = {
        "hidden_weights": static.hidden_weights.astype(np.float16),
        "hidden_bias": static.hidden_bias.astype(np.float32),
        "output_weights": static.output_weights.astype(np.float16),
        "output_bias": static.output_bias.astype(np.float32),
    }
    if static.tuned_rows is not None:
        arrays["tuned_rows"] = static.tuned_rows.astype(np.int32)
        arrays["tuned_vectors"] = table.rows(static.tuned_rows).astype(np.float16)
    np.savez_compressed(directory / STATIC_WEIGHTS_FILE, allow_pickle=False, **arrays)
    return {
        "table": table.name,
        "table_sha256": table.sha256,
        "dims": table.dims,
        "hidden": int(static.hidden_weights.shape[1]),
        "input_scale": static.input_scale,
        "weight": static.weight,
        "tuned_rows": None if static.tuned_rows is None else int(static.tuned_rows.size),
    }


def _load_static(directory: Path, spec: dict[str, Any]) -> StaticMember:
    table = load_table(spec["table"], spec.get("table_sha256"))
    try:
        with np.load(directory / STATIC_WEIGHTS_FILE) as arrays:
            data = {name: arrays[name].astype(np.float32) for name in arrays.files if name != "tuned_rows"}
            tuned_rows = arrays["tuned_rows"].astype(np.int64) if "tuned_rows" in arrays.files else None
    except FileNotFoundError as exc:
        raise ClassifierUnavailable(f"{directory}: {STATIC_WEIGHTS_FILE} is missing") from exc
    except (OSError, ValueError) as exc:
        raise ClassifierUnavailable(f"{directory}: {STATIC_WEIGHTS_FILE} is unreadable: {exc}") from exc
    required = {"hidden_weights", "hidden_bias", "output_weights", "output_bias"}
    if tuned_rows is not None:
        required.add("tuned_vectors")
    missing = sorted(required - data.keys())
    if missing:
        raise ClassifierUnavailable(f"{directory}: {STATIC_WEIGHTS_FILE} lacks {', '.join(missing)}")
    if data["hidden_weights"].shape[0] != table.dims:
        raise ClassifierUnavailable(
            f"{directory}: the static member takes {data['hidden_weights'].shape[0]}-d vectors, "
            f"table {table.name!r} has {table.dims}"
        )
    if tuned_rows is not None:
        table = with_tuned_rows(table, tuned_rows, data["tuned_vectors"])
    return StaticMember(
        embedder=StaticEmbedder(table),
        hidden_weights=data["hidden_weights"],
        hidden_bias=data["hidden_bias"],
        output_weights=data["output_weights"],
        output_bias=data["output_bias"],
        input_scale=float(spec["input_scale"]),
        weight=float(spec["weight"]),
        tuned_rows=tuned_rows,
    )
