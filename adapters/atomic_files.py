"""Writing an output file or a model directory all at once, or not at all.

A report, an export or a model is written beside its destination and moved over it only once
complete and on disk, so a full disk, an exception or a crash mid-write leaves the previous
version whole. An OSError that names no file (a write() or flush() on a full disk) is given the
destination's path, so that the user is told which output failed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Any, TextIO


@contextlib.contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open `path` for writing ("w" or "wb"); it is replaced only when the block ends without error.

    A new file gets the mode open() would give it, a replaced one keeps its own.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', not {mode!r}")
    stream = standard_stream(path)
    if stream is not None:
        # Through the process's own stdout (or stderr), not a second opening of the same file: that
        # would have a file position of its own, and what else goes there would overwrite the
        # output or be overwritten by it.
        stream.flush()
        with _naming(path, None):
            yield stream.buffer if "b" in mode else stream
            stream.flush()
        return
    closed = closed_standard_stream(path)
    if closed is not None:
        # Its descriptor may now be some other file this process opened (the decision store).
        raise OSError(errno.EBADF, f"{closed} is closed", str(path))
    if is_stream(path):
        # Another open stream (/dev/fd/3, /dev/stderr): a pipe, a terminal, or a file the caller
        # appends to. Appended to, never replaced or truncated: either would lose what it held.
        with _naming(path, None), open(path, mode.replace("w", "a"), encoding=encoding, newline=newline) as handle:
            yield handle
        return
    # Through a symlink to its target, as open() would: replacing the link would cut it.
    destination = Path(os.path.realpath(path))
    try:
        existing: os.stat_result | None = destination.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        # A named pipe or a device: nothing there to protect, and a device must never be replaced.
        with _naming(path, None), open(destination, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = _temporary(destination.parent, destination.name)
    with _naming(path, temp):
        # os.open applies the umask to 0o666, so a new file gets the same mode plain open() would
        # give it (mkstemp's 0600 would hide a shared report from its readers).
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with open(fd, mode, encoding=encoding, newline=newline) as handle:
                if existing is not None:
                    os.chmod(handle.fileno(), stat.S_IMODE(existing.st_mode))
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, destination)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    _sync_directory(destination.parent)


_STANDARD_STREAM_PATHS = {
    1: ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/proc/thread-self/fd/1"),
    2: ("/dev/stderr", "/dev/fd/2", "/proc/self/fd/2", "/proc/thread-self/fd/2"),
}


def standard_stream(path: str | Path | None) -> TextIO | None:
    """sys.stdout or sys.stderr when `path` is the very file (terminal, pipe, redirect target) one of
    them writes to, by whatever name (`-`, /dev/stdout, a symlink to it, the file `>` points at)."""
    if path is None:
        return None
    try:
        target = os.stat(path)
    except (OSError, ValueError):
        return None
    named = os.path.abspath(path) in {name for names in _STANDARD_STREAM_PATHS.values() for name in names}
    if stat.S_ISCHR(target.st_mode) and not named:
        # /dev/null, a terminal: a device is the same "file" for every writer, not stdout's own.
        return None
    for stream, descriptor in ((sys.stdout, 1), (sys.stderr, 2)):
        if stream is None:
            continue
        try:
            if os.path.samestat(target, os.fstat(descriptor)):
                return stream
        except OSError:
            continue
    return None


def is_standard_output(path: str | Path | None) -> bool:
    """Whether `path` is this process's standard output (how `-` reaches a command)."""
    return sys.stdout is not None and standard_stream(path) is sys.stdout


def closed_standard_stream(path: str | Path) -> str | None:
    """The name of the closed standard stream `path` names ("standard output"), or None."""
    absolute = os.path.abspath(path)
    for descriptor, name in ((1, "standard output"), (2, "standard error")):
        if absolute in _STANDARD_STREAM_PATHS[descriptor] and _closed(descriptor):
            return name
    return None


