"""Writers from a store to files (the inverse of :mod:`core.importers`).
:func:`export_dataset` is the one entry point that the command line (``rea2seg export sgdr``)
and the app (File → Export) both call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.exporters.sgdr import ExportReport

if TYPE_CHECKING:
    from core.store import Store

ExportFormat = Literal["sgdr"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("sgdr",)

__all__ = ["EXPORT_FORMATS", "ExportFormat", "ExportReport", "export_dataset"]


def export_dataset(
    store: Store, fmt: ExportFormat, out: str | Path, *, status: str | None = None, dataset: str | None = None
) -> ExportReport:
    """Write the store's samples (optionally one review status / dataset) to ``out``, atomically
    (the old file stays whole on any failure: :class:`core.fileio.WriteError`)."""
    if fmt == "sgdr":
        from core.exporters.sgdr import export_sgdr_report

        return export_sgdr_report(store, out, status=status, dataset=dataset)
    raise ValueError(f"unknown export format {fmt!r}; use one of {list(EXPORT_FORMATS)}")
