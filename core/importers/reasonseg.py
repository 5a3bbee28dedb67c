"""Import LISA's ReasonSeg layout: ``DIR/<stem>.jpg`` + ``DIR/<stem>.json`` (labelme-style).

The JSON is read and its polygons rasterised by :mod:`core.formats.reasonseg` (LISA's
``get_mask_from_json``, pixel for pixel; the names stay importable from here).

Every entry of ``text`` becomes its own sample of the same image (external id
``<stem>#<i>``); ``first_text_only=True`` keeps only ``text[0]``, as LISA's validation does.
A polygon out of bounds is reported as an error (the rest of the directory still imports).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DataError, IntegrityError

from core.formats.reasonseg import (  # noqa: F401 - the format's names, re-exported
    IGNORE_VALUE,
    IMAGE_SUFFIXES,
    OOB_TOLERANCE,
    AnnotationError,
    rasterize,
    read_annotation,
)
from core.formats.sgdr import printable
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


def _image_for(json_path: Path, root: Path, allow_outside: bool) -> Path | None:
    """The image beside ``json_path``; a symlink leading outside ``root`` is refused unless allowed."""
    for suf in IMAGE_SUFFIXES:
        name = json_path.with_suffix(suf).name
        if json_path.with_suffix(suf).is_symlink() or json_path.with_suffix(suf).is_file():
            cand = resolve_inside(root, name, allow_outside=allow_outside)
            if cand.is_file():
                return cand
    return None


def import_reasonseg(
    store: Store,
    directory: str | Path,
    *,
    dataset: str | None = None,
    first_text_only: bool = False,
    allow_outside: bool = False,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ImportReport:
    """Import every ``*.json`` + image pair in ``directory``. Idempotent; one transaction per image.

    Files (JSON or image) that are symlinks leading outside ``directory`` are refused unless
    ``allow_outside``; every problem is reported per file and the rest lands. ``progress(done,
    total, label)`` is called per file; when ``should_cancel()`` turns true the import stops
    between files with ``report.cancelled`` set (what landed stays; running it again finishes).
    """
    progress = progress or _no_progress
    should_cancel = should_cancel or _never
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a directory")
    name = dataset or f"reasonseg-{d.name}"
    report = ImportReport()
    cache = ImageCache()
    files = sorted(d.glob("*.json"))
    for i_file, jp in enumerate(files):
        if should_cancel():
            report.cancelled = True
            break
        progress(i_file, len(files), printable(jp.name))
        try:
            resolve_inside(d, jp.name, allow_outside=allow_outside)
            img_path = _image_for(jp, d, allow_outside)
        except OutsideDatasetError as exc:
            report.errors.append((printable(jp.name), str(exc)))
            continue
        if img_path is None:
            report.errors.append(
                (printable(jp.name), "no image with the same name (.jpg/.jpeg/.png)")
            )
            continue
        try:
            anno = read_annotation(jp)
            sha, h, w = cache.info(img_path)
            target, ignore = rasterize(anno["shapes"], (h, w))
        except (AnnotationError, ImageError, OSError) as exc:
            report.errors.append((printable(jp.name), str(exc)))
            continue
        texts = anno["text"][:1] if first_text_only else anno["text"]
        is_sentence = anno["is_sentence"] if isinstance(anno["is_sentence"], bool) else None

        def add(
            s,
            jp: Path = jp,
            img_path: Path = img_path,
            sha: str = sha,
            hw=(h, w),
            texts=texts,
            target=target,
            ignore=ignore,
            is_sentence=is_sentence,
        ) -> tuple[int, int]:
            ds = repo.get_or_create_dataset(s, name)
            image = repo.get_or_create_image(s, ds, img_path, sha, hw)
            added = existing = 0
            for i, question in enumerate(texts):
                ext = f"{jp.stem}#{i}"
                if sample_exists(s, ds, ext):
                    existing += 1
                    continue
                insert_sample(
                    s,
                    ds,
                    image,
                    external_id=ext,
                    question=question.strip(),
                    category="reasonseg",
                    source=f"ReasonSeg/{d.name}",
                    status="pending",
                    mask=target,
                    ignore=ignore if ignore.any() else None,
                    is_sentence=is_sentence,
                )
                added += 1
            return added, existing

        try:
            a, e = store.run(add)
        except (MaskError, ValueError, LookupError, TypeError, IntegrityError, DataError) as exc:
            report.errors.append((printable(jp.name), " ".join(str(exc).split())[:300]))
            continue
        report.added += a
        report.existing += e
    if not report.cancelled:
        progress(len(files), len(files), "done")
    return report
