"""Tool feedback on the canvas, drawn above every layer (not layers: no toggle, no legend), in
image pixels: the brush outline under the pointer, the polygon being drawn, and the SAM prompt
(its clicks and its box)."""

from __future__ import annotations

from enum import StrEnum

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

TOOL_Z = 50  # tool feedback above every layer
BOX_COLOR = (80, 200, 255)


class DragMode(StrEnum):
    """What a left-button drag on the image does: pan the view (``PAN``), paint with the brush
    outline under the pointer (``PAINT``), or draw a rectangle (``BOX``, no brush outline).
    ``PAINT`` and ``BOX`` drags are emitted as ``dragged`` / ``drag_finished``."""

    PAN = "pan"
    PAINT = "paint"
    BOX = "box"


class ToolOverlay:
    """The tool items of one view box; ``unit`` is the marker size in logical pixels."""

    def __init__(self, view: pg.ViewBox, unit: float) -> None:
        self.polygon_item = pg.PlotDataItem(
            pen=pg.mkPen((255, 255, 0), width=2, style=QtCore.Qt.PenStyle.DashLine),
            symbol="s",
            symbolSize=unit * 0.45,
            symbolBrush=(255, 255, 0),
        )
        self.clicks_item = pg.ScatterPlotItem(size=unit, pen=pg.mkPen("w", width=1.5))
        self.box_item = QtWidgets.QGraphicsRectItem()
        self.box_item.setPen(
            pg.mkPen(BOX_COLOR, width=2, style=QtCore.Qt.PenStyle.DashLine, cosmetic=True)
        )
        self.box_item.setVisible(False)
        self.brush_outline = QtWidgets.QGraphicsEllipseItem()
        self.brush_outline.setPen(pg.mkPen((255, 255, 255), width=1.5, cosmetic=True))
        self.brush_outline.setVisible(False)
        for z, it in enumerate(
            (self.polygon_item, self.box_item, self.clicks_item, self.brush_outline)
        ):
            it.setZValue(TOOL_Z + z)
            view.addItem(it)

    def set_polygon(self, points_xy: list[tuple[float, float]] | None) -> None:
        """Show the polygon being drawn (closed back to its first vertex), or hide it."""
        if not points_xy:
            self.polygon_item.setData([], [])
            return
        pts = [*points_xy, points_xy[0]] if len(points_xy) > 2 else list(points_xy)
        self.polygon_item.setData([p[0] for p in pts], [p[1] for p in pts])

    def set_clicks(self, clicks: list[tuple[float, float, int]]) -> None:
        """Show SAM clicks ``(x, y, label)``: label 1 (positive) green, 0 (negative) red."""
        self.clicks_item.setData(
            [c[0] for c in clicks],
            [c[1] for c in clicks],
            brush=[pg.mkBrush((30, 210, 60) if c[2] else (230, 40, 40)) for c in clicks],
            symbol=["o" if c[2] else "x" for c in clicks],
        )

    def set_box(self, box_xyxy: tuple[float, float, float, float] | list[float] | None) -> None:
        """Show a box ``(x0, y0, x1, y1)`` (any two opposite corners), or hide it (``None``)."""
        if box_xyxy is None:
            self.box_item.setVisible(False)
            return
        x0, y0, x1, y1 = (float(v) for v in box_xyxy)
        self.box_item.setRect(QtCore.QRectF(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)))
        self.box_item.setVisible(True)

    def box(self) -> tuple[float, float, float, float] | None:
        """The box shown, ``(x0, y0, x1, y1)`` with x0 <= x1 and y0 <= y1; ``None`` when hidden."""
        if not self.box_item.isVisible():
            return None
        r = self.box_item.rect()
        return (r.left(), r.top(), r.right(), r.bottom())

    def show_brush(self, x: float, y: float, radius: float, on: bool) -> None:
        """Outline a brush of ``radius`` px centred on image pixel (x, y) (hidden unless ``on``)."""
        r = radius + 0.5
        self.brush_outline.setRect(
            QtCore.QRectF(round(x) + 0.5 - r, round(y) + 0.5 - r, 2 * r, 2 * r)
        )
        self.brush_outline.setVisible(on)
