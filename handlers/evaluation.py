"""Evaluating a classifier on labelled texts: shared by `train`, `evaluate` and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from adapters.classifier.metrics import AUTO_ROUTE_THRESHOLD, Evaluation


def auto_route_threshold(given: float | None = None) -> float:
    """The confidence below which routing flags a ticket for review, so that the auto-route figures
    are the deployment's own: `given` (--threshold), else the taxonomy's (ROUTER_TAXONOMY)."""
    if given is not None:
        return float(given)
    from domain.taxonomy import load_taxonomy
    from handlers.settings import LocalSettings, load_settings

    return load_taxonomy(load_settings(LocalSettings).router_taxonomy).manual_review_threshold


def evaluate_classifier(
    classifier: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    threshold: float = AUTO_ROUTE_THRESHOLD,
) -> Evaluation:
    """Probabilities for every text (batched when the backend can), timed, against the labels."""
    started = time.perf_counter()
    if hasattr(classifier, "probabilities_batch"):
        probabilities = np.asarray(classifier.probabilities_batch(list(texts)))
    else:
        probabilities = np.vstack([classifier.probabilities(t) for t in texts]) if texts else np.zeros((0, 1))
    seconds = time.perf_counter() - started
    index = {label: i for i, label in enumerate(classifier.labels)}
    y_true = np.array([index.get(label, -1) for label in labels], dtype=np.int64)
    return Evaluation(
        labels=list(classifier.labels),
        y_true=y_true,
        probabilities=probabilities,
        seconds=seconds,
        threshold=threshold,
        unknown_true_labels=tuple(label for label in labels if label not in index),
    )
