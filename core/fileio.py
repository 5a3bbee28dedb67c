"""Atomic file writes for exports: all of the new file or none of it.

:func:`atomic_write` writes to a temporary file beside the target, flushes and fsyncs it, gives
it the old file's permission bits (new files get the umask's), renames it over the target and
fsyncs the folder. On any failure (full disk, read-only folder, the target is a folder) the old
file is left exactly as it was, the temporary file is removed, and :class:`WriteError` carries
a one-line message. A missing parent folder is created.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class WriteError(OSError):
    """A file could not be written; the old file (if any) is unchanged. One-line message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "write failed"


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _reason(exc: OSError) -> str:
    return " ".join(str(exc.strerror or exc).split())


def write_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be written, as one line, or ``None`` when it looks writable: the check
    a long job makes before it starts (it creates nothing). :func:`atomic_open` still reports
    what fails later (a full disk)."""
    if not str(path).strip():
        return "no file name given"
    p = Path(path).expanduser()
    if p.is_dir():
        return f"{p}: is a folder; give a file name"
    return _parent_problem(p)


def folder_problem(path: str | Path) -> str | None:
    """Why a new folder cannot be written at ``path`` as a whole, as one line, or ``None``: it
    must not exist or be an empty folder, and its parent must be writable (the folder is built
    beside it and renamed into place). Creates nothing."""
    if not str(path).strip():
        return "no folder name given"
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        return f"{p}: is a file; give a folder"
    if p.is_dir():
        try:
            if any(p.iterdir()):
                return f"{p}: folder is not empty; give a new or empty folder"
        except OSError as exc:
            return f"{p}: cannot read the folder ({_reason(exc)})"
    return _parent_problem(p)


def _parent_problem(p: Path) -> str | None:
    """Why nothing can be created as ``p`` in its parent folder (made when missing), or ``None``."""
    folder = p.parent
    while not folder.exists() and folder != folder.parent:  # the nearest folder that exists
        folder = folder.parent
    if not folder.is_dir():
        return f"{p}: cannot create folder {p.parent} ({folder} is a file)"
    if not os.access(folder, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        reason = os.strerror(errno.EROFS if read_only else errno.EACCES)  # as atomic_open would say
        return f"{p}: cannot write in {folder} ({reason})"
    return None


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """``with atomic_open(p) as f: f.write(...)``: the file appears at ``p`` only if the block
    finishes; ``mode`` is ``"w"`` (text) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), got {mode!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        raise WriteError(f"{p}: is a folder; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{p}: cannot create folder {p.parent} ({_reason(exc)})") from None
    try:
        perm = stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        perm = _umask_mode()
    except OSError as exc:
        raise WriteError(f"{p}: cannot write ({_reason(exc)})") from None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(f"{p}: cannot write ({_reason(exc)})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), perm)
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(
                f"{p}: cannot write ({_reason(exc)}); the old file is unchanged"
            ) from None
        raise
    _fsync_dir(p.parent)


def _fsync_dir(folder: Path) -> None:
    # the rename itself is durable only once the folder entry is on disk (POSIX)
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write ``data`` (text or bytes) to ``path`` atomically (see the module docstring)."""
    if isinstance(data, bytes):
        with atomic_open(path, "wb") as f:
            f.write(data)
    else:
        with atomic_open(path, "w", encoding=encoding) as f:
            f.write(data)
