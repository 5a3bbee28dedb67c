"""Training losses as pure functions: the generator's (LISA recipe, App. B) and SAM's.

Generator (paper App. B, "Following LISA, the weights for the mask BCE loss, mask Dice loss,
and text loss are set to 2.0, 0.5, and 1.0"): the formulas are LISA's (``model/LISA.py`` of
dvlab-research/LISA, ``sigmoid_ce_loss`` and ``dice_loss``):

- BCE: per mask, the mean over pixels of ``binary_cross_entropy_with_logits``; then the mean
  over masks;
- Dice: per mask, ``1 - (2 Σ p·t / s + ε) / (Σ p / s + Σ t / s + ε)`` with ``p = sigmoid(logits)``,
  LISA's scale ``s = 1000`` and ``ε = 1e-6``; then the mean over masks;
- total: ``text · L_text + bce · L_bce + dice · L_dice`` (LISA adds the weighted parts).

SAM (segment-anything's training recipe as the SAM paper states it, used by ``train sam``):
focal (α = 0.25, γ = 2, mean over pixels) and Dice (ε = 1) per mask, weighted 20 : 1, plus the
mean squared error of the IoU head against the IoU of the thresholded mask.

All functions take float logits and {0, 1} targets of the same shape (N, H, W) and return a
scalar tensor (or a dict of them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from core.training.generator_settings import GeneratorLossWeights

LISA_DICE_SCALE = 1000.0  # LISA's dice_loss default
LISA_DICE_EPS = 1e-6


def _check(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.shape != targets.shape or logits.ndim != 3:
        raise ValueError(
            f"logits and targets must both be (N, H, W), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    return logits.float().flatten(1), targets.float().flatten(1)


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """LISA's mask BCE: mean over pixels per mask, mean over the N masks. (N, H, W) → scalar."""
    x, t = _check(logits, targets)
    return F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1).mean()


def mask_dice_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    scale: float = LISA_DICE_SCALE,
    eps: float = LISA_DICE_EPS,
) -> torch.Tensor:
    """LISA's Dice loss on ``sigmoid(logits)`` (module docstring), mean over the N masks."""
    x, t = _check(logits, targets)
    p = x.sigmoid()
    num = 2 * (p / scale * t).sum(1)
    den = (p / scale).sum(1) + (t / scale).sum(1)
    return (1 - (num + eps) / (den + eps)).mean()


def generator_loss(
    text_loss: torch.Tensor | None,
    mask_logits: torch.Tensor | Sequence[torch.Tensor] | None,
    mask_targets: torch.Tensor | Sequence[torch.Tensor] | None,
    weights: GeneratorLossWeights | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted total and its parts: ``loss``, ``text_loss``, ``mask_bce_loss``,
    ``mask_dice_loss`` (the parts unweighted). Masks are one (N, H, W) tensor or a sequence of
    (H, W) tensors (images of different sizes); either way each mask counts once in the mean.
    A batch without masks (VQA, grounding) has only the text part; one without text targets
    (``text_loss`` None) only the mask parts."""
    weights = weights or GeneratorLossWeights()
    parts: dict[str, torch.Tensor] = {}
    total = None
    if text_loss is not None:
        parts["text_loss"] = text_loss
        total = weights.text * text_loss
    if mask_logits is not None and mask_targets is not None and len(mask_logits) > 0:
        if isinstance(mask_logits, torch.Tensor):
            bce = mask_bce_loss(mask_logits, mask_targets)
            dice = mask_dice_loss(mask_logits, mask_targets)
        else:
            pairs = list(zip(mask_logits, mask_targets, strict=True))
            bce = torch.stack([mask_bce_loss(x[None], t[None]) for x, t in pairs]).mean()
            dice = torch.stack([mask_dice_loss(x[None], t[None]) for x, t in pairs]).mean()
        parts["mask_bce_loss"], parts["mask_dice_loss"] = bce, dice
        mask = weights.bce * bce + weights.dice * dice
        total = mask if total is None else total + mask
    parts["loss"] = total if total is not None else torch.zeros(())
    return parts


# -- SAM ------------------------------------------------------------------------------------

SAM_FOCAL_WEIGHT = 20.0  # SAM paper §3: focal : Dice = 20 : 1
SAM_DICE_WEIGHT = 1.0
SAM_IOU_WEIGHT = 1.0


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss (RetinaNet's), mean over pixels per mask → (N,)."""
    x, t = _check(logits, targets)
    p = x.sigmoid()
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return (a_t * ce * (1 - p_t) ** gamma).mean(1)


def soft_dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - (2 Σ p·t + ε) / (Σ p + Σ t + ε)`` per mask → (N,)."""
    x, t = _check(logits, targets)
    p = x.sigmoid()
    return 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with the targets per mask → (N,) (an empty union counts as 1)."""
    x, t = _check(logits, targets)
    pred = x > 0
    gt = t > 0.5
    inter = (pred & gt).sum(1).float()
    union = (pred | gt).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def sam_mask_loss(
    logits: torch.Tensor, targets: torch.Tensor, iou_pred: torch.Tensor
) -> dict[str, torch.Tensor]:
    """SAM's loss for one output per prompt: logits/targets (N, H, W), iou_pred (N,) → the
    weighted ``loss`` and its per-prompt parts averaged: ``focal``, ``dice``, ``iou_mse``."""
    focal = focal_loss(logits, targets)
    dice = soft_dice_loss(logits, targets)
    with torch.no_grad():
        iou = mask_iou(logits, targets)
    mse = (iou_pred.float() - iou) ** 2
    loss = SAM_FOCAL_WEIGHT * focal + SAM_DICE_WEIGHT * dice + SAM_IOU_WEIGHT * mse
    return {"loss": loss.mean(), "focal": focal.mean(), "dice": dice.mean(), "iou_mse": mse.mean()}


def sam_multimask_loss(
    logits: torch.Tensor, targets: torch.Tensor, iou_pred: torch.Tensor
) -> dict[str, torch.Tensor]:
    """SAM's multimask rule: logits (N, 3, H, W), targets (N, H, W), iou_pred (N, 3); only the
    output with the lowest mask loss per prompt is back-propagated (its IoU head too)."""
    n, m = logits.shape[:2]
    flat = logits.reshape(n * m, *logits.shape[2:])
    rep = targets[:, None].expand(-1, m, -1, -1).reshape(n * m, *targets.shape[1:])
    per = SAM_FOCAL_WEIGHT * focal_loss(flat, rep) + SAM_DICE_WEIGHT * soft_dice_loss(flat, rep)
    best = per.reshape(n, m).argmin(1)
    idx = torch.arange(n, device=logits.device)
    return sam_mask_loss(logits[idx, best], targets, iou_pred[idx, best])
