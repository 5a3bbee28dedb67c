"""Import of the SGDR interchange JSON into a store (format in :mod:`core.formats.sgdr`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from core.formats.sgdr import SgdrSample, printable, read_sgdr
from core.images import ImageError
from core.importers.common import (
    ImageCache,
    ImportReport,
    Progress,
    ShouldCancel,
    _never,
    _no_progress,
)
from core.importers.paths import OutsideDatasetError, resolve_inside
from core.masks import MaskError
from core.store import Store, repo
from core.store.models import Image, Mask, Sample

BATCH = 200  # samples per transaction (not from the paper)
_MASK_COLUMNS = ("sample_id", "kind", "height", "width", "counts", "area", "provenance")


@dataclass(frozen=True)
class _Ready:
    """A sample whose image was read and whose mask fits it: ready to insert."""

    smp: SgdrSample
    label: str
    key: str  # the image's absolute path, as the store keeps it
    sha: str
    hw: tuple[int, int]


def import_sgdr(
    store: Store,
    path: str | Path,
    *,
    dataset: str | None = None,
    allow_outside: bool = False,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ImportReport:
    """Import an SGDR file into ``dataset`` (default: the file's stem). Idempotent.

    Samples are written :data:`BATCH` to a transaction: a crash loses at most the batch in
    flight and re-running the import finishes it. Raises :class:`core.formats.sgdr.SgdrError`
    when the file as a whole is unreadable; every problem of one sample is reported in the
    returned report under its id and the other samples still land (a batch the store refuses
    is written again one sample per transaction). Image paths that resolve outside the file's
    folder are refused unless ``allow_outside`` (:mod:`core.importers.paths`). ``progress`` and
    ``should_cancel`` as in :func:`core.importers.reasonseg.import_reasonseg` (per sample; on
    cancel the samples read so far are written). Each mask is decoded once, on insert.
    """
    progress = progress or _no_progress
    should_cancel = should_cancel or _never
    p = Path(path)
    samples, errors = read_sgdr(p)
    report = ImportReport(errors=list(errors))
    name = dataset or p.stem
    cache = ImageCache()
    ready: list[_Ready] = []
    for i_smp, smp in enumerate(samples):
        if should_cancel():
            report.cancelled = True
            break
        label = printable(smp.id)
        progress(i_smp, len(samples), label)
        try:
            img_path = resolve_inside(p.parent, smp.image, allow_outside=allow_outside)
            sha, h, w = cache.info(img_path)
        except OutsideDatasetError as exc:
            report.errors.append((label, str(exc)))
            continue
        except ImageError as exc:
            # "not found" names the path as written in the file, never where it leads
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(img_path)) else str(exc)
            report.errors.append((f"{label} ({printable(smp.image)})", reason))
            continue
        if smp.mask is not None and tuple(smp.mask["size"]) != (h, w):
            report.errors.append(
                (
                    label,
                    f"mask size {smp.mask['size'][0]}x{smp.mask['size'][1]} != image size {h}x{w} ({smp.image})",
                )
            )
            continue
        ready.append(_Ready(smp, label, str(img_path.resolve()), sha, (h, w)))
        if len(ready) >= BATCH:
            _write(store, name, ready, report)
            ready = []
    _write(store, name, ready, report)
    if not report.cancelled:
        progress(len(samples), len(samples), "done")
    return report


def _write(store: Store, name: str, batch: list[_Ready], report: ImportReport) -> None:
    """Insert ``batch`` in one transaction (samples already in the dataset are counted as
    existing); if the store refuses it, one transaction per sample reports the culprit."""
    if not batch:
        return

    def add(s: Session) -> tuple[int, int]:
        ds = repo.get_or_create_dataset(s, name)
        present = set(
            s.scalars(
                select(Sample.external_id).where(
                    Sample.dataset_id == ds.id,
                    Sample.external_id.in_([r.smp.id for r in batch]),
                )
            )
        )
        todo = []
        for r in batch:
            if r.smp.id not in present:
                present.add(r.smp.id)
                todo.append(r)
        if not todo:
            return 0, len(batch)
        images = {
            img.path: img
            for img in s.scalars(
                select(Image).where(
                    Image.dataset_id == ds.id, Image.path.in_({r.key for r in todo})
                )
            )
        }
        for r in todo:
            if r.key not in images:
                images[r.key] = Image(
                    dataset_id=ds.id, path=r.key, sha256=r.sha, height=r.hw[0], width=r.hw[1]
                )
                s.add(images[r.key])
        s.flush()
        # Core statements, one executemany each: the ORM's unit of work per row cost as much
        # as the rest of the write
        ids = s.scalars(
            insert(Sample).returning(Sample.id, sort_by_parameter_order=True),
            [
                {
                    "dataset_id": ds.id,
                    "image_id": images[r.key].id,
                    "external_id": r.smp.id,
                    "question": r.smp.question,
                    "category": r.smp.category,
                    "source": r.smp.source,
                    "status": r.smp.status,
                }
                for r in todo
            ],
        ).all()
        masks = []  # (sample id, kind, row values); each mask decoded once, here
        for r, sid in zip(todo, ids, strict=True):
            for kind, rle in (("gt", r.smp.mask), ("ignore", r.smp.ignore)):
                if rle is not None:
                    m = repo.new_mask(sid, r.hw, rle, kind, checked=True)
                    masks.append((sid, kind, {c: getattr(m, c) for c in _MASK_COLUMNS}))
        mask_ids = s.scalars(
            insert(Mask).returning(Mask.id, sort_by_parameter_order=True),
            [v for _, _, v in masks],
        ).all()
        for kind, column in (("gt", "gt_mask_id"), ("ignore", "ignore_mask_id")):
            pointers = [
                {"sid": sid, "mid": mid}
                for (sid, k, _), mid in zip(masks, mask_ids, strict=True)
                if k == kind
            ]
            if pointers:
                s.connection().execute(
                    update(Sample.__table__)
                    .where(Sample.__table__.c.id == bindparam("sid"))
                    .values({column: bindparam("mid")}),
                    pointers,
                )
        return len(todo), len(batch) - len(todo)

    try:
        added, existing = store.run(add)
    except (MaskError, ValueError, LookupError, TypeError, IntegrityError, DataError) as exc:
        if len(batch) > 1:
            for r in batch:
                _write(store, name, [r], report)
            return
        report.errors.append((batch[0].label, " ".join(str(exc).split())[:300]))
        return
    report.added += added
    report.existing += existing
