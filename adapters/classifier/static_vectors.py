"""Static token vectors distilled from all-MiniLM-L6-v2, read with numpy alone.

Every WordPiece token of the MiniLM vocabulary was run through the encoder on its own and its
output kept (see `static_vectors_builder.py`), in the manner of Model2Vec. A text's vector is the
normalised sum of its tokens' vectors: no transformer at run time, yet "lost", "stolen" and
"missing" land near each other, which hashed n-grams alone cannot know. The table ships with the
package; a trained model names it and its SHA-256 rather than carrying a copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from domain.errors import ClassifierUnavailable

TABLE_DIR = Path(__file__).with_name("static_vectors")
DEFAULT_TABLE = "minilm-l6-v2"
TABLE_SUFFIX = ".npz"
# WordPiece gives up on very long "words" (hashes, base64) exactly like the original tokenizer.
MAX_WORD_CHARS = 100
WORD_VECTOR_CACHE_SIZE = 16_384

_PIECES = re.compile(r"\w+|[^\w\s]")


def table_path(name: str) -> Path:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
        raise ClassifierUnavailable(f"invalid static vector table name {name!r}")
    return TABLE_DIR / f"{name}{TABLE_SUFFIX}"


def content_sha256(vocabulary: str, codes: np.ndarray, scale: np.ndarray) -> str:
    """Identity of a table's content; the zip container's own bytes vary with build time."""
    digest = hashlib.sha256(vocabulary.encode("utf-8"))
    digest.update(np.ascontiguousarray(codes, dtype=np.int8).tobytes())
    digest.update(np.ascontiguousarray(scale, dtype="<f4").tobytes())
    return digest.hexdigest()


def basic_tokens(text: str) -> list[str]:
    """BERT's basic tokenisation: lower case, accents stripped, punctuation split off."""
    folded = text.lower()
    if not folded.isascii():
        folded = "".join(ch for ch in unicodedata.normalize("NFD", folded) if unicodedata.category(ch) != "Mn")
    return _PIECES.findall(folded)


@dataclass(frozen=True, slots=True)
class StaticTable:
    """The token vectors, kept as the shipped int8 codes and per-row scales (7 MB rather than 28 MB
    of float32) and turned into float32 only for the few rows a text uses. A model's fine-tuned rows
    sit in a small overlay, so every model in a process shares one copy of the codes."""

    name: str
    sha256: str
    vocabulary: tuple[str, ...]
    codes: np.ndarray  # int8 [tokens, dims]
    scale: np.ndarray  # float32 [tokens]; row = codes * scale, unit length
    tuned_index: np.ndarray | None = None  # int32 [tokens]: row of tuned_vectors, or -1
    tuned_vectors: np.ndarray | None = None  # float32 [tuned tokens, dims]

    @property
    def dims(self) -> int:
        return int(self.codes.shape[1])

    def rows(self, token_rows: np.ndarray) -> np.ndarray:
        """float32 [len(token_rows), dims]: the vectors of those tokens, fine-tuned ones included."""
        vectors = self.codes[token_rows].astype(np.float32)
        vectors *= self.scale[token_rows, None]
        if self.tuned_index is not None and self.tuned_vectors is not None:
            tuned = self.tuned_index[token_rows]
            hit = tuned >= 0
            if hit.any():
                vectors[hit] = self.tuned_vectors[tuned[hit]]
        return vectors

    def dense(self) -> np.ndarray:
        """Every row as float32 (28 MB): for tools and tests, not for serving."""
        return self.rows(np.arange(len(self.vocabulary)))


def load_table(name: str = DEFAULT_TABLE, expected_sha256: str | None = None) -> StaticTable:
    """The installed table `name`; with `expected_sha256`, refuse any other version of it."""
    table = _read_table(name)
    if expected_sha256 is not None and table.sha256 != expected_sha256:
        raise ClassifierUnavailable(
            f"the model was trained with another version of static vector table {name!r} "
            f"(sha256 {expected_sha256[:12]}…, installed {table.sha256[:12]}…): retrain it with this version"
        )
    return table


@lru_cache(maxsize=4)
def _read_table(name: str) -> StaticTable:
    # One copy per process however many models share the table (an ensemble and its n-gram member).
    path = table_path(name)
    try:
        with np.load(path) as arrays:
            joined = str(arrays["vocabulary"])
            codes = arrays["codes"]
            scale = arrays["scale"]
    except FileNotFoundError as exc:
        raise ClassifierUnavailable(f"static vector table {name!r} is not installed ({path} is missing)") from exc
    except (OSError, KeyError, ValueError) as exc:
        raise ClassifierUnavailable(f"static vector table {path} is unreadable: {exc}") from exc
    sha = content_sha256(joined, codes, scale)
    vocabulary = tuple(joined.split("\n"))
    if codes.ndim != 2 or len(vocabulary) != codes.shape[0] or scale.shape != (codes.shape[0],):
        raise ClassifierUnavailable(
            f"static vector table {path}: {len(vocabulary)} tokens for codes {codes.shape} and scales {scale.shape}"
        )
    return StaticTable(
        name=name,
        sha256=sha,
        vocabulary=vocabulary,
        codes=codes.astype(np.int8, copy=False),
        scale=scale.astype(np.float32, copy=False),
    )


