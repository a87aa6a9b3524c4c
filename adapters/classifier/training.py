"""Training of the n-gram classifier (needs the `train` extra: scikit-learn and scipy).

Only this module imports scikit-learn; the artifact it writes is read by numpy alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from adapters.classifier.metrics import tune_mixing_weight
from adapters.classifier.ngram import FeaturizerConfig, NgramClassifier, feature_hashes, term_frequencies
from adapters.classifier.static_vectors import (
    DEFAULT_TABLE,
    StaticEmbedder,
    StaticMember,
    load_table,
    log_softmax,
    mix_log_probabilities,
)

# The static-vector member. Chosen on stratified 85/15 splits of banking77 train (three seeds,
# bench/classifier.py): the mix beat the n-gram model alone at every weight from 0.2 to 0.5.
DEFAULT_STATIC_WEIGHT = 0.3
STATIC_HIDDEN_UNITS = 1024
STATIC_L2 = 1e-2
# Unit-length inputs are small per dimension; scaling them lets Adam's default step size work.
STATIC_INPUT_SCALE = 3.0
STATIC_MAX_EPOCHS = 300


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
    static_vectors: str | None = DEFAULT_TABLE,
    static_weight: float = DEFAULT_STATIC_WEIGHT,
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
) -> NgramClassifier:
    """Fit multinomial logistic regression on tf-idf weighted hashed n-grams, and (unless
    `static_vectors` is None) a static-vector member mixed in with `static_weight`."""
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

    hyper: dict[str, Any] = {
        "regularisation_c": regularisation_c,
        "min_df": min_df,
        "max_iter": max_iter,
        **config.to_dict(),
    }
    static = None
    if static_vectors is not None:
        static = fit_static_member(texts, y, len(labels), table=static_vectors, weight=static_weight, seed=seed)
        hyper["static"] = {
            "table": static_vectors,
            "hidden_units": STATIC_HIDDEN_UNITS,
            "l2": STATIC_L2,
            "input_scale": STATIC_INPUT_SCALE,
            "max_epochs": STATIC_MAX_EPOCHS,
            "seed": seed,
        }
    return NgramClassifier(
        labels=labels,
        config=config,
        feature_ids=kept,
        idf=idf,
        weights=coef.T.copy(),
        bias=intercept,
        static=static,
        metadata={
            **(metadata or {}),
            "hyperparameters": hyper,
            "training_data_sha256": dataset_fingerprint(examples),
            "n_train": n_docs,
            "label_counts": dict(Counter(e.label for e in examples)),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def fit_static_member(
    texts: Sequence[str],
    y: np.ndarray,
    n_labels: int,
    *,
    table: str = DEFAULT_TABLE,
    weight: float = DEFAULT_STATIC_WEIGHT,
    seed: int = 0,
) -> StaticMember:
    """A ReLU network with one hidden layer over the texts' static vectors (scikit-learn's MLP)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    embedder = StaticEmbedder(load_table(table))
    features = embedder.embed_many(list(texts)) * STATIC_INPUT_SCALE
    network = MLPClassifier(
        hidden_layer_sizes=(STATIC_HIDDEN_UNITS,),
        alpha=STATIC_L2,
        max_iter=STATIC_MAX_EPOCHS,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # Small training sets stop on the epoch cap before the loss settles; the model is still usable.
        warnings.simplefilter("ignore", ConvergenceWarning)
        network.fit(features, y)
    hidden_weights, output_weights = (np.asarray(w, dtype=np.float32) for w in network.coefs_)
    hidden_bias, output_bias = (np.asarray(b, dtype=np.float32) for b in network.intercepts_)
    # Columns follow network.classes_, which holds only the label indices seen in y.
    full_weights = np.zeros((hidden_weights.shape[1], n_labels), dtype=np.float32)
    full_bias = np.full(n_labels, -1e4, dtype=np.float32)
    classes = np.asarray(network.classes_, dtype=np.int64)
    if output_weights.shape[1] == 1:  # two classes: one logistic unit, the first class at logit 0
        full_weights[:, classes[1]] = output_weights[:, 0]
        full_bias[classes[0]], full_bias[classes[1]] = 0.0, output_bias[0]
    else:
        full_weights[:, classes] = output_weights
        full_bias[classes] = output_bias
    return StaticMember(
        embedder=embedder,
        hidden_weights=hidden_weights,
        hidden_bias=hidden_bias,
        output_weights=full_weights,
        output_bias=full_bias,
        input_scale=STATIC_INPUT_SCALE,
        weight=weight,
    )


def tune_static_weight(classifier: NgramClassifier, examples: Sequence[TrainingExample]) -> float:
    """The static member's mixing weight with the best accuracy on held-out `examples`."""
    if classifier.static is None or not examples:
        return classifier.static.weight if classifier.static else 0.0
    index = {label: i for i, label in enumerate(classifier.labels)}
    known = [e for e in examples if e.label in index]
    y = np.array([index[e.label] for e in known], dtype=np.int64)
    ngram_log_p = np.log(np.clip(np.vstack([classifier.ngram_probabilities(e.text) for e in known]), 1e-12, 1.0))
    static_log_p = log_softmax(classifier.static.logits_many([e.text for e in known]))
    return tune_mixing_weight(lambda w: mix_log_probabilities(ngram_log_p, static_log_p, w), y)


def with_static_weight(classifier: NgramClassifier, weight: float) -> NgramClassifier:
    if classifier.static is not None:
        classifier.static = dataclasses.replace(classifier.static, weight=weight)
    return classifier
