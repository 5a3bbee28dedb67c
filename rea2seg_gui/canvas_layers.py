"""The canvas's layers: what each one is (title, shortcut, z-value, opacity, colour), the items
that draw a :class:`~core.trace.PipelineTrace`'s layers, and the legend rows for what is drawn.

Items are in image pixels (row-major, ``x`` right, ``y`` down); the canvas stacks them by its
layers' z-values. Nothing here recomputes pipeline logic: it draws what the trace holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.trace import PipelineTrace
from rea2seg_gui.heatmap import heatmap_rgba
from rea2seg_gui.image_item import ImageItem
from rea2seg_gui.legend import LegendEntry
from rea2seg_gui.overlays import DIFF_ADDED, DIFF_REMOVED, MaskDiff, ScreenLabels


@dataclass
class LayerSpec:
    key: str
    title: str
    shortcut: str
    z: float
    opacity: float
    color: tuple[int, int, int] | None = None


LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec("image", "Image", "I", 0, 1.0),
    LayerSpec("gt", "Ground truth", "1", 10, 1.0, (40, 220, 90)),
    LayerSpec("ignore", "Ignore region", "2", 11, 0.45, (160, 160, 160)),
    LayerSpec("attention", "Attention heatmap", "3", 5, 0.55),
    LayerSpec("topk1", "Top-k1 tokens", "4", 20, 0.9, (255, 200, 0)),
    LayerSpec("topk2", "Top-k2 tokens", "5", 21, 1.0, (255, 90, 0)),
    LayerSpec("seeds", "Seed points", "6", 30, 1.0, (0, 230, 255)),
    LayerSpec("graph", "k-core graph + negative point", "7", 31, 0.9, (255, 0, 200)),
    LayerSpec("candidate", "Selected candidate", "8", 12, 0.5, (60, 140, 255)),
    LayerSpec("edited", "Edited mask", "9", 13, 0.5, (255, 60, 60)),
    LayerSpec("initial", "Initial mask M (L > 0)", "0", 9, 0.45, (170, 90, 255)),
    LayerSpec("diff", "GT vs edited difference", "D", 14, 0.85),
    # the answer: the candidate marked ★ in the Candidates tab, or M when no score was readable
    LayerSpec("answer", "Answer (★)", "W", 15, 1.0, (255, 255, 255)),
    # the red / blue boxes a generated question's generator and verifier saw
    LayerSpec("prompt", "Prompt boxes", "Q", 32, 1.0),
)
LAYER_BY_KEY = {spec.key: spec for spec in LAYERS}
# layers drawn from a bool mask: colour chosen by the user, filled or outlined
MASK_LAYERS = ("gt", "ignore", "candidate", "edited", "initial", "answer")
# mask layers always drawn as their outline (they mark a mask drawn filled elsewhere)
OUTLINE_ONLY = ("answer",)
# the generator's prompt image (App. C): the target's box red, the other instances blue
PROMPT_TARGET, PROMPT_OTHER = (255, 0, 0), (40, 110, 255)
# layers drawn from the trace alone (the initial mask M is a mask layer)
TRACE_LAYERS = ("attention", "topk1", "topk2", "seeds", "graph")
NEGATIVE_COLOR = (255, 40, 40)
# mask layers drawn as an outline over a light fill (the target must stay visible whatever its
# colour), with the fill's alpha (0-255); not from the paper
OUTLINED_FILL = {"gt": 90}
# colours a layer in AUTO_COLOR picks from: the one farthest from the mean colour under the mask
# (none of them is another mask layer's default colour); not from the paper
CONTRAST_PALETTE: tuple[tuple[int, int, int], ...] = (
    (40, 220, 90),  # green
    (255, 0, 255),  # magenta
    (255, 220, 0),  # yellow
    (0, 255, 255),  # cyan
)
AUTO_COLOR = ("gt",)


def mask_lut(color: tuple[int, int, int], alpha: int = 255) -> np.ndarray:
    """2-entry RGBA lookup table: 0 → transparent, 1 → ``color`` (pixel-exact, no interpolation)."""
    return np.array([[0, 0, 0, 0], [*color, alpha]], dtype=np.uint8)


def contrast_color(
    image_rgb: np.ndarray | None,
    mask: np.ndarray | None,
    palette: tuple[tuple[int, int, int], ...] = CONTRAST_PALETTE,
) -> tuple[int, int, int]:
    """The colour of ``palette`` farthest (Euclidean RGB) from the mean colour of the pixels of
    ``image_rgb`` (uint8 (H, W, 3)) under ``mask`` (bool (H, W)); the first one when either is
    missing, the shapes differ or the mask is empty."""
    if image_rgb is None or mask is None or image_rgb.shape[:2] != mask.shape or not mask.any():
        return palette[0]
    px = np.asarray(image_rgb)[mask]
    mean = px[:, :3].mean(axis=0) if px.ndim == 2 else np.repeat(px.mean(), 3)
    d = [float(np.sum((np.asarray(c, float) - mean) ** 2)) for c in palette]
    return palette[int(np.argmax(d))]


@dataclass
class TraceItems:
    """The items that draw one trace, per layer key (in drawing order), and the attention
    heatmap's value range (min, max; ``None`` without attention) for its colour bar."""

    items: dict[str, list[QtWidgets.QGraphicsItem]] = field(
        default_factory=lambda: {k: [] for k in TRACE_LAYERS}
    )
    attention_range: tuple[float, float] | None = None


