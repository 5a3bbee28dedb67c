"""Import of the SGDR interchange JSON into a store (format in :mod:`core.formats.sgdr`)."""

from __future__ import annotations

from pathlib import Path

from core.formats.sgdr import SgdrSample, read_sgdr
from core.images import ImageError
from core.importers.common import ImageCache, ImportReport, insert_sample, sample_exists
from core.masks import MaskError
from core.store import Store, repo


def import_sgdr(store: Store, path: str | Path, *, dataset: str | None = None) -> ImportReport:
    """Import an SGDR file into ``dataset`` (default: the file's stem). Idempotent.

    Each sample is its own transaction: a crash loses at most the sample in flight and
    re-running the import finishes it. Raises :class:`core.formats.sgdr.SgdrError` when the file as a
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
