"""Drawing controls of the layers panel: a colour swatch per mask layer (QColorDialog, the
choice remembered in QSettings), the outline-mode and legend toggles, and the difference
view's counts. Sizes come from the font (HiDPI)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from rea2seg_gui.canvas import LAYER_BY_KEY, MASK_LAYERS, Canvas
from rea2seg_gui.canvas_layers import AUTO_COLOR
from rea2seg_gui.overlays import DIFF_ADDED, DIFF_REMOVED

COLOR_KEY = "layers/color/{}"  # QSettings key of a mask layer's colour ("#rrggbb")
OUTLINE_KEY = "layers/outline"
LEGEND_KEY = "layers/legend"
OUTLINE_SHORTCUT = "O"
LEGEND_SHORTCUT = "G"


def saved_color(settings: QtCore.QSettings, key: str) -> tuple[int, int, int]:
    """The remembered colour of mask layer ``key``, else its default."""
    value = settings.value(COLOR_KEY.format(key))
    c = QtGui.QColor(str(value)) if value else QtGui.QColor()
    return (c.red(), c.green(), c.blue()) if c.isValid() else LAYER_BY_KEY[key].color


def _bool(value, default: bool) -> bool:
    if value is None:
        return default
    return value in (True, "true", "1", 1)


class ColorSwatch(QtWidgets.QToolButton):
    """A square of the layer's colour; clicking opens a colour dialog. Emits ``color_chosen``."""

    color_chosen = QtCore.Signal(str, tuple)

    def __init__(
        self, key: str, color: tuple[int, int, int], parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.key = key
        self.color = color
        side = self.fontMetrics().height()
        self.setIconSize(QtCore.QSize(side, side))
        self.setToolTip(
            f"Colour of the {LAYER_BY_KEY[key].title.lower()} layer: click to choose"
            + (
                " (until then it is picked per sample to contrast with the pixels under it)"
                if key in AUTO_COLOR
                else ""
            )
        )
        self.setAccessibleName(f"{LAYER_BY_KEY[key].title} colour")
        self.clicked.connect(self.choose)
        self._paint()

    def _paint(self) -> None:
        side = self.iconSize().width()
        dpr = self.devicePixelRatioF()
        pm = QtGui.QPixmap(int(side * dpr), int(side * dpr))
        pm.setDevicePixelRatio(dpr)
        pm.fill(QtGui.QColor(*self.color))
        self.setIcon(QtGui.QIcon(pm))

    def set_color(self, color: tuple[int, int, int]) -> None:
        self.color = tuple(color)
        self._paint()

    def choose(self) -> None:
        c = QtWidgets.QColorDialog.getColor(
            QtGui.QColor(*self.color), self, f"{LAYER_BY_KEY[self.key].title} colour"
        )
        if c.isValid():
            self.set_color((c.red(), c.green(), c.blue()))
            self.color_chosen.emit(self.key, self.color)


class LayerStyle(QtWidgets.QWidget):
    """Swatches for the mask layers (``swatches[key]``, placed by the layers panel beside each
    layer's toggle), and a row with the outline-mode and legend toggles plus the difference
    counts. Applies remembered choices to ``canvas`` on construction."""

    def __init__(
        self, canvas: Canvas, settings: QtCore.QSettings, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.settings = settings
        self.swatches: dict[str, ColorSwatch] = {}
        for key in MASK_LAYERS:
            color = saved_color(settings, key)
            chosen = settings.value(COLOR_KEY.format(key)) is not None
            if color != canvas.colors[key] or (chosen and key in canvas.auto_colors):
                canvas.set_layer_color(key, color)
            sw = ColorSwatch(key, color)
            sw.color_chosen.connect(self.set_color)
            self.swatches[key] = sw
        v = QtWidgets.QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        self.outline_check = QtWidgets.QCheckBox(f"Outlines only  [{OUTLINE_SHORTCUT}]")
        self.outline_check.setToolTip("Draw every mask layer as its contours instead of filled")
        self.legend_check = QtWidgets.QCheckBox(f"Legend on the canvas  [{LEGEND_SHORTCUT}]")
        self.outline_check.toggled.connect(self._outline)
        self.legend_check.toggled.connect(self._legend)
        row.addWidget(self.outline_check)
        row.addWidget(self.legend_check)
        row.addStretch(1)
        v.addLayout(row)
        self.diff_label = QtWidgets.QLabel()
        self.diff_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.diff_label.setWordWrap(True)
        v.addWidget(self.diff_label)
        canvas.diff_changed.connect(self.show_diff)
        self.outline_check.setChecked(_bool(settings.value(OUTLINE_KEY), False))
        self.legend_check.setChecked(_bool(settings.value(LEGEND_KEY), True))
        self._legend(self.legend_check.isChecked())
        self.show_diff(-1, -1)

    def set_color(self, key: str, color: tuple[int, int, int]) -> None:
        """Use and remember ``color`` for mask layer ``key``."""
        self.swatches[key].set_color(color)
        self.canvas.set_layer_color(key, color)
        self.settings.setValue(COLOR_KEY.format(key), QtGui.QColor(*color).name())

    def _outline(self, on: bool) -> None:
        self.canvas.set_outline_mode(on)
        self.settings.setValue(OUTLINE_KEY, on)

    def _legend(self, on: bool) -> None:
        self.canvas.set_legend_visible(on)
        self.settings.setValue(LEGEND_KEY, on)

    def show_diff(self, added: int, removed: int) -> None:
        if added < 0:
            on = self.canvas.visible.get("diff", False)
            self.diff_label.setText(
                "Difference view: needs both the ground truth and an edited mask"
                if on
                else "Difference view [D]: off"
            )
            return
        a, r = (QtGui.QColor(*DIFF_ADDED).name(), QtGui.QColor(*DIFF_REMOVED).name())
        self.diff_label.setText(
            f"Difference view (edited vs ground truth): <span style='color:{a}'>■</span> "
            f"added {added} px · <span style='color:{r}'>■</span> removed {removed} px · "
            f"unchanged hidden"
        )
