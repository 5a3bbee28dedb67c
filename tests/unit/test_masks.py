from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from core.masks import MaskError, as_bool_mask, bbox_xyxy, decode_rle, encode_rle, mask_iou


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_rle_round_trip_is_exact(mask):
    rle = encode_rle(mask)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == list(mask.shape)
    back = decode_rle(rle)
    assert back.dtype == np.bool_ and np.array_equal(back, mask)
    # pycocotools is the oracle for the area
    assert mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}) == mask.sum()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30), st.integers(0, 20), st.integers(0, 20))
def test_decode_rejects_or_decodes_garbage_never_crashes(counts, h, w):
    try:
        m = decode_rle({"size": [h, w], "counts": counts})
    except MaskError:
        return
    assert m.shape == (h, w)


def test_decode_checks_size_and_shape():
    m = np.zeros((4, 5), bool)
    m[1, 2] = True
    rle = encode_rle(m)
    with pytest.raises(MaskError, match="image size"):
        decode_rle(rle, (5, 4))
    with pytest.raises(MaskError, match="do not describe"):
        decode_rle({"size": [4, 6], "counts": rle["counts"]})
    with pytest.raises(MaskError):
        decode_rle({"size": [4, 5], "counts": [1, 2, 3]})
    with pytest.raises(MaskError):
        decode_rle({"size": "4x5", "counts": rle["counts"]})


def test_as_bool_mask_validation_and_helpers():
    with pytest.raises(MaskError, match="0 and 1"):
        as_bool_mask(np.array([[0, 255]], dtype=np.uint8))
    with pytest.raises(MaskError, match="2-D"):
        as_bool_mask(np.zeros((2, 2, 3), bool))
    a = np.zeros((10, 10), bool)
    a[2:4, 3:8] = True
    b = np.zeros((10, 10), bool)
    b[2:4, 5:10] = True
    assert mask_iou(a, b) == pytest.approx(6 / 14)
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
    assert bbox_xyxy(a) == (3, 2, 8, 4)
    assert bbox_xyxy(np.zeros((3, 3), bool)) is None
