"""Export of a store's samples to the SGDR interchange JSON (format in :mod:`core.formats.sgdr`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.fileio import atomic_open
from core.formats.sgdr import SgdrSample, write_sgdr_stream
from core.store import Store, repo
from core.store.models import Image, Mask, Sample

CHUNK = 500  # samples per page: at most 1,000 mask ids in one IN list (not from the paper)


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: ``written`` samples to ``out``, ``reviewed`` of them with the
    reviewer's edited mask (the rest with their imported ground truth), ``without_mask`` with
    no mask at all."""

    out: Path
    written: int
    reviewed: int = 0
    without_mask: int = 0

    def summary(self) -> str:
        return (
            f"wrote {self.written} samples to {self.out} ({self.reviewed} with a reviewed mask, "
            f"{self.written - self.reviewed - self.without_mask} with the imported ground truth, "
            f"{self.without_mask} without a mask)"
        )


def export_sgdr(
    store: Store, out: str | Path, *, status: str | None = None, dataset: str | None = None
) -> int:
    """Write the store's samples (optionally one status / dataset) to an SGDR file.

    ``mask`` is the sample's current answer: the edited mask when there is one, else the
    ground truth. Image paths are written relative to ``out``. Returns the number written
    (:func:`export_sgdr_report` returns the whole report).
    """
    return export_sgdr_report(store, out, status=status, dataset=dataset).written


def export_sgdr_report(
    store: Store, out: str | Path, *, status: str | None = None, dataset: str | None = None
) -> ExportReport:
    """:func:`export_sgdr` with its :class:`ExportReport`.

    The samples are read in pages of :data:`CHUNK` (by id, inside one read transaction) with
    their masks, and each page is written before the next is read: memory does not grow with
    the store, and no query names more than ``2 × CHUNK`` ids."""
    out_p = Path(out).resolve()
    tally = {"reviewed": 0, "without_mask": 0}

    with atomic_open(out_p) as f:

        def write(s: Session) -> int:
            f.seek(0)  # a retried transaction writes afresh
            f.truncate()
            tally.update(reviewed=0, without_mask=0)
            return write_sgdr_stream(f, _samples(s, out_p.parent, status, dataset, tally))

        written = store.run(write, write=False)
    return ExportReport(out_p, written, tally["reviewed"], tally["without_mask"])


def _samples(
    s: Session, folder: Path, status: str | None, dataset: str | None, tally: dict[str, int]
) -> Iterator[SgdrSample]:
    """The export's samples in id order, read a page at a time."""
    q = repo._filtered_samples(
        select(
            Sample.id,
            Sample.external_id,
            Image.path,
            Sample.question,
            Sample.category,
            Sample.source,
            Sample.status,
            Sample.edited_mask_id,
            Sample.gt_mask_id,
            Sample.ignore_mask_id,
        ).join(Image, Image.id == Sample.image_id),
        status=status,
        dataset=dataset,
    )
    rel: dict[str, str] = {}  # image path → as written (images are shared by samples)
    last = None
    while True:
        page = q if last is None else q.where(Sample.id > last)
        rows = s.execute(page.order_by(Sample.id).limit(CHUNK)).all()
        if not rows:
            return
        last = rows[-1].id
        ids = {m for r in rows for m in (r.edited_mask_id or r.gt_mask_id, r.ignore_mask_id) if m}
        masks = (
            {
                m.id: {"size": [m.height, m.width], "counts": m.counts}
                for m in s.execute(
                    select(Mask.id, Mask.height, Mask.width, Mask.counts).where(Mask.id.in_(ids))
                )
            }
            if ids
            else {}
        )
        for r in rows:
            mid = r.edited_mask_id or r.gt_mask_id
            tally["reviewed"] += r.edited_mask_id is not None
            tally["without_mask"] += mid is None
            yield SgdrSample(
                id=r.external_id,
                image=rel.get(r.path)
                or rel.setdefault(r.path, Path(os.path.relpath(r.path, folder)).as_posix()),
                question=r.question,
                category=r.category,
                source=r.source,
                status=r.status,
                mask=masks.get(mid) if mid is not None else None,
                ignore=masks.get(r.ignore_mask_id) if r.ignore_mask_id is not None else None,
            )
