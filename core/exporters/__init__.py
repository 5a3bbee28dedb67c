"""Writers from a store to files (the inverse of :mod:`core.importers`).
:func:`export_dataset` is the one entry point that the command line (``rea2seg export sgdr`` /
``rea2seg export reasonseg``) and the app (File → Export SGDR file… / Export ReasonSeg folder…)
both call, with the same filters (``--status``, ``--dataset``) and, for ReasonSeg, the same
:class:`~core.exporters.reasonseg.ReasonSegSettings`; :func:`dataset_names` lists the datasets
a ``--dataset`` may name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.exporters.reasonseg import ReasonSegExportReport, ReasonSegSettings
from core.exporters.sgdr import ExportReport
from core.fileio import WriteError, folder_problem, write_problem
from core.vocab import STATUSES

if TYPE_CHECKING:
    from core.store import Store

if TYPE_CHECKING:
    from core.exporters.reasonseg import Progress, ShouldCancel

ExportFormat = Literal["sgdr", "reasonseg"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("sgdr", "reasonseg")

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "ExportReport",
    "ReasonSegExportReport",
    "ReasonSegSettings",
    "check_filters",
    "dataset_names",
    "export_dataset",
    "output_problem",
]


def dataset_names(store: Store) -> list[str]:
    """The names of the store's datasets, sorted."""
    from sqlalchemy import select

    from core.store.models import Dataset

    return store.run(lambda s: sorted(s.scalars(select(Dataset.name))), write=False)


def check_filters(store: Store, *, status: str | None = None, dataset: str | None = None) -> None:
    """Raise ``ValueError`` (one line) for a status that is not a review status or a dataset the
    store does not have; ``None`` is any status / dataset."""
    if status is not None and status not in STATUSES:
        raise ValueError(
            f"unknown status {status!r}; use one of {', '.join(STATUSES)} (or no filter for any)"
        )
    if dataset is not None:
        names = dataset_names(store)
        if dataset not in names:
            raise ValueError(
                f"no dataset named {dataset!r} in the store; it has: {', '.join(names) or 'none'}"
            )


def output_problem(fmt: ExportFormat, out: str | Path) -> str | None:
    """Why ``out`` cannot take an export in ``fmt`` (one line), or ``None``: a file for SGDR
    (:func:`core.fileio.write_problem`), a new or empty folder for ReasonSeg
    (:func:`core.fileio.folder_problem`). Creates nothing."""
    return folder_problem(out) if fmt == "reasonseg" else write_problem(out)


def export_dataset(
    store: Store,
    fmt: ExportFormat,
    out: str | Path,
    *,
    status: str | None = None,
    dataset: str | None = None,
    settings: ReasonSegSettings | None = None,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ExportReport | ReasonSegExportReport:
    """Write the store's samples (optionally only those of one review ``status`` and / or one
    ``dataset``; ``None``: any) to ``out``: an SGDR file, written atomically (the old file stays
    whole on any failure: :class:`core.fileio.WriteError`), or a ReasonSeg folder, written whole
    or not at all (:func:`core.exporters.reasonseg.export_reasonseg`, with ``settings``,
    ``progress`` and ``should_cancel``). A bad filter (:func:`check_filters`, ``ValueError``) or
    an output that cannot be written (:func:`output_problem`, ``WriteError``) is refused before
    any sample is read or anything written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {list(EXPORT_FORMATS)}")
    if settings is not None and fmt != "reasonseg":
        raise ValueError(f"settings apply to the reasonseg export, not {fmt!r}")
    check_filters(store, status=status, dataset=dataset)
    problem = output_problem(fmt, out)
    if problem is not None:
        raise WriteError(problem)
    if fmt == "reasonseg":
        from core.exporters.reasonseg import export_reasonseg

        return export_reasonseg(
            store,
            out,
            status=status,
            dataset=dataset,
            settings=settings,
            progress=progress,
            should_cancel=should_cancel,
        )
    from core.exporters.sgdr import export_sgdr_report

    return export_sgdr_report(store, out, status=status, dataset=dataset)
