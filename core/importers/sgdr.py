"""Import of the SGDR interchange JSON into a store (format in :mod:`core.formats.sgdr`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DataError, IntegrityError

from core.formats.sgdr import SgdrSample, printable, read_sgdr
from core.images import ImageError
from core.importers.common import (
    ImageCache,
    ImportReport,
    Progress,
    ShouldCancel,
    _never,
    _no_progress,
    insert_sample,
    sample_exists,
)
from core.importers.paths import OutsideDatasetError, resolve_inside
from core.masks import MaskError
from core.store import Store, repo


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

    Each sample is its own transaction: a crash loses at most the sample in flight and
    re-running the import finishes it. Raises :class:`core.formats.sgdr.SgdrError` when the file as a
    whole is unreadable; every problem of one sample is reported in the returned report under
    its id and the other samples still land. Image paths that resolve outside the file's folder
    are refused unless ``allow_outside`` (:mod:`core.importers.paths`). ``progress`` and
    ``should_cancel`` as in :func:`core.importers.reasonseg.import_reasonseg` (per sample).
    """
    progress = progress or _no_progress
    should_cancel = should_cancel or _never
    p = Path(path)
    samples, errors = read_sgdr(p)
    report = ImportReport(errors=list(errors))
    name = dataset or p.stem
    cache = ImageCache()
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

        def add(
            s, smp: SgdrSample = smp, img_path: Path = img_path, sha: str = sha, hw=(h, w)
        ) -> bool:
            ds = repo.get_or_create_dataset(s, name)
            if sample_exists(s, ds, smp.id):
                return False
            image = repo.get_or_create_image(s, ds, img_path, sha, hw)
            insert_sample(
                s,
                ds,
                image,
                external_id=smp.id,
                question=smp.question,
                category=smp.category,
                source=smp.source,
                status=smp.status,
                mask=smp.mask,
                ignore=smp.ignore,
            )
            return True

        try:
            if store.run(add):
                report.added += 1
            else:
                report.existing += 1
        except (MaskError, ValueError, LookupError, TypeError, IntegrityError, DataError) as exc:
            report.errors.append((label, " ".join(str(exc).split())[:300]))
    if not report.cancelled:
        progress(len(samples), len(samples), "done")
    return report
