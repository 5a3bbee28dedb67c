"""Writers from a store to files (the inverse of :mod:`core.importers`).
:func:`export_dataset` is the one entry point that the command line (``rea2seg export sgdr``)
and the app (File → Export SGDR file…) both call, with the same filters (``--status``,
``--dataset``); :func:`dataset_names` lists the datasets a ``--dataset`` may name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.exporters.sgdr import ExportReport
from core.fileio import WriteError, write_problem
from core.vocab import STATUSES

if TYPE_CHECKING:
    from core.store import Store

ExportFormat = Literal["sgdr"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("sgdr",)

__all__ = ["EXPORT_FORMATS", "ExportFormat", "ExportReport", "check_filters", "dataset_names", "export_dataset"]


def dataset_names(store: Store) -> list[str]:
    """The names of the store's datasets, sorted."""
    from sqlalchemy import select

    from core.store.models import Dataset

    return store.run(lambda s: sorted(s.scalars(select(Dataset.name))), write=False)


def check_filters(store: Store, *, status: str | None = None, dataset: str | None = None) -> None:
    """Raise ``ValueError`` (one line) for a status that is not a review status or a dataset the
    store does not have; ``None`` is any status / dataset."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)} (or no filter for any)")
    if dataset is not None:
        names = dataset_names(store)
        if dataset not in names:
            raise ValueError(f"no dataset named {dataset!r} in the store; it has: {', '.join(names) or 'none'}")


def export_dataset(
    store: Store, fmt: ExportFormat, out: str | Path, *, status: str | None = None, dataset: str | None = None
) -> ExportReport:
    """Write the store's samples (optionally only those of one review ``status`` and / or one
    ``dataset``; ``None``: any) to ``out``, atomically (the old file stays whole on any failure:
    :class:`core.fileio.WriteError`). A bad filter (:func:`check_filters`, ``ValueError``) or an
    output path that cannot be written (:func:`core.fileio.write_problem`, ``WriteError``) is
    refused before any sample is read or anything written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {list(EXPORT_FORMATS)}")
    check_filters(store, status=status, dataset=dataset)
    problem = write_problem(out)
    if problem is not None:
        raise WriteError(problem)
    from core.exporters.sgdr import export_sgdr_report

    return export_sgdr_report(store, out, status=status, dataset=dataset)
