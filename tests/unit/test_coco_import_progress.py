"""``import_coco`` reports progress per image and stops between images when asked (the app's
Benchmark → Import COCO runs it in a worker with a Cancel)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from core.importers.coco import import_coco
from core.store import open_store


def _coco(tmp_path, images: int):
    (tmp_path / "img").mkdir()
    data: dict = {"images": [], "categories": [{"id": 1, "name": "cup"}], "annotations": []}
    for k in range(1, images + 1):
        cv2.imwrite(str(tmp_path / "img" / f"a{k}.png"), np.zeros((20, 30, 3), np.uint8))
        data["images"].append({"id": k, "file_name": f"a{k}.png", "height": 20, "width": 30})
        data["annotations"].append(
            {"id": k, "image_id": k, "category_id": 1, "segmentation": [[2, 2, 9, 2, 9, 9, 2, 9]]}
        )
    (tmp_path / "c.json").write_text(json.dumps(data))
    return tmp_path / "c.json"


def test_progress_per_image_and_cancel_between_images(tmp_path):
    ann = _coco(tmp_path, 4)
    st = open_store(tmp_path / "s.sqlite")
    seen: list[tuple[int, int, str]] = []
    rep = import_coco(
        st, ann, tmp_path / "img", progress=lambda d, t, lab: seen.append((d, t, lab))
    )
    assert seen == [
        (0, 4, "start"),
        (1, 4, "a1.png"),
        (2, 4, "a2.png"),
        (3, 4, "a3.png"),
        (4, 4, "a4.png"),
    ]
    assert rep.added == 4 and not rep.cancelled
    # asked to stop after two images: two land, the report says cancelled, again finishes it
    other = open_store(tmp_path / "t.sqlite")
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    rep = import_coco(other, ann, tmp_path / "img", should_cancel=stop)
    assert rep.cancelled and rep.added == 2 and not rep.ok
    assert "cancelled" in rep.summary()
    rep = import_coco(other, ann, tmp_path / "img")
    assert (rep.added, rep.existing, rep.cancelled) == (2, 2, False)
    st.close()
    other.close()
