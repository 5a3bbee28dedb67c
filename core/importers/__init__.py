"""Readers from files into a store. :func:`import_dataset` is the one entry point that the
command line (``rea2seg import reasonseg|sgdr``) and the app (File → Import) both call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.importers.common import ImportReport, Progress, ShouldCancel

if TYPE_CHECKING:
    from core.store import Store

ImportFormat = Literal["reasonseg", "sgdr"]
IMPORT_FORMATS: tuple[ImportFormat, ...] = ("reasonseg", "sgdr")

__all__ = ["IMPORT_FORMATS", "ImportFormat", "ImportReport", "import_dataset"]


def import_dataset(
    store: Store,
    fmt: ImportFormat,
    path: str | Path,
    *,
    dataset: str | None = None,
    first_text_only: bool = False,
    allow_outside: bool = False,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ImportReport:
    """Import ``path`` (a ReasonSeg directory or an SGDR file) into ``store``.

    Returns the :class:`ImportReport`: samples added, already present, and each skipped item
    with its reason. Raises :class:`core.formats.sgdr.SgdrError` when an SGDR file as a whole
    cannot be read and :class:`FileNotFoundError` for a missing ReasonSeg directory; nothing
    lands then. ``first_text_only`` applies to ReasonSeg only.
    """
    if fmt == "reasonseg":
        from core.importers.reasonseg import import_reasonseg

        return import_reasonseg(
            store,
            path,
            dataset=dataset,
            first_text_only=first_text_only,
            allow_outside=allow_outside,
            progress=progress,
            should_cancel=should_cancel,
        )
    if fmt == "sgdr":
        from core.importers.sgdr import import_sgdr

        return import_sgdr(
            store,
            path,
            dataset=dataset,
            allow_outside=allow_outside,
            progress=progress,
            should_cancel=should_cancel,
        )
    raise ValueError(f"unknown import format {fmt!r}; use one of {list(IMPORT_FORMATS)}")
