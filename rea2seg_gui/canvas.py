"""The image canvas: the image plus trace overlays, each a separate item stacked by z-value.

Everything is drawn in image pixels (row-major, y down, aspect locked); masks are shown
pixel-exact (no interpolation). The canvas only draws what it is given: the trace and the
masks come from ``core``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import PipelineTrace

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


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
    LayerSpec("gt", "Ground truth", "1", 10, 0.45, (40, 220, 90)),
    LayerSpec("ignore", "Ignore region", "2", 11, 0.45, (160, 160, 160)),
    LayerSpec("attention", "Attention heatmap", "3", 5, 0.55),
    LayerSpec("topk1", "Top-k1 tokens", "4", 20, 0.9, (255, 200, 0)),
    LayerSpec("topk2", "Top-k2 tokens", "5", 21, 1.0, (255, 90, 0)),
    LayerSpec("seeds", "Seed points", "6", 30, 1.0, (0, 230, 255)),
    LayerSpec("graph", "k-core graph + negative point", "7", 31, 0.9, (255, 0, 200)),
    LayerSpec("candidate", "Selected candidate", "8", 12, 0.5, (60, 140, 255)),
    LayerSpec("edited", "Edited mask", "9", 13, 0.5, (255, 60, 60)),
    LayerSpec("initial", "Initial mask (L > 0)", "0", 9, 0.4, (255, 255, 255)),
)
LAYER_BY_KEY = {spec.key: spec for spec in LAYERS}


def mask_lut(color: tuple[int, int, int]) -> np.ndarray:
    """2-entry RGBA lookup table: 0 → transparent, 1 → ``color`` (pixel-exact, no interpolation)."""
    return np.array([[0, 0, 0, 0], [*color, 255]], dtype=np.uint8)


def heatmap_image(token_map: np.ndarray, boxes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """float32 (H, W): each token's value painted over its box (NaN outside every box)."""
    h, w = hw
    out = np.full((h, w), np.nan, dtype=np.float32)
    vals = token_map.ravel()
    for v, (x0, y0, x1, y1) in zip(vals, boxes, strict=True):
        xa, ya = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        xb, yb = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
        if xb > xa and yb > ya:
            out[ya:yb, xa:xb] = v
    return out


TOOL_Z = 50  # tool feedback (polygon in progress, SAM clicks) above every layer


