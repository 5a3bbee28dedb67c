"""A store of many samples, written in bulk (seconds for 100,000): for the scale tests and benches.

Samples cycle through ``images`` real JPEG images (so the app can show and accept them) and the
four categories; each has a ground-truth mask (a square, COCO RLE). The SGDR importer is far too
slow to build such stores for every test run; this writes the rows directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import insert, select, update

from core.masks import encode_rle
from core.store import Store
from core.store.models import CATEGORIES, Dataset, Image, Mask, Sample

BATCH = 10_000


def fill_store(
    store: Store, folder: Path, n: int, *, images: int = 8, hw: tuple[int, int] = (64, 80)
) -> list[int]:
    """Add ``n`` pending samples to an empty dataset ``big`` of ``store``; their ids, ascending.
    Writes ``images`` JPEGs of size ``hw`` into ``folder``."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    m = np.zeros(hw, bool)
    m[hw[0] // 4 : hw[0] // 2, hw[1] // 4 : hw[1] // 2] = True
    rle = encode_rle(m)
    with store.session() as s:
        ds = Dataset(name="big")
        s.add(ds)
        s.flush()
        image_ids = []
        for i in range(images):
            p = folder / f"big{i}.jpg"  # smooth noise: decodes like a photo of that size
            noise = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
            cv2.imwrite(str(p), cv2.GaussianBlur(noise, (0, 0), 2))
            img = Image(
                dataset_id=ds.id,
                path=str(p.resolve()),
                sha256=f"{i:064d}",
                height=hw[0],
                width=hw[1],
            )
            s.add(img)
            s.flush()
            image_ids.append(img.id)
        first = (s.scalar(select(Sample.id).order_by(Sample.id.desc()).limit(1)) or 0) + 1
        for start in range(0, n, BATCH):
            stop = min(n, start + BATCH)
            s.execute(
                insert(Sample),
                [
                    {
                        "id": first + i,
                        "dataset_id": ds.id,
                        "image_id": image_ids[i % images],
                        "external_id": f"big-{i:06d}",
                        "question": f"Which object is number {i} in this picture?",
                        "category": CATEGORIES[i % len(CATEGORIES)],
                        "source": "big",
                        "status": "pending",
                    }
                    for i in range(start, stop)
                ],
            )
            s.execute(
                insert(Mask),
                [
                    {
                        "sample_id": first + i,
                        "kind": "gt",
                        "height": hw[0],
                        "width": hw[1],
                        "counts": rle["counts"],
                        "area": int(m.sum()),
                    }
                    for i in range(start, stop)
                ],
            )
        s.execute(
            update(Sample)
            .where(Sample.dataset_id == ds.id)
            .values(
                gt_mask_id=select(Mask.id)
                .where(Mask.sample_id == Sample.id, Mask.kind == "gt")
                .scalar_subquery()
            )
        )
    return list(range(first, first + n))
