"""The static MiniLM token vectors and the n-gram model's static-vector member."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from adapters.classifier import static_vectors
from adapters.classifier.ngram import NgramClassifier
from adapters.classifier.static_vectors import (
    DEFAULT_TABLE,
    StaticEmbedder,
    basic_tokens,
    load_table,
    mix_log_probabilities,
)
from adapters.classifier.training import (
    TrainingExample,
    fit_ngram_classifier,
    tune_static_weight,
    with_static_weight,
)
from domain.errors import ClassifierUnavailable

# Each label's training phrases avoid the words its test phrases use: only knowing which words
# mean alike (the static vectors) can carry the label over.
TRAIN = {
    "lost_card": ["my card was stolen", "someone stole my card", "card stolen last night", "thief took my card"],
    "refund": ["I want a refund", "refund the charge please", "give me a refund", "refund my payment"],
    "network": ["no signal on my phone", "signal keeps dropping", "zero signal at home", "weak signal bars"],
}
UNSEEN_WORDING = [
    ("wallet robbed", "lost_card"),
    ("a thief robbed my wallet", "lost_card"),
    ("burglars took everything", "lost_card"),
    ("reimburse me", "refund"),
    ("reception is terrible", "network"),
    ("no reception indoors", "network"),
]


def _examples(repeat: int = 5) -> list[TrainingExample]:
    return [TrainingExample(text, label) for label, texts in TRAIN.items() for text in texts for _ in range(repeat)]


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return StaticEmbedder(load_table())


def test_wordpiece_matches_the_reference_bert_tokenizer(embedder: StaticEmbedder) -> None:
    # Given Hugging Face's BERT tokenizer built over the same vocabulary
    tokenizers = pytest.importorskip("tokenizers")
    vocabulary = {token: i for i, token in enumerate([*embedder.table.vocabulary, "[UNK]"])}
    reference = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocabulary, unk_token="[UNK]"))
    reference.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    reference.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    texts = [
        "My SIM card doesn't work after the upgrade!!",
        "Überweisung fehlgeschlagen, Fehlercode E-4021",
        "reimbursement for the overcharge on invoice #88123",
        "wifi router keeps rebooting... help",
        "xqzzyv blorptastic",
    ]
    for text in texts:
        # Then the pure-Python tokenisation agrees, except that unknown words add nothing here
        expected = [t for t in reference.encode(text).tokens if t != "[UNK]"]
        assert [embedder.table.vocabulary[row] for row in embedder.token_rows(text)] == expected


def test_basic_tokens_fold_case_and_accents_and_split_punctuation() -> None:
    assert basic_tokens("Café DOESN'T work!") == ["cafe", "doesn", "'", "t", "work", "!"]


def test_similar_words_land_near_each_other(embedder: StaticEmbedder) -> None:
    stolen, robbed, invoice = (embedder.embed(w) for w in ("stolen", "robbed", "invoice"))
    assert float(stolen @ robbed) > float(stolen @ invoice) + 0.1
    assert np.isclose(np.linalg.norm(embedder.embed("my card was stolen")), 1.0, atol=1e-3)
    assert not embedder.embed("").any()


def test_the_static_member_carries_labels_over_to_unseen_wording() -> None:
    # Given the same examples, trained with and without the static-vector member
    plain = fit_ngram_classifier(_examples(), static_vectors=None)
    with_static = fit_ngram_classifier(_examples(), static_weight=0.5)

    # When both classify texts worded unlike anything they were trained on
    def correct(classifier: NgramClassifier) -> int:
        return sum(classifier.classify(text).primary_category == label for text, label in UNSEEN_WORDING)

    # Then the static member gets them all right, where n-grams alone miss some
    assert correct(with_static) == len(UNSEEN_WORDING)
    assert correct(plain) < len(UNSEEN_WORDING)


def test_a_model_with_a_static_member_round_trips(tmp_path: Path) -> None:
    model = fit_ngram_classifier(_examples(), seed=3)
    model.save(tmp_path / "m", model.metadata)

    loaded = NgramClassifier.load(tmp_path / "m")

    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["format"] == 3
    assert metadata["static_vectors"]["tuned_rows"] > 0
    assert metadata["static_vectors"]["table"] == DEFAULT_TABLE
    assert metadata["static_vectors"]["table_sha256"] == load_table().sha256
    assert loaded.static is not None
    for text, _ in UNSEEN_WORDING:
        assert np.allclose(loaded.probabilities(text), model.probabilities(text), atol=2e-3)
        assert loaded.classify(text).primary_category == model.classify(text).primary_category


def test_training_tunes_only_the_vectors_of_tokens_it_saw() -> None:
    # Given a model trained with the static member
    model = fit_ngram_classifier(_examples(), seed=3)
    assert model.static is not None and model.static.tuned_rows is not None
    base, tuned = load_table(), model.static.embedder.table
    seen = {row for e in _examples() for row in model.static.embedder.token_rows(e.text)}
    # Then exactly the seen tokens' rows moved, and the shared table itself is untouched
    assert set(model.static.tuned_rows.tolist()) == seen
    moved = np.flatnonzero(np.abs(tuned.dense() - base.dense()).max(axis=1) > 0)
    assert set(moved.tolist()) <= seen and len(moved) > 0.9 * len(seen)
    assert tuned.sha256 == base.sha256 and base.tuned_index is None
    # And the tuned rows are an overlay on the one shared copy of the shipped codes
    assert tuned.codes is base.codes
    assert tuned.tuned_vectors is not None and tuned.tuned_vectors.shape == (len(seen), base.dims)


def test_a_format_2_model_with_a_frozen_table_still_loads(tmp_path: Path) -> None:
    # Given a model whose member reads the shipped table as it is (written by earlier versions)
    model = fit_ngram_classifier(_examples(), seed=3)
    assert model.static is not None
    model.static = dataclasses.replace(model.static, embedder=StaticEmbedder(load_table()), tuned_rows=None)
    model.save(tmp_path / "m", model.metadata)
    # When it is loaded, then it is format 2 and predicts as it did in memory
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["format"] == 2
    loaded = NgramClassifier.load(tmp_path / "m")
    assert loaded.static is not None and loaded.static.tuned_rows is None
    for text, _ in UNSEEN_WORDING:
        assert np.allclose(loaded.probabilities(text), model.probabilities(text), atol=2e-3)


def test_a_text_vector_sums_its_token_vectors_with_tuned_rows_overlaid() -> None:
    # Given the shipped table with one token's vector replaced, as a trained model carries it
    base = load_table()
    stolen = base.vocabulary.index("stolen")
    replacement = np.zeros((1, base.dims), np.float32)
    replacement[0, 0] = 5.0
    tuned = static_vectors.with_tuned_rows(base, np.array([stolen]), replacement)
    card = base.vocabulary.index("card")
    shipped_card = base.codes[card].astype(np.float32) * base.scale[card]

    # When a text with that token is embedded, twice (the second time from the per-word cache)
    embedder = StaticEmbedder(tuned)
    first, second = embedder.embed("Stolen card"), embedder.embed("stolen CARD")

    # Then the vector is the normalised sum of the tuned row and the shipped one
    expected = replacement[0] + shipped_card
    assert np.allclose(first, expected / np.linalg.norm(expected), atol=1e-6)
    assert np.array_equal(first, second)
    # And the shipped table still reads the original row for that token
    assert not np.allclose(base.rows(np.array([stolen]))[0], replacement[0])
    assert np.allclose(StaticEmbedder(base).embed("stolen card"), _unit(base, [stolen, card]), atol=1e-6)


def _unit(table: static_vectors.StaticTable, rows: list[int]) -> np.ndarray:
    summed = table.rows(np.array(rows)).sum(axis=0)
    return np.asarray(summed / np.linalg.norm(summed))


def test_tuned_rows_outside_the_table_are_refused() -> None:
    table = load_table()
    with pytest.raises(ClassifierUnavailable, match="outside table"):
        static_vectors.with_tuned_rows(table, np.array([len(table.vocabulary)]), np.zeros((1, table.dims), np.float32))
    with pytest.raises(ClassifierUnavailable, match="do not fit"):
        static_vectors.with_tuned_rows(table, np.array([0]), np.zeros((1, table.dims + 1), np.float32))


def test_a_static_member_file_missing_an_array_is_a_clear_error(tmp_path: Path) -> None:
    # Given a saved model whose static.npz lost its tuned vectors (a damaged or hand-edited file)
    model = fit_ngram_classifier(_examples(), seed=3)
    model.save(tmp_path / "m", model.metadata)
    member_file = tmp_path / "m" / "static.npz"
    with np.load(member_file) as arrays:
        kept = {name: arrays[name] for name in arrays.files if name != "tuned_vectors"}
    np.savez_compressed(member_file, **kept)
    # When it is loaded, then the error names the missing array instead of a bare KeyError
    with pytest.raises(ClassifierUnavailable, match="lacks tuned_vectors"):
        NgramClassifier.load(tmp_path / "m")


def test_a_model_without_static_member_keeps_format_1(tmp_path: Path) -> None:
    model = fit_ngram_classifier(_examples(), static_vectors=None)
    model.save(tmp_path / "m", model.metadata)
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["format"] == 1
    assert metadata["static_vectors"] is None
    assert NgramClassifier.load(tmp_path / "m").static is None


def test_a_model_trained_on_another_table_version_is_refused(tmp_path: Path) -> None:
    model = fit_ngram_classifier(_examples())
    model.save(tmp_path / "m", model.metadata)
    metadata_file = tmp_path / "m" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["static_vectors"]["table_sha256"] = "0" * 64
    metadata_file.write_text(json.dumps(metadata))

    with pytest.raises(ClassifierUnavailable, match="another version of static vector table"):
        NgramClassifier.load(tmp_path / "m")


def test_a_missing_table_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static_vectors, "TABLE_DIR", tmp_path)
    with pytest.raises(ClassifierUnavailable, match="is not installed"):
        static_vectors._read_table.__wrapped__("minilm-l6-v2")
    with pytest.raises(ClassifierUnavailable, match="invalid static vector table name"):
        static_vectors._read_table.__wrapped__("../../etc/passwd")


def test_a_table_copy_loads_to_the_same_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(static_vectors.table_path(DEFAULT_TABLE), tmp_path / f"{DEFAULT_TABLE}.npz")
    monkeypatch.setattr(static_vectors, "TABLE_DIR", tmp_path)
    assert static_vectors._read_table.__wrapped__(DEFAULT_TABLE).sha256 == load_table().sha256


def test_two_labels_train_a_working_static_member() -> None:
    examples = [e for e in _examples() if e.label in {"refund", "network"}]
    model = fit_ngram_classifier(examples)
    assert model.static is not None
    assert model.classify("please reimburse me").primary_category == "refund"
    assert model.classify("mobile reception is terrible").primary_category == "network"
    assert np.isclose(model.probabilities("anything").sum(), 1.0)


def test_mixing_is_log_linear_and_normalised() -> None:
    ngram = np.log(np.array([[0.7, 0.2, 0.1]]))
    static = np.log(np.array([[0.1, 0.8, 0.1]]))
    assert np.allclose(mix_log_probabilities(ngram, static, 0.0), np.exp(ngram))
    assert np.allclose(mix_log_probabilities(ngram, static, 1.0), np.exp(static))
    halfway = mix_log_probabilities(ngram, static, 0.5)
    assert np.isclose(halfway.sum(), 1.0)
    assert halfway.argmax() == 1  # sqrt(0.2 * 0.8) > sqrt(0.7 * 0.1)


def test_the_mixing_weight_is_tuned_on_held_out_examples() -> None:
    model = fit_ngram_classifier(_examples())
    held_out = [TrainingExample(text, label) for text, label in UNSEEN_WORDING]

    weight, source = tune_static_weight(model, held_out)

    # Held-out texts that only the static member gets right pull the weight up.
    assert weight >= 0.5 and source == "validation"
    assert with_static_weight(model, weight).static is not None
    assert model.static is not None and model.static.weight == weight


def test_the_bundled_model_was_built_from_the_shipped_examples_and_table() -> None:
    from adapters.classifier.default_model_builder import load_training_examples
    from adapters.classifier.ngram import DEFAULT_MODEL_DIR
    from adapters.classifier.training import dataset_fingerprint

    # `make model` rebuilds it; a stale artifact would route with yesterday's examples.
    metadata = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    assert metadata["training_data_sha256"] == dataset_fingerprint(load_training_examples())
    assert metadata["static_vectors"]["table_sha256"] == load_table().sha256
    assert NgramClassifier.load().static is not None
