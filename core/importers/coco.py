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
not instances and are ignored. A bad annotation (malformed segmentation, empty mask, unknown
image or category, size that does not match the image file) is reported by its id and the rest
is imported. Importing the same file again adds nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.images import ImageError
from core.importers.common import ImageCache, ImportReport
from core.masks import MaskError, bbox_xyxy, decode_rle, encode_rle
from core.store import Store, repo
from core.store.models import InstanceGroup, Target


class CocoError(ValueError):
    """The file as a whole cannot be read as COCO instance annotations."""


@dataclass(frozen=True)
class _Instance:
    ann_id: str
    category: str
    rle: dict[str, Any]  # compressed, counts as str
    box_xyxy: tuple[int, int, int, int]
    area: int


def decode_segmentation(seg: Any, hw: tuple[int, int]) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) → bool (H, W) mask.

    Raises :class:`~core.masks.MaskError` with a one-line reason for anything malformed.
    """
    from pycocotools import mask as mask_utils

    h, w = hw
    if isinstance(seg, list):
        if not seg:
            raise MaskError("empty polygon list")
        polys = []
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise MaskError("a polygon must be a flat list of at least 3 x, y pairs")
            if not all(isinstance(v, int | float) and np.isfinite(v) for v in poly):
                raise MaskError("polygon coordinates must be finite numbers")
            polys.append([float(v) for v in poly])
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        return mask_utils.decode(rle).astype(bool)
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        size = seg["size"]
        if not (isinstance(size, list) and len(size) == 2 and [int(v) for v in size] == [h, w]):
            raise MaskError(f"RLE size {size} != image size [{h}, {w}]")
        counts = seg["counts"]
        if isinstance(counts, list):
            if not all(isinstance(v, int) and v >= 0 for v in counts) or sum(counts) != h * w:
                raise MaskError(f"uncompressed RLE counts must be non-negative and sum to {h * w}")
            rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
            return mask_utils.decode(rle).astype(bool)
        if isinstance(counts, str | bytes):
            return decode_rle({"size": [h, w], "counts": counts}, (h, w))
        raise MaskError("RLE counts must be a list or a string")
    raise MaskError("segmentation must be a polygon list or an RLE dict")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CocoError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise CocoError(
            f"{path}: not COCO instance annotations (needs lists 'images', 'annotations', 'categories')"
        )
    return data


def _group_entries(data: dict[str, Any]) -> Iterable[tuple[str, Any, list[Any], str]]:
    """(group id, image id, annotation ids, description) of the gRefCOCO-style groups."""
    for i, g in enumerate(data.get("groups") or []):
        if not isinstance(g, dict):
            yield f"#{i}", None, [], ""
            continue
        gid = str(g.get("id", g.get("ref_id", f"#{i}")))
        anns = g.get("ann_ids", g.get("ann_id", []))
        anns = anns if isinstance(anns, list) else [anns]
        desc = g.get("description")
        if desc is None and isinstance(g.get("sentences"), list) and g["sentences"]:
            first = g["sentences"][0]
            desc = first.get("sent", first.get("raw")) if isinstance(first, dict) else first
        yield gid, g.get("image_id"), anns, str(desc or "").strip()


def import_coco(
    store: Store,
    ann_file: str | Path,
    images_dir: str | Path,
    *,
    dataset: str | None = None,
    category_filter: Iterable[str] | None = None,
) -> ImportReport:
    """Import COCO instances from ``ann_file`` (images under ``images_dir``) as targets.

    ``category_filter``: category names to keep (all when empty). ``report.added`` /
    ``existing`` count targets. One transaction per image.
    """
    p = Path(ann_file)
    data = _read(p)
    name = dataset or p.stem
    cats = {
        c.get("id"): str(c.get("name", c.get("id")))
        for c in data["categories"]
        if isinstance(c, dict)
    }
    keep = {c.strip() for c in category_filter or () if c.strip()}
    unknown = keep - set(cats.values())
    if unknown:
        raise CocoError(f"--category-filter: {sorted(unknown)} not among the file's categories")
    report = ImportReport()
    images = {im.get("id"): im for im in data["images"] if isinstance(im, dict)}
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for a in data["annotations"]:
        if not isinstance(a, dict):
            report.errors.append(("annotation ?", "not a JSON object"))
            continue
        aid = a.get("id")
        if a.get("image_id") not in images:
            report.errors.append((f"annotation {aid}", f"unknown image_id {a.get('image_id')!r}"))
        elif a.get("category_id") not in cats:
            report.errors.append(
                (f"annotation {aid}", f"unknown category_id {a.get('category_id')!r}")
            )
        elif aid is None:
            report.errors.append(("annotation ?", f"no id (image {a.get('image_id')})"))
        elif not a.get("iscrowd"):
            by_image[a["image_id"]].append(a)
    groups_by_image: dict[Any, list[tuple[str, list[str], str]]] = defaultdict(list)
    for gid, image_id, anns, desc in _group_entries(data):
        if image_id not in images or not anns:
            report.errors.append(
                (f"group {gid}", "needs an image_id of the file and a list of ann_ids")
            )
            continue
        groups_by_image[image_id].append((gid, [str(x) for x in anns], desc))
    cache = ImageCache()
    for image_id in sorted(set(by_image) | set(groups_by_image), key=str):
        _import_image(
            store,
            name,
            images[image_id],
            Path(images_dir),
            by_image[image_id],
            groups_by_image[image_id],
            cats,
            keep,
            cache,
            report,
        )
    return report


def _import_image(
    store: Store,
    name: str,
    im: dict[str, Any],
    images_dir: Path,
    anns: list[dict[str, Any]],
    groups: list[tuple[str, list[str], str]],
    cats: dict[Any, str],
    keep: set[str],
    cache: ImageCache,
    report: ImportReport,
) -> None:
    path = (images_dir / str(im.get("file_name", ""))).resolve()
    try:
        sha, h, w = cache.info(path)
    except ImageError as exc:
        for a in anns:
            report.errors.append((f"annotation {a.get('id')}", str(exc)))
        return
    declared = (im.get("height"), im.get("width"))
    if declared != (None, None) and declared != (h, w):
        for a in anns:
            report.errors.append(
                (
                    f"annotation {a.get('id')}",
                    f"image {im.get('id')} is declared {declared[0]}x{declared[1]} but {path.name} is {h}x{w}",
                )
            )
        return
    instances: dict[str, _Instance] = {}
    for a in anns:
        aid = str(a["id"])
        cat = cats[a["category_id"]]
        if keep and cat not in keep:
            continue
        try:
            mask = decode_segmentation(a.get("segmentation"), (h, w))
        except (MaskError, ValueError, TypeError) as exc:
            report.errors.append((f"annotation {aid}", str(exc)))
            continue
        box = bbox_xyxy(mask)
        if box is None:
            report.errors.append((f"annotation {aid}", "the mask is empty"))
            continue
        instances[aid] = _Instance(aid, cat, encode_rle(mask), box, int(mask.sum()))
    plan: list[
        tuple[str, str, str, str, list[_Instance]]
    ] = []  # ext id, kind, category, description, members
    by_cat: dict[str, list[_Instance]] = defaultdict(list)
    for inst in instances.values():
        by_cat[inst.category].append(inst)
    for cat, members in sorted(by_cat.items()):
        plan.append((f"image{im['id']}/{cat}", "category", cat, cat, members))
    for gid, ann_ids, desc in groups:
        missing = [a for a in ann_ids if a not in instances]
        if missing:
            report.errors.append(
                (
                    f"group {gid}",
                    f"annotations {missing} are missing, filtered out or bad; group skipped",
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

    added, existing = store.run(add)
    report.added += added
    report.existing += existing
