"""A rotated JPEG (EXIF orientation) is read as LISA reads it: ``cv2.imread`` applies the rotation."""

from __future__ import annotations

import json

import cv2
import numpy as np
from PIL import Image


def _rotated_jpeg(path, hw=(20, 40)):
    img = np.zeros((*hw, 3), np.uint8)
    img[:, : hw[1] // 2] = (255, 0, 0)  # left half red in the stored frame
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(img).save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_applied_like_cv2_imread(tmp_path):
    from core.images import image_info, load_image_rgb

    p = tmp_path / "r.jpg"
    _rotated_jpeg(p)
    got = load_image_rgb(p)
    ref = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)  # LISA's reader
    assert got.shape == (40, 20, 3) and np.array_equal(got, ref)
    assert image_info(p)[1:] == (40, 20)


def test_reasonseg_import_uses_the_oriented_frame(tmp_path, sqlite_store):
    from core.importers.reasonseg import import_reasonseg
    from core.store import repo

    _rotated_jpeg(tmp_path / "a.jpg")
    # a polygon in the upright (40 high, 20 wide) frame: it does not fit the stored 20x40 frame
    shape = {"label": "target", "points": [[2, 25], [18, 25], [18, 38], [2, 38]]}
    (tmp_path / "a.json").write_text(
        json.dumps({"text": ["the thing"], "is_sentence": False, "shapes": [shape]})
    )
    rep = import_reasonseg(sqlite_store, tmp_path)
    assert rep.added == 1 and not rep.errors
    with sqlite_store.session(write=False) as s:
        smp = repo.list_samples(s)[0]
        assert (smp.image.height, smp.image.width) == (40, 20)
        m = repo.current_mask(s, smp.id)
    assert m.shape == (40, 20) and m[30, 10] and not m[10, 10]
