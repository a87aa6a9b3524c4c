"""Outputs and model directories are replaced whole or not at all: a failure part-way through a
write leaves the previous version intact, no temporary files, and an error naming the destination."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import atomic_files
from adapters.atomic_files import atomic_directory, atomic_write
from adapters.classifier import ngram
from adapters.classifier.loader import load_classifier
from adapters.classifier.ngram import NgramClassifier
from adapters.classifier.training import TrainingExample, fit_ngram_classifier

FULL = os.strerror(errno.ENOSPC)


def disk_full(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, FULL)


def write_part_then_fill_the_disk(path: Path) -> None:
    with atomic_write(path, encoding="utf-8") as handle:
        handle.write("half of the new")
        disk_full()


def write_whole(path: Path, text: str) -> None:
    with atomic_write(path, encoding="utf-8") as handle:
        handle.write(text)


def write_artifact(target: Path, *, fail: bool = False, owned: tuple[str, ...] = ()) -> None:
    with atomic_directory(target, last="metadata.json", owned=owned) as staging:
        (staging / "weights.bin").write_bytes(b"new weights")
        if fail:
            disk_full()
        (staging / "metadata.json").write_text('{"version": 2}')


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`, hidden ones included, with a file's bytes (None for a directory)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_write_that_fails_part_way_leaves_the_previous_file_and_names_it(tmp_path: Path) -> None:
    # Given an output file holding a good previous version
    output = tmp_path / "decisions.jsonl"
    output.write_text("previous\n")
    # When a new version fails after part of it is written, as on a full disk
    with pytest.raises(OSError, match=FULL) as failed:
        write_part_then_fill_the_disk(output)
    # Then the previous version is whole, nothing else is left beside it, and the error names the output
    assert output.read_text() == "previous\n"
    assert snapshot(tmp_path) == {"decisions.jsonl": b"previous\n"}
    assert failed.value.filename == str(output)


def test_a_failing_rename_leaves_the_previous_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an output file, and a file system that refuses the final rename
    output = tmp_path / "report.html"
    output.write_text("previous")

    def refuse(source: Any, target: Any) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(source), None, str(target))

    monkeypatch.setattr(atomic_files.os, "replace", refuse)
    # When a complete new version is written
    with pytest.raises(OSError, match=os.strerror(errno.EIO)) as failed:
        write_whole(output, "new")
    # Then the previous version stays, the temporary file is gone, and the error names the output, not it
    assert snapshot(tmp_path) == {"report.html": b"previous"}
    assert failed.value.filename == str(output)


def test_a_completed_write_replaces_the_file_and_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    # Given an output that its owner made readable to the group only
    output = tmp_path / "export.csv"
    output.write_text("old")
    output.chmod(0o640)
    # When it is written again
    write_whole(output, "new")
    # Then it holds the new content, with the mode it had, and nothing else is in the folder
    assert snapshot(tmp_path) == {"export.csv": b"new"}
    assert stat.S_IMODE(output.stat().st_mode) == 0o640


def test_a_new_file_gets_the_mode_the_umask_gives_not_a_private_one(tmp_path: Path, umask_022: None) -> None:
    # Given no output yet, under a umask that lets others read new files
    output = tmp_path / "sub" / "report.html"
    # When it is written
    with atomic_write(output, "wb") as handle:
        handle.write(b"<html>")
    # Then it is readable as any new file would be (not mkstemp's 0600), in the folder created for it
    assert output.read_bytes() == b"<html>"
    assert stat.S_IMODE(output.stat().st_mode) == 0o644


def test_writing_through_a_symlink_updates_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    # Given an output path that is a link to the real file
    real = tmp_path / "real.jsonl"
    real.write_text("old")
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    # When the link is written
    write_whole(link, "new")
    # Then the file it points at is updated, and it is still a link
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_a_named_pipe_is_written_to_not_replaced(tmp_path: Path) -> None:
    # Given a named pipe with a reader, as in `--output >(gzip > out.gz)`
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()), daemon=True)
    reader.start()
    # When it is written
    write_whole(pipe, "streamed\n")
    reader.join(timeout=30)
    # Then the reader gets the content, and the pipe is still a pipe
    assert received == ["streamed\n"]
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_a_new_model_directory_appears_whole(tmp_path: Path, umask_022: None) -> None:
    # Given no model directory yet
    target = tmp_path / "models" / "v1"
    # When an artifact is written
    with atomic_directory(target, last="metadata.json") as staging:
        (staging / "weights.bin").write_bytes(b"w")
        (staging / "metadata.json").write_text("{}")
    # Then it holds exactly the artifact, with a new directory's usual mode, and nothing else appears
    assert snapshot(tmp_path / "models") == {"v1": None, "v1/metadata.json": b"{}", "v1/weights.bin": b"w"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.fixture
def previous_model(tmp_path: Path) -> Path:
    """A model directory with a previous artifact and a file of the user's beside it."""
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"old weights")
    (target / "extra.npz").write_bytes(b"old member")
    (target / "metadata.json").write_text('{"version": 1}')
    (target / "NOTES.txt").write_text("the user's")
    return target


def test_a_failed_artifact_write_leaves_the_previous_model_untouched(previous_model: Path) -> None:
    # Given a model directory with a previous artifact
    before = snapshot(previous_model)
    # When writing the new artifact fails part-way
    with pytest.raises(OSError, match=FULL) as failed:
        write_artifact(previous_model, fail=True)
    # Then the directory is exactly as it was, and the error names it
    assert snapshot(previous_model) == before
    assert failed.value.filename == str(previous_model)