def with_tuned_rows(table: StaticTable, rows: np.ndarray, vectors: np.ndarray) -> StaticTable:
    """`table` with some rows replaced by a model's fine-tuned vectors.

    Name and SHA-256 stay the base table's: a model names the table it started from, and carries
    only the rows its training moved (the tokens it saw), so words it never saw keep their
    shipped meaning.
    """
    if rows.shape[0] != vectors.shape[0] or vectors.shape[1:] != (table.dims,):
        raise ClassifierUnavailable(
            f"tuned rows of shape {vectors.shape} for {rows.shape[0]} tokens do not fit table {table.name!r} ({table.dims}-d)"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= len(table.vocabulary)):
        raise ClassifierUnavailable(f"tuned rows point outside table {table.name!r}")
    index = (
        np.full(len(table.vocabulary), -1, dtype=np.int32) if table.tuned_index is None else table.tuned_index.copy()
    )
    overlay = np.zeros((0, table.dims), np.float32) if table.tuned_vectors is None else table.tuned_vectors
    index[rows] = len(overlay) + np.arange(rows.shape[0], dtype=np.int32)
    return dataclasses.replace(table, tuned_index=index, tuned_vectors=np.vstack([overlay, vectors.astype(np.float32)]))


class StaticEmbedder:
    """Text -> unit vector: WordPiece tokens looked up in a static table and summed."""

    def __init__(self, table: StaticTable) -> None:
        self.table = table
        self._ids = {token: i for i, token in enumerate(table.vocabulary)}
        self._unknown = self._ids.get("[UNK]")
        # Per-instance caches; ticket vocabularies repeat, so they pay quickly. Word -> token rows
        # is small and serves training; word -> the sum of its token vectors (1 KB a word, hence
        # the lower bound) spares serving the per-text gather from the table.
        self._word_rows = lru_cache(maxsize=131_072)(self._wordpiece)
        self._word_vector = lru_cache(maxsize=WORD_VECTOR_CACHE_SIZE)(self._summed_word)

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first WordPiece, as BERT's tokenizer does it."""
        if len(word) > MAX_WORD_CHARS:
            return () if self._unknown is None else (self._unknown,)
        rows: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self._ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return () if self._unknown is None else (self._unknown,)
            rows.append(found)
            start = end
        return tuple(rows)

    def token_rows(self, text: str) -> list[int]:
        rows: list[int] = []
        for word in basic_tokens(text):
            rows.extend(self._word_rows(word))
        return rows

    def _summed_word(self, word: str) -> np.ndarray | None:
        rows = self._word_rows(word)
        return self.table.rows(np.array(rows, dtype=np.intp)).sum(axis=0) if rows else None

    def embed(self, text: str) -> np.ndarray:
        words = [vector for word in basic_tokens(text) if (vector := self._word_vector(word)) is not None]
        if not words:
            return np.zeros(self.table.dims, dtype=np.float32)
        summed = np.add.reduce(words)
        norm = float(np.sqrt(np.dot(summed, summed)))
        return summed / norm if norm > 0 else summed

    def embed_many(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.embed(t) for t in texts]) if texts else np.zeros((0, self.table.dims), np.float32)


@dataclass(frozen=True, slots=True)
class StaticMember:
    """A one-hidden-layer network over a text's static vector, mixed into the n-gram model.

    The mix is log-linear: log p = (1 - weight) * log p_ngram + weight * log p_static, then
    renormalised. Hashed n-grams know the exact wording; this member knows which words mean
    alike, so each corrects the other's typical mistakes. `tuned_rows` are the table rows that
    training fine-tuned (their vectors are in `embedder.table`); None for a frozen table.
    """

    embedder: StaticEmbedder
    hidden_weights: np.ndarray  # [dims, hidden]
    hidden_bias: np.ndarray  # [hidden]
    output_weights: np.ndarray  # [hidden, labels]
    output_bias: np.ndarray  # [labels]
    input_scale: float
    weight: float
    tuned_rows: np.ndarray | None = None

    def logits(self, text: str) -> np.ndarray:
        features = self.embedder.embed(text) * self.input_scale
        hidden = np.maximum(features @ self.hidden_weights + self.hidden_bias, 0.0)
        return np.asarray(hidden @ self.output_weights + self.output_bias)

    def logits_many(self, texts: list[str]) -> np.ndarray:
        features = self.embedder.embed_many(texts) * self.input_scale
        hidden = np.maximum(features @ self.hidden_weights + self.hidden_bias, 0.0)
        return np.asarray(hidden @ self.output_weights + self.output_bias)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)))


def mix_log_probabilities(ngram_log_p: np.ndarray, static_log_p: np.ndarray, weight: float) -> np.ndarray:
    """Log-linear mix of the two members, renormalised to probabilities."""
    mixed = (1.0 - weight) * ngram_log_p + weight * static_log_p
    mixed = mixed - mixed.max(axis=-1, keepdims=True)
    exp = np.exp(mixed)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True))
