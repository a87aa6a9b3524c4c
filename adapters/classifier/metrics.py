"""Classifier evaluation metrics in numpy: no scikit-learn needed to evaluate a model."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np

from domain.models import CONFIDENCE_DECIMALS

AUTO_ROUTE_THRESHOLD = 0.70


@dataclass
class Evaluation:
    labels: list[str]
    y_true: np.ndarray  # index into labels, -1 when the true label is unknown to the model
    probabilities: np.ndarray  # [n, len(labels)]
    seconds: float
    threshold: float = AUTO_ROUTE_THRESHOLD
    # The true labels of the rows whose label the model does not know (y_true -1), in row order:
    # classes of their own in the per-label figures, as scikit-learn counts them.
    unknown_true_labels: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.y_true)

    # Cached: each is a pass over the [n, labels] probabilities, which with thousands of labels is
    # the slow part, and the report asks for them dozens of times.
    @cached_property
    def predicted(self) -> np.ndarray:
        return np.asarray(self.probabilities.argmax(axis=1))

    @cached_property
    def confidence(self) -> np.ndarray:
        """As the classifier reports it, so that a ticket counts as auto-routed exactly when the router
        would auto-route it (0.69996 is reported, and routed, as 0.70)."""
        return np.round(np.asarray(self.probabilities.max(axis=1)), CONFIDENCE_DECIMALS)

    @property
    def correct(self) -> np.ndarray:
        return np.asarray(self.predicted == self.y_true)

    def accuracy(self) -> float:
        return float(self.correct.mean()) if self.n else 0.0

    def top_k_accuracy(self, k: int = 2) -> float:
        if not self.n:
            return 0.0
        # In blocks of rows: sorting the whole [n, labels] matrix at once holds two more copies of it.
        hits = 0
        for start in range(0, self.n, 1024):
            top = np.argsort(-self.probabilities[start : start + 1024], axis=1)[:, :k]
            hits += int((top == self.y_true[start : start + 1024, None]).any(axis=1).sum())
        return hits / self.n

    def per_class(self) -> dict[str, dict[str, float]]:
        out = {}
        size = len(self.labels)
        known = self.y_true >= 0
        # Counted in one pass each, not one pass per label: a model can have thousands of labels.
        true_positives = np.bincount(self.y_true[known & self.correct], minlength=size)
        supports = np.bincount(self.y_true[known], minlength=size)
        predicted = np.bincount(self.predicted, minlength=size)
        for index, label in enumerate(self.labels):
            tp = int(true_positives[index])
            fp = int(predicted[index]) - tp
            fn = int(supports[index]) - tp
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "predicted": tp + fp}
        # Never predicted, so never right: F1 0, which macro-F1 must count like any other class.
        for label, support in Counter(self.unknown_true_labels).items():
            out.setdefault(label, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": support, "predicted": 0})
        return out

    def unknown_confusions(self) -> Counter[tuple[str, str]]:
        """(true label unknown to the model, label predicted instead) -> tickets."""
        predicted = self.predicted[self.y_true < 0]
        return Counter(zip(self.unknown_true_labels, (self.labels[i] for i in predicted), strict=True))

    def macro_f1(self) -> float:
        # A class that is predicted but never the answer counts too, at F1 0: leaving it out would
        # hide exactly the false positives (as scikit-learn and `classification_metrics` count it).
        seen = [m["f1"] for m in self.per_class().values() if m["support"] or m["predicted"]]
        return float(np.mean(seen)) if seen else 0.0

    def expected_calibration_error(self, bins: int = 15) -> float:
        if not self.n:
            return 0.0
        confidence, correct = self.confidence, self.correct
        edges = np.linspace(0.0, 1.0, bins + 1)
        ece = 0.0
        for low, high in itertools.pairwise(edges):
            mask = (confidence > low) & (confidence <= high)
            if mask.any():
                ece += mask.mean() * abs(float(correct[mask].mean()) - float(confidence[mask].mean()))
        return float(ece)

    def coverage_at(self, threshold: float) -> tuple[float, float | None]:
        """Share routed automatically at this confidence, and the accuracy of those (None when none is)."""
        mask = self.confidence >= threshold
        rate = float(mask.mean()) if self.n else 0.0
        accuracy = float(self.correct[mask].mean()) if mask.any() else None
        return rate, accuracy

    def coverage_curve(self, points: int = 21) -> list[dict[str, Any]]:
        """Coverage and accuracy on a grid of thresholds that includes the one in force, exactly."""
        grid = {round(i / (points - 1), CONFIDENCE_DECIMALS) for i in range(points)} | {self.threshold}
        return [
            {"threshold": threshold, "coverage": coverage, "accuracy": accuracy}
            for threshold in sorted(grid)
            for coverage, accuracy in [self.coverage_at(threshold)]
        ]

    def confusion_counts(self) -> dict[tuple[int, int], int]:
        """(true label index, predicted label index) -> tickets, for the pairs that occur: a dense
        matrix over thousands of labels would take gigabytes to hold mostly zeros."""
        known = self.y_true >= 0
        size = len(self.labels)
        pairs, counts = np.unique(self.y_true[known] * size + self.predicted[known], return_counts=True)
        return {(int(pair // size), int(pair % size)): int(count) for pair, count in zip(pairs, counts, strict=True)}

    def confusion(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """The confusion matrix over the labels at `indices` (all labels when None), in that order."""
        chosen = list(range(len(self.labels))) if indices is None else list(indices)
        position = {label: i for i, label in enumerate(chosen)}
        matrix = np.zeros((len(chosen), len(chosen)), dtype=np.int64)
        for (true, pred), count in self.confusion_counts().items():
            if true in position and pred in position:
                matrix[position[true], position[pred]] = count
        return matrix

    def summary(self) -> dict[str, Any]:
        auto_rate, auto_accuracy = self.coverage_at(self.threshold)
        return {
            "n": self.n,
            "accuracy": round(self.accuracy(), 4),
            "macro_f1": round(self.macro_f1(), 4),
            "top2_accuracy": round(self.top_k_accuracy(2), 4),
            "ece": round(self.expected_calibration_error(), 4),
            "auto_route_threshold": self.threshold,
            "auto_route_rate": round(auto_rate, 4),
            "auto_route_accuracy": round(auto_accuracy, 4) if auto_accuracy is not None else None,
            "tickets_per_second": round(self.n / self.seconds, 1) if self.seconds > 0 else None,
            "unknown_labels": int((self.y_true < 0).sum()),
        }


def classification_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1, top-2 accuracy and mean negative log-likelihood of [n, labels] probabilities."""
    if len(y) == 0:
        return {}
    y = np.asarray(y, dtype=np.int64)
    # The same definitions as `evaluate` reports; labels only need to be distinct here.
    evaluation = Evaluation(labels=[str(i) for i in range(probs.shape[1])], y_true=y, probabilities=probs, seconds=0.0)
    picked = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    return {
        "accuracy": round(evaluation.accuracy(), 5),
        "macro_f1": round(evaluation.macro_f1(), 5),
        "top2_accuracy": round(evaluation.top_k_accuracy(2), 5),
        "nll": round(float(-np.mean(np.log(picked))), 5),
        "n": len(y),
    }


