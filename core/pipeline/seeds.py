"""Attention → top-k1 tokens → logit rerank → top-k2 tokens → seed points (§4.2, App. B).

Coordinates are original-image pixels, ``x`` right, ``y`` down. Token boxes are ``xyxy`` with
exclusive max (they may reach into the MLLM's padding, outside the image). A pixel ``(c, r)``
belongs to a box when its centre ``(c + 0.5, r + 0.5)`` lies inside it. Seed points are pixel
indices ``(c, r)`` as floats, which is how SAM takes point prompts (it adds the half pixel).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from core.trace import TokenScore

SeedPolicy = Literal["proportional", "one_per_token"]


def aggregate_attention(
    attention: np.ndarray,
    grid_hw: tuple[int, int],
    layer_index: list[int] | None = None,
    heads: list[int] | None = None,
    renormalise: bool = False,
) -> np.ndarray:
    """Mean over the chosen layers and heads of the prompt token's attention rows (§4.2).

    attention: float (n_layers, n_heads, n_tokens), softmax rows restricted to the image tokens.
    layer_index / heads: positions along the first two axes (``None`` = all).
    renormalise: divide each (layer, head) row by its sum over the image tokens before the mean
    (not from the paper). Default off: the paper averages "the attention scores from the prompt
    token to all image tokens", i.e. the softmax weights as the model computed them, so a head
    that looks mostly at text weighs less than one that looks at the image.
    Returns float32 (gh, gw), row-major over the token grid.
    """
    att = np.asarray(attention, dtype=np.float64)
    if att.ndim != 3:
        raise ValueError(f"attention must be (n_layers, n_heads, n_tokens), got shape {att.shape}")
    gh, gw = int(grid_hw[0]), int(grid_hw[1])
    if att.shape[2] != gh * gw:
        raise ValueError(f"{att.shape[2]} image tokens do not fill a {gh}x{gw} grid")
    if layer_index is not None:
        bad = [i for i in layer_index if not -att.shape[0] <= i < att.shape[0]]
        if bad:
            raise ValueError(
                f"layer positions {bad} out of range for {att.shape[0]} captured layers"
            )
        att = att[list(layer_index)]
    if heads is not None:
        bad = [i for i in heads if not -att.shape[1] <= i < att.shape[1]]
        if bad:
            raise ValueError(f"heads {bad} out of range for {att.shape[1]} heads")
        att = att[:, list(heads)]
    if att.shape[0] == 0 or att.shape[1] == 0:
        raise ValueError("no attention layers or heads selected")
    if renormalise:
        tot = att.sum(axis=2, keepdims=True)
        att = att / np.where(tot > 0, tot, 1.0)
    return att.mean(axis=(0, 1)).reshape(gh, gw).astype(np.float32)


def patch_pixels(
    box_xyxy: tuple[float, float, float, float] | np.ndarray, image_hw: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Pixel index range ``(c0, r0, c1, r1)`` (exclusive max) of the box's pixels inside the image.

    A pixel belongs to the box when its centre does. A box narrower than a pixel still gets the
    pixel under its centre. ``None`` when the box lies outside the image (MLLM padding).
    """
    h, w = image_hw
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    c0, c1 = int(np.ceil(x0 - 0.5)), int(np.ceil(x1 - 0.5))
    r0, r1 = int(np.ceil(y0 - 0.5)), int(np.ceil(y1 - 0.5))
    if c1 <= c0:
        c0 = int(np.floor((x0 + x1) / 2))
        c1 = c0 + 1
    if r1 <= r0:
        r0 = int(np.floor((y0 + y1) / 2))
        r1 = r0 + 1
    c0, c1 = max(c0, 0), min(c1, w)
    r0, r1 = max(r0, 0), min(r1, h)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0, r0, c1, r1


def patch_mean_logit(
    logits: np.ndarray, box_xyxy: tuple[float, float, float, float] | np.ndarray
) -> float | None:
    """Mean of L (float (H, W)) over the box's pixels; ``None`` for a box outside the image."""
    p = patch_pixels(box_xyxy, logits.shape)
    if p is None:
        return None
    c0, r0, c1, r1 = p
    return float(np.asarray(logits[r0:r1, c0:c1], dtype=np.float64).mean())


