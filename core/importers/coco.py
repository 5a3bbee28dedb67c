"""Import of COCO instance annotations as *targets* for question generation (paper §3, App. C).

Each instance becomes a :class:`~core.store.models.Target` that has no question yet. Instances
of one category in one image are kept together in one
:class:`~core.store.models.InstanceGroup` (``kind="category"``), since the spatial split needs
"at least two instances of the same category" (App. C). A gRefCOCO-style file may also list
groups of annotations with their expression under a top-level ``"groups"`` key::

    "groups": [{"id": 7, "image_id": 1, "ann_ids": [3, 4], "description": "the two left dolls"}]

(``ref_id`` / ``ann_id`` / ``sentences`` as gRefCOCO spells them are accepted too). EntitySeg,
CAMO, ThinObject5K and OCHuman are read once converted to COCO instance JSON.

Segmentations: polygons, uncompressed RLE (``counts`` a list) and compressed RLE (``counts`` a
string), decoded with pycocotools at the image's size. Crowd annotations (``iscrowd=1``) are
not instances and are ignored. The file is read as a stream (:mod:`core.importers.coco_json`),
so memory stays near the size of the file. A bad item is reported by its id and the rest is
imported: malformed values, ids that are not integers or strings, text no store can hold, an
unknown image or category, a size that does not match the image file, and every id listed
twice (each copy is refused, and what refers to it). Every geometry is bounded before
pycocotools sees it (:func:`check_geometry`). Image paths stay inside ``images_dir`` unless
``allow_outside`` (:mod:`core.importers.paths`). Importing the same file again adds nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from core.formats.reasonseg import OOB_TOLERANCE
from core.formats.sgdr import check_text, printable
from core.images import ImageError
from core.importers.coco_json import (
    Ann,
    CocoError,
    CocoFile,
    ImageEntry,
    compact_segmentation,
    read_coco,
)
from core.importers.common import (
    ImageCache,
    ImportReport,
    Progress,
    ShouldCancel,
    _never,
    _no_progress,
)
from core.importers.paths import OutsideDatasetError, resolve_inside
from core.masks import MaskError, bbox_xyxy, decode_rle, encode_rle
from core.store import Store, repo
from core.store.models import InstanceGroup, Target

__all__ = ["CocoError", "check_geometry", "decode_segmentation", "import_coco"]

# pycocotools rasterises a polygon by walking every edge at 5x resolution, holding four int
# arrays as long as the walk: this bounds that walk (pixels, all edges of one annotation
# together), so one annotation costs at most ~100 MB there. 20x the perimeter of the largest
# image (8192 x 8192) is far more than any real outline.
MAX_EDGE_PIXELS = 20 * 4 * 8192


@dataclass(frozen=True)
class _Instance:
    ann_id: str
    category: str
    rle: dict[str, Any]  # compressed, counts as str
    box_xyxy: tuple[int, int, int, int]
    area: int


def check_geometry(seg: Any, hw: tuple[int, int]) -> None:
    """Refuse (``MaskError``, one line) a compact segmentation that pycocotools could not
    rasterise safely at ``hw``: a point more than ``OOB_TOLERANCE`` px outside ``[0, W] x [0, H]``,
    an edge walk over :data:`MAX_EDGE_PIXELS`, or an RLE that does not cover the image."""
    h, w = hw
    if isinstance(seg, tuple):
        walk = 0.0
        for poly in seg:
            xs, ys = poly[0::2], poly[1::2]
            if (
                xs.min() < -OOB_TOLERANCE
                or ys.min() < -OOB_TOLERANCE
                or xs.max() > w + OOB_TOLERANCE
                or ys.max() > h + OOB_TOLERANCE
            ):
                raise MaskError(
                    f"polygon point outside the {w}x{h} image by more than {OOB_TOLERANCE:g} px"
                )
            dx = np.abs(np.diff(xs, append=xs[:1]))
            dy = np.abs(np.diff(ys, append=ys[:1]))
            walk += float(np.maximum(dx, dy).sum())
        if walk > MAX_EDGE_PIXELS:
            raise MaskError(
                f"polygon outline of {walk:.0f} px is over the {MAX_EDGE_PIXELS}-pixel limit"
            )
        return
    size = seg["size"]
    if list(size) != [h, w]:
        raise MaskError(f"RLE size {list(size)} != image size [{h}, {w}]")
    counts = seg["counts"]
    if isinstance(counts, np.ndarray) and int(counts.sum()) != h * w:
        raise MaskError(f"uncompressed RLE counts must be non-negative and sum to {h * w}")


def _rasterise(seg: Any, hw: tuple[int, int]) -> np.ndarray:
    """A compact segmentation already passed by :func:`check_geometry` → bool (H, W)."""
    from pycocotools import mask as mask_utils

    h, w = hw
    if isinstance(seg, tuple):
        rle = mask_utils.merge(mask_utils.frPyObjects([p.tolist() for p in seg], h, w))
        return mask_utils.decode(rle).astype(bool)
    counts = seg["counts"]
    if isinstance(counts, np.ndarray):
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w)
        return mask_utils.decode(rle).astype(bool)
    return decode_rle({"size": [h, w], "counts": counts}, (h, w))


def decode_segmentation(seg: Any, hw: tuple[int, int]) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) → bool (H, W) mask.

    ``hw`` in pixels; polygon coordinates in pixels (x, y). Raises
    :class:`~core.masks.MaskError` with a one-line reason for anything malformed or outside
    the limits of :func:`check_geometry`, before pycocotools sees it.
    """
    try:
        compact = compact_segmentation(seg)
    except ValueError as exc:
        raise MaskError(str(exc)) from None
    check_geometry(compact, hw)
    return _rasterise(compact, hw)


