"""The image canvas: the image plus trace overlays, each a separate item stacked by z-value.

Everything is drawn in image pixels (row-major, y down, aspect locked); masks are shown
pixel-exact (no interpolation), filled or as outlines (``set_outline_mode``), in per-layer
colours (``set_layer_color``). The ``diff`` layer shows the edited mask against the ground
truth (added / removed pixels, unchanged hidden). A legend in the view's corner lists the
visible layers; hovering reads the trace at the pixel (``readout_label``, ``hover_text``).
The canvas only draws what it is given: the trace and the masks come from ``core``; the
layers and the trace's items are in :mod:`rea2seg_gui.canvas_layers`, the read-out in
:mod:`rea2seg_gui.hover`. Marker and text sizes are in logical pixels derived from the application font (HiDPI).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from core.trace import PipelineTrace
from rea2seg_gui import refguard
from rea2seg_gui.canvas_layers import (
    AUTO_COLOR,
    LAYER_BY_KEY,
    LAYERS,
    MASK_LAYERS,
    OUTLINE_ONLY,
    OUTLINED_FILL,
    TRACE_LAYERS,
    contrast_color,
    legend_entries,
    mask_lut,
    prompt_box_items,
    trace_items,
)
from rea2seg_gui.hover import HoverReadout
from rea2seg_gui.image_item import ImageItem
from rea2seg_gui.legend import CanvasLegend, LegendEntry
from rea2seg_gui.overlays import MaskDiff, Readout, contour_xy, diff_lut, em, mask_diff
from rea2seg_gui.tool_overlay import DragMode, ToolOverlay

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class Canvas(pg.GraphicsLayoutWidget):
    """Image view with toggleable layers. Emits ``clicked(x, y, button)`` in image pixels
    (button 1 = left, 2 = right), ``double_clicked(x, y)``, and ``dragged(x0, y0, x1, y1)`` /
    ``drag_finished()`` while the left button drags in a ``PAINT`` or ``BOX`` :class:`DragMode`;
    ``hover_text(str)`` with the read-out of the pixel under the pointer (empty when it
    leaves the image) and ``diff_changed(added, removed)`` when the difference view's counts
    change (``-1, -1``: no difference to show, a mask is missing)."""

    clicked = QtCore.Signal(float, float, int)
    double_clicked = QtCore.Signal(float, float)
    dragged = QtCore.Signal(float, float, float, float)
    drag_finished = QtCore.Signal()
    hover_text = QtCore.Signal(str)
    diff_changed = QtCore.Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        refguard.install()  # every repaint leaks references to None (see refguard)
        self.setBackground((30, 30, 34))
        self.view: pg.ViewBox = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = ImageItem(autoDownsample=False)
        self.image_item.setZValue(0)
        self.view.addItem(self.image_item)
        self.items: dict[str, list[QtGui.QGraphicsItem]] = {spec.key: [] for spec in LAYERS}
        self.items["image"] = [self.image_item]  # permanent: never cleared, only shown / hidden
        self.visible: dict[str, bool] = {
            spec.key: spec.key
            in ("image", "gt", "attention", "seeds", "candidate", "edited", "answer", "prompt")
            for spec in LAYERS
        }
        self.opacity: dict[str, float] = {spec.key: spec.opacity for spec in LAYERS}
        self.colors: dict[str, tuple[int, int, int]] = {
            spec.key: spec.color for spec in LAYERS if spec.color
        }
        self.masks: dict[str, np.ndarray | None] = dict.fromkeys(MASK_LAYERS)
        # layers whose colour follows the pixels under them until a colour is chosen
        self.auto_colors: set[str] = set(AUTO_COLOR)
        self.outline_mode = False
        self.diff: MaskDiff | None = None
        self.trace: PipelineTrace | None = None
        # hover read-out; the window shows its label (e.g. in its status bar)
        self.hover = HoverReadout(lambda: (self.trace, self.hw), self)
        self.hover.text.connect(self.hover_text)
        self.readout_label = self.hover.label
        self.drag_mode = DragMode.PAN
        self._last_drag: tuple[float, float] | None = None
        self.hw: tuple[int, int] | None = None
        self.attention_range: tuple[float, float] | None = None
        self.image_item.mouseClickEvent = self._on_click
        self.image_item.mouseDragEvent = self._on_drag
        self.image_item.hoverEvent = self._on_hover
        unit = em()
        # outline of the brush under the pointer (PAINT drags only), in image pixels
        self.brush_radius = 0.0
        # tool feedback, not layers: brush outline, the polygon being drawn, the SAM prompt
        self.tools = ToolOverlay(self.view, unit)
        self.brush_outline, self.polygon_item = self.tools.brush_outline, self.tools.polygon_item
        self.clicks_item, self.box_item = self.tools.clicks_item, self.tools.box_item
        # legend of the attention heatmap: shown beside the view while that layer is drawn
        self.colorbar = pg.ColorBarItem(
            values=(0.0, 1.0),
            colorMap=pg.colormap.get("inferno"),
            interactive=False,
            width=unit,
            label="attention",
            colorMapMenu=False,
            rounding=1e-9,
        )
        # fixed width: bar, value axis and title; taken out of the layout while hidden so that
        # the image gets the whole width
        self.colorbar.axis.setWidth(
            int(4.6 * unit)
        )  # room for values such as 0.02635 (narrow attention ranges)
        self.colorbar.setFixedWidth(int(7.5 * unit))
        self.colorbar.setVisible(False)
        self._colorbar_in_layout = False
        # the legend lives on the view box itself (not its zoomed contents): fixed on screen
        self.legend = CanvasLegend(self.view)
        self.legend_on = True

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
        if ev.isExit():
            self.brush_outline.setVisible(False)
            self.hover_at(None)
            return
        self.hover_at(ev.pos().x(), ev.pos().y())
        if self.drag_mode is not DragMode.PAINT:
            self.brush_outline.setVisible(False)
            return
        self.show_brush_at(ev.pos().x(), ev.pos().y())

    def hover_at(self, x: float | None, y: float | None = None) -> Readout | None:
        """Read the trace at image point (x, y) and emit ``hover_text`` (``None``: pointer left).

        Without a trace the read-out is the pixel position alone. The logit map L is loaded on
        the first hover over a trace (see :meth:`set_logits_loader`), off the GUI thread.
        """
        return self.hover.at(x, y)

    def set_logits_loader(self, loader: Callable[[], np.ndarray | None] | None) -> None:
        """How to get L for the shown trace (a plain function, run in a worker thread on the
        first hover; viewers load traces without the logit map to switch samples fast)."""
        self.hover.set_loader(loader)

    @property
    def logits(self) -> np.ndarray | None:
        """L of the shown trace, once loaded."""
        return self.hover.logits

    @property
    def last_readout(self) -> Readout | None:
        return self.hover.last

    def set_drag_mode(self, mode: DragMode) -> None:
        """What left-button drags do (see :class:`DragMode`); the brush outline shows only for
        ``PAINT``, and ``BOX`` gets a cross-hair pointer."""
        self.drag_mode = DragMode(mode)
        if self.drag_mode is not DragMode.PAINT:
            self.brush_outline.setVisible(False)
        if self.drag_mode is DragMode.BOX:
            self.viewport().setCursor(QtCore.Qt.CursorShape.CrossCursor)
        else:
            self.viewport().unsetCursor()

    def show_brush_at(self, x: float, y: float) -> None:
        """Outline the brush (radius ``brush_radius`` px) centred on image pixel (x, y)."""
        self.tools.show_brush(x, y, self.brush_radius, self.drag_mode is DragMode.PAINT)

    def _on_drag(self, ev) -> None:
        if self.drag_mode is DragMode.PAN or ev.button() != QtCore.Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p = ev.pos()
        if self.drag_mode is DragMode.PAINT:
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

    def _shown(self, key: str) -> bool:
        """Whether a layer's items are drawn: its toggle, except that the difference view
        hides the ground truth and the edited mask (their pixels are in the diff)."""
        if key in ("gt", "edited") and self.visible["diff"] and self.diff is not None:
            return False
        return self.visible[key]

    def _add(self, key: str, item: QtGui.QGraphicsItem) -> None:
        spec = LAYER_BY_KEY[key]
        item.setZValue(spec.z)
        item.setOpacity(self.opacity[key])
        item.setVisible(self._shown(key))
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

    def _apply_visibility(self, key: str) -> None:
        for it in self.items[key]:
            it.setVisible(self._shown(key))

    def set_layer_visible(self, key: str, on: bool) -> None:
        self.visible[key] = on
        if key == "image":
            # hidden by opacity, not setVisible: a hidden item would stop receiving the clicks and
            # drags the tools need
            self.image_item.setOpacity(self.opacity[key] if on else 0.0)
            return
        if key == "diff":
            self._refresh_diff()
        else:
            self._apply_visibility(key)
        if key == "attention":
            self._show_colorbar(on and self.attention_range is not None)
        self._refresh_legend()

    def set_layer_opacity(self, key: str, value: float) -> None:
        self.opacity[key] = value
        if key == "image" and not self.visible[key]:
            return
        for it in self.items[key]:
            it.setOpacity(value)

    def set_layer_color(self, key: str, color: tuple[int, int, int]) -> None:
        """Draw a mask layer (``MASK_LAYERS``) in another colour (RGB 0–255)."""
        if key not in MASK_LAYERS:
            raise KeyError(f"{key!r} is not a mask layer")
        self.auto_colors.discard(key)
        self.colors[key] = tuple(int(c) for c in color)
        self._draw_mask(key)
        self._refresh_legend()

    def set_outline_mode(self, on: bool) -> None:
        """Draw every mask layer as its contours (``cv2.findContours``) instead of filled."""
        if on == self.outline_mode:
            return
        self.outline_mode = on
        for key in MASK_LAYERS:
            self._draw_mask(key)
        self._refresh_legend()

    def set_legend_visible(self, on: bool) -> None:
        self.legend_on = on
        self.legend.setVisible(on)
        self._refresh_legend()

    def set_image(self, image_rgb: np.ndarray) -> None:
        first = self.hw != image_rgb.shape[:2]
        self.hw = image_rgb.shape[:2]
        self.image_item.setImage(image_rgb, levels=None)  # uint8 RGB as it is: no per-paint rescale
        for key in self.items:
            self._clear(key)
        self.masks = dict.fromkeys(MASK_LAYERS)
        self.trace = None
        self.hover.reset()
        self._set_diff(None)
        self.set_polygon(None)
        self.set_clicks([])
        self._refresh_legend()
        if first:
            self.fit()

    def clear(self) -> None:
        """Show nothing: no image, no layers, no trace."""
        self.image_item.clear()
        for key in self.items:
            self._clear(key)
        self.hw = None
        self.masks = dict.fromkeys(MASK_LAYERS)
        self.trace = None
        self.hover.reset()
        self._set_diff(None)
        self.set_polygon(None)
        self.set_clicks([])
        self._refresh_legend()

    def set_prompt_boxes(
        self,
        target_xyxy: tuple[float, float, float, float] | list[float] | None,
        others_xyxy: list[list[float]] | tuple = (),
    ) -> None:
        """The boxes a generated question's generator and verifier saw (image pixels, ``x0, y0,
        x1, y1`` with exclusive max): the target red, the other instances blue; ``None``: none."""
        self._clear("prompt")
        if target_xyxy is not None:
            for it in prompt_box_items(target_xyxy, others_xyxy):
                self._add("prompt", it)
        self._refresh_legend()

    def set_polygon(self, points_xy: list[tuple[float, float]] | None) -> None:
        """Show the polygon being drawn (closed back to its first vertex), or hide it."""
        self.tools.set_polygon(points_xy)

    def set_clicks(self, clicks: list[tuple[float, float, int]]) -> None:
        """Show SAM clicks ``(x, y, label)``: label 1 (positive) green, 0 (negative) red."""
        self.tools.set_clicks(clicks)

    def set_box(self, box_xyxy: tuple[float, float, float, float] | list[float] | None) -> None:
        """Show the SAM box ``(x0, y0, x1, y1)`` in image pixels (any two opposite corners), or hide it."""
        self.tools.set_box(box_xyxy)

    def fit(self) -> None:
        if self.hw:
            self.view.setRange(QtCore.QRectF(0, 0, self.hw[1], self.hw[0]), padding=0.02)

    def set_mask(self, key: str, mask: np.ndarray | None) -> None:
        """Replace a mask layer (gt, ignore, candidate, edited, initial)."""
        self.masks[key] = None if mask is None else np.asarray(mask, dtype=bool)
        if key in self.auto_colors and mask is not None:
            self.colors[key] = contrast_color(self.image_item.image, self.masks[key])
        self._draw_mask(key)
        if key in ("gt", "edited"):
            self._refresh_diff()
        self._refresh_legend()

    def _outline_item(self, key: str, mask: np.ndarray) -> pg.PlotDataItem:
        xs, ys = contour_xy(mask)
        # width 1 (cosmetic: one logical pixel): wider antialiased paths take Qt's slow stroker
        return pg.PlotDataItem(xs, ys, pen=pg.mkPen(self.colors[key], width=1), connect="finite")

    def _draw_mask(self, key: str) -> None:
        self._clear(key)
        mask = self.masks[key]
        if mask is None:
            return
        if self.outline_mode or key in OUTLINE_ONLY:
            self._add(key, self._outline_item(key, mask))
            return
        # the bool mask is drawn through a lookup table: no RGBA copy of the image is built
        alpha = OUTLINED_FILL.get(key, 255)
        self._add(
            key,
            ImageItem(mask.view(np.uint8), levels=(0, 1), lut=mask_lut(self.colors[key], alpha)),
        )
        if key in OUTLINED_FILL:  # a light fill and a full outline
            self._add(key, self._outline_item(key, mask))

    def update_mask(self, key: str, mask: np.ndarray) -> None:
        """Fast in-place update of an existing mask layer (painting)."""
        self.masks[key] = np.asarray(mask, dtype=bool)
        if not self.items[key]:
            self.set_mask(key, mask)
            return
        if self.outline_mode or key in OUTLINE_ONLY:
            xs, ys = contour_xy(self.masks[key])
            self.items[key][0].setData(xs, ys, connect="finite")
        else:
            self.items[key][0].setImage(self.masks[key].view(np.uint8), levels=(0, 1))
            if len(self.items[key]) > 1:  # its outline over the light fill
                self.items[key][1].setData(*contour_xy(self.masks[key]), connect="finite")
        if key in ("gt", "edited") and self.visible["diff"]:
            self._refresh_diff()

    # -- difference view ------------------------------------------------------------------
    def _set_diff(self, diff: MaskDiff | None) -> None:
        before = self.diff
        self.diff = diff
        self._clear("diff")
        if diff is not None:
            self._add("diff", ImageItem(diff.codes, levels=(0, 2), lut=diff_lut()))
        for key in ("gt", "edited"):
            self._apply_visibility(key)
        old = (-1, -1) if before is None else (before.added, before.removed)
        new = (-1, -1) if diff is None else (diff.added, diff.removed)
        if new != old:
            self.diff_changed.emit(*new)

    def _refresh_diff(self) -> None:
        """Recompute the difference view; only while it is shown (switching samples stays fast)."""
        self._set_diff(
            mask_diff(self.masks["gt"], self.masks["edited"]) if self.visible["diff"] else None
        )
        self._refresh_legend()

    # -- legend ---------------------------------------------------------------------------
    def legend_entries(self) -> list[LegendEntry]:
        """The visible layers that have something drawn, with their colour and marker."""
        drawn = [
            s.key for s in LAYERS if s.key != "image" and self._shown(s.key) and self.items[s.key]
        ]
        return legend_entries(drawn, self.colors, self.outline_mode, self.trace, self.diff)

    def _refresh_legend(self) -> None:
        self.legend.set_entries(self.legend_entries() if self.legend_on else [])

    # -- trace ----------------------------------------------------------------------------
    def set_trace(self, trace: PipelineTrace | None) -> None:
        """Draw the trace's layers: initial mask M, attention, top-k1/k2 tokens (with rank
        labels), seeds, the k-core (members and the edges among them) and the negative point."""
        for key in TRACE_LAYERS:
            self._clear(key)
        self.trace = trace
        # L is set again by whoever knows where this trace's L is stored (set_logits_loader)
        self.hover.reset(None if trace is None else trace.initial_logits)
        self.attention_range = None
        self._show_colorbar(False)
        self.masks["initial"] = (
            None if trace is None or trace.initial_mask is None else trace.initial_mask
        )
        self._draw_mask("initial")
        self.masks["answer"] = None if trace is None else _answer_mask(trace)
        self._draw_mask("answer")
        if trace is None:
            self._refresh_legend()
            return
        drawn = trace_items(trace, em())
        for key, items in drawn.items.items():
            for it in items:
                self._add(key, it)
        if drawn.attention_range is not None:
            lo, hi = self.attention_range = drawn.attention_range
            self.colorbar.setLevels((lo, hi if hi > lo else lo + 1e-9))
            self._show_colorbar(self.visible["attention"])
        self._refresh_legend()

    def closeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self.hover.shutdown()
        super().closeEvent(ev)


def _answer_mask(trace: PipelineTrace) -> np.ndarray | None:
    """The trace's answer (core's choice, :func:`core.pipeline.ask.answer_id`): a candidate, or
    the initial mask M when there is none or no score was readable."""
    from core.pipeline.ask import answer_id

    aid = answer_id(trace)
    return trace.initial_mask if aid is None else trace.candidate(aid).mask
