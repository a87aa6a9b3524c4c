"""Pick the classifier backend an artifact was trained with."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.classifier.ngram import DEFAULT_MODEL_DIR, METADATA_FILE, NgramClassifier
from domain.errors import ClassifierUnavailable
from domain.ports import IssueClassifier


def load_classifier(model_dir: str | Path | None = None) -> IssueClassifier:
    directory = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
    try:
        backend = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8")).get("backend")
    except FileNotFoundError as exc:
        raise ClassifierUnavailable(f"no classifier model in {directory} ({METADATA_FILE} is missing)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ClassifierUnavailable(f"classifier metadata in {directory} is unreadable: {exc}") from exc
    if backend == "ngram":
        return NgramClassifier.load(directory)
    if backend in ("minilm", "ensemble"):
        # Imported here so that n-gram deployments never import onnxruntime or tokenizers.
        from adapters.classifier.minilm import MiniLMClassifier

        return MiniLMClassifier.load(directory)
    raise ClassifierUnavailable(f"{directory}: unknown classifier backend {backend!r}")
