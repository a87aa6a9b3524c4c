"""Training of the n-gram classifier (needs the `train` extra: scikit-learn and scipy).

Only this module imports scikit-learn; the artifact it writes is read by numpy alone.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from adapters.classifier.ngram import FeaturizerConfig, NgramClassifier, feature_hashes, term_frequencies


@dataclass(frozen=True, slots=True)
class TrainingExample:
    text: str
    label: str


def dataset_fingerprint(examples: Sequence[TrainingExample]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.label.encode())
        digest.update(b"\x1f")
        digest.update(example.text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def _hashed_rows(texts: Sequence[str], config: FeaturizerConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    return [term_frequencies(feature_hashes(t, config)[0], config.n_features) for t in texts]


def fit_ngram_classifier(
    examples: Sequence[TrainingExample],
    *,
    config: FeaturizerConfig | None = None,
    regularisation_c: float = 20.0,
    min_df: int = 1,
    max_iter: int = 2000,
    metadata: dict[str, Any] | None = None,
) -> NgramClassifier:
    """Fit multinomial logistic regression on tf-idf weighted hashed n-grams."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    config = config or FeaturizerConfig()
    texts = [e.text for e in examples]
    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise ValueError("training needs at least two distinct labels")
    label_index = {label: i for i, label in enumerate(labels)}
    y = np.array([label_index[e.label] for e in examples])

    rows = _hashed_rows(texts, config)
    document_frequency: Counter[int] = Counter()
    for ids, _ in rows:
        document_frequency.update(ids.tolist())
    kept = np.array(sorted(f for f, df in document_frequency.items() if df >= min_df), dtype=np.int64)
    df = np.array([document_frequency[int(f)] for f in kept], dtype=np.float64)
    n_docs = len(texts)
    idf = (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)

    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for ids, tf in rows:
        positions = np.searchsorted(kept, ids)
        positions = np.minimum(positions, len(kept) - 1)
        mask = kept[positions] == ids
        cols = positions[mask]
        values = tf[mask] * idf[cols]
        norm = float(np.sqrt(np.dot(values, values)))
        if norm > 0:
            values = values / norm
        indices.extend(cols.tolist())
        data.extend(values.tolist())
        indptr.append(len(indices))
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(n_docs, len(kept)), dtype=np.float32)

    model = LogisticRegression(C=regularisation_c, max_iter=max_iter)
    model.fit(matrix, y)
    coef = np.asarray(model.coef_, dtype=np.float32)
    intercept = np.asarray(model.intercept_, dtype=np.float32)
    if coef.shape[0] == 1:  # binary problems get one row; expand to a logit per label
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)

    hyper = {"regularisation_c": regularisation_c, "min_df": min_df, "max_iter": max_iter, **config.to_dict()}
    return NgramClassifier(
        labels=labels,
        config=config,
        feature_ids=kept,
        idf=idf,
        weights=coef.T.copy(),
        bias=intercept,
        metadata={
            **(metadata or {}),
            "hyperparameters": hyper,
            "training_data_sha256": dataset_fingerprint(examples),
            "n_train": n_docs,
            "label_counts": dict(Counter(e.label for e in examples)),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
