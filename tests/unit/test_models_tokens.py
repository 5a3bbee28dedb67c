"""Token → pixel geometry, the one-row attention formula, aggregation and LISA's one-token shift.

Known answers, and the real image processors as oracles: an image whose red channel is x and
green channel is y goes through the processor; the mean value over each token's 14 × 14 patch
must be that token's box centre in original pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models.tokens import (
    clip_resize_hw,
    crop_grid_boxes,
    crop_token_boxes,
    expand_to_square,
    llava_pad_colour,
    pad_token_boxes,
    qwen_smart_resize,
    qwen_token_boxes,
    qwen_token_grid,
    resize_longest_hw,
)


def box_centres(boxes_xyxy: np.ndarray) -> np.ndarray:
    """float32 (n, 2) xy centres of (n, 4) xyxy boxes."""
    b = np.asarray(boxes_xyxy, dtype=np.float32)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


def coordinate_image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx, yy, np.full_like(xx, 9)], -1).astype(np.uint8)


def patch_centres(pixel_values: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """(xy centres (grid², 2), inside flags): patch means of the x/y channels, +0.5 because
    pixel i covers [i, i + 1)."""
    c, s, _ = pixel_values.shape
    p = pixel_values.reshape(c, grid, s // grid, grid, s // grid)
    inside = (np.abs(p[2] - 9) < 0.01).all(axis=(1, 3)).ravel()
    m = p.mean(axis=(2, 4))
    return np.stack([m[0].ravel(), m[1].ravel()], 1) + 0.5, inside


def test_pad_known_answer():
    b = pad_token_boxes((60, 80), 4)  # 80 wide, 60 high: 10 px of padding on top, 20 px cells
    assert b[0].tolist() == [0, -10, 20, 10] and b[15].tolist() == [60, 50, 80, 70]
    assert llava_pad_colour([0.48145466, 0.4578275, 0.40821073]) == (
        122,
        116,
        104,
    )  # truncated, as LLaVA
    sq, px, py = expand_to_square(np.full((3, 5, 3), 7, np.uint8), (1, 2, 3))
    assert sq.shape == (5, 5, 3) and (px, py) == (0, 1)
    assert (sq[0] == [1, 2, 3]).all() and (sq[1:4] == 7).all() and (sq[4] == [1, 2, 3]).all()


def test_crop_known_answer():
    # 60 x 80 → shortest edge 56: 56 x int(74.67) = 56 x 74; crop 56 starts at x = 9 resized px
    assert clip_resize_hw((60, 80), 56) == (56, 74) and clip_resize_hw((80, 60), 56) == (74, 56)
    b = crop_token_boxes((60, 80), 4)
    sx = 80 / 74
    assert b[0] == pytest.approx([9 * sx, 0, 9 * sx + 14 * sx, 15], abs=1e-4)
    assert b[15] == pytest.approx([51 * sx, 45, 65 * sx, 60], abs=1e-4)
    # LISA-7B-v1: CLIP-L/14 at 224 px, 16 x 16 tokens over the central square of a 480 x 640 image
    b = crop_token_boxes((480, 640), 16)
    assert b.shape == (256, 4) and b[0, 1] == 0 and b[-1, 3] == pytest.approx(480)
    assert crop_grid_boxes((60, 80), 4)[0].tolist() == [
        10,
        0,
        25,
        15,
    ]  # the idealisation, for contrast


@pytest.mark.parametrize("hw", [(61, 95), (95, 61), (60, 80)])
def test_crop_boxes_match_the_clip_processor(hw):
    from transformers import CLIPImageProcessor

    ip = CLIPImageProcessor(
        size={"shortest_edge": 56},
        crop_size={"height": 56, "width": 56},
        do_rescale=False,
        do_normalize=False,
    )
    pv = ip(images=coordinate_image(*hw), return_tensors="pt")["pixel_values"][0].numpy()
    got, _ = patch_centres(pv, 4)
    assert np.abs(got - box_centres(crop_token_boxes(hw, 4))).max() < 0.12
    if hw == (61, 95):  # ignoring the processor's integer rounding is measurably wrong here
        assert np.abs(got - box_centres(crop_grid_boxes(hw, 4))).max() > 0.5


@pytest.mark.parametrize("hw", [(61, 95), (95, 61)])
def test_pad_boxes_match_the_clip_processor_on_the_padded_square(hw):
    from transformers import CLIPImageProcessor

    ip = CLIPImageProcessor(
        size={"shortest_edge": 56},
        crop_size={"height": 56, "width": 56},
        do_rescale=False,
        do_normalize=False,
    )
    square, _, _ = expand_to_square(coordinate_image(*hw), (0, 0, 200))
    got, inside = patch_centres(
        ip(images=square, return_tensors="pt")["pixel_values"][0].numpy(), 4
    )
    assert inside.sum() == 8
    assert np.abs(got - box_centres(pad_token_boxes(hw, 4)))[inside].max() < 0.1


def test_qwen_known_answers():
    assert qwen_smart_resize(60, 80, 28, 56 * 56, 112 * 112) == (56, 84)
    assert qwen_smart_resize(480, 640) == (476, 644)  # default budget: 17 x 23 tokens
    assert qwen_token_grid((480, 640)) == (17, 23)
    assert qwen_smart_resize(480, 640, 28, 56 * 56, 112 * 112) == (
        84,
        112,
    )  # scaled down to the budget
    assert qwen_smart_resize(10, 10, 28, 56 * 56, 112 * 112) == (56, 56)  # scaled up to the minimum
    b = qwen_token_boxes((60, 80), (2, 3))
    assert b[0].tolist() == pytest.approx([0, 0, 80 / 3, 30]) and b[-1].tolist() == pytest.approx(
        [160 / 3, 30, 80, 60]
    )
    assert resize_longest_hw((60, 80), 640) == (480, 640) and resize_longest_hw(
        (1000, 333), 640
    ) == (640, 213)


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 4000),
    w=st.integers(1, 4000),
    lo=st.sampled_from([56 * 56, 3136, 256 * 28 * 28]),
    hi=st.sampled_from([112 * 112, 1280 * 28 * 28, 12845056]),
)
def test_qwen_smart_resize_equals_transformers(h, w, lo, hi):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    if max(h, w) / min(h, w) > 200:
        with pytest.raises(ValueError):
            qwen_smart_resize(h, w, 28, lo, hi)
        return
    assert qwen_smart_resize(h, w, 28, lo, hi) == tuple(smart_resize(h, w, 28, lo, hi))


@pytest.mark.parametrize("hw", [(60, 80), (300, 200), (33, 500)])
def test_qwen_grid_matches_the_processor(hw):
    from transformers import Qwen2VLImageProcessor

    ip = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 64)
    thw = ip(images=np.zeros((*hw, 3), np.uint8), return_tensors="pt")["image_grid_thw"][0].tolist()
    assert (thw[1] // 2, thw[2] // 2) == qwen_token_grid(hw, 56 * 56, 28 * 28 * 64)


def test_attention_row_equals_naive_softmax():
    from core.models.attention import attention_row, rotate_half

    g = torch.Generator().manual_seed(0)
    t, h, hkv, d, p = 9, 4, 2, 8, 6
    q, k = torch.randn(h, d, generator=g), torch.randn(t, hkv, d, generator=g)
    cos, sin = torch.randn(t, d, generator=g), torch.randn(t, d, generator=g)
    row = attention_row(q, k, cos, sin, p, h // hkv, d**-0.5)
    for head in range(h):
        qr = q[head] * cos[p] + rotate_half(q[head]) * sin[p]
        kr = k[:, head // 2] * cos + rotate_half(k[:, head // 2]) * sin
        s = (kr[: p + 1] @ qr) * d**-0.5
        want = torch.zeros(t)
        want[: p + 1] = torch.softmax(s, 0)
        assert torch.allclose(row[head], want, atol=1e-6)
    assert (row[:, p + 1 :] == 0).all()


def test_aggregate_attention_known_answer():
    from core.pipeline.seeds import aggregate_attention

    a = np.zeros((2, 3, 4), np.float32)
    a[0, 0] = [1, 0, 0, 0]
    a[1, 2] = [0, 0, 0, 6]
    assert aggregate_attention(a, (2, 2)).ravel().tolist() == pytest.approx([1 / 6, 0, 0, 1])
    assert aggregate_attention(a, (2, 2), [1], [2]).tolist() == [[0, 0], [0, 6]]
    assert aggregate_attention(a, (2, 2), renormalise=True).ravel().tolist() == pytest.approx(
        [1 / 6, 0, 0, 1 / 6]
    )
    with pytest.raises(ValueError, match="no attention layers or heads"):
        aggregate_attention(a, (2, 2), heads=[])
    with pytest.raises(ValueError, match="do not fill"):
        aggregate_attention(a, (3, 2))


def test_seg_one_token_shift_known_answer():
    from core.models.lisa import seg_query_position

    seg = 99
    ids = [1, 5, 5, 7, 8, 99, 3, 99, 2]
    assert seg_query_position(ids, seg) == 4  # the token before the first [SEG] predicts it
    assert seg_query_position(torch.tensor(ids), seg, start=6) == 6  # the second [SEG] (index 7)
    # LISA's own mask: input_ids[1:] == seg, padded with one False at the end
    mask = np.r_[np.asarray(ids[1:]) == seg, False]
    assert int(np.flatnonzero(mask)[0]) == seg_query_position(ids, seg)
    with pytest.raises(ValueError, match="no \\[SEG\\]"):
        seg_query_position([1, 2, 3], seg)
    with pytest.raises(ValueError, match="first token"):
        seg_query_position([99, 1], seg)
