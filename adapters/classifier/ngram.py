"""Linear classifier over hashed word and character n-grams, with numpy-only inference.

Training (scikit-learn, see `training.py`) writes a small artifact; this module reads it and
classifies with a handful of numpy operations, so a Lambda needs neither scikit-learn nor torch.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import reprlib
import unicodedata
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.atomic_files import atomic_directory
from adapters.classifier.static_vectors import (
    StaticEmbedder,
    StaticMember,
    load_table,
    log_softmax,
    mix_log_probabilities,
    with_tuned_rows,
)
from domain.errors import ClassifierUnavailable
from domain.models import CONFIDENCE_DECIMALS, CategoryScore, IssueClassification

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
# What a save replaces, or removes when it does not write it: a model saved without the static
# member over one saved with it would otherwise keep a static.npz that is no part of it.
ARTIFACT_ENTRIES = (WEIGHTS_FILE, STATIC_WEIGHTS_FILE, METADATA_FILE)
DEFAULT_MODEL_DIR = Path(__file__).with_name("default_model")

# What a damaged .npz can raise besides OSError and ValueError: a truncated zip, a member cut short,
# a member whose compressed bytes are corrupt.
NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_DIGIT = re.compile(r"\d")


# Features are crc32 hashes: more buckets than 2**32 would never be used, and far more would
# overflow the int64 feature ids.
MAX_HASHED_FEATURES = 1 << 32
# `train` writes 2..5; longer character n-grams are mostly whole words, which have their own
# feature, and each extra length costs a pass over every word of every ticket.
MAX_CHAR_NGRAM = 16


class FeaturizerConfig(BaseModel):
    """How text becomes hashed features. Read back from a model's metadata.json, which a person
    may have edited: strict, so that `true` is not taken for 1, and bounded, so that a typo cannot
    overflow the hashing or make every ticket take hours."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    n_features: int = Field(default=1 << 20, ge=1, le=MAX_HASHED_FEATURES)
    char_min: int = Field(default=2, ge=1, le=MAX_CHAR_NGRAM)
    char_max: int = Field(default=5, ge=1, le=MAX_CHAR_NGRAM)
    word_bigrams: bool = True

    @model_validator(mode="after")
    def _char_range_not_empty(self) -> FeaturizerConfig:
        if self.char_max < self.char_min:
            raise ValueError(f"char_max {self.char_max} is below char_min {self.char_min}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


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


def text_tokens(text: str) -> list[str]:
    """The words of a text as the model reads them: two texts with the same are one text to it."""
    return _TOKEN.findall(normalise_text(text))


def feature_hashes(text: str, config: FeaturizerConfig) -> tuple[list[int], list[str]]:
    """Raw hashed features of a text, and its tokens (for explaining the decision)."""
    tokens = text_tokens(text)
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
        metadata = read_metadata(directory)
        # `true` == 1 and 1.0 == 1 in Python: a format is a whole number, never either of those.
        artifact_format = metadata.get("format")
        if (
            metadata.get("backend") != "ngram"
            or type(artifact_format) is not int
            or artifact_format not in SUPPORTED_FORMATS
        ):
            raise ClassifierUnavailable(
                f"{directory} holds a {metadata.get('backend')!r} model of format {metadata.get('format')!r}, "
                f"not an n-gram model of format {' or '.join(map(str, SUPPORTED_FORMATS))}"
            )
        data = _read_arrays(directory, WEIGHTS_FILE)
        # Everything a damaged or hand-edited artifact could get wrong is checked here, once, so
        # that it fails at load with a message naming the directory, not at the first ticket (or
        # never, giving quietly wrong answers).
        try:
            labels = _labels(metadata.get("labels"))
            config = _featurizer(metadata.get("featurizer"))
            temperature = _finite(metadata.get("temperature", 1.0), "temperature", positive=True)
            arrays = _ngram_arrays(data, len(labels), config.n_features)
            spec = metadata.get("static_vectors")
            if spec is not None and not isinstance(spec, dict):
                raise _Invalid(f"static_vectors is {spec!r}, not an object or null")
        except _Invalid as exc:
            raise ClassifierUnavailable(f"classifier model in {directory} is invalid: {exc}") from exc
        static = _load_static(directory, spec, len(labels)) if spec else None
        return cls(
            labels=labels,
            config=config,
            feature_ids=arrays["feature_ids"],
            idf=arrays["idf"],
            weights=arrays["weights"],
            bias=arrays["bias"],
            temperature=temperature,
            metadata=metadata,
            static=static,
        )

    def save(self, model_dir: str | Path, metadata: dict[str, Any]) -> None:
        """Write the artifact to `model_dir`; should that fail, a model already there stays whole."""
        # A MiniLM or ensemble model this one replaces leaves none of its files behind.
        from adapters.classifier.minilm import MINILM_ARTIFACT_ENTRIES

        owned = (*ARTIFACT_ENTRIES, *MINILM_ARTIFACT_ENTRIES)
        with atomic_directory(model_dir, last=METADATA_FILE, owned=owned) as directory:
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
        # Stable, so that of labels tied at the top the first wins, as argmax picks it for `evaluate`:
        # numpy's default sort may put any of them first once there are more than 16 labels.
        order = np.argsort(-probs, kind="stable")
        best = int(order[0])
        return IssueClassification(
            primary_category=self.labels[best],
            confidence=round(float(probs[best]), CONFIDENCE_DECIMALS),
            alternatives=tuple(
                CategoryScore(category=self.labels[int(i)], score=round(float(probs[i]), CONFIDENCE_DECIMALS))
                for i in order[1:]
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


class _Invalid(ValueError):
    """A model file's content is wrong; the caller names the directory."""


def read_metadata(directory: Path) -> dict[str, Any]:
    """A model directory's metadata.json as an object, or ClassifierUnavailable saying why not."""
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ClassifierUnavailable(f"no classifier model in {directory} ({METADATA_FILE} is missing)") from exc
    except UnicodeDecodeError as exc:
        raise ClassifierUnavailable(f"classifier metadata in {directory} is not UTF-8 (byte {exc.start})") from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise ClassifierUnavailable(f"classifier metadata in {directory} is unreadable: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ClassifierUnavailable(
            f"classifier metadata in {directory} is a JSON {type(metadata).__name__}, not an object"
        )
    return metadata


def _read_arrays(directory: Path, name: str) -> dict[str, np.ndarray]:
    try:
        with np.load(directory / name, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except FileNotFoundError as exc:
        raise ClassifierUnavailable(f"no classifier model in {directory}: {name} is missing") from exc
    except NPZ_ERRORS as exc:
        raise ClassifierUnavailable(f"classifier model in {directory}: {name} is unreadable: {exc}") from exc


def _labels(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"labels must be a non-empty list of names, not {value!r}"[:200])
    if not all(isinstance(label, str) and label for label in value) or len(set(value)) != len(value):
        raise _Invalid("labels must be distinct non-empty strings")
    return value


def _finite(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(f"{name} must be a finite number, not {value!r}")
    if positive and value <= 0:
        raise _Invalid(f"{name} must be above 0, not {value!r}")
    return float(value)


def _featurizer(value: Any) -> FeaturizerConfig:
    if not isinstance(value, dict):
        raise _Invalid(f"featurizer must be an object, not {reprlib.repr(value)}")
    try:
        return FeaturizerConfig.model_validate(value)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(["featurizer", *map(str, error["loc"])])
            if error["type"] == "extra_forbidden":
                problems.append(f"{field} is not a known setting")
            elif error["loc"]:
                problems.append(f"{field}: {error['msg']}, not {reprlib.repr(error['input'])}")
            else:
                problems.append(f"{field}: {error['msg'].removeprefix('Value error, ')}")
        raise _Invalid("; ".join(problems)) from None


def _require(data: dict[str, np.ndarray], file: str, shapes: dict[str, tuple[int | None, ...]]) -> None:
    """Each array present, numeric and finite, with the shape given (None: any length)."""
    missing = sorted(set(shapes) - data.keys())
    if missing:
        raise _Invalid(f"{file} lacks {', '.join(missing)}")
    for name, shape in shapes.items():
        array = data[name]
        if array.ndim != len(shape) or any(
            want not in (None, got) for want, got in zip(shape, array.shape, strict=True)
        ):
            expected = ", ".join("any" if want is None else str(want) for want in shape)
            raise _Invalid(f"{file}: {name} has shape {array.shape}, expected ({expected})")
        if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and not np.isfinite(array).all()):
            raise _Invalid(f"{file}: {name} is not all finite numbers")


def _ngram_arrays(data: dict[str, np.ndarray], n_labels: int, n_features: int) -> dict[str, np.ndarray]:
    shapes: dict[str, tuple[int | None, ...]] = {
        "feature_ids": (None,),
        "idf": (None,),
        "weights": (None, n_labels),
        "bias": (n_labels,),
    }
    for name in ("weights", "bias"):
        # The commonest mismatch gets its own words: metadata.json edited apart from the weights.
        if name in data and data[name].ndim in (1, 2) and data[name].shape[-1] != n_labels:
            raise _Invalid(f"{n_labels} labels in {METADATA_FILE} but {data[name].shape[-1]} in {WEIGHTS_FILE} {name}")
    _require(data, WEIGHTS_FILE, shapes)
    ids = data["feature_ids"]
    if ids.dtype.kind not in "iu" or ids.size == 0:
        raise _Invalid(f"{WEIGHTS_FILE}: feature_ids must be a non-empty list of whole numbers")
    if data["idf"].shape[0] != ids.size or data["weights"].shape[0] != ids.size:
        raise _Invalid(
            f"{WEIGHTS_FILE}: {ids.size} feature_ids for {data['idf'].shape[0]} idf values "
            f"and {data['weights'].shape[0]} weight rows"
        )
    # Lookups binary-search the ids, which only works on ids sorted, unique and in range.
    if ids[0] < 0 or ids[-1] >= n_features or (ids.size > 1 and not (np.diff(ids) > 0).all()):
        raise _Invalid(f"{WEIGHTS_FILE}: feature_ids must be increasing and below n_features {n_features}")
    return data


def _load_static(directory: Path, spec: dict[str, Any], n_labels: int) -> StaticMember:
    try:
        table_name, sha256 = spec.get("table"), spec.get("table_sha256")
        if not isinstance(table_name, str) or not isinstance(sha256, str | None):
            raise _Invalid(f"static_vectors.table {table_name!r} / table_sha256 {sha256!r} are not names")
        input_scale = _finite(spec.get("input_scale"), "static_vectors.input_scale", positive=True)
        weight = _finite(spec.get("weight"), "static_vectors.weight")
        if not 0.0 <= weight <= 1.0:
            raise _Invalid(f"static_vectors.weight must be between 0 and 1, not {weight}")
    except _Invalid as exc:
        raise ClassifierUnavailable(f"classifier model in {directory} is invalid: {exc}") from exc
    table = load_table(table_name, sha256)
    data = _read_arrays(directory, STATIC_WEIGHTS_FILE)
    tuned = "tuned_rows" in data
    try:
        shapes: dict[str, tuple[int | None, ...]] = {
            "hidden_weights": (table.dims, None),
            "hidden_bias": (None,),
            "output_weights": (None, n_labels),
            "output_bias": (n_labels,),
        }
        if tuned:
            shapes |= {"tuned_rows": (None,), "tuned_vectors": (None, table.dims)}
        _require(data, STATIC_WEIGHTS_FILE, shapes)
        hidden = data["hidden_weights"].shape[1]
        if data["hidden_bias"].shape[0] != hidden or data["output_weights"].shape[0] != hidden:
            raise _Invalid(f"{STATIC_WEIGHTS_FILE}: the hidden layer's arrays disagree on its size")
        if tuned and data["tuned_rows"].dtype.kind not in "iu":
            raise _Invalid(f"{STATIC_WEIGHTS_FILE}: tuned_rows must be whole numbers")
    except _Invalid as exc:
        raise ClassifierUnavailable(f"classifier model in {directory} is invalid: {exc}") from exc
    tuned_rows = data["tuned_rows"].astype(np.int64) if tuned else None
    if tuned_rows is not None:
        try:
            table = with_tuned_rows(table, tuned_rows, data["tuned_vectors"].astype(np.float32))
        except ClassifierUnavailable as exc:
            raise ClassifierUnavailable(f"classifier model in {directory} is invalid: {exc}") from exc
    return StaticMember(
        embedder=StaticEmbedder(table),
        hidden_weights=data["hidden_weights"].astype(np.float32),
        hidden_bias=data["hidden_bias"].astype(np.float32),
        output_weights=data["output_weights"].astype(np.float32),
        output_bias=data["output_bias"].astype(np.float32),
        input_scale=input_scale,
        weight=weight,
        tuned_rows=tuned_rows,
    )