class Canvas(pg.GraphicsLayoutWidget):
    """Image view with toggleable layers. Emits ``clicked(x, y, button)`` in image pixels
    (button 1 = left, 2 = right), ``double_clicked(x, y)``, and ``dragged(x0, y0, x1, y1)`` /
    ``drag_finished()`` while the left button drags with a paint tool active."""

    clicked = QtCore.Signal(float, float, int)
    double_clicked = QtCore.Signal(float, float)
    dragged = QtCore.Signal(float, float, float, float)
    drag_finished = QtCore.Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground((30, 30, 34))
        self.view: pg.ViewBox = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(autoDownsample=False)
        self.image_item.setZValue(0)
        self.view.addItem(self.image_item)
        self.items: dict[str, list[QtGui.QGraphicsItem]] = {spec.key: [] for spec in LAYERS}
        self.items["image"] = [self.image_item]  # permanent: never cleared, only shown / hidden
        self.visible: dict[str, bool] = {
            spec.key: spec.key in ("image", "gt", "attention", "seeds", "candidate", "edited") for spec in LAYERS
        }
        self.opacity: dict[str, float] = {spec.key: spec.opacity for spec in LAYERS}
        self.paint_mode = False
        self._last_drag: tuple[float, float] | None = None
        self.hw: tuple[int, int] | None = None
        self.attention_range: tuple[float, float] | None = None
        self.image_item.mouseClickEvent = self._on_click
        self.image_item.mouseDragEvent = self._on_drag
        self.image_item.hoverEvent = self._on_hover
        # outline of the brush under the pointer (paint tools only), in image pixels
        self.brush_radius = 0.0
        self.brush_outline = QtWidgets.QGraphicsEllipseItem()
        self.brush_outline.setPen(pg.mkPen((255, 255, 255), width=1.5, cosmetic=True))
        self.brush_outline.setZValue(TOOL_Z + 2)
        self.brush_outline.setVisible(False)
        self.view.addItem(self.brush_outline)
        # legend of the attention heatmap: shown beside the view while that layer is drawn
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("inferno"), interactive=False,
                                        width=14, label="attention", colorMapMenu=False, rounding=1e-9)
        # fixed width: bar, value axis and title; taken out of the layout while hidden so that
        # the image gets the whole width
        self.colorbar.axis.setWidth(64)  # room for values such as 0.02635 (narrow attention ranges)
        self.colorbar.setFixedWidth(105)
        self.colorbar.setVisible(False)
        self._colorbar_in_layout = False
        # tool feedback, not layers: the polygon being drawn and the SAM clicks of the session
        self.polygon_item = pg.PlotDataItem(pen=pg.mkPen((255, 255, 0), width=2, style=QtCore.Qt.PenStyle.DashLine),
                                            symbol="s", symbolSize=6, symbolBrush=(255, 255, 0))
        self.clicks_item = pg.ScatterPlotItem(size=13, pen=pg.mkPen("w", width=1.5))
        for z, it in enumerate((self.polygon_item, self.clicks_item)):
            it.setZValue(TOOL_Z + z)
            self.view.addItem(it)

    # -- mouse ------------------------------------------------------------------------------
    def _on_click(self, ev) -> None:
        p = ev.pos()
        if ev.double():
            self.double_clicked.emit(float(p.x()), float(p.y()))
        else:
            button = 1 if ev.button() == QtCore.Qt.MouseButton.LeftButton else 2
            self.clicked.emit(float(p.x()), float(p.y()), button)
        ev.accept()

    def _on_hover(self, ev) -> None:
        if ev.isExit() or not self.paint_mode:
            self.brush_outline.setVisible(False)
            return
        self.show_brush_at(ev.pos().x(), ev.pos().y())

    def show_brush_at(self, x: float, y: float) -> None:
        """Outline the brush (radius ``brush_radius`` px) centred on image pixel (x, y)."""
        r = self.brush_radius + 0.5
        self.brush_outline.setRect(QtCore.QRectF(round(x) + 0.5 - r, round(y) + 0.5 - r, 2 * r, 2 * r))
        self.brush_outline.setVisible(self.paint_mode)

    def _on_drag(self, ev) -> None:
        if not self.paint_mode or ev.button() != QtCore.Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p = ev.pos()
        self.show_brush_at(p.x(), p.y())
        if ev.isStart():
            self._last_drag = (p.x(), p.y())
        if self._last_drag is not None:
            self.dragged.emit(self._last_drag[0], self._last_drag[1], p.x(), p.y())
        self._last_drag = (p.x(), p.y())
        if ev.isFinish():
            self._last_drag = None
            self.drag_finished.emit()

    # -- layers -----------------------------------------------------------------------------
    def _clear(self, key: str) -> None:
        if key == "image":
            return
        for it in self.items[key]:
            self.view.removeItem(it)
        self.items[key] = []

    def _add(self, key: str, item: QtGui.QGraphicsItem) -> None:
        spec = LAYER_BY_KEY[key]
        item.setZValue(spec.z)
        item.setOpacity(self.opacity[key])
        item.setVisible(self.visible[key])
        self.view.addItem(item)
        self.items[key].append(item)

    def _show_colorbar(self, on: bool) -> None:
        # shown before it joins the layout: an item laid out while hidden gets zero-width axes
        if on and not self._colorbar_in_layout:
            self.colorbar.setVisible(True)
            self.addItem(self.colorbar, row=0, col=1)
        elif not on and self._colorbar_in_layout:
            self.removeItem(self.colorbar)
        self._colorbar_in_layout = on
        self.colorbar.setVisible(on)

    def set_layer_visible(self, key: str, on: bool) -> None:
        self.visible[key] = on
        if key == "image":
            # hidden by opacity, not setVisible: a hidden item would stop receiving the clicks and
            # drags the tools need
            self.image_item.setOpacity(self.opacity[key] if on else 0.0)
            return
        for it in self.items[key]:
            it.setVisible(on)
        if key == "attention":
            self._show_colorbar(on and self.attention_range is not None)

    def set_layer_opacity(self, key: str, value: float) -> None:
        self.opacity[key] = value
        if key == "image" and not self.visible[key]:
            return
        for it in self.items[key]:
            it.setOpacity(value)

    def set_image(self, image_rgb: np.ndarray) -> None:
        first = self.hw != image_rgb.shape[:2]
        self.hw = image_rgb.shape[:2]
        self.image_item.setImage(image_rgb, levels=(0, 255))
        for key in self.items:
            self._clear(key)
        self.set_polygon(None)
        self.set_clicks([])
        if first:
            self.fit()

    def set_polygon(self, points_xy: list[tuple[float, float]] | None) -> None:
        """Show the polygon being drawn (closed back to its first vertex), or hide it."""
        if not points_xy:
            self.polygon_item.setData([], [])
            return
        pts = [*points_xy, points_xy[0]] if len(points_xy) > 2 else list(points_xy)
        self.polygon_item.setData([p[0] for p in pts], [p[1] for p in pts])

    def set_clicks(self, clicks: list[tuple[float, float, int]]) -> None:
        """Show SAM clicks: label 1 (positive) green, 0 (negative) red."""
        self.clicks_item.setData(
            [c[0] for c in clicks], [c[1] for c in clicks],
            brush=[pg.mkBrush((30, 210, 60) if c[2] else (230, 40, 40)) for c in clicks],
            symbol=["o" if c[2] else "x" for c in clicks],
        )

    def fit(self) -> None:
        if self.hw:
            self.view.setRange(QtCore.QRectF(0, 0, self.hw[1], self.hw[0]), padding=0.02)

    def set_mask(self, key: str, mask: np.ndarray | None) -> None:
        """Replace a mask layer (gt, ignore, candidate, edited, initial)."""
        self._clear(key)
        if mask is None:
            return
        # the bool mask is drawn through a lookup table: no RGBA copy of the image is built
        item = pg.ImageItem(np.asarray(mask, dtype=bool).view(np.uint8), levels=(0, 1), lut=mask_lut(LAYER_BY_KEY[key].color))
        self._add(key, item)

    def update_mask(self, key: str, mask: np.ndarray) -> None:
        """Fast in-place update of an existing mask layer (painting)."""
        if not self.items[key]:
            self.set_mask(key, mask)
            return
        self.items[key][0].setImage(np.asarray(mask, dtype=bool).view(np.uint8), levels=(0, 1))

    def set_trace(self, trace: PipelineTrace | None) -> None:
        """Draw the trace's layers: attention, top-k1/k2 tokens, seeds, k-core graph, negative point."""
        for key in ("attention", "topk1", "topk2", "seeds", "graph", "initial"):
            self._clear(key)
        self.attention_range = None
        self._show_colorbar(False)
        if trace is None:
            return
        hw = tuple(trace.image_hw)
        if trace.initial_mask is not None:
            self.set_mask("initial", trace.initial_mask)
        if trace.attention is not None:
            a = trace.attention
            heat = heatmap_image(a.token_map, a.token_boxes_xyxy, hw)
            lo, hi = float(np.nanmin(heat)), float(np.nanmax(heat))
            self.attention_range = (lo, hi)
            norm = np.nan_to_num((heat - lo) / (hi - lo + 1e-12), nan=0.0)
            rgba = pg.colormap.get("inferno").map(norm, mode="byte")
            rgba[np.isnan(heat), 3] = 0
            self._add("attention", pg.ImageItem(rgba, levels=(0, 255)))
            self.colorbar.setLevels((lo, hi if hi > lo else lo + 1e-9))
            self._show_colorbar(self.visible["attention"])
        if trace.seeds is not None:
            for key, toks in (("topk1", trace.seeds.topk1), ("topk2", trace.seeds.topk2)):
                color = LAYER_BY_KEY[key].color
                xs, ys = [], []
                for t in toks:
                    # token boxes can reach into the model's padding: draw the part on the image
                    x0, y0, x1, y1 = np.clip(t.box_xyxy, 0, [hw[1], hw[0], hw[1], hw[0]])
                    xs += [x0, x1, x1, x0, x0, np.nan]
                    ys += [y0, y0, y1, y1, y0, np.nan]
                self._add(key, pg.PlotDataItem(xs, ys, pen=pg.mkPen(color, width=2 if key == "topk2" else 1), connect="finite"))
            pts = np.asarray(trace.seeds.seeds_xy)
            if len(pts):
                self._add("seeds", pg.ScatterPlotItem(pts[:, 0], pts[:, 1], size=7, pen=pg.mkPen("k"),
                                                      brush=pg.mkBrush(*LAYER_BY_KEY["seeds"].color)))
        if trace.graph is not None and trace.seeds is not None:
            g = trace.graph
            pts = np.asarray(trace.seeds.seeds_xy)
            xs, ys = [], []
            for i, j, _ in g.edges:
                xs += [pts[i, 0], pts[j, 0], np.nan]
                ys += [pts[i, 1], pts[j, 1], np.nan]
            color = LAYER_BY_KEY["graph"].color
            if xs:
                self._add("graph", pg.PlotDataItem(xs, ys, pen=pg.mkPen((*color, 140), width=1), connect="finite"))
            if g.core_members:
                c = pts[g.core_members]
                self._add("graph", pg.ScatterPlotItem(c[:, 0], c[:, 1], size=11, symbol="o", pen=pg.mkPen(color, width=2),
                                                      brush=pg.mkBrush(None)))
            nx, ny = g.negative_xy
            self._add("graph", pg.ScatterPlotItem([nx], [ny], size=14, symbol="x", pen=pg.mkPen((255, 40, 40), width=3),
                                                  brush=pg.mkBrush(255, 40, 40)))
            label = pg.TextItem(f"k = {g.k}, {len(g.core_members)} core points, τ = {g.tau}", color=(255, 255, 255),
                                anchor=(0, 1), fill=pg.mkBrush(120, 0, 95, 200))
            label.setPos(4, hw[0] - 4)
            self._add("graph", label)
