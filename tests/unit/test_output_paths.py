"""The bundled files routing falls back on are kept apart from every output, like the user's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.classifier.ngram import DEFAULT_MODEL_DIR
from domain.taxonomy import DEFAULT_TAXONOMY_PATH
from handlers.commands.route import routing_inputs
from handlers.output_paths import OutputPathError, check_writable, model_files
from handlers.settings import LocalSettings


def test_without_options_routing_reads_the_bundled_taxonomy_and_model(tmp_path: Path) -> None:
    # Given settings that name no taxonomy and no model
    inputs = routing_inputs(LocalSettings(router_home=tmp_path))
    # Then the bundled ones are among the inputs an output may not overwrite
    assert inputs["--taxonomy"] == DEFAULT_TAXONOMY_PATH
    assert DEFAULT_MODEL_DIR / "metadata.json" in inputs.values()
    with pytest.raises(OutputPathError, match="same file as --taxonomy"):
        check_writable(DEFAULT_TAXONOMY_PATH.parent / ".." / "domain" / "taxonomy.toml", "--output", keep_apart=inputs)


def test_the_files_in_a_models_subfolders_are_its_files_too(tmp_path: Path) -> None:
    # Given an ensemble model, whose n-gram member lives in a subfolder
    model = tmp_path / "model"
    (model / "ngram").mkdir(parents=True)
    for name in ("metadata.json", "model.onnx", "ngram/metadata.json", "ngram/model.npz"):
        (model / name).write_text("x")
    # Then every file, the member's included, is kept apart
    assert sorted(model_files(model)) == [
        f"the model's {name} in {model}"
        for name in ("metadata.json", "model.onnx", "ngram/metadata.json", "ngram/model.npz")
    ]


@pytest.mark.parametrize(("path", "stream"), [("/dev/stdout", "stdout"), ("/dev/stderr", "stderr")])
def test_a_closed_standard_stream_is_refused_by_its_own_name(
    path: str, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a process whose stdout, or stderr, was closed (Python then has no stream for it)
    monkeypatch.setattr(f"sys.{stream}", None)
    # When / Then an output there is refused, naming the stream that is closed
    name = "standard output" if stream == "stdout" else "standard error"
    with pytest.raises(OutputPathError, match=f"cannot write --output {path}: {name} is closed"):
        check_writable(Path(path), "--output")
