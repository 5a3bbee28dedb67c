"""Image-token → original-image-pixel geometry for the segmentation MLLMs (§4.2).

The seed step (§4.2, App. B) needs, for every image token, the region of the *original* image
it stands for. Each model's preprocessing is undone exactly here; all functions are pure numpy.
Boxes are float32 ``(n_tokens, 4)`` xyxy in original-image pixels (x right, y down), row-major
over the token grid (token ``i`` is row ``i // gw``, column ``i % gw``), which is the order of
the image tokens in the MLLM's input sequence.

Three preprocessing schemes:

``crop`` — CLIP's own processor (LISA and every model trained with LISA's code, whose
    ``image_aspect_ratio`` is ``"square"``): resize so the *shortest* side is ``shortest_edge``
    (the long side becomes ``int(shortest_edge · long / short)``), then centre-crop
    ``crop_h × crop_w`` starting at ``((h' - crop_h) // 2, (w' - crop_w) // 2)``. The token
    grid covers only that central crop; :func:`crop_token_boxes`.
``pad`` — LLaVA-1.5 (``image_aspect_ratio="pad"``): the image is first centred on a square of
    side ``max(H, W)`` filled with the processor's mean colour (``int(m · 255)`` per channel),
    pasted at ``((side - W) // 2, (side - H) // 2)``; the square is then resized to the CLIP
    input. Tokens are squares of side ``max(H, W) / g``, shifted by the padding, so boxes at
    the border may reach outside the image; :func:`pad_token_boxes`.
``qwen`` — Qwen2-VL / Qwen2.5-VL dynamic resolution: the image is stretched to ``(h', w')``,
    multiples of ``28 = patch 14 × merge 2`` (:func:`qwen_smart_resize`); 14-px patches are
    merged 2 × 2, so one token covers 28 × 28 resized pixels, i.e. ``W / gw × H / gh``
    original pixels; :func:`qwen_token_boxes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CLIP_PATCH = 14
QWEN_PATCH = 14
QWEN_MERGE = 2
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280  # the Qwen2-VL image processor's default


def grid_boxes(
    origin_xy: tuple[float, float], cell_wh: tuple[float, float], grid_hw: tuple[int, int]
) -> np.ndarray:
    """float32 (gh*gw, 4) xyxy boxes of a regular grid whose top-left cell starts at ``origin_xy``
    and whose cells are ``cell_wh`` (width, height) pixels, row-major."""
    gh, gw = grid_hw
    ys, xs = np.mgrid[0:gh, 0:gw]
    x0 = origin_xy[0] + xs.ravel() * float(cell_wh[0])
    y0 = origin_xy[1] + ys.ravel() * float(cell_wh[1])
    return np.stack([x0, y0, x0 + cell_wh[0], y0 + cell_wh[1]], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------- pad (LLaVA-1.5)


def llava_pad_colour(image_mean: Sequence[float]) -> tuple[int, int, int]:
    """The fill colour of LLaVA-1.5's ``expand2square``: ``int(m * 255)`` per channel (truncated,
    as LLaVA does; CLIP's mean gives (122, 116, 104))."""
    r, g, b = (int(m * 255) for m in image_mean)
    return r, g, b


def square_padding(image_hw: tuple[int, int]) -> tuple[int, int]:
    """(pad_x, pad_y): where LLaVA-1.5 pastes an H × W image on its max(H, W) square."""
    h, w = image_hw
    side = max(h, w)
    return (side - w) // 2, (side - h) // 2


def expand_to_square(image_rgb: np.ndarray, fill: Sequence[int]) -> tuple[np.ndarray, int, int]:
    """uint8 (H, W, 3) → (uint8 (S, S, 3) with S = max(H, W), pad_x, pad_y): the image centred on
    a square of colour ``fill`` (LLaVA-1.5's ``expand2square``)."""
    h, w = image_rgb.shape[:2]
    side = max(h, w)
    px, py = square_padding((h, w))
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = np.asarray(fill, dtype=np.uint8)
    out[py : py + h, px : px + w] = image_rgb
    return out, px, py


def square_grid_boxes(
    image_hw: tuple[int, int], grid: int, pad_xy: tuple[float, float]
) -> np.ndarray:
    """float32 (grid², 4): a ``grid × grid`` token grid over a max(H, W) square whose origin is
    ``pad_xy`` pixels left of / above the image's origin."""
    cell = max(image_hw) / grid
    return grid_boxes((-float(pad_xy[0]), -float(pad_xy[1])), (cell, cell), (grid, grid))