def trace_items(trace: PipelineTrace, unit: float) -> TraceItems:
    """Items for the trace's layers: attention, top-k1/k2 tokens (with rank labels), seeds, the
    k-core (members and the edges among them) and the negative point. ``unit``: the marker and
    text size in logical pixels (one line of the application font)."""
    out = TraceItems()
    hw = tuple(trace.image_hw)
    bounds = QtCore.QRectF(-hw[1], -hw[0], 3 * hw[1], 3 * hw[0])  # labels may overhang the image
    if trace.attention is not None:
        a = trace.attention
        rgba, out.attention_range = heatmap_rgba(a.token_map, a.token_boxes_xyxy, hw)
        if rgba is not None:
            out.items["attention"].append(ImageItem(rgba, levels=None))  # uint8 RGBA as it is
    if trace.seeds is not None:
        for key, toks in (("topk1", trace.seeds.topk1), ("topk2", trace.seeds.topk2)):
            color = LAYER_BY_KEY[key].color
            xs, ys, anchors = [], [], []
            for t in toks:
                # token boxes can reach into the model's padding: draw the part on the image
                x0, y0, x1, y1 = np.clip(t.box_xyxy, 0, [hw[1], hw[0], hw[1], hw[0]])
                xs += [x0, x1, x1, x0, x0, np.nan]
                ys += [y0, y0, y1, y1, y0, np.nan]
                # top-k1 ranks at the box's top-left corner, top-k2 ranks at its bottom-left
                anchors.append((float(x0), float(y0)) if key == "topk1" else (float(x0), float(y1)))
            out.items[key].append(
                pg.PlotDataItem(
                    xs, ys, pen=pg.mkPen(color, width=2 if key == "topk2" else 1), connect="finite"
                )
            )
            prefix, above = ("", False) if key == "topk1" else ("k2 #", True)
            out.items[key].append(
                ScreenLabels(
                    anchors,
                    [f"{prefix}{i + 1}" for i in range(len(toks))],
                    color,
                    bounds,
                    above=above,
                )
            )
        pts = np.asarray(trace.seeds.seeds_xy)
        if len(pts):
            # seeds are pixel indices: drawn at the pixel's centre
            out.items["seeds"].append(
                pg.ScatterPlotItem(
                    pts[:, 0] + 0.5,
                    pts[:, 1] + 0.5,
                    size=unit * 0.85,
                    pen=pg.mkPen("k", width=1.5),
                    brush=pg.mkBrush(*LAYER_BY_KEY["seeds"].color),
                )
            )
    if trace.graph is not None and trace.seeds is not None:
        out.items["graph"] = graph_items(trace, bounds, unit)
    return out


