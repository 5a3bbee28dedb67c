"""An image item whose picture is kept in the format the raster painter draws fastest.

pyqtgraph builds an 8-bit RGB, RGBA or indexed (mask + lookup table) QImage once per
``setImage``; Qt then converts it to 32-bit on every repaint. :class:`ImageItem` converts it once,
when it is built, to premultiplied ARGB32 (RGB32 when it has no alpha), so each repaint only
scales and blends (``bench/canvas_latency.py``: a candidate overlay or layer toggle with a full
trace on screen repaints several 1024² layers).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtGui

_FMT = QtGui.QImage.Format


class ImageItem(pg.ImageItem):
    def render(self) -> None:
        super().render()
        q = self.qimage
        if q is None:
            return
        fmt = _FMT.Format_ARGB32_Premultiplied if q.hasAlphaChannel() else _FMT.Format_RGB32
        if q.format() != fmt:
            self.qimage = q.convertToFormat(fmt)
