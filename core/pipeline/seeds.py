"""Attention → top-k1 tokens → logit rerank → top-k2 tokens → seed points (§4.2, App. B)."""

from __future__ import annotations

import numpy as np

from core.pipeline.trace import TokenScore


def aggregate_attention(
    attention: np.ndarray, grid_hw: tuple[int, int], layer_index: list[int] | None = None, heads: list[int] | None = None
) -> np.ndarray:
    """Mean over the chosen layers and heads of float (n_layers, n_heads, n_tokens) → (gh, gw)."""
    att = np.asarray(attention, dtype=np.float64)
    if att.ndim != 3:
        raise ValueError(f"attention must be (n_layers, n_heads, n_tokens), got {att.shape}")
    if att.shape[2] != grid_hw[0] * grid_hw[1]:
        raise ValueError(f"{att.shape[2]} image tokens do not fill a {grid_hw[0]}x{grid_hw[1]} grid")
    if layer_index is not None:
        att = att[list(layer_index)]
    if heads is not None:
        att = att[:, list(heads)]
    return att.mean(axis=(0, 1)).reshape(grid_hw).astype(np.float32)


def _box_mean(logits: np.ndarray, box: np.ndarray) -> float:
    h, w = logits.shape
    x0, y0 = int(np.floor(max(box[0], 0))), int(np.floor(max(box[1], 0)))
    x1, y1 = int(np.ceil(min(box[2], w))), int(np.ceil(min(box[3], h)))
    if x1 <= x0 or y1 <= y0:
        return float("-inf")
    return float(logits[y0:y1, x0:x1].mean())


def select_tokens(
    token_map: np.ndarray, token_boxes_xyxy: np.ndarray, logits: np.ndarray, k1: int = 50, k2: int = 30
) -> tuple[list[TokenScore], list[TokenScore]]:
    """Top-``k1`` tokens by attention, then the ``k2`` with the highest mean L in their patch.

    Ties are broken by the lower flat token index (stable sort), in both steps. ``logits`` is
    L, float (H, W) at image resolution; boxes are image pixels (xyxy). Returns
    (top-k1 in attention order, top-k2 in rerank order), each with ``mean_logit`` filled.
    """
    flat = np.asarray(token_map, dtype=np.float64).ravel()
    gw = token_map.shape[1]
    k1 = min(k1, flat.size)
    order = np.argsort(-flat, kind="stable")[:k1]
    top1 = []
    for idx in order:
        box = token_boxes_xyxy[idx]
        top1.append(
            TokenScore(int(idx), int(idx // gw), int(idx % gw), float(flat[idx]), tuple(float(v) for v in box),
                       _box_mean(logits, box))
        )
    k2 = min(k2, len(top1))
    rerank = sorted(range(len(top1)), key=lambda i: (-top1[i].mean_logit, top1[i].index))[:k2]
    return top1, [top1[i] for i in rerank]


def allocate_seeds(attention: np.ndarray, total: int) -> np.ndarray:
    """Seeds per token: at least one each, the rest in proportion to attention.

    Largest-remainder rounding, ties to the earlier token, so the counts sum to
    ``max(total, len(attention))`` exactly and higher attention never gets fewer seeds.
    """
    att = np.clip(np.asarray(attention, dtype=np.float64), 0.0, None)
    n = att.size
    total = max(total, n)
    extra = total - n
    if extra == 0 or n == 0:
        return np.ones(n, dtype=np.int64)
    share = att / att.sum() * extra if att.sum() > 0 else np.full(n, extra / n)
    base = np.floor(share).astype(np.int64)
    rem = extra - int(base.sum())
    frac = share - base
    order = sorted(range(n), key=lambda i: (-frac[i], -att[i], i))
    base[order[:rem]] += 1
    return base + 1


def sample_seed_points(
    tokens: list[TokenScore], counts: np.ndarray, image_hw: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """Seed pixels inside each token's patch: the patch centre first, then uniform samples.

    Returns float32 (K, 2) ``xy`` image pixels (clipped to the image) and each seed's token index.
    """
    h, w = image_hw
    pts: list[tuple[float, float]] = []
    owner: list[int] = []
    for tok, c in zip(tokens, counts, strict=True):
        x0, y0, x1, y1 = tok.box_xyxy
        x0, y0 = max(x0, 0.0), max(y0, 0.0)
        x1, y1 = min(x1, float(w)), min(y1, float(h))
        for j in range(int(c)):
            if j == 0:
                x, y = (x0 + x1) / 2, (y0 + y1) / 2
            else:
                x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            pts.append((min(x, w - 0.5), min(y, h - 0.5)))
            owner.append(tok.index)
    return np.asarray(pts, dtype=np.float32).reshape(-1, 2), owner
