"""Layer toggles and opacities (one row per :data:`rea2seg_gui.canvas.LAYERS` entry), a colour
swatch beside each mask layer, the outline / legend toggles, the difference counts and the
attention legend."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6 import QtCore, QtWidgets

from rea2seg_gui.canvas import LAYERS
from rea2seg_gui.layer_style import LayerStyle


class LayersPanel(QtWidgets.QWidget):
    """Emits ``visibility_changed(key, on)`` and ``opacity_changed(key, 0…1)``. ``style`` (when
    given) supplies the mask layers' colour swatches and the drawing toggles (``self.style_controls``)."""

    visibility_changed = QtCore.Signal(str, bool)
    opacity_changed = QtCore.Signal(str, float)

    def __init__(
        self,
        visible: Mapping[str, bool],
        style: LayerStyle | None = None,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.style_controls = style
        swatches = style.swatches if style is not None else {}
        g = QtWidgets.QGridLayout(self)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        self.sliders: dict[str, QtWidgets.QSlider] = {}
        g.addWidget(QtWidgets.QLabel("Layer  [key]"), 0, 0)
        g.addWidget(QtWidgets.QLabel("Opacity"), 0, 1)
        for r, spec in enumerate(LAYERS, start=1):
            cb = QtWidgets.QCheckBox(f"{spec.title}  [{spec.shortcut}]")
            cb.setChecked(bool(visible.get(spec.key, False)))
            cb.toggled.connect(lambda on, k=spec.key: self.visibility_changed.emit(k, on))
            if spec.color is not None and spec.key not in swatches:
                cb.setStyleSheet(
                    f"QCheckBox {{ border-left: 0.45em solid rgb{spec.color}; padding-left: 0.3em; }}"
                )
            sl = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            sl.setRange(0, 100)
            sl.setValue(int(spec.opacity * 100))
            sl.valueChanged.connect(lambda v, k=spec.key: self.opacity_changed.emit(k, v / 100))
            g.addWidget(cb, r, 0)
            g.addWidget(sl, r, 1)
            if spec.key in swatches:
                g.addWidget(swatches[spec.key], r, 2)
            self.checks[spec.key] = cb
            self.sliders[spec.key] = sl
        self.attention_legend = QtWidgets.QLabel("Attention: —")
        self.attention_legend.setWordWrap(True)
        g.addWidget(self.attention_legend, len(LAYERS) + 1, 0, 1, 3)
        if style is not None:
            g.addWidget(style, len(LAYERS) + 2, 0, 1, 3)
        g.setRowStretch(len(LAYERS) + 3, 1)

    def toggle(self, key: str) -> None:
        self.checks[key].toggle()

    def set_visible(self, key: str, on: bool) -> None:
        self.checks[key].setChecked(on)

    def is_visible(self, key: str) -> bool:
        return self.checks[key].isChecked()

    def set_opacity(self, key: str, value: float) -> None:
        self.sliders[key].setValue(int(round(value * 100)))

    def show_legend(
        self, attention_range: tuple[float, float] | None, loading: bool = False
    ) -> None:
        if attention_range:
            lo, hi = attention_range
            self.attention_legend.setText(
                f"Attention (inferno colour bar beside the image): dark {lo:.4g} → bright {hi:.4g}"
            )
        elif loading:
            self.attention_legend.setText("Attention: loading the trace…")
        else:
            self.attention_legend.setText("Attention: no trace for this sample in the chosen run")

    def legend(self) -> str:
        return self.attention_legend.text()