def test_a_completed_artifact_replaces_the_previous_one_and_keeps_other_files(previous_model: Path) -> None:
    # Given a model directory with a previous artifact that had an extra member
    # When a new artifact without that member is written
    write_artifact(previous_model, owned=("weights.bin", "extra.npz"))
    # Then it holds the new artifact, the stale member is gone, the user's file stays, nothing is left over
    assert snapshot(previous_model) == {
        "NOTES.txt": b"the user's",
        "metadata.json": b'{"version": 2}',
        "weights.bin": b"new weights",
    }


def test_a_swap_that_fails_part_way_is_rolled_back(previous_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a model directory with a previous artifact, and a file system that fails, once, the last
    # move in: the new metadata over the old
    before = snapshot(previous_model)
    real_rename = Path.rename
    faults = [OSError(errno.EIO, os.strerror(errno.EIO))]

    def failing_rename(self: Path, target: Any) -> Any:
        if Path(target) == previous_model / "metadata.json" and faults:
            raise faults.pop()
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    # When a new artifact is written and moved in
    with pytest.raises(OSError, match=os.strerror(errno.EIO)):
        write_artifact(previous_model, owned=("extra.npz",))
    # Then every entry already moved is put back: the previous artifact is whole, and nothing is left over
    assert snapshot(previous_model) == before


@pytest.mark.parametrize("moving", ["old weights out", "new weights in"])
def test_an_interrupt_just_after_a_move_is_rolled_back_too(
    previous_model: Path, moving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model directory with a previous artifact, and a Ctrl-C that lands the instant one
    # entry has been moved, before anything else runs
    before = snapshot(previous_model)
    real_rename = Path.rename
    interrupted: list[Path] = []

    def rename_then_interrupt(self: Path, target: Any) -> Any:
        moved = real_rename(self, target)
        arrived_in_backup = Path(target).parent.name.startswith(".previous.")
        if (
            Path(target).name == "weights.bin"
            and arrived_in_backup == (moving == "old weights out")
            and not interrupted
        ):
            interrupted.append(Path(target))
            raise KeyboardInterrupt
        return moved

    monkeypatch.setattr(Path, "rename", rename_then_interrupt)
    # When a new artifact is written and moved in
    with pytest.raises(KeyboardInterrupt):
        write_artifact(previous_model, owned=("extra.npz",))
    # Then that entry is put back too: the previous artifact is whole, and nothing is left over
    assert interrupted
    assert snapshot(previous_model) == before


def test_a_failed_ngram_save_leaves_the_previous_model_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a trained n-gram model saved with its static-vector member
    examples = [
        TrainingExample(text, label)
        for label, texts in {
            "refund": ["refund my charge", "money back please"],
            "signal": ["no signal", "bars gone"],
        }.items()
        for text in texts * 5
    ]
    model = fit_ngram_classifier(examples, seed=1)
    target = tmp_path / "model"
    model.save(target, model.metadata)
    before = snapshot(target)
    # When a retrain's save fails after the weights are written, while writing the static member

    monkeypatch.setattr(ngram, "_save_static", disk_full)
    retrained = fit_ngram_classifier(examples[::-1], seed=2)
    with pytest.raises(OSError, match=FULL) as failed:
        retrained.save(target, retrained.metadata)
    # Then the previous model is byte for byte what it was, still loads, and the error names the directory
    assert snapshot(target) == before
    assert load_classifier(target).classify("refund my charge").primary_category == "refund"
    assert failed.value.filename == str(target)


def a_small_ngram_model() -> NgramClassifier:
    examples = [
        TrainingExample(text, label)
        for label, texts in {"refund": ["refund my charge"], "signal": ["no signal"]}.items()
        for text in texts * 10
    ]
    return fit_ngram_classifier(examples, seed=1)


def test_an_ngram_model_saved_over_a_minilm_one_leaves_none_of_its_files(tmp_path: Path) -> None:
    # Given a folder holding an ensemble model's files, and a note of the user's
    target = tmp_path / "model"
    (target / "ngram").mkdir(parents=True)
    for name in ("metadata.json", "model.onnx", "model.fp32.onnx", "tokenizer.json", "ngram/model.npz", "notes.txt"):
        (target / name).write_text("old")
    model = a_small_ngram_model()
    # When an n-gram model is trained into it
    model.save(target, model.metadata)
    # Then only the n-gram model's files and the user's note are there, and it loads
    assert sorted(p.name for p in target.iterdir()) == ["metadata.json", "model.npz", "notes.txt", "static.npz"]
    assert load_classifier(target).classify("refund my charge").primary_category == "refund"


def test_a_model_trained_into_a_folder_that_held_none_keeps_files_with_a_models_names(tmp_path: Path) -> None:
    # Given a folder of the user's that holds no model, but files and a folder named as a MiniLM
    # model's are
    target = tmp_path / "shared"
    (target / "ngram").mkdir(parents=True)
    for name in ("ngram/paper.txt", "tokenizer.json", "model.onnx"):
        (target / name).write_text("the user's")
    model = a_small_ngram_model()
    # When an n-gram model is trained into it
    model.save(target, model.metadata)
    # Then every one of them is still there, beside the new model
    assert sorted(p.name for p in target.iterdir()) == [
        "metadata.json", "model.npz", "model.onnx", "ngram", "static.npz", "tokenizer.json"
    ]  # fmt: skip
    assert (target / "ngram" / "paper.txt").read_text() == "the user's"
