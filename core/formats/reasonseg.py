"""LISA's ReasonSeg annotation: one labelme-style JSON per image, beside it with the same stem.

::

    {"text": ["What can hold water?", ...],   # the questions about this image (one mask for all)
     "is_sentence": true,                     # long query sentence (true) or short phrase (false)
     "shapes": [{"label": "target", "points": [[x, y], ...], "shape_type": "polygon"},
                {"label": "ignore", "points": [[x, y], ...], "shape_type": "polygon"}]}

:func:`rasterize` follows LISA's ``get_mask_from_json`` pixel for pixel:

- shapes labelled ``flag`` (any case) are skipped;
- points are cast to int32 (truncation), each polygon's area is measured by drawing its
  outline (1 px) and filling it on an empty canvas;
- polygons are painted largest area first (``np.argsort(areas)[::-1]``, numpy's default sort,
  as LISA does) with outline + fill, value 1 for targets and the *ignore* value for labels
  containing ``ignore`` (any case), so smaller shapes painted later win;
- the target mask is ``value == 1``, the ignore region ``value == ignore``.

Polygons with a point more than ``OOB_TOLERANCE`` pixels outside ``[0, W] x [0, H]`` are
errors; points within it are clipped by drawing, as in LISA.

:func:`mask_to_shapes` is the way back: the outer contours of a mask become polygons. A
polygon has no holes and nothing paints background, so a hole in a region comes back filled;
:func:`polygon_fidelity` measures what that costs (the export reports it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.formats.sgdr import check_text, printable

IGNORE_VALUE = 255
OOB_TOLERANCE = 1.0
# the image suffixes the layout pairs with a JSON (LISA's own loader globs ``*.jpg`` only)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
TARGET_LABEL = "target"
IGNORE_LABEL = "ignore"


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
    if (
        not isinstance(text, list)
        or not text
        or not all(isinstance(t, str) and t.strip() for t in text)
    ):
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
            raise AnnotationError(
                f"shape {k}: label {printable(shp['label'])!r} has control characters"
            )
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
        if (
            lo[0] < -OOB_TOLERANCE
            or lo[1] < -OOB_TOLERANCE
            or hi[0] > w + OOB_TOLERANCE
            or hi[1] > h + OOB_TOLERANCE
        ):
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


# -- the way back: masks to polygons ---------------------------------------------------------


def mask_to_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """The outer contours of a bool (H, W) mask, one int (N, 2) array of ``(x, y)`` pixel
    coordinates per 8-connected region, also a region inside another's hole (OpenCV's border
    following, corner points only).

    Drawn back by :func:`rasterize` (outline + fill), each polygon paints exactly its region
    plus the background it encloses: a region without holes comes back pixel for pixel, a hole
    comes back filled."""
    import cv2

    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return []
    # two-level retrieval: every region's outer boundary is at the top level, also a region
    # inside another's hole (which RETR_EXTERNAL would drop); the second level is the holes
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return [
        c.reshape(-1, 2).astype(np.int64)
        for c, link in zip(contours, hierarchy[0], strict=True)
        if link[3] < 0
    ]


def polygon_shape(label: str, points: np.ndarray) -> dict[str, Any]:
    """One labelme polygon shape (integer pixel coordinates, as LISA truncates them anyway)."""
    return {
        "label": label,
        "points": [[int(x), int(y)] for x, y in points],
        "group_id": None,
        "shape_type": "polygon",
        "flags": {},
    }


def mask_to_shapes(target: np.ndarray, ignore: np.ndarray | None = None) -> list[dict[str, Any]]:
    """labelme shapes for a target mask and an optional ignore region (bool (H, W) each): the
    outer contours of ``target`` labelled ``target``, then those of ``ignore`` labelled
    ``ignore``. :func:`rasterize` paints them largest first, so a region nested in another's
    hole (an ignore blob inside a target ring, or the reverse) is kept; a hole holding only
    background is filled (:func:`polygon_fidelity` measures it)."""
    shapes = [polygon_shape(TARGET_LABEL, p) for p in mask_to_polygons(target)]
    if ignore is not None:
        shapes += [polygon_shape(IGNORE_LABEL, p) for p in mask_to_polygons(ignore)]
    return shapes


@dataclass(frozen=True)
class PolygonFidelity:
    """How well polygons hold a mask once rasterised LISA's way (:func:`rasterize`).

    ``iou``: IoU of the target mask with the rasterised target; ``ignore_iou``: the same for
    the ignore region (1.0 when both are empty); ``added`` / ``removed``: target pixels the
    polygons add (filled holes) / lose; ``ignore_changed``: pixels whose ignore state differs."""

    iou: float
    ignore_iou: float
    added: int
    removed: int
    ignore_changed: int

    @property
    def worst(self) -> float:
        return min(self.iou, self.ignore_iou)

    @property
    def exact(self) -> bool:
        return self.added == 0 and self.removed == 0 and self.ignore_changed == 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(np.count_nonzero(a & b)) / float(union)


def polygon_fidelity(
    target: np.ndarray, ignore: np.ndarray | None, shapes: list[dict[str, Any]]
) -> PolygonFidelity:
    """Rasterise ``shapes`` at the masks' size with :func:`rasterize` and compare them with the
    bool (H, W) ``target`` and ``ignore`` (``None``: no ignore region)."""
    t = np.asarray(target, dtype=bool)
    i = np.zeros_like(t) if ignore is None else np.asarray(ignore, dtype=bool)
    t2, i2 = rasterize(shapes, (t.shape[0], t.shape[1]))
    return PolygonFidelity(
        iou=_iou(t, t2),
        ignore_iou=_iou(i, i2),
        added=int(np.count_nonzero(t2 & ~t)),
        removed=int(np.count_nonzero(t & ~t2)),
        ignore_changed=int(np.count_nonzero(i != i2)),
    )


def annotation_text(
    texts: list[str],
    is_sentence: bool,
    shapes: list[dict[str, Any]],
    *,
    image_name: str,
    hw: tuple[int, int],
) -> str:
    """The JSON text of one annotation (the keys LISA reads, plus labelme's ``imagePath`` /
    ``imageHeight`` / ``imageWidth``); ASCII only, so it reads the same in UTF-8 and in the
    cp1252 LISA falls back to. Fixed key order and layout: the same input gives the same bytes."""
    for t in texts:
        check_text(t, "text")
    doc = {
        "text": list(texts),
        "is_sentence": bool(is_sentence),
        "shapes": shapes,
        "imagePath": image_name,
        "imageHeight": int(hw[0]),
        "imageWidth": int(hw[1]),
    }
    return json.dumps(doc, ensure_ascii=True, indent=1) + "\n"
