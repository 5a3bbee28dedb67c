"""Where an importer may read images from: inside the dataset's own folder, unless allowed.

A path in a dataset file (``..``, an absolute path, or a symlink) that resolves outside the
folder of that file is refused unless the user passes ``allow_outside`` (CLI:
``--allow-outside``). The refusal is decided from the path alone, before the file system is
asked whether the target exists, so "refused" and "not found" reveal nothing about files
outside the dataset.
"""

from __future__ import annotations

from pathlib import Path

from core.formats.sgdr import printable


class OutsideDatasetError(ValueError):
    """An image path that leaves the dataset folder (and ``allow_outside`` was not given)."""


def resolve_inside(root: Path, relative: str | Path, *, allow_outside: bool = False) -> Path:
    """``root / relative`` with symlinks resolved; refuses results outside ``root``.

    ``relative`` is shown as given in the message, never the resolved target.
    """
    base = Path(root).resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError, ValueError):  # symlink loops, NUL bytes
        raise OutsideDatasetError(
            f"image path {printable(str(relative))!r}: not a usable path"
        ) from None
    if not allow_outside and not target.is_relative_to(base):
        raise OutsideDatasetError(
            f"image path {printable(str(relative))!r} leads outside the dataset folder: refused "
            "(pass --allow-outside to permit it)"
        )
    return target
