"""The canvas legend: a small box in the view's corner listing the visible layers, each with
its colour and marker as drawn. Sizes come from the application font (HiDPI-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from PySide6 import QtCore, QtGui, QtWidgets

Marker = Literal["fill", "outline", "box", "dot", "ring", "cross", "heat", "line"]


@dataclass(frozen=True)
class LegendEntry:
    title: str
    color: tuple[int, int, int]
    marker: Marker


class CanvasLegend(QtWidgets.QGraphicsItem):
    """Parented to the view box (not its zoomed contents): stays in the top-left corner at a
    fixed screen size while the image is zoomed and panned."""

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.entries: list[LegendEntry] = []
        self.setZValue(1000)
        # painted once per change of its entries, then drawn from a cache: text is costly and
        # the canvas repaints often (painting, candidate switching)
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._size = QtCore.QSizeF(0, 0)

    def _metrics(self) -> tuple[QtGui.QFont, QtGui.QFontMetricsF]:
        font = QtWidgets.QApplication.font()
        return font, QtGui.QFontMetricsF(font)

    def set_entries(self, entries: list[LegendEntry]) -> None:
        if entries == self.entries:
            return
        self.prepareGeometryChange()
        self.entries = list(entries)
        _, fm = self._metrics()
        line = fm.height()
        width = max((fm.horizontalAdvance(e.title) for e in entries), default=0.0)
        self._size = (
            QtCore.QSizeF(width + 2.2 * line, (len(entries) + 0.5) * line * 1.15)
            if entries
            else QtCore.QSizeF(0, 0)
        )
        margin = line * 0.5
        self.setPos(margin, margin)
        self.update()

    def titles(self) -> list[str]:
        return [e.title for e in self.entries]

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API
        return QtCore.QRectF(QtCore.QPointF(0, 0), self._size)

    def paint(self, painter: QtGui.QPainter, _option, _widget=None) -> None:
        if not self.entries:
            return
        font, fm = self._metrics()
        line = fm.height()
        step = line * 1.15
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255, 90), 1))
        painter.setBrush(QtGui.QColor(20, 20, 24, 215))
        painter.drawRoundedRect(self.boundingRect(), line * 0.3, line * 0.3)
        painter.setFont(font)
        s = line * 0.7  # marker size
        for i, e in enumerate(self.entries):
            top = line * 0.25 + i * step
            r = QtCore.QRectF(line * 0.4, top + (step - s) / 2, s, s)
            self._marker(painter, e, r)
            painter.setPen(QtGui.QColor(235, 235, 235))
            painter.drawText(
                QtCore.QRectF(line * 1.5, top, self._size.width() - line * 1.5, step),
                QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignLeft,
                e.title,
            )

    @staticmethod
    def _marker(painter: QtGui.QPainter, e: LegendEntry, r: QtCore.QRectF) -> None:
        c = QtGui.QColor(*e.color)
        w = max(1.5, r.width() / 6)
        none = QtCore.Qt.BrushStyle.NoBrush
        if e.marker == "fill":
            painter.setPen(QtGui.QPen(c.darker(150), 1))
            painter.setBrush(c)
            painter.drawRect(r)
        elif e.marker in ("outline", "box"):
            painter.setPen(QtGui.QPen(c, w))
            painter.setBrush(none)
            painter.drawRect(r)
        elif e.marker == "dot":
            painter.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0), 1))
            painter.setBrush(c)
            painter.drawEllipse(r)
        elif e.marker == "ring":
            painter.setPen(QtGui.QPen(c, w))
            painter.setBrush(none)
            painter.drawEllipse(r)
        elif e.marker == "cross":
            painter.setPen(QtGui.QPen(c, w * 1.3))
            painter.drawLine(r.topLeft(), r.bottomRight())
            painter.drawLine(r.topRight(), r.bottomLeft())
        elif e.marker == "heat":
            g = QtGui.QLinearGradient(r.bottomLeft(), r.topLeft())
            for pos, col in (
                (0.0, (0, 0, 4)),
                (0.5, (188, 55, 84)),
                (1.0, (252, 255, 164)),
            ):  # inferno
                g.setColorAt(pos, QtGui.QColor(*col))
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(g)
            painter.drawRect(r)
        else:  # line
            painter.setPen(QtGui.QPen(c, w))
            painter.drawLine(
                QtCore.QPointF(r.left(), r.center().y()), QtCore.QPointF(r.right(), r.center().y())
            )
