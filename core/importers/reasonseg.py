"""Import LISA's ReasonSeg layout: ``DIR/<stem>.jpg`` + ``DIR/<stem>.json`` (labelme-style).

Rasterisation follows LISA's ``get_mask_from_json`` pixel for pixel:

- shapes labelled ``flag`` (any case) are skipped;
- points are cast to int32 (truncation), each polygon's area is measured by drawing its
  outline (1 px) and filling it on an empty canvas;
- polygons are painted largest area first (``np.argsort(areas)[::-1]``, numpy's default sort,
  as LISA does) with outline + fill, value 1 for targets and the *ignore* value for labels
  containing ``ignore`` (any case), so smaller shapes painted later win;
- the target mask is ``value == 1``, the ignore region ``value == ignore``.

Every entry of ``text`` becomes its own sample of the same image (external id
``<stem>#<i>``); ``first_text_only=True`` keeps only ``text[0]``, as LISA's validation does.
Polygons with a point more than ``OOB_TOLERANCE`` pixels outside ``[0, W] x [0, H]`` are reported as
errors (the rest of the directory still imports); points within it are clipped by drawing, as
in LISA.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import DataError, IntegrityError

from core.formats.sgdr import check_text, printable
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

IGNORE_VALUE = 255
OOB_TOLERANCE = 1.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


class AnnotationError(ValueError):
    pass


def read_annotation(path: Path) -> dict[str, Any]:
    """Parse a ReasonSeg JSON (UTF-8, falling back to cp1252 like LISA) and check its keys."""
    raw = path.read_bytes()
    try:
        try:
            anno = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            anno = json.loads(raw.decode("cp1252"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"not valid JSON ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:
        raise AnnotationError("not readable (JSON nested too deeply)") from exc
    if not isinstance(anno, dict):
        raise AnnotationError("top level is not a JSON object")
    text = anno.get("text")
    if isinstance(text, str):
        text = [text]
    if not isinstance(text, list) or not text or not all(isinstance(t, str) and t.strip() for t in text):
        raise AnnotationError("'text' must be a non-empty list of non-empty strings")
    try:
        for t in text:
            check_text(t, "text")
    except ValueError as exc:
        raise AnnotationError(str(exc)) from None
    shapes = anno.get("shapes")
    if not isinstance(shapes, list):
        raise AnnotationError("'shapes' must be a list")
    for k, shp in enumerate(shapes):
        if not isinstance(shp, dict) or not isinstance(shp.get("label"), str):
            raise AnnotationError(f"shape {k}: needs a string 'label'")
        if not shp["label"].isprintable():
            raise AnnotationError(f"shape {k}: label {printable(shp['label'])!r} has control characters")
        pts = shp.get("points")
        try:
            arr = np.asarray(pts, dtype=np.float64)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise AnnotationError(f"shape {k} ({shp['label']}): points are not numbers") from exc
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1 or not np.isfinite(arr).all():
            raise AnnotationError(f"shape {k} ({shp['label']}): points must be a list of [x, y]")
    return {"text": [t for t in text], "is_sentence": anno.get("is_sentence"), "shapes": shapes}


def rasterize(shapes: list[dict[str, Any]], hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(target bool (H, W), ignore bool (H, W)) from labelme shapes, LISA's way (module doc)."""
    import cv2

    h, w = hw
    valid = []
    areas = []
    for k, shp in enumerate(shapes):
        if shp["label"].lower() == "flag":
            continue
        pts = np.asarray(shp["points"], dtype=np.float64)
        lo = pts.min(axis=0)
        hi = pts.max(axis=0)
        if lo[0] < -OOB_TOLERANCE or lo[1] < -OOB_TOLERANCE or hi[0] > w + OOB_TOLERANCE or hi[1] > h + OOB_TOLERANCE:
            raise AnnotationError(
                f"shape {k} ({shp['label']}): polygon out of bounds "
                f"(x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}; image {w}x{h})"
            )
        poly = np.array([shp["points"]], dtype=np.int32)
        tmp = np.zeros((h, w), dtype=np.uint8)
        cv2.polylines(tmp, poly, True, 1, 1)
        cv2.fillPoly(tmp, poly, 1)
        areas.append(tmp.sum())
        valid.append((shp["label"], poly))
    canvas = np.zeros((h, w), dtype=np.uint8)
    for idx in list(np.argsort(areas)[::-1].astype(np.int32)):
        label, poly = valid[idx]
        value = IGNORE_VALUE if "ignore" in label.lower() else 1
        cv2.polylines(canvas, poly, True, value, 1)
        cv2.fillPoly(canvas, poly, value)
    return canvas == 1, canvas == IGNORE_VALUE


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
    store: Store, directory: str | Path, *, dataset: str | None = None, first_text_only: bool = False,
    allow_outside: bool = False, progress: Progress | None = None, should_cancel: ShouldCancel | None = None,
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
            report.errors.append((printable(jp.name), "no image with the same name (.jpg/.jpeg/.png)"))
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

        def add(s, jp: Path = jp, img_path: Path = img_path, sha: str = sha, hw=(h, w), texts=texts,
                target=target, ignore=ignore, is_sentence=is_sentence) -> tuple[int, int]:
            ds = repo.get_or_create_dataset(s, name)
            image = repo.get_or_create_image(s, ds, img_path, sha, hw)
            added = existing = 0
            for i, question in enumerate(texts):
                ext = f"{jp.stem}#{i}"
                if sample_exists(s, ds, ext):
                    existing += 1
                    continue
                insert_sample(
                    s, ds, image, external_id=ext, question=question.strip(), category="reasonseg",
                    source=f"ReasonSeg/{d.name}", status="pending", mask=target,
                    ignore=ignore if ignore.any() else None, is_sentence=is_sentence,
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
