"""Training losses against hand computations on tiny arrays (core.training.losses)."""

from __future__ import annotations

import math

import pytest
import torch

from core.training.losses import (
    GeneratorLossWeights,
    focal_loss,
    generator_loss,
    mask_bce_loss,
    mask_dice_loss,
    mask_iou,
    sam_multimask_loss,
    soft_dice_loss,
)

LN3 = math.log(3.0)
# two 1 × 2 masks: sigmoid(±ln 3) = 0.75 / 0.25, sigmoid(0) = 0.5
LOGITS = torch.tensor([[[LN3, -LN3]], [[0.0, 0.0]]])
TARGETS = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])


def test_bce_is_the_mean_over_pixels_then_masks():
    # mask 1: both pixels log(1 + 1/3); mask 2: both pixels log 2
    want = (math.log(4 / 3) + math.log(2)) / 2
    assert mask_bce_loss(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-6)


def test_dice_uses_lisas_scale_and_epsilon():
    # mask 1: 2·0.75/1000 over (1.0 + 1)/1000; mask 2: 2·0.5/1000 over (1.0 + 1)/1000
    d1 = 1 - (0.0015 + 1e-6) / (0.002 + 1e-6)
    d2 = 1 - (0.001 + 1e-6) / (0.002 + 1e-6)
    assert mask_dice_loss(LOGITS, TARGETS).item() == pytest.approx((d1 + d2) / 2, rel=1e-5)
    # without the scale the epsilon weighs 1000× more: the scale is part of the known answer
    unscaled = mask_dice_loss(LOGITS, TARGETS, scale=1.0).item()
    assert unscaled != pytest.approx((d1 + d2) / 2, rel=1e-7)


def test_generator_loss_weights_the_parts_as_app_b():
    w = GeneratorLossWeights()
    assert (w.bce, w.dice, w.text) == (2.0, 0.5, 1.0)
    text = torch.tensor(0.7)
    out = generator_loss(text, LOGITS, TARGETS, w)
    bce = (math.log(4 / 3) + math.log(2)) / 2
    dice = ((1 - 0.001501 / 0.002001) + (1 - 0.001001 / 0.002001)) / 2
    assert out["loss"].item() == pytest.approx(0.7 + 2.0 * bce + 0.5 * dice, rel=1e-5)
    assert out["mask_bce_loss"].item() == pytest.approx(bce, rel=1e-6)
    # a text-only batch (VQA, grounding) has only the text part
    only_text = generator_loss(text, None, None, w)
    assert set(only_text) == {"loss", "text_loss"} and only_text["loss"].item() == pytest.approx(
        0.7
    )
    with pytest.raises(ValueError, match="≥ 0"):
        GeneratorLossWeights(bce=-1)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        mask_bce_loss(LOGITS, TARGETS[:1])


def test_sam_parts_known_answers():
    x = torch.zeros(1, 1, 2)
    t = torch.tensor([[[1.0, 0.0]]])
    # focal at p = 0.5: α_t · ln 2 · 0.25 with α_t = 0.25 (positive) and 0.75 (negative)
    assert focal_loss(x, t).item() == pytest.approx(math.log(2) / 8, rel=1e-6)
    # soft Dice with ε = 1: 1 − (2·0.5 + 1)/(1 + 1 + 1)
    assert soft_dice_loss(x, t).item() == pytest.approx(1 / 3, rel=1e-6)
    # IoU of logits > 0: {0, 2} against {0, 1} → 1/3; an empty prediction of an empty mask → 1
    assert mask_iou(
        torch.tensor([[[1.0, -1.0, 1.0]]]), torch.tensor([[[1.0, 1.0, 0.0]]])
    ).item() == (pytest.approx(1 / 3))
    assert mask_iou(-torch.ones(1, 1, 2), torch.zeros(1, 1, 2)).item() == 1.0


def test_multimask_backpropagates_only_the_best_output():
    t = torch.tensor([[[1.0, 0.0]]])
    good = torch.tensor([[8.0, -8.0]])
    logits = torch.stack([-good, good, torch.zeros(1, 2)])[None].requires_grad_(
        True
    )  # (1, 3, 1, 2)
    iou = torch.tensor([[0.1, 0.9, 0.5]], requires_grad=True)
    out = sam_multimask_loss(logits, t, iou)
    out["loss"].backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 1].abs().sum() > 0
    # the chosen output is perfect: IoU 1, so the head's error is (0.9 − 1)²
    assert out["iou_mse"].item() == pytest.approx(0.01, rel=1e-5)


def test_masks_of_different_sizes_count_once_each():
    big = torch.zeros(3, 4)
    out = generator_loss(None, [LOGITS[0], big], [TARGETS[0], torch.ones(3, 4)])
    want = (
        math.log(4 / 3) + math.log(2)
    ) / 2  # the 12-pixel mask weighs as much as the 2-pixel one
    assert out["mask_bce_loss"].item() == pytest.approx(want, rel=1e-6)
    assert "text_loss" not in out
