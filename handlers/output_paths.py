"""Checking, before any slow work, that the paths a command will write can be written.

A late failure wastes minutes of training, or strands decisions already stored with no output
and no sync; so every command checks its outputs first, here, in one way.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from adapters.atomic_files import closed_standard_stream, is_standard_output, is_stream
from domain.errors import TicketRouterError


class OutputPathError(TicketRouterError):
    """A path the command is to write cannot be written, or is a file it reads."""


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: through symlinks, `..` and hard links too."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def check_writable(
    path: Path,
    option: str,
    *,
    directory: bool = False,
    replaced: bool = False,
    keep_apart: Mapping[str, Path | None] | None = None,
) -> None:
    """Fail now if `path` (a file, or with `directory` a folder to write files in) cannot be
    written, or is one of the files in `keep_apart` (the input, the decision store...), which
    writing it would destroy. `replaced`: the file is written whole beside its old version and
    renamed over it (atomic_write), which takes a folder where new files can be made.

    Probes by doing, since permission bits do not tell (root ignores them, /proc refuses everyone).
    An existing file is opened for appending, so nothing it holds is lost; whatever the probe
    creates is removed again, so a run that fails later leaves nothing behind.
    """
    for name, other in (keep_apart or {}).items():
        if other is not None and same_file(path, other):
            raise OutputPathError(f"{option} {path} is the same file as {name}; refusing to write to it")
    if not directory and path.is_dir():
        raise OutputPathError(f"cannot write {option} {path}: it is a directory")
    closed = None if directory else closed_standard_stream(path)
    if closed is not None:
        raise OutputPathError(f"cannot write {option} {path}: {closed} is closed")
    if not directory and (is_stream(path) or (path.exists() and not path.is_file())):
        # A stream (/dev/stdout), a named pipe or a device: written in place, destroying nothing,
        # and a probe would do harm: opening a pipe blocks until a reader comes, and closing it
        # again ends that reader.
        return
    if directory and path.exists() and not path.is_dir():
        raise OutputPathError(f"cannot write {option} {path}: it is a file, not a directory")
    folder = path if directory else path.parent
    created: list[Path] = []
    try:
        missing = []
        ancestor = folder
        while not ancestor.exists() and ancestor != ancestor.parent:
            missing.append(ancestor)
            ancestor = ancestor.parent
        for step in reversed(missing):
            step.mkdir()
            created.append(step)
        if directory:
            with tempfile.TemporaryFile(dir=folder):
                pass
        else:
            existed = path.exists()
            with path.open("ab"):
                pass
            if not existed:
                path.unlink()
            elif replaced:
                # Written whole beside it, then renamed over it: the folder must take a new file too.
                with tempfile.TemporaryFile(dir=folder):
                    pass
    except (FileExistsError, NotADirectoryError) as exc:
        raise OutputPathError(f"cannot write {option} {path}: a parent of it is a file, not a directory") from exc
    except OSError as exc:
        raise OutputPathError(f"cannot write {option} {path}: {exc.strerror or exc}") from exc
    finally:
        for step in reversed(created):
            with contextlib.suppress(OSError):
                step.rmdir()


def model_files(model_dir: Path | None) -> dict[str, Path]:
    """The files of a trained model (the bundled one without `model_dir`), named for `keep_apart`:
    an output written over one of them would break the model for every later run."""
    if model_dir is None:
        from adapters.classifier.ngram import DEFAULT_MODEL_DIR

        model_dir = DEFAULT_MODEL_DIR
    if not model_dir.is_dir():
        return {}
    return {
        f"the model's {file.relative_to(model_dir)} in {model_dir}": file
        for file in sorted(model_dir.rglob("*"))
        if file.is_file()
    }


def message_stream(output: Path | None) -> TextIO:
    """Where a command says what it did: stdout, or stderr when its output itself goes to stdout,
    or nowhere when that is closed (print() to a closed stderr would fall back on stdout, into the
    output)."""
    if not is_standard_output(output):
        return sys.stdout
    return sys.stderr if sys.stderr is not None else io.StringIO()
