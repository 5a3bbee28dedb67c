"""Import and export of the SGDR interchange JSON (format in :mod:`core.sgdr`)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from core.images import ImageError
from core.importers.common import ImageCache, ImportReport, insert_sample, sample_exists
from core.masks import MaskError
from core.sgdr import SgdrSample, read_sgdr, write_sgdr
from core.store import Store, repo
from core.store.models import Dataset, Mask, Sample


def import_sgdr(store: Store, path: str | Path, *, dataset: str | None = None) -> ImportReport:
    """Import an SGDR file into ``dataset`` (default: the file's stem). Idempotent.

    Each sample is its own transaction: a crash loses at most the sample in flight and
    re-running the import finishes it. Raises :class:`core.sgdr.SgdrError` when the file as a
    whole is unreadable; bad entries are reported in the returned report.
    """
    p = Path(path)
    samples, errors = read_sgdr(p)
    report = ImportReport(errors=list(errors))
    name = dataset or p.stem
    cache = ImageCache()
    for smp in samples:
        img_path = (p.parent / smp.image).resolve()
        try:
            sha, h, w = cache.info(img_path)
        except ImageError as exc:
            report.errors.append((f"{smp.id} ({smp.image})", str(exc)))
            continue
        if smp.mask is not None and tuple(smp.mask["size"]) != (h, w):
            report.errors.append(
                (smp.id, f"mask size {smp.mask['size'][0]}x{smp.mask['size'][1]} != image size {h}x{w} ({smp.image})")
            )
            continue

        def add(s, smp: SgdrSample = smp, img_path: Path = img_path, sha: str = sha, hw=(h, w)) -> bool:
            ds = repo.get_or_create_dataset(s, name)
            if sample_exists(s, ds, smp.id):
                return False
            image = repo.get_or_create_image(s, ds, img_path, sha, hw)
            insert_sample(
                s, ds, image, external_id=smp.id, question=smp.question, category=smp.category,
                source=smp.source, status=smp.status, mask=smp.mask, ignore=smp.ignore,
            )
            return True

        try:
            if store.run(add):
                report.added += 1
            else:
                report.existing += 1
        except MaskError as exc:
            report.errors.append((smp.id, str(exc)))
    return report


def export_sgdr(store: Store, out: str | Path, *, status: str | None = None, dataset: str | None = None) -> int:
    """Write the store's samples (optionally one status / dataset) to an SGDR file.

    ``mask`` is the sample's current answer: the edited mask when there is one, else the
    ground truth. Image paths are written relative to ``out``. Returns the number written.
    """
    out_p = Path(out).resolve()

    def collect(s) -> list[SgdrSample]:
        rows = repo.list_samples(s, status=status, dataset=dataset)
        mask_ids = {m for r in rows for m in (r.edited_mask_id or r.gt_mask_id, r.ignore_mask_id) if m is not None}
        masks = {m.id: m.rle for m in s.scalars(select(Mask).where(Mask.id.in_(mask_ids)))} if mask_ids else {}
        result = []
        for r in rows:
            mid = r.edited_mask_id or r.gt_mask_id
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
    return len(samples)


def dataset_names(store: Store) -> list[str]:
    return store.run(lambda s: list(s.scalars(select(Dataset.name).order_by(Dataset.id))), write=False)


def sample_count(store: Store) -> int:
    from sqlalchemy import func

    return store.run(lambda s: int(s.scalar(select(func.count()).select_from(Sample)) or 0), write=False)