def graph_items(
    trace: PipelineTrace, bounds: QtCore.QRectF, unit: float
) -> list[QtWidgets.QGraphicsItem]:
    """The k-core: its members and only the edges between two members; the negative point.
    k and τ are in the legend."""
    g = trace.graph
    pts = np.asarray(trace.seeds.seeds_xy, dtype=float) + 0.5
    core = set(g.core_members)
    xs, ys = [], []
    for i, j, _ in g.edges:
        if i in core and j in core:
            xs += [pts[i, 0], pts[j, 0], np.nan]
            ys += [pts[i, 1], pts[j, 1], np.nan]
    color = LAYER_BY_KEY["graph"].color
    items: list[QtWidgets.QGraphicsItem] = []
    if xs:
        # width 1: long antialiased lines any wider take Qt's slow stroker (~25 ms a repaint)
        items.append(
            pg.PlotDataItem(xs, ys, pen=pg.mkPen((*color, 220), width=1), connect="finite")
        )
    if g.core_members:
        c = pts[g.core_members]
        items.append(
            pg.ScatterPlotItem(
                c[:, 0],
                c[:, 1],
                size=unit * 1.4,
                symbol="o",
                pen=pg.mkPen(color, width=2.5),
                brush=pg.mkBrush(None),
            )
        )
    nx, ny = g.negative_xy[0] + 0.5, g.negative_xy[1] + 0.5
    items.append(
        pg.ScatterPlotItem(
            [nx],
            [ny],
            size=unit * 1.6,
            symbol="x",
            pen=pg.mkPen("w", width=1.5),
            brush=pg.mkBrush(*NEGATIVE_COLOR),
        )
    )
    items.append(
        ScreenLabels(
            [(nx, ny)],
            [f"negative point (L = {g.negative_logit:.2f})"],
            (255, 255, 255),
            bounds,
            plate=(*NEGATIVE_COLOR, 220),
        )
    )
    return items


def legend_entries(
    drawn: Iterable[str],
    colors: dict[str, tuple[int, int, int]],
    outline_mode: bool,
    trace: PipelineTrace | None,
    diff: MaskDiff | None,
) -> list[LegendEntry]:
    """Legend rows for the layers in ``drawn`` (keys of shown layers with something drawn, in
    :data:`LAYERS` order): mask layers in their colour (``outline_mode``: as outlines), the
    trace's layers with their k1, k2, k, τ, and the difference view's pixel counts."""
    out: list[LegendEntry] = []
    t = trace
    for key in drawn:
        spec = LAYER_BY_KEY[key]
        if key in MASK_LAYERS:
            outline = outline_mode or key in OUTLINE_ONLY
            out.append(LegendEntry(spec.title, colors[key], "outline" if outline else "fill"))
        elif key == "prompt":
            out.append(LegendEntry("Prompt box: the target", PROMPT_TARGET, "box"))
            out.append(LegendEntry("Prompt box: other instances", PROMPT_OTHER, "box"))
        elif key == "attention":
            out.append(LegendEntry(spec.title, (252, 255, 164), "heat"))
        elif key in ("topk1", "topk2") and t is not None and t.seeds is not None:
            k = t.seeds.k1 if key == "topk1" else t.seeds.k2
            out.append(
                LegendEntry(f"{spec.title} (k{key[-1]} = {k}, rank labels)", spec.color, "box")
            )
        elif key == "seeds" and t is not None and t.seeds is not None:
            out.append(LegendEntry(f"Seed points ({len(t.seeds.seeds_xy)})", spec.color, "dot"))
        elif key == "graph" and t is not None and t.graph is not None:
            g = t.graph
            out.append(
                LegendEntry(
                    f"k-core members (k = {g.k}, {len(g.core_members)} points)", spec.color, "ring"
                )
            )
            out.append(LegendEntry(f"k-core edges (cosine ≥ τ = {g.tau})", spec.color, "line"))
            out.append(
                LegendEntry(
                    "Negative point" + (" (fallback: argmin L)" if g.negative_fallback else ""),
                    NEGATIVE_COLOR,
                    "cross",
                )
            )
        elif key == "diff" and diff is not None:
            out.append(LegendEntry(f"Added by the edit: {diff.added} px", DIFF_ADDED, "fill"))
            out.append(LegendEntry(f"Removed by the edit: {diff.removed} px", DIFF_REMOVED, "fill"))
    return out


def prompt_box_items(
    target_xyxy: Sequence[float] | None, others_xyxy: Sequence[Sequence[float]]
) -> list[QtWidgets.QGraphicsItem]:
    """The generator's prompt boxes as outlines (image pixels, exclusive max as
    :func:`core.benchmark.render.draw_prompt_boxes` draws them): the others blue, the target red
    on top."""
    items: list[QtWidgets.QGraphicsItem] = []
    for boxes, color, width in (
        (list(others_xyxy), PROMPT_OTHER, 2),
        ([] if target_xyxy is None else [target_xyxy], PROMPT_TARGET, 3),
    ):
        xs: list[float] = []
        ys: list[float] = []
        for x0, y0, x1, y1 in boxes:
            xs += [x0, x1, x1, x0, x0, np.nan]
            ys += [y0, y0, y1, y1, y0, np.nan]
        if xs:
            items.append(
                pg.PlotDataItem(xs, ys, pen=pg.mkPen(color, width=width), connect="finite")
            )
    return items
