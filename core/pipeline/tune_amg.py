"""Seed-point AMG (§4.2) split for re-tuning: the decode once per seed set, the filters again.

The libraries' generators decode every seed, then drop masks with predicted IoU ≤
``pred_iou_thresh`` and stability < ``stability_score_thresh`` (each only when its threshold is
above 0), then run box NMS at ``box_nms_thresh`` and return the survivors by decreasing predicted
IoU. :func:`decode_all` runs the generator's own batch step with both filters off (every decoded
mask with its box, in the order the generator's NMS receives them); :func:`refilter` then applies
the filters and the NMS the generator would have applied. Filtering the decoded masks afterwards
gives the same masks in the same order (the tests compare with the generator run directly); a
change of the thresholds then costs no decoder pass. The
stability offset and the batch size change the decoded values, so they are part of what
:func:`decode_all` is run with.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.models.base import AmgMask, SamBackend

NO_NMS = 1.0  # box IoU is at most 1: nothing is suppressed


def mask_box_xyxy(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The box the generators use for NMS: (min col, min row, max col, max row), inclusive, as
    ``batched_mask_to_box``; (0, 0, 0, 0) for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0.0, 0.0, 0.0, 0.0
    return float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])


def decode_all(
    sam: SamBackend,
    seeds_xy: np.ndarray,
    stability_score_offset: float,
    points_per_batch: int,
) -> tuple[list[AmgMask], np.ndarray]:
    """Every mask the generator decodes from ``seeds_xy`` (float (K, 2) pixel points), in the
    order its NMS receives them, with their boxes float32 (M, 4) xyxy (inclusive max).

    For the project's SAM and SAM2 backends the generators' batch step is done here as they do
    it (same batches, same calls on the predictor) without its filters and its RLE round trip;
    other backends get a generator run with the filters off and NMS at 1.0."""
    seeds = np.asarray(seeds_xy, dtype=np.float64).reshape(-1, 2)
    if not SeedBank.supported(sam):
        masks = sam.amg_from_seeds(
            seeds.astype(np.float32),
            {
                "pred_iou_thresh": 0.0,
                "stability_score_thresh": 0.0,
                "stability_score_offset": float(stability_score_offset),
                "box_nms_thresh": NO_NMS,
                "points_per_batch": int(points_per_batch),
            },
        )
        boxes = [mask_box_xyxy(m.mask) for m in masks]
        return masks, np.array(boxes, dtype=np.float32).reshape(-1, 4)
    return _batches(sam, seeds, stability_score_offset, points_per_batch)


def _batches(
    sam: Any, seeds: np.ndarray, offset: float, points_per_batch: int
) -> tuple[list[AmgMask], np.ndarray]:
    """The generators' batch step (``_process_batch`` of segment-anything's and sam2's automatic
    mask generators, one full-image crop, filters off), without its RLE round trip."""
    import torch

    from core.models.sam_backend import Sam2Backend, _seed_index

    image = sam._require()
    h, w = image.shape[:2]
    # the generator's own arithmetic: the seeds as a normalised grid, scaled back to pixels
    points = (seeds / np.array([w, h], dtype=np.float64)) * np.array((h, w))[None, ::-1]
    pred = sam.predictor
    if isinstance(sam, Sam2Backend):
        threshold = 0.0  # SAM2AutomaticMaskGenerator's default mask_threshold
    else:
        threshold = float(sam.sam.mask_threshold)
    masks: list[AmgMask] = []
    boxes: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(points), int(points_per_batch)):
            batch = points[start : start + int(points_per_batch)]
            if isinstance(sam, Sam2Backend):
                pts = torch.as_tensor(batch, dtype=torch.float32, device=pred.device)
                in_points = pred._transforms.transform_coords(pts, normalize=True, orig_hw=(h, w))
                labels = torch.ones(in_points.shape[0], dtype=torch.int, device=in_points.device)
                logits, iou, _ = pred._predict(
                    in_points[:, None, :],
                    labels[:, None],
                    multimask_output=True,
                    return_logits=True,
                )
                pts = pts.repeat_interleave(logits.shape[1], dim=0)
            else:
                in_points = torch.as_tensor(
                    pred.transform.apply_coords(batch, (h, w)), device=pred.device
                )
                labels = torch.ones(in_points.shape[0], dtype=torch.int, device=in_points.device)
                logits, iou, _ = pred.predict_torch(
                    in_points[:, None, :],
                    labels[:, None],
                    multimask_output=True,
                    return_logits=True,
                )
                pts = torch.as_tensor(batch.repeat(logits.shape[1], axis=0))
            logits, iou = logits.flatten(0, 1), iou.flatten(0, 1)
            stab = stability_scores(logits, threshold, float(offset))
            binary_np = (logits > threshold).cpu().numpy()
            boxes.append(mask_boxes(binary_np))
            iou_np = iou.float().cpu().numpy()
            for i in range(binary_np.shape[0]):
                masks.append(
                    AmgMask(
                        mask=binary_np[i],
                        predicted_iou=float(iou_np[i]),
                        stability=float(stab[i]),
                        seed_index=_seed_index(pts[i].cpu().numpy(), seeds),
                    )
                )
    return masks, (np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32))


def stability_scores(logits: Any, mask_threshold: float, offset: float) -> np.ndarray:
    """``calculate_stability_score`` of segment-anything and sam2 (the same formula), float32
    (M,) for logits torch (M, H, W): the pixels above ``mask_threshold + offset`` over those above
    ``mask_threshold - offset``. The same comparisons on the tensor, then the pixels counted on
    the bit-packed masks instead of summed as int16 rows (the counts and the float32 division
    are the same; tested against both libraries), about 3× faster on CPU."""
    n = int(logits.shape[0])
    if n == 0:
        return np.zeros(0, np.float32)

    def count(above: Any) -> np.ndarray:
        packed = np.packbits(above.cpu().numpy().reshape(n, -1), axis=1)
        return np.bitwise_count(packed).sum(axis=1, dtype=np.int64).astype(np.float32)

    inter = count(logits > (mask_threshold + offset))
    union = count(logits > (mask_threshold - offset))
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """``batched_mask_to_box`` of segment-anything and sam2 for bool (M, H, W): float32 (M, 4)
    (min col, min row, max col, max row) inclusive, zeros for an empty mask (tested against
    both libraries); computed on the rows and columns that hold a pixel."""
    m = np.asarray(masks, dtype=bool)
    n, h, w = m.shape
    rows, cols = m.any(axis=2), m.any(axis=1)
    out = np.zeros((n, 4), np.float32)
    full = rows.any(axis=1)
    if full.any():
        r, c = rows[full], cols[full]
        out[full, 0] = c.argmax(axis=1)
        out[full, 1] = r.argmax(axis=1)
        out[full, 2] = w - 1 - c[:, ::-1].argmax(axis=1)
        out[full, 3] = h - 1 - r[:, ::-1].argmax(axis=1)
    return out


def refilter(
    masks: list[AmgMask],
    boxes: np.ndarray,
    pred_iou_thresh: float,
    stability_score_thresh: float,
    box_nms_thresh: float,
) -> list[AmgMask]:
    """The generator's filters and box NMS on :func:`decode_all`'s output; best first."""
    order = kept_indices(
        np.array([m.predicted_iou for m in masks], dtype=np.float32),
        np.array([m.stability for m in masks], dtype=np.float32),
        boxes,
        pred_iou_thresh,
        stability_score_thresh,
        box_nms_thresh,
    )
    return [masks[i] for i in order]


def kept_indices(
    iou: np.ndarray,
    stability: np.ndarray,
    boxes: np.ndarray,
    pred_iou_thresh: float,
    stability_score_thresh: float,
    box_nms_thresh: float,
) -> list[int]:
    """Indices of the masks the generator keeps, best first, from their predicted IoU and
    stability float32 (M,) and boxes float32 (M, 4). The comparisons are made in float32, as the
    generators make them on their tensors."""
    import torch
    from torchvision.ops.boxes import batched_nms

    iou = np.asarray(iou, dtype=np.float32)
    stability = np.asarray(stability, dtype=np.float32)
    keep = np.ones(len(iou), dtype=bool)
    if pred_iou_thresh > 0.0:
        keep &= iou > np.float32(pred_iou_thresh)
    if stability_score_thresh > 0.0:
        keep &= stability >= np.float32(stability_score_thresh)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return []
    kept = batched_nms(
        torch.from_numpy(np.ascontiguousarray(boxes[idx])),
        torch.from_numpy(iou[idx]),
        torch.zeros(idx.size, dtype=torch.int64),
        iou_threshold=float(box_nms_thresh),
    )
    return [int(idx[i]) for i in kept.tolist()]


@dataclass(frozen=True)
class DecodedMasks:
    """:func:`decode_all`'s output kept compact for re-filtering: predicted IoU and stability
    float32 (M,), boxes float32 (M, 4), seed indices int (M,) and the masks bit-packed
    (``np.packbits`` of each flattened (H, W) mask: H×W/8 bytes each, 1/8 of a bool mask)."""

    iou: np.ndarray
    stability: np.ndarray
    boxes: np.ndarray
    seed_index: np.ndarray
    packed: np.ndarray
    hw: tuple[int, int]

    @classmethod
    def pack(cls, masks: list[AmgMask], boxes: np.ndarray, hw: tuple[int, int]) -> DecodedMasks:
        n = int(hw[0]) * int(hw[1])
        packed = (
            np.stack([np.packbits(m.mask.reshape(-1)) for m in masks])
            if masks
            else np.zeros((0, (n + 7) // 8), np.uint8)
        )
        return cls(
            np.array([m.predicted_iou for m in masks], dtype=np.float32),
            np.array([m.stability for m in masks], dtype=np.float32),
            np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.array([m.seed_index for m in masks], dtype=np.int64),
            packed,
            (int(hw[0]), int(hw[1])),
        )

    def mask(self, i: int) -> np.ndarray:
        """Mask ``i`` as bool (H, W)."""
        h, w = self.hw
        return np.unpackbits(self.packed[i], count=h * w).reshape(h, w).astype(bool)

    def refilter(
        self, pred_iou_thresh: float, stability_score_thresh: float, box_nms_thresh: float
    ) -> list[AmgMask]:
        """:func:`refilter` on the kept masks, unpacking only the survivors."""
        order = kept_indices(
            self.iou,
            self.stability,
            self.boxes,
            pred_iou_thresh,
            stability_score_thresh,
            box_nms_thresh,
        )
        return [
            AmgMask(
                mask=self.mask(i),
                predicted_iou=float(self.iou[i]),
                stability=float(self.stability[i]),
                seed_index=int(self.seed_index[i]),
            )
            for i in order
        ]


SEED_BANK_BYTES = 512 * 2**20
"""Most bytes of packed masks a :class:`SeedBank` keeps (not from the paper; 512 MiB holds every
centre seed of a 24×24 token grid on a 1600×1200 image). The least recently used seeds go first."""


@dataclass(frozen=True)
class _SeedEntry:
    iou: np.ndarray  # float32 (m,)
    stability: np.ndarray  # float32 (m,)
    boxes: np.ndarray  # float32 (m, 4)
    packed: np.ndarray  # uint8 (m, ceil(H*W/8))

    @property
    def nbytes(self) -> int:
        return int(self.packed.nbytes + self.boxes.nbytes + 2 * self.iou.nbytes)


class SeedBank:
    """Each seed's AMG decode kept once, so that a new seed set decodes only its new seeds.

    The seeded AMG decodes every seed on its own (one point per prompt; a seed's masks do not
    depend on the other seeds), so the decode of a seed set is the decodes of its seeds, in the
    order of the set. Entries are keyed by the seed pixel ``(x, y)`` and the stability offset
    (the only other input of a decode). For the project's SAM and SAM2 backends only
    (:func:`supported`): their batch step yields each seed's masks together.

    A seed decoded in another batch than the generator would use differs only by the decoder's
    float rounding between batch sizes (the difference ``points_per_batch`` makes; the tests
    bound it at 1e-6 in predicted IoU and 0.1 % of a mask's pixels), so a seed set assembled
    from the bank equals :func:`decode_all` on it up to that rounding; a set decoded in one go
    equals it exactly.
    """

    def __init__(self, hw: tuple[int, int], max_bytes: int = SEED_BANK_BYTES) -> None:
        self.hw = (int(hw[0]), int(hw[1]))
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple[float, float, float], _SeedEntry] = OrderedDict()
        self.nbytes = 0
        self.decoded = 0  # seeds this bank has decoded (for tests and the bench)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def supported(sam: Any) -> bool:
        """The project's SAM and SAM2 backends, whose batch step :func:`decode_all` does itself."""
        from core.models.sam_backend import Sam2Backend, SamV1Backend

        return isinstance(sam, SamV1Backend | Sam2Backend)

    @staticmethod
    def _key(xy: np.ndarray, offset: float) -> tuple[float, float, float]:
        return float(xy[0]), float(xy[1]), float(offset)

    def missing(self, seeds_xy: np.ndarray, offset: float) -> list[int]:
        """Positions in ``seeds_xy`` (float (K, 2)) whose decode is not held (first of repeats)."""
        out: list[int] = []
        seen: set[tuple[float, float, float]] = set()
        for i, xy in enumerate(np.asarray(seeds_xy).reshape(-1, 2)):
            k = self._key(xy, offset)
            if k not in self._entries and k not in seen:
                out.append(i)
                seen.add(k)
        return out

    def decode(self, sam: Any, seeds_xy: np.ndarray, offset: float, points_per_batch: int) -> int:
        """Decode the seeds of ``seeds_xy`` not held yet (in their order, ``points_per_batch``
        per decoder call) and keep them; returns how many were decoded."""
        seeds = np.asarray(seeds_xy, dtype=np.float64).reshape(-1, 2)
        todo = seeds[self.missing(seeds, offset)]
        if len(todo) == 0:
            return 0
        masks, boxes = _batches(sam, todo, offset, points_per_batch)
        per_seed: dict[int, list[int]] = {}
        for j, m in enumerate(masks):
            per_seed.setdefault(m.seed_index, []).append(j)
        for s, rows in per_seed.items():
            packed = np.stack([np.packbits(masks[j].mask.reshape(-1)) for j in rows])
            self._put(
                self._key(todo[s], offset),
                _SeedEntry(
                    np.array([masks[j].predicted_iou for j in rows], dtype=np.float32),
                    np.array([masks[j].stability for j in rows], dtype=np.float32),
                    np.asarray(boxes[rows], dtype=np.float32).reshape(-1, 4),
                    packed,
                ),
            )
        self.decoded += len(todo)
        return len(todo)

    def _put(self, key: tuple[float, float, float], entry: _SeedEntry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._entries[key] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            _, gone = self._entries.popitem(last=False)
            self.nbytes -= gone.nbytes

    def full(self) -> bool:
        return self.nbytes >= self.max_bytes

    def assemble(self, seeds_xy: np.ndarray, offset: float) -> DecodedMasks | None:
        """The decode of ``seeds_xy`` from held entries, in the generator's order (seed by seed,
        each seed's masks in decoder order), seed indices as :func:`decode_all` gives them (the
        first of repeated seeds); ``None`` when a seed is not held."""
        seeds = np.asarray(seeds_xy).reshape(-1, 2)
        first: dict[tuple[float, float, float], int] = {}
        parts: list[tuple[int, _SeedEntry]] = []
        for i, xy in enumerate(seeds):
            k = self._key(xy, offset)
            e = self._entries.get(k)
            if e is None:
                return None
            self._entries.move_to_end(k)
            parts.append((first.setdefault(k, i), e))
        if not parts:
            return DecodedMasks.pack([], np.zeros((0, 4), np.float32), self.hw)
        return DecodedMasks(
            np.concatenate([e.iou for _, e in parts]),
            np.concatenate([e.stability for _, e in parts]),
            np.concatenate([e.boxes for _, e in parts]),
            np.concatenate([np.full(len(e.iou), i, np.int64) for i, e in parts]),
            np.concatenate([e.packed for _, e in parts]),
            self.hw,
        )

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
