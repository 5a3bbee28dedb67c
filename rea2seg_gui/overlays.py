"""Canvas overlay helpers: mask contours, the GT-vs-edited difference, rank labels and the
hover read-out. Everything is computed from the masks and the :class:`~core.trace.PipelineTrace`
the canvas is given (image pixels, ``x`` right, ``y`` down); nothing recomputes pipeline logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.store import Store, repo
from core.trace import PipelineTrace

# how the trace's candidate origins (core.trace.CandidateOrigin) are named in the app, and what
# each one is (shown as a tooltip)
ORIGIN_NAMES: dict[str, str] = {
    "multimask": "multimask",
    "semantic": "semantic",
    "amg": "AMG",
    "concept": "concept",
    "initial": "initial mask M",
}
ORIGIN_DESCRIPTIONS: dict[str, str] = {
    "multimask": "SAM's multimask output from the prompt embedding",
    "semantic": "semantic refinement: SAM prompted with the k-core points and the negative point",
    "amg": "automatic mask generator run from the seed points (placed on the top-k2 tokens)",
    "concept": "SAM 3 prompted with the answer's or the question's phrase: every instance and "
    "their union (not from the paper; stage-1 setting concept_origin)",
    "initial": "the segmenter's own prediction, M = L > 0",
}

# GT-vs-edited difference view: pixels the edit added / removed (unchanged pixels are hidden)
DIFF_ADDED = (0, 230, 0)
DIFF_REMOVED = (255, 0, 255)


def em() -> float:
    """Height of a line of the application font in logical pixels: the unit for overlay sizes."""
    return float(QtGui.QFontMetricsF(QtWidgets.QApplication.font()).height())


def contour_xy(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outlines of a bool (H, W) mask as one NaN-separated polyline (image pixels).

    Contours come from ``cv2.findContours`` (outer and hole boundaries, every vertex kept); a
    vertex at pixel index (x, y) is drawn at the pixel's centre (x + 0.5, y + 0.5), and each
    contour is closed back to its first vertex. Returns float64 ``xs, ys`` (empty when the
    mask is empty).
    """
    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.empty(0), np.empty(0)
    parts = []
    for c in contours:
        p = c.reshape(-1, 2).astype(np.float64) + 0.5
        parts.append(np.vstack([p, p[:1], [[np.nan, np.nan]]]))
    xy = np.vstack(parts)
    return xy[:, 0], xy[:, 1]


@dataclass(frozen=True)
class MaskDiff:
    """Edited mask against the ground truth: ``codes`` uint8 (H, W): 0 unchanged, 1 added by the
    edit (edited and not GT), 2 removed by the edit (GT and not edited); pixel counts."""

    codes: np.ndarray
    added: int
    removed: int


def mask_diff(gt: np.ndarray | None, edited: np.ndarray | None) -> MaskDiff | None:
    """The difference view's data, or ``None`` when either mask is missing or the sizes differ."""
    if gt is None or edited is None or gt.shape != edited.shape:
        return None
    gt = np.asarray(gt, dtype=bool)
    edited = np.asarray(edited, dtype=bool)
    added = edited & ~gt
    removed = gt & ~edited
    codes = added.view(np.uint8) | (removed.view(np.uint8) << 1)
    return MaskDiff(codes, int(np.count_nonzero(added)), int(np.count_nonzero(removed)))


def diff_lut() -> np.ndarray:
    """RGBA lookup table for :attr:`MaskDiff.codes`: unchanged transparent."""
    return np.array([[0, 0, 0, 0], [*DIFF_ADDED, 255], [*DIFF_REMOVED, 255]], dtype=np.uint8)