def select_tokens(
    token_map: np.ndarray,
    token_boxes_xyxy: np.ndarray,
    logits: np.ndarray,
    k1: int = 50,
    k2: int = 30,
) -> tuple[list[TokenScore], list[TokenScore]]:
    """Top-``k1`` tokens by attention, reranked by the mean of L in their patch → top-``k2`` (§4.2).

    token_map: float (gh, gw); token_boxes_xyxy: float (gh*gw, 4) image pixels; logits: L,
    float (H, W). The rerank suppresses attention sinks (App. B: k1 = 50, k2 = 30).

    Order and ties: top-k1 by decreasing attention, equal attention → lower flat index first.
    Top-k2 by decreasing mean L, equal mean → the earlier top-k1 position (higher attention).
    Tokens whose patch lies outside the image (padding) get ``mean_logit=None`` and are never
    kept in top-k2 (so top-k2 can be shorter than ``k2``). Returns (top-k1, top-k2).
    """
    tm = np.asarray(token_map, dtype=np.float64)
    flat = tm.ravel()
    boxes = np.asarray(token_boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(boxes) != flat.size:
        raise ValueError(f"{len(boxes)} token boxes for {flat.size} tokens")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got k1={k1}, k2={k2}")
    gw = tm.shape[1]
    order = np.argsort(-flat, kind="stable")[: min(k1, flat.size)]
    top1 = [
        TokenScore(
            index=int(i),
            row=int(i // gw),
            col=int(i % gw),
            attention=float(flat[i]),
            box_xyxy=tuple(float(v) for v in boxes[i]),
            mean_logit=patch_mean_logit(logits, boxes[i]),
        )
        for i in order
    ]
    inside = [p for p in range(len(top1)) if top1[p].mean_logit is not None]
    rerank = sorted(inside, key=lambda p: (-top1[p].mean_logit, p))[:k2]
    return top1, [top1[p] for p in rerank]


def allocate_seeds(
    attention: np.ndarray, total: int, policy: SeedPolicy = "proportional"
) -> np.ndarray:
    """Seed points per token, int64 (n,) (§4.2: higher attention → more seed points).

    ``proportional``: one seed each, and the ``total - n`` extra seeds shared in proportion to
    attention (clipped at 0) by largest remainder; remainder ties go to higher attention, then the
    earlier token. The counts sum to ``max(total, n)`` and never decrease with attention. All-zero
    attention shares the extras evenly. ``one_per_token``: one seed each (``total`` ignored).
    """
    att = np.clip(np.asarray(attention, dtype=np.float64).ravel(), 0.0, None)
    n = att.size
    if policy == "one_per_token" or n == 0:
        return np.ones(n, dtype=np.int64)
    if policy != "proportional":
        raise ValueError(f"unknown seed policy {policy!r}: use 'proportional' or 'one_per_token'")
    extra = max(int(total), n) - n
    if extra == 0:
        return np.ones(n, dtype=np.int64)
    share = att / att.sum() * extra if att.sum() > 0 else np.full(n, extra / n)
    base = np.floor(share).astype(np.int64)
    frac = share - base
    rest = extra - int(base.sum())
    order = sorted(range(n), key=lambda i: (-frac[i], -att[i], i))
    base[order[:rest]] += 1
    return base + 1


def sample_seed_points(
    tokens: list[TokenScore],
    counts: np.ndarray,
    image_hw: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[int]]:
    """Seed pixels inside each token's patch (§4.2).

    For each token in order: first the pixel under the centre of the patch's visible part, then
    ``count - 1`` further distinct pixels of the patch drawn uniformly without replacement by
    ``rng``. A token never gets more seeds than its patch has pixels; a token outside the image
    gets none. Returns float32 (K, 2) seed points ``(x, y)`` (pixel indices) and each seed's flat
    token index.
    """
    pts: list[tuple[int, int]] = []
    owner: list[int] = []
    for tok, c in zip(tokens, np.asarray(counts).ravel(), strict=True):
        p = patch_pixels(tok.box_xyxy, image_hw)
        if p is None or c <= 0:
            continue
        c0, r0, c1, r1 = p
        pw, n = c1 - c0, (c1 - c0) * (r1 - r0)
        centre = ((r1 - r0 - 1) // 2) * pw + (pw - 1) // 2
        picks = [centre]
        m = min(int(c), n) - 1
        if m > 0:
            others = np.delete(np.arange(n), centre)
            picks += [int(v) for v in rng.choice(others, size=m, replace=False)]
        for q in picks:
            pts.append((c0 + q % pw, r0 + q // pw))
            owner.append(tok.index)
    return np.asarray(pts, dtype=np.float32).reshape(-1, 2), owner