class TunedWeight(NamedTuple):
    weight: float
    # "default" when validation could not tell the weights apart, so that reports don't claim a
    # weight was measured when it was only kept.
    source: Literal["validation", "default"]


def tune_mixing_weight(
    mixed: Callable[[float], np.ndarray],
    y: np.ndarray,
    grid: Sequence[float] | None = None,
    *,
    default: float | None = None,
) -> TunedWeight:
    """The mixing weight with the best validation accuracy, smoothed over neighbouring weights.

    `mixed(w)` gives the [n, labels] probabilities at weight w. Accuracy on a few thousand
    examples moves in steps of one example, so each weight is scored by the mean accuracy of
    itself and its grid neighbours; ties go to the lower log-loss. When every weight scores the
    same (a small validation set that every mix gets right), accuracy says nothing about the mix
    and `default`, if given, is kept: log-loss alone would pick the less smoothed member outright.
    """
    grid = list(grid) if grid is not None else [round(i * 0.05, 2) for i in range(21)]
    scores = [classification_metrics(mixed(w), y) for w in grid]
    accuracy = [m["accuracy"] for m in scores]
    if default is not None and max(accuracy) == min(accuracy):
        return TunedWeight(float(default), "default")
    best: tuple[float, float] | None = None
    best_weight = grid[-1]
    for i, weight in enumerate(grid):
        window = accuracy[max(0, i - 1) : i + 2]
        key = (round(sum(window) / len(window), 6), -scores[i]["nll"])
        if best is None or key > best:
            best, best_weight = key, weight
    return TunedWeight(float(best_weight), "validation")
