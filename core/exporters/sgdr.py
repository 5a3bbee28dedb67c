"""Export of a store's samples to the SGDR interchange JSON (format in :mod:`core.formats.sgdr`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from core.formats.sgdr import SgdrSample, write_sgdr
from core.store import Store, repo
from core.store.models import Mask


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
    """:func:`export_sgdr` with its :class:`ExportReport`."""
    out_p = Path(out).resolve()
    tally = {"reviewed": 0, "without_mask": 0}

    def collect(s) -> list[SgdrSample]:
        tally.update(reviewed=0, without_mask=0)  # a retried transaction counts afresh
        rows = repo.list_samples(s, status=status, dataset=dataset)
        mask_ids = {
            m
            for r in rows
            for m in (r.edited_mask_id or r.gt_mask_id, r.ignore_mask_id)
            if m is not None
        }
        masks = (
            {m.id: m.rle for m in s.scalars(select(Mask).where(Mask.id.in_(mask_ids)))}
            if mask_ids
            else {}
        )
        result = []
        for r in rows:
            mid = r.edited_mask_id or r.gt_mask_id
            tally["reviewed"] += r.edited_mask_id is not None
            tally["without_mask"] += mid is None
            result.append(
                SgdrSample(
                    id=r.external_id,
                    image=Path(os.path.relpath(r.image.path, out_p.parent)).as_posix(),
                    question=r.question,
                    category=r.category,
                    source=r.source,
                    status=r.status,
                    mask=masks.get(mid) if mid is not None else None,
                    ignore=masks.get(r.ignore_mask_id) if r.ignore_mask_id is not None else None,
                )
            )
        return result

    samples = store.run(collect, write=False)
    write_sgdr(out_p, samples)
    return ExportReport(out_p, len(samples), tally["reviewed"], tally["without_mask"])