class ScreenLabels(QtWidgets.QGraphicsItem):
    """Many short texts anchored at image points, painted in one item at a fixed screen size
    (the application font; they do not grow when zooming in). ``anchors`` are image pixels;
    each text is drawn just right of its anchor, below it (or above it with ``above``), on a
    plate (RGBA, dark by default) for contrast."""

    def __init__(
        self,
        anchors_xy: list[tuple[float, float]],
        texts: list[str],
        color: tuple[int, int, int],
        bounds: QtCore.QRectF,
        parent: QtWidgets.QGraphicsItem | None = None,
        *,
        above: bool = False,
        plate: tuple[int, int, int, int] = (0, 0, 0, 170),
    ) -> None:
        super().__init__(parent)
        self.anchors = list(anchors_xy)
        self.texts = list(texts)
        self.color = QtGui.QColor(*color)
        self.above = above
        self.plate = QtGui.QColor(*plate)
        self._bounds = QtCore.QRectF(bounds)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API
        return self._bounds

    def paint(self, painter: QtGui.QPainter, _option, _widget=None) -> None:
        font = QtWidgets.QApplication.font()
        font.setPointSizeF(font.pointSizeF() * 0.8)
        fm = QtGui.QFontMetricsF(font)
        tr = painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setFont(font)
        pad = fm.height() * 0.1
        for (x, y), text in zip(self.anchors, self.texts, strict=True):
            p = tr.map(QtCore.QPointF(x, y))
            r = fm.boundingRect(text)
            top = p.y() - pad - fm.height() if self.above else p.y() + pad
            box = QtCore.QRectF(p.x() + pad, top, r.width() + 2 * pad, fm.height())
            painter.fillRect(box, self.plate)
            painter.setPen(self.color)
            painter.drawText(box, QtCore.Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


@dataclass(frozen=True)
class Readout:
    """What the trace says about one image pixel (the canvas's hover read-out)."""

    x: int
    y: int
    token: int | None = None  # flat token index whose box covers the pixel
    attention: float | None = None
    logit: float | None = None  # L at the pixel (None: not loaded / no trace)
    logits_known: bool = False
    topk1_rank: int | None = None  # 1-based position in the trace's top-k1 list
    topk2_rank: int | None = None
    seeds: tuple[tuple[int, bool], ...] = ()  # (seed index, in the k-core) of seeds on the token
    negative: bool = False  # the pixel is the negative point

    def text(self) -> str:
        parts = [f"x {self.x}, y {self.y}"]
        if self.attention is not None:
            parts.append(f"attention {self.attention:.4g} (token {self.token})")
        if self.logit is not None:
            parts.append(f"L {self.logit:+.3f}")
        elif not self.logits_known:
            parts.append("L not loaded")
        if self.topk1_rank is not None:
            parts.append(f"top-k1 #{self.topk1_rank}")
        if self.topk2_rank is not None:
            parts.append(f"top-k2 #{self.topk2_rank}")
        for i, core in self.seeds:
            parts.append(f"seed {i} {'in the k-core' if core else 'not in the k-core'}")
        if self.negative:
            parts.append("negative point")
        return "  ·  ".join(parts)


def token_at(boxes_xyxy: np.ndarray, x: int, y: int) -> int | None:
    """Flat index of the first token whose box (xyxy, exclusive max) holds pixel (x, y)'s centre."""
    cx, cy = x + 0.5, y + 0.5
    b = np.asarray(boxes_xyxy)
    hit = np.flatnonzero((b[:, 0] <= cx) & (cx < b[:, 2]) & (b[:, 1] <= cy) & (cy < b[:, 3]))
    return int(hit[0]) if hit.size else None


def readout(
    trace: PipelineTrace | None, logits: np.ndarray | None, x: float, y: float
) -> Readout | None:
    """Read the trace at image point (x, y) (continuous coordinates; the pixel is floor(x, y)).

    ``logits`` is L, float32 (H, W), when loaded (viewers load traces without it). Returns
    ``None`` outside the image or without a trace.
    """
    if trace is None:
        return None
    h, w = trace.image_hw
    px, py = int(np.floor(x)), int(np.floor(y))
    if not (0 <= px < w and 0 <= py < h):
        return None
    if logits is None:
        logits = trace.initial_logits
    logit = float(logits[py, px]) if logits is not None and logits.shape == (h, w) else None
    token = attention = None
    r1 = r2 = None
    seeds: list[tuple[int, bool]] = []
    if trace.attention is not None:
        token = token_at(trace.attention.token_boxes_xyxy, px, py)
        if token is not None:
            attention = float(np.asarray(trace.attention.token_map).ravel()[token])
    if trace.seeds is not None and token is not None:
        s = trace.seeds
        r1 = next((i + 1 for i, t in enumerate(s.topk1) if t.index == token), None)
        r2 = next((i + 1 for i, t in enumerate(s.topk2) if t.index == token), None)
        core = set(trace.graph.core_members) if trace.graph is not None else set()
        seeds = [(i, i in core) for i, tok in enumerate(s.seed_token) if tok == token]
    negative = False
    if trace.graph is not None:
        nx, ny = trace.graph.negative_xy
        negative = (int(nx), int(ny)) == (px, py)
    return Readout(
        px, py, token, attention, logit, logits is not None, r1, r2, tuple(seeds), negative
    )


def logits_loader(store: Store, run_id: int, sample_id: int) -> Callable[[], np.ndarray | None]:
    """A plain function that reads L (float32 (H, W)) of a saved trace; the canvas runs it in a
    worker thread on the first hover (traces are shown without L to switch samples fast)."""

    def load() -> np.ndarray | None:
        return store.run(lambda s: repo.load_logits(s, run_id, sample_id), write=False)

    return load
