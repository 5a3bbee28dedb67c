"""Settings dialog (checkpoint paths, device, evaluator endpoint) and the metrics view."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from core.models.presets import check_paths, config_path, load_config, save_config

FIELDS = (
    ("presets", "lisa-7b", "mllm_path", "LISA-style model directory"),
    ("presets", "lisa-7b", "sam_checkpoint", "SAM checkpoint (.pth)"),
    ("presets", "lisa-7b", "device", "Device (cpu / cuda)"),
    ("presets", "lens-3b", "mllm_path", "LENS (Qwen2.5-VL) model directory"),
    ("presets", "lens-3b", "sam2_checkpoint", "SAM2 checkpoint (.pt)"),
    ("presets", "lens-3b", "device", "Device (cpu / cuda)"),
    ("evaluator", "internvl3-8b", "model_path", "InternVL3 -hf directory"),
    ("evaluator", "internvl3-8b", "lora_path", "Evaluator LoRA adapter (optional)"),
    ("evaluator", "internvl3-8b", "device", "Evaluator device"),
    ("evaluator", "openai", "base_url", "OpenAI-compatible base URL"),
    ("evaluator", "openai", "model", "Endpoint model name"),
)


class SettingsDialog(QtWidgets.QDialog):
    """Edits the user config file; problems are explained in the dialog, never as a traceback."""

    def __init__(self, parent=None, path=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.path = path or config_path()
        self.problem = QtWidgets.QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#b3261e;")
        try:
            self.cfg: dict[str, Any] = load_config(self.path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.cfg = {}
            self.problem.setText(f"{exc}\nSaving writes a new file.")
        form = QtWidgets.QFormLayout(self)
        form.addRow(QtWidgets.QLabel(f"Config file: {self.path}"))
        self.edits: dict[tuple[str, str, str], QtWidgets.QLineEdit] = {}
        for table, name, key, label in FIELDS:
            e = QtWidgets.QLineEdit(str(self.cfg.get(table, {}).get(name, {}).get(key, "")))
            e.setObjectName(f"{table}.{name}.{key}")
            self.edits[(table, name, key)] = e
            form.addRow(f"{label}  [{name}]", e)
        form.addRow(self.problem)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Save | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        check = buttons.addButton("Check paths", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        check.clicked.connect(self.check)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def collected(self) -> dict[str, Any]:
        cfg = {t: {n: dict(v) for n, v in entries.items()} for t, entries in self.cfg.items()}
        for (table, name, key), e in self.edits.items():
            cfg.setdefault(table, {}).setdefault(name, {})[key] = e.text().strip()
        return cfg

    def check(self) -> list[str]:
        problems = check_paths(self.collected())
        self.problem.setText("\n".join(problems) if problems else "All set paths exist.")
        return problems

    def save(self) -> None:
        problems = self.check()
        if problems:
            self.problem.setText("Not saved — fix these first:\n" + "\n".join(problems))
            return
        try:
            save_config(self.collected(), self.path)
        except OSError as exc:
            self.problem.setText(f"Could not write {self.path}: {exc}")
            return
        self.accept()


class MetricsView(QtWidgets.QWidget):
    """Per-category gIoU / cIoU bars (top-1, initial, oracle) and the candidate-coverage curve."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.run_combo = QtWidgets.QComboBox()
        self.compute_button = QtWidgets.QPushButton("Compute")
        row.addWidget(QtWidgets.QLabel("Run"))
        row.addWidget(self.run_combo, 1)
        row.addWidget(self.compute_button)
        v.addLayout(row)
        self.bars = pg.PlotWidget(title="gIoU per category (top-1 / initial / oracle)")
        self.bars.addLegend(offset=(5, 5))
        self.curve = pg.PlotWidget(title="Coverage: best true IoU within the first n candidates")
        self.curve.setLabel("bottom", "number of candidates n")
        self.curve.setLabel("left", "mean oracle IoU")
        v.addWidget(self.bars, 1)
        v.addWidget(self.curve, 1)
        self.table = QtWidgets.QPlainTextEdit()
        self.table.setReadOnly(True)
        self.table.setMaximumHeight(130)
        v.addWidget(self.table)

    def show_result(self, res: dict[str, Any], coverage: list[float], table_text: str) -> None:
        self.bars.clear()
        note = "  — RANDOM WEIGHTS, not a result" if res.get("is_random") else ""
        self.bars.setTitle(f"gIoU per category (top-1 / initial / oracle){note}")
        self.curve.setTitle(f"Coverage: best true IoU within the first n candidates{note}")
        cats = sorted(res["top1"]["per_category"]) + ["overall"]
        x = np.arange(len(cats), dtype=float)
        colors = {"top1": (60, 140, 255), "initial": (200, 200, 200), "oracle": (40, 200, 90)}
        for i, key in enumerate(("top1", "initial", "oracle")):
            vals = [(res[key]["overall"] if c == "overall" else res[key]["per_category"].get(c, {})).get("giou") or 0.0 for c in cats]
            self.bars.addItem(pg.BarGraphItem(x=x + (i - 1) * 0.27, height=vals, width=0.25, brush=colors[key], name=key))
        self.bars.getAxis("bottom").setTicks([list(zip(x, cats, strict=True))])
        self.bars.setYRange(0, 1)
        self.curve.clear()
        if coverage:
            self.curve.plot(np.arange(1, len(coverage) + 1), coverage, pen=pg.mkPen((40, 200, 90), width=2), symbol="o")
            self.curve.setYRange(0, 1)
        self.table.setPlainText(table_text)


