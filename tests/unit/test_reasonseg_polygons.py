"""Masks → labelme polygons → LISA's rasterisation (core/formats/reasonseg.py): known answers for
a square, an L and a ring whose hole is lost, and a property test on random blobs: the IoU
reported is the IoU recomputed, and a target and ignore region without holes come back exactly."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.formats.reasonseg import (
    annotation_text,
    mask_to_polygons,
    mask_to_shapes,
    polygon_fidelity,
    rasterize,
    read_annotation,
)
from core.masks import mask_iou


def _corners(mask) -> list[set[tuple[int, int]]]:
    return [{(int(x), int(y)) for x, y in p} for p in mask_to_polygons(mask)]


def test_a_square_is_four_corners_and_comes_back_exactly():
    m = np.zeros((8, 10), bool)
    m[2:6, 3:8] = True
    assert _corners(m) == [{(3, 2), (7, 2), (7, 5), (3, 5)}]  # pixel coordinates, inclusive
    shapes = mask_to_shapes(m)
    assert [s["label"] for s in shapes] == ["target"]
    f = polygon_fidelity(m, None, shapes)
    assert f.exact and f.iou == 1.0 and f.ignore_iou == 1.0


def test_an_l_shape_is_six_corners_and_comes_back_exactly():
    m = np.zeros((9, 9), bool)
    m[1:8, 1:3] = True  # the upright
    m[6:8, 1:7] = True  # the foot
    # the inner corner is cut diagonally: the boundary pixels are 8-connected
    assert _corners(m) == [{(1, 1), (2, 1), (2, 5), (3, 6), (6, 6), (6, 7), (1, 7)}]
    t, i = rasterize(mask_to_shapes(m), m.shape)
    assert np.array_equal(t, m) and not i.any()


def test_a_rings_hole_is_filled_and_measured():
    m = np.zeros((9, 9), bool)
    m[1:8, 1:8] = True
    m[3:6, 3:6] = False  # a 3x3 hole in a 7x7 square: 40 pixels of ring
    f = polygon_fidelity(m, None, mask_to_shapes(m))
    assert (f.added, f.removed, f.ignore_changed) == (9, 0, 0)
    assert f.iou == 40 / 49 and not f.exact
    t, _ = rasterize(mask_to_shapes(m), m.shape)
    assert np.array_equal(t, np.pad(np.ones((7, 7), bool), 1))  # the hole came back as target


def test_an_ignore_region_in_a_hole_is_kept_and_a_target_in_an_ignore_hole_too():
    target = np.zeros((12, 12), bool)
    target[1:11, 1:11] = True
    ignore = np.zeros_like(target)
    ignore[3:9, 3:9] = True  # fills the target's hole exactly
    target &= ~ignore
    target[5:7, 5:7] = True  # and a target inside the ignore region's hole
    ignore[5:7, 5:7] = False
    shapes = mask_to_shapes(target, ignore)
    # the inner target is a region of its own, not lost inside the outer one's hole
    assert sorted(s["label"] for s in shapes) == ["ignore", "target", "target"]
    f = polygon_fidelity(target, ignore, shapes)
    assert f.exact, f


def _has_hole(mask: np.ndarray) -> bool:
    """True when some pixel outside ``mask`` is cut off from the border (4-connected, as the
    8-connected regions' outer contours enclose it)."""
    padded = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    n, labels = cv2.connectedComponents(padded, connectivity=4)
    return n > 2  # label 0 is the foreground; more than one background component means a hole


masks = st.integers(1, 14).flatmap(
    lambda h: st.integers(1, 14).flatmap(
        lambda w: st.tuples(
            st.just((h, w)), st.lists(st.integers(0, 2), min_size=h * w, max_size=h * w)
        )
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks, st.booleans())
def test_random_blobs_reported_iou_is_recomputed_iou_and_holeless_masks_are_exact(drawn, dilate):
    (h, w), values = drawn
    labels = np.array(values, dtype=np.uint8).reshape(h, w)  # 0 background, 1 target, 2 ignore
    if dilate:  # bigger blobs with holes, not only salt and pepper
        labels = cv2.dilate(labels, np.ones((2, 2), np.uint8))
    target, ignore = labels == 1, labels == 2
    shapes = mask_to_shapes(target, ignore)
    # through the JSON text and back, as an exported file is read
    anno = read_annotation_from_text(
        annotation_text(["q"], True, shapes, image_name="x.jpg", hw=(h, w))
    )
    t2, i2 = rasterize(anno["shapes"], (h, w))
    f = polygon_fidelity(target, ignore, shapes)
    assert f.iou == mask_iou(target, t2) and f.ignore_iou == mask_iou(ignore, i2)
    assert f.added == np.count_nonzero(t2 & ~target) and f.removed == np.count_nonzero(target & ~t2)
    assert f.ignore_changed == np.count_nonzero(ignore != i2)
    # what a mask's polygons add lies in its own holes, never outside its regions
    assert (
        not (t2 & ~target & ~_enclosed(target)).any()
        and not (i2 & ~ignore & ~_enclosed(ignore)).any()
    )
    if not _has_hole(target) and not _has_hole(ignore):
        assert f.exact and np.array_equal(t2, target) and np.array_equal(i2, ignore)


def _enclosed(mask: np.ndarray) -> np.ndarray:
    """Pixels outside ``mask`` cut off from the border (4-connected): the only ones its polygons may add."""
    padded = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    _, labels = cv2.connectedComponents(padded, connectivity=4)
    outside = labels == labels[0, 0]
    return (~outside & (padded == 1))[1:-1, 1:-1]


def read_annotation_from_text(text: str) -> dict:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.json"
        p.write_text(text, encoding="ascii")
        return read_annotation(p)


def test_annotation_text_is_ascii_with_the_keys_lisa_reads():
    import json

    text = annotation_text(
        ["Où est le chat ?", "second"],
        False,
        mask_to_shapes(np.eye(3, dtype=bool)),
        image_name="a.jpg",
        hw=(3, 3),
    )
    assert text.isascii()
    doc = json.loads(text)
    assert list(doc) == ["text", "is_sentence", "shapes", "imagePath", "imageHeight", "imageWidth"]
    assert doc["text"] == ["Où est le chat ?", "second"] and doc["is_sentence"] is False
    assert doc["shapes"][0]["label"] == "target" and doc["shapes"][0]["shape_type"] == "polygon"
    assert (
        json.loads(text.encode("ascii").decode("cp1252")) == doc
    )  # LISA's fallback reads it the same
