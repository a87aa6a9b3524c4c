"""Loading an n-gram model directory that is damaged or hand-edited: one clear error, at load."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.classifier.loader import load_classifier
from adapters.classifier.ngram import METADATA_FILE, STATIC_WEIGHTS_FILE, WEIGHTS_FILE
from adapters.classifier.training import TrainingExample, fit_ngram_classifier
from domain.errors import ClassifierUnavailable

PHRASES = {
    "lost_card": ["my card was stolen", "someone stole my card", "card stolen last night"],
    "refund": ["I want a refund", "refund the charge please", "give me a refund"],
    "network": ["no signal on my phone", "signal keeps dropping", "weak signal bars"],
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    examples = [TrainingExample(text, label) for label, texts in PHRASES.items() for text in texts for _ in range(4)]
    model = fit_ngram_classifier(examples, seed=1)
    directory = tmp_path_factory.mktemp("trained") / "model"
    model.save(directory, model.metadata)
    return directory


def _edit_metadata(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        metadata = json.loads((directory / METADATA_FILE).read_text())
        change(metadata)
        (directory / METADATA_FILE).write_text(json.dumps(metadata))

    return edit


def _edit_weights(change: Callable[[dict[str, np.ndarray]], object]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        with np.load(directory / WEIGHTS_FILE) as stored:
            arrays = {name: stored[name] for name in stored.files}
        change(arrays)
        np.savez_compressed(directory / WEIGHTS_FILE, **arrays)

    return edit


def _truncate(name: str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / name
        path.write_bytes(path.read_bytes()[:1000])

    return edit


def _write_metadata_bytes(content: bytes) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        (directory / METADATA_FILE).write_bytes(content)

    return edit


def _empty_features(arrays: dict[str, np.ndarray]) -> None:
    for name in ("feature_ids", "idf", "weights"):
        arrays[name] = arrays[name][:0]


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated weights": (_truncate(WEIGHTS_FILE), "model.npz is unreadable"),
    "truncated static member": (_truncate(STATIC_WEIGHTS_FILE), "static.npz is unreadable"),
    "metadata a JSON list": (_write_metadata_bytes(b"[]"), "is a JSON list, not an object"),
    "metadata not UTF-8": (_write_metadata_bytes(b'\xff\xfe{"backend": "ngram"}'), "is not UTF-8"),
    "no labels": (_edit_metadata(lambda m: m.pop("labels")), "labels must be a non-empty list"),
    "no bias": (_edit_weights(lambda a: a.pop("bias")), "model.npz lacks bias"),
    "unknown featurizer setting": (
        _edit_metadata(lambda m: m["featurizer"].update(stemming=True)),
        "unknown setting\\(s\\) stemming",
    ),
    "static_vectors not an object": (
        _edit_metadata(lambda m: m.update(static_vectors="yes")),
        "static_vectors is 'yes'",
    ),
    "no feature ids": (_edit_weights(_empty_features), "feature_ids must be a non-empty list"),
    "fewer labels than weight columns": (
        _edit_metadata(lambda m: m.update(labels=m["labels"][:2])),
        "2 labels in metadata.json but 3 in model.npz",
    ),
    "temperature 0": (_edit_metadata(lambda m: m.update(temperature=0)), "temperature must be above 0"),
    "temperature nan": (
        _edit_metadata(lambda m: m.update(temperature=float("nan"))),
        "temperature must be a finite number",
    ),
    "no hashed features": (
        _edit_metadata(lambda m: m["featurizer"].update(n_features=0)),
        "n_features must be a whole number of at least 1",
    ),
    "feature ids out of order": (
        _edit_weights(lambda a: a.update(feature_ids=a["feature_ids"][::-1].copy())),
        "feature_ids must be increasing",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_damaged_model_directory_is_refused_with_what_is_wrong(
    saved_model: Path, tmp_path: Path, corruption: str
) -> None:
    # Given a trained model directory damaged in one way
    directory = tmp_path / "damaged"
    shutil.copytree(saved_model, directory)
    damage, message = CORRUPTIONS[corruption]
    damage(directory)
    # When it is loaded as `evaluate` and `route` load it, then the one error names the directory
    # and what is wrong with it
    with pytest.raises(ClassifierUnavailable, match=message) as raised:
        load_classifier(directory)
    assert str(directory) in str(raised.value)
