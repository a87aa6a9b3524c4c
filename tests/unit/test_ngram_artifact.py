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
        "featurizer.stemming is not a known setting",
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
        "featurizer.n_features: Input should be greater than or equal to 1, not 0",
    ),
    # Hand edits that used to load, then overflowed, hung or meant something else at the first ticket
    "more hashed features than a 64-bit id holds": (
        _edit_metadata(lambda m: m["featurizer"].update(n_features=2**64)),
        "featurizer.n_features: Input should be less than or equal to 4294967296",
    ),
    "character n-grams a billion long": (
        _edit_metadata(lambda m: m["featurizer"].update(char_max=10**9)),
        "featurizer.char_max: Input should be less than or equal to 16",
    ),
    "character n-grams from 4 to 3": (
        _edit_metadata(lambda m: m["featurizer"].update(char_min=4, char_max=3)),
        "featurizer: char_max 3 is below char_min 4",
    ),
    "a count written as a bool": (
        _edit_metadata(lambda m: m["featurizer"].update(char_min=True)),
        "featurizer.char_min: Input should be a valid integer, not True",
    ),
    "a switch written as a number": (
        _edit_metadata(lambda m: m["featurizer"].update(word_bigrams=1)),
        "featurizer.word_bigrams: Input should be a valid boolean, not 1",
    ),
    "format true": (_edit_metadata(lambda m: m.update(format=True)), "of format True, not an n-gram model"),
    "format 1.0": (_edit_metadata(lambda m: m.update(format=1.0)), "of format 1.0, not an n-gram model"),
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