class CompareDialog(QtWidgets.QDialog):
    """Two traces of the same sample side by side (e.g. before / after changing parameters)."""

    def __init__(self, image: np.ndarray, gt: np.ndarray | None, left, right, titles: tuple[str, str], parent=None) -> None:
        from core.masks import mask_iou
        from rea2seg_gui.canvas import Canvas

        super().__init__(parent)
        self.setWindowTitle("Compare traces")
        self.resize(1400, 800)
        grid = QtWidgets.QGridLayout(self)
        self.canvases = []
        for col, (trace, title) in enumerate(((left, titles[0]), (right, titles[1]))):
            label = QtWidgets.QLabel(title)
            label.setTextFormat(pg.QtCore.Qt.TextFormat.PlainText)
            canvas = Canvas()
            canvas.set_image(image)
            canvas.set_mask("gt", gt)
            for key in ("topk2", "graph"):
                canvas.set_layer_visible(key, True)
            canvas.set_trace(trace)
            grid.addWidget(label, 0, col)
            grid.addWidget(canvas, 1, col)
            self.canvases.append(canvas)
        rows = []
        keys = sorted(set(left.settings) | set(right.settings))
        for k in keys:
            a, b = left.settings.get(k), right.settings.get(k)
            if a != b:
                rows.append(f"{k}: {a} → {b}")

        def summary(t) -> str:
            origins = {o: sum(c.origin == o for c in t.candidates) for o in ("multimask", "semantic", "amg")}
            best = max((mask_iou(c.mask, gt) for c in t.candidates), default=0.0) if gt is not None else None
            g = t.graph
            return (f"{len(t.candidates)} candidates {origins}; k-core k={g.k if g else '—'} with "
                    f"{len(g.core_members) if g else 0} points; best true IoU {'—' if best is None else f'{best:.3f}'}")

        text = QtWidgets.QPlainTextEdit()
        text.setReadOnly(True)
        text.setPlainText("Changed settings: " + ("; ".join(rows) or "none") + f"\nleft:  {summary(left)}\nright: {summary(right)}")
        text.setMaximumHeight(90)
        self.summary = text
        grid.addWidget(text, 2, 0, 1, 2)