def import_coco(
    store: Store,
    ann_file: str | Path,
    images_dir: str | Path,
    *,
    dataset: str | None = None,
    category_filter: Iterable[str] | None = None,
    allow_outside: bool = False,
    progress: Progress | None = None,
    should_cancel: ShouldCancel | None = None,
) -> ImportReport:
    """Import COCO instances from ``ann_file`` (images under ``images_dir``) as targets.

    ``category_filter``: category names to keep (all when empty). ``report.added`` /
    ``existing`` count targets. One transaction per image. An image path that resolves
    outside ``images_dir`` (``..``, absolute, symlink) is refused unless ``allow_outside``.
    Raises :class:`CocoError` (nothing lands) only when the file as a whole is unusable.
    ``progress(done, total, label)`` is called per image (``label``: its file name) after
    ``(0, total, "start")``; ``should_cancel()`` is asked before each image: the images done so
    far stay imported (``report.cancelled``; importing again finishes the rest).
    """
    progress = progress or _no_progress
    should_cancel = should_cancel or _never
    p = Path(ann_file)
    name = dataset or p.stem
    try:
        check_text(name, "dataset name")
    except ValueError as exc:
        raise CocoError(f"{printable(name)}: {exc}") from None
    data = read_coco(p)
    keep = {c.strip() for c in category_filter or () if c.strip()}
    unknown = keep - set(data.categories.values())
    if unknown:
        raise CocoError(f"--category-filter: {sorted(unknown)} not among the file's categories")
    report = ImportReport(errors=list(data.errors))
    by_image = _annotations_by_image(data, report)
    groups_by_image: dict[str, list[tuple[str, tuple[str, ...], str]]] = defaultdict(list)
    for g in data.groups:
        if g.image not in data.images:
            why = data.refused_images.get(g.image, "is not among the file's images")
            report.errors.append(
                (f"group {printable(g.key, 60)}", f"image_id {_shown(g.image)} {why}")
            )
            continue
        groups_by_image[g.image].append((g.key, g.ann_keys, g.description))
    cache = ImageCache()
    root = Path(images_dir)
    todo = sorted(set(by_image) | set(groups_by_image))
    progress(0, len(todo), "start")
    for done, image_id in enumerate(todo, 1):
        if should_cancel():
            report.cancelled = True
            break
        _import_image(
            store,
            name,
            data.images[image_id],
            root,
            allow_outside,
            by_image[image_id],
            groups_by_image[image_id],
            data.categories,
            keep,
            cache,
            report,
        )
        progress(done, len(todo), printable(str(data.images[image_id].file_name), 60))
    return report


def _shown(key: str) -> str:
    return printable(key, 60) if key.isdigit() else repr(printable(key, 60))


def _annotations_by_image(data: CocoFile, report: ImportReport) -> dict[str, list[Ann]]:
    by_image: dict[str, list[Ann]] = defaultdict(list)
    for a in data.annotations:
        name = f"annotation {printable(a.key, 60)}"
        if a.image not in data.images:
            why = data.refused_images.get(a.image)
            report.errors.append(
                (
                    name,
                    f"image_id {_shown(a.image)} {why}"
                    if why
                    else f"unknown image_id {_shown(a.image)}",
                )
            )
        elif a.category not in data.categories:
            why = data.refused_categories.get(a.category)
            report.errors.append(
                (
                    name,
                    f"category_id {_shown(a.category)} {why}"
                    if why
                    else f"unknown category_id {_shown(a.category)}",
                )
            )
        elif not a.crowd:
            by_image[a.image].append(a)
    return by_image