def _closed(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return True
    # Reopened since as some other file (the decision store, say), while its stream was closed.
    return (sys.stdout if descriptor == 1 else sys.stderr) is None


def is_stream(path: str | Path) -> bool:
    """Whether `path` names an already open stream (/dev/stdout, /dev/fd/3, /proc/self/fd/1)
    rather than a file of its own: what it resolves to is not ours to replace."""
    return os.path.abspath(path).startswith(("/dev/", "/proc/"))


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, last: str, owned: Collection[str] = ()) -> Iterator[Path]:
    """Yield an empty directory to write an artifact in; when the block ends without error, its
    entries take the place of their namesakes in `path`, `last` (the file that makes the artifact
    readable, such as metadata.json) last of all.

    A new `path` appears whole, by one rename. An existing one is updated entry by entry, keeping
    whatever else it holds (it may be a folder of the user's, or a mount point that cannot be
    renamed): `last` leaves first, so that a crash part-way leaves an artifact that reads as
    missing, never old metadata over new weights; any error rolls every entry back. `owned` names
    entries of an older artifact to remove when the new one has none of that name.
    """
    destination = Path(os.path.realpath(path))
    replacing = destination.exists()
    # Inside an existing directory, so that each entry moves within one file system and the
    # permission needed is the one `check_writable` probed.
    staging = _temporary(destination, "incoming") if replacing else _temporary(destination.parent, destination.name)
    with _naming(path, staging):
        if not replacing:
            destination.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()  # umask applied, as for any new directory
        try:
            yield staging
            _sync_tree(staging)
            if replacing:
                _swap_entries(staging, destination, last, owned)
            else:
                staging.rename(destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _sync_directory(destination.parent)


def _swap_entries(staging: Path, destination: Path, last: str, owned: Collection[str]) -> None:
    incoming = sorted(entry.name for entry in staging.iterdir() if entry.name != last)
    if (staging / last).exists():
        incoming.append(last)
    # `owned` names are an earlier artifact's, and only where one was (its `last` is there): in a
    # folder that held none, a file or folder of that name is the user's, and stays.
    earlier = owned if os.path.lexists(destination / last) else ()
    leaving = [name for name in (last, *incoming, *earlier) if os.path.lexists(destination / name)]
    backup = _temporary(destination, "previous")
    backup.mkdir()
    # Each move is noted before it is made, and undone only where it was: an interrupt (Ctrl-C)
    # landing between a rename and its note would otherwise strand that entry in the backup.
    moves = [(destination / name, backup / name) for name in dict.fromkeys(leaving)]
    moves += [(staging / name, destination / name) for name in incoming]
    started: list[tuple[Path, Path]] = []
    try:
        for source, target in moves:
            started.append((source, target))
            source.rename(target)
    except BaseException:
        for source, target in reversed(started):
            if os.path.lexists(target) and not os.path.lexists(source):
                target.rename(source)
        # Only once empty: should a move back fail, what it still holds is the previous artifact.
        with contextlib.suppress(OSError):
            backup.rmdir()
        raise
    shutil.rmtree(backup, ignore_errors=True)
    _sync_directory(destination)


def _temporary(folder: Path, stem: str) -> Path:
    # Hidden, and short enough to stay within a file name's 255 bytes.
    return folder / f".{stem[:200]}.{secrets.token_hex(6)}.tmp"


@contextlib.contextmanager
def _naming(path: str | Path, temp: Path | None) -> Iterator[None]:
    """Have an OSError name `path`, not no file or the temporary one it really concerned."""
    try:
        yield
    except OSError as exc:
        named = exc.filename
        if named is None or (temp is not None and isinstance(named, str) and named.startswith(str(temp))):
            exc.filename, exc.filename2 = str(path), None
        raise


def _sync_tree(root: Path) -> None:
    # Files first, then the directories that list them: a rename is durable only over data that is.
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_directory(Path(folder))


def _sync_directory(folder: Path) -> None:
    # Makes a rename durable; some file systems refuse to sync a directory, and the rename stands.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