def pad_token_boxes(image_hw: tuple[int, int], grid: int) -> np.ndarray:
    """float32 (grid², 4) token boxes for ``pad`` preprocessing (see the module docstring).

    Example: 60 × 80 (H × W), grid 4 → pad (0, 10), cells 20 px; token 0 is (0, -10, 20, 10)."""
    return square_grid_boxes(image_hw, grid, square_padding(image_hw))


# ---------------------------------------------------------------------------------- crop (CLIP)


def clip_resize_hw(image_hw: tuple[int, int], shortest_edge: int) -> tuple[int, int]:
    """(h', w') after CLIP's shortest-edge resize: the short side becomes ``shortest_edge``,
    the long side ``int(shortest_edge * long / short)`` (truncated, as transformers does)."""
    h, w = image_hw
    if w <= h:
        return int(shortest_edge * h / w), shortest_edge
    return shortest_edge, int(shortest_edge * w / h)


def crop_token_boxes(
    image_hw: tuple[int, int],
    grid: int,
    shortest_edge: int | None = None,
    crop_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """float32 (grid², 4) token boxes for ``crop`` preprocessing (see the module docstring).

    ``shortest_edge`` and ``crop_hw`` default to the CLIP input side ``grid * 14`` (224 for
    LISA-7B-v1's CLIP-L/14, 336 for the 336-px tower). The crop offset is an integer number of
    *resized* pixels, mapped back with the resize's own x and y scales.
    """
    side = grid * CLIP_PATCH
    se = int(shortest_edge or side)
    ch, cw = crop_hw or (side, side)
    h, w = image_hw
    rh, rw = clip_resize_hw(image_hw, se)
    sx, sy = w / rw, h / rh  # original pixels per resized pixel
    top, left = (rh - ch) // 2, (rw - cw) // 2
    return grid_boxes((left * sx, top * sy), (cw / grid * sx, ch / grid * sy), (grid, grid))


def crop_grid_boxes(image_hw: tuple[int, int], grid: int) -> np.ndarray:
    """The continuous idealisation of ``crop``: the central min(H, W) square in cells of
    min(H, W) / grid, ignoring the processor's integer rounding (off by up to ~0.6 px for
    small images). Models report the exact :func:`crop_token_boxes`."""
    h, w = image_hw
    side = min(h, w)
    return grid_boxes(((w - side) / 2, (h - side) / 2), (side / grid, side / grid), (grid, grid))


# ---------------------------------------------------------------------------------- Qwen2.5-VL


def qwen_smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_PATCH * QWEN_MERGE,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """(h', w'): multiples of ``factor`` closest to (H, W) with ``min_pixels ≤ h'·w' ≤ max_pixels``
    (Qwen2-VL's ``smart_resize``: round each side; if too large, scale both down by
    √(H·W / max_pixels) and floor; if too small, scale up by √(min_pixels / (H·W)) and ceil).

    Example: 60 × 80 → 56 × 84; 480 × 640 → 476 × 644 (a 17 × 23 token grid)."""
    if min(height, width) <= 0:
        raise ValueError(f"image size must be positive, got {height} x {width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {height} x {width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return int(h_bar), int(w_bar)


def qwen_token_grid(
    image_hw: tuple[int, int],
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
    patch: int = QWEN_PATCH,
    merge: int = QWEN_MERGE,
) -> tuple[int, int]:
    """(gh, gw): the merged-token grid Qwen2.5-VL gives an H × W image (``image_grid_thw / merge``)."""
    rh, rw = qwen_smart_resize(image_hw[0], image_hw[1], patch * merge, min_pixels, max_pixels)
    return rh // (patch * merge), rw // (patch * merge)


def qwen_token_boxes(image_hw: tuple[int, int], grid_hw: tuple[int, int]) -> np.ndarray:
    """float32 (gh*gw, 4): the stretch to (28·gh, 28·gw) undone, cells of W/gw × H/gh pixels.

    Example: 60 × 80 with grid (2, 3) → cells 26.67 × 30; the last token is (53.3, 30, 80, 60)."""
    h, w = image_hw
    gh, gw = grid_hw
    return grid_boxes((0.0, 0.0), (w / gw, h / gh), (gh, gw))


def resize_longest_hw(image_hw: tuple[int, int], longest: int) -> tuple[int, int]:
    """(h', w') with the longest side scaled to ``longest`` (up or down) and the other side
    ``int(side · scale)`` — the resize LENS applies before its processor on ReasonSeg."""
    h, w = image_hw
    scale = longest / max(h, w)
    return max(1, int(h * scale)), max(1, int(w * scale))