def _import_image(
    store: Store,
    name: str,
    im: ImageEntry,
    images_dir: Path,
    allow_outside: bool,
    anns: list[Ann],
    groups: list[tuple[str, tuple[str, ...], str]],
    cats: dict[str, str],
    keep: set[str],
    cache: ImageCache,
    report: ImportReport,
) -> None:
    def refuse_all(reason: str) -> None:
        for a in anns:
            report.errors.append((f"annotation {printable(a.key, 60)}", reason))
        for gid, _, _ in groups:
            report.errors.append((f"group {printable(gid, 60)}", reason))

    try:
        path = resolve_inside(images_dir, im.file_name, allow_outside=allow_outside)
        sha, h, w = cache.info(path)
    except OutsideDatasetError as exc:
        refuse_all(f"image {_shown(im.key)}: {exc}")
        return
    except ImageError as exc:
        # named as written in the file, never where it leads
        text = str(exc)
        reason = text.split(": ", 1)[-1] if text.startswith(str(path)) else text
        refuse_all(f"image {_shown(im.key)} ({printable(im.file_name, 100)}): {reason}")
        return
    if im.declared_hw is not None and im.declared_hw != (h, w):
        dh, dw = im.declared_hw
        refuse_all(f"image {_shown(im.key)} is declared {dh}x{dw} but {path.name} is {h}x{w}")
        return
    instances: dict[str, _Instance] = {}
    for a in anns:
        cat = cats[a.category]
        if keep and cat not in keep:
            continue
        try:
            check_geometry(a.seg, (h, w))
            mask = _rasterise(a.seg, (h, w))
        except (MaskError, ValueError, TypeError) as exc:
            report.errors.append((f"annotation {printable(a.key, 60)}", str(exc)))
            continue
        box = bbox_xyxy(mask)
        if box is None:
            report.errors.append((f"annotation {printable(a.key, 60)}", "the mask is empty"))
            continue
        instances[a.key] = _Instance(a.key, cat, encode_rle(mask), box, int(mask.sum()))
    plan: list[
        tuple[str, str, str, str, list[_Instance]]
    ] = []  # ext id, kind, category, description, members
    by_cat: dict[str, list[_Instance]] = defaultdict(list)
    for inst in instances.values():
        by_cat[inst.category].append(inst)
    for cat, members in sorted(by_cat.items()):
        plan.append((f"image{im.key}/{cat}", "category", cat, cat, members))
    for gid, ann_ids, desc in groups:
        missing = [a for a in ann_ids if a not in instances]
        if missing:
            report.errors.append(
                (
                    f"group {printable(gid, 60)}",
                    f"annotations {[printable(m, 60) for m in missing]} are missing, filtered "
                    "out or bad; group skipped",
                )
            )
            continue
        members = [instances[a] for a in ann_ids]
        cat = members[0].category if len({m.category for m in members}) == 1 else "mixed"
        plan.append((f"group{gid}", "group", cat, desc or cat, members))
    if not plan:
        return

    def add(s: Session) -> tuple[int, int]:
        ds = repo.get_or_create_dataset(s, name)
        image = repo.get_or_create_image(s, ds, path, sha, (h, w))
        added = existing = 0
        for ext, kind, cat, desc, members in plan:
            grp = s.scalar(
                select(InstanceGroup).where(
                    InstanceGroup.dataset_id == ds.id, InstanceGroup.external_id == ext
                )
            )
            if grp is None:
                grp = InstanceGroup(
                    dataset_id=ds.id,
                    image_id=image.id,
                    external_id=ext,
                    kind=kind,
                    category_name=cat,
                    description=desc,
                )
                s.add(grp)
                s.flush()
            have = set(s.scalars(select(Target.annotation_id).where(Target.group_id == grp.id)))
            for m in sorted(members, key=lambda m: m.ann_id):
                if m.ann_id in have:
                    existing += 1
                    continue
                s.add(
                    Target(
                        dataset_id=ds.id,
                        group_id=grp.id,
                        external_id=f"{ext}/ann{m.ann_id}",
                        annotation_id=m.ann_id,
                        category_name=m.category,
                        height=h,
                        width=w,
                        counts=m.rle["counts"],
                        area=m.area,
                        box_xyxy=list(m.box_xyxy),
                    )
                )
                added += 1
        return added, existing

    try:
        added, existing = store.run(add)
    except (MaskError, ValueError, LookupError, TypeError, IntegrityError, DataError) as exc:
        refuse_all(f"image {_shown(im.key)}: " + " ".join(str(exc).split())[:300])
        return
    report.added += added
    report.existing += existing
