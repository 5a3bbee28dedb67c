"""Binary masks and their COCO compressed-RLE form.

Masks in ``core`` are ``np.ndarray`` of dtype ``bool`` and shape ``(H, W)`` at the image's
original resolution. On disk and in the store they are COCO compressed RLE dictionaries
``{"size": [h, w], "counts": str}`` (pycocotools, column-major run lengths).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RLE = dict[str, Any]
MAX_PIXELS = 1 << 26  # 8192 x 8192, = core.images.MAX_IMAGE_PIXELS: a mask is as large as its image
MAX_RLE_CHARS = 1 << 23  # 8 MiB of counts; longer strings are refused before any decoding


class MaskError(ValueError):
    """A mask or RLE that cannot be used (wrong shape, wrong size, malformed counts)."""


def as_bool_mask(mask: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
    """Validate ``mask`` as a 2-D binary mask and return it as ``bool`` (H, W).

    Accepts bool or integer arrays holding only 0/1. ``hw`` checks the size ``(H, W)``.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise MaskError(f"mask must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer):
            raise MaskError(f"mask must be bool or integer 0/1, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise MaskError("integer mask must hold only 0 and 1")
        arr = arr.astype(bool)
    if hw is not None and tuple(arr.shape) != tuple(hw):
        raise MaskError(
            f"mask size {arr.shape[0]}x{arr.shape[1]} (HxW) != image size {hw[0]}x{hw[1]}"
        )
    return arr


def encode_rle(mask: np.ndarray) -> RLE:
    """Encode a bool (H, W) mask as COCO compressed RLE with ``counts`` as ``str``."""
    from pycocotools import mask as mask_utils  # lazy: keeps ``import core`` light

    arr = as_bool_mask(mask)
    rle = mask_utils.encode(np.asfortranarray(arr.astype(np.uint8)))
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": rle["counts"].decode("ascii"),
    }


def decode_rle(rle: RLE, hw: tuple[int, int] | None = None, *, validate: bool = True) -> np.ndarray:
    """Decode COCO compressed RLE (``counts`` str or bytes) to a bool (H, W) mask.

    Raises :class:`MaskError` for malformed input or when ``hw`` does not match ``size``; sizes
    over :data:`MAX_PIXELS` and counts over :data:`MAX_RLE_CHARS` are refused before decoding.
    ``validate=False`` skips the run-length check, for RLE this program wrote itself.
    """
    from pycocotools import mask as mask_utils

    h, w, counts_b = _checked(rle, hw, validate)
    arr = mask_utils.decode({"size": [h, w], "counts": counts_b})
    # 0/1 uint8 reinterpreted as bool without a copy; the array stays in pycocotools'
    # column-major order (callers that hand masks to OpenCV make them contiguous first)
    return arr.view(bool)


def check_rle(rle: RLE, hw: tuple[int, int] | None = None) -> None:
    """Raise :class:`MaskError` where :func:`decode_rle` would, without decoding the mask (the
    checks read the ``counts`` string only)."""
    _checked(rle, hw, True)


def _checked(rle: RLE, hw: tuple[int, int] | None, validate: bool) -> tuple[int, int, bytes]:
    """(h, w, counts as bytes) of a well-formed RLE; :class:`MaskError` otherwise."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise MaskError("RLE must be a dict with 'size' and 'counts'")
    size = rle["size"]
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        shown = (
            ascii(size)
            if isinstance(size, list | tuple) and len(size) <= 4
            else type(size).__name__
        )
        raise MaskError(f"RLE 'size' must be [h, w] of non-negative ints, got {shown[:60]}")
    h, w = int(size[0]), int(size[1])
    if h * w > MAX_PIXELS:
        raise MaskError(f"mask size {h}x{w} is larger than the {MAX_PIXELS}-pixel limit")
    if hw is not None and (h, w) != tuple(hw):
        raise MaskError(f"mask size {h}x{w} (HxW) != image size {hw[0]}x{hw[1]}")
    counts = rle["counts"]
    if isinstance(counts, str | bytes) and len(counts) > MAX_RLE_CHARS:
        raise MaskError(
            f"RLE 'counts' of {len(counts)} characters is over the {MAX_RLE_CHARS}-character limit"
        )
    if isinstance(counts, str):
        counts_b = counts.encode("ascii", errors="strict") if counts.isascii() else None
        if counts_b is None:
            raise MaskError("RLE 'counts' must be ASCII")
    elif isinstance(counts, bytes):
        counts_b = counts
    else:
        raise MaskError(
            "RLE 'counts' must be a compressed string (uncompressed lists are not accepted)"
        )
    if validate and not _counts_cover(counts_b, h * w):
        raise MaskError(f"RLE 'counts' do not describe exactly {h}x{w} pixels")
    return h, w, counts_b


def _counts_cover(counts: bytes, n_pixels: int) -> bool:
    """True if compressed COCO counts decode to runs summing to ``n_pixels``.

    pycocotools reads past malformed strings silently; this mirrors its LEB128-like
    decoding (``rleFrString``) to reject truncated or garbage counts before decoding.
    """
    runs: list[int] = []
    p = 0
    n = len(counts)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                return False
            c = counts[p] - 48
            if c < 0 or c > 63:
                return False
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return False
        runs.append(x)
    return sum(runs) == n_pixels


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of equal shape; two empty masks have IoU 1.0 by convention here."""
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(inter) / float(union)


def bbox_xyxy(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x0, y0, x1, y1)`` in pixels, exclusive max; ``None`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
