"""Pick the classifier backend an artifact was trained with."""

from __future__ import annotations

from pathlib import Path

from adapters.classifier.ngram import DEFAULT_MODEL_DIR, NgramClassifier, read_metadata
from domain.errors import ClassifierUnavailable
from domain.ports import IssueClassifier


def load_classifier(model_dir: str | Path | None = None) -> IssueClassifier:
    directory = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
    backend = read_metadata(directory).get("backend")
    if backend == "ngram":
        return NgramClassifier.load(directory)
    if backend in ("minilm", "ensemble"):
        # Imported here so that n-gram deployments never import onnxruntime or tokenizers.
        from adapters.classifier.minilm import MiniLMClassifier

        return MiniLMClassifier.load(directory)
    raise ClassifierUnavailable(f"{directory}: unknown classifier backend {backend!r}")
