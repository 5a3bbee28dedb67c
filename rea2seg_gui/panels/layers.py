"""Layer toggles and opacities (one row per :data:`rea2seg_gui.canvas.LAYERS` entry) and the attention legend."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6 import QtCore, QtWidgets

from rea2seg_gui.canvas import LAYERS


class LayersPanel(QtWidgets.QWidget):
    """Emits ``visibility_changed(key, on)`` and ``opacity_changed(key, 0…1)``."""

    visibility_changed = QtCore.Signal(str, bool)
    opacity_changed = QtCore.Signal(str, float)

    def __init__(self, visible: Mapping[str, bool], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        g = QtWidgets.QGridLayout(self)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        self.sliders: dict[str, QtWidgets.QSlider] = {}
        g.addWidget(QtWidgets.QLabel("Layer  [key]"), 0, 0)
        g.addWidget(QtWidgets.QLabel("Opacity"), 0, 1)
        for r, spec in enumerate(LAYERS, start=1):
            cb = QtWidgets.QCheckBox(f"{spec.title}  [{spec.shortcut}]")
            cb.setChecked(bool(visible.get(spec.key, False)))
            cb.toggled.connect(lambda on, k=spec.key: self.visibility_changed.emit(k, on))
            if spec.color is not None:
                cb.setStyleSheet(f"QCheckBox {{ border-left: 6px solid rgb{spec.color}; padding-left: 4px; }}")
            sl = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            sl.setRange(0, 100)
            sl.setValue(int(spec.opacity * 100))
            sl.valueChanged.connect(lambda v, k=spec.key: self.opacity_changed.emit(k, v / 100))
            g.addWidget(cb, r, 0)
            g.addWidget(sl, r, 1)
            self.checks[spec.key] = cb
            self.sliders[spec.key] = sl
        self.attention_legend = QtWidgets.QLabel("Attention: —")
        self.attention_legend.setWordWrap(True)
        g.addWidget(self.attention_legend, len(LAYERS) + 1, 0, 1, 2)
        g.setRowStretch(len(LAYERS) + 2, 1)

    def toggle(self, key: str) -> None:
        self.checks[key].toggle()

    def set_visible(self, key: str, on: bool) -> None:
        self.checks[key].setChecked(on)

    def is_visible(self, key: str) -> bool:
        return self.checks[key].isChecked()

    def set_opacity(self, key: str, value: float) -> None:
        self.sliders[key].setValue(int(round(value * 100)))

    def show_legend(self, attention_range: tuple[float, float] | None, loading: bool = False) -> None:
        if attention_range:
            lo, hi = attention_range
            self.attention_legend.setText(f"Attention (inferno colour bar beside the image): dark {lo:.4g} → bright {hi:.4g}")
        elif loading:
            self.attention_legend.setText("Attention: loading the trace…")
        else:
            self.attention_legend.setText("Attention: no trace for this sample in the chosen run")

    def legend(self) -> str:
        return self.attention_legend.text()
