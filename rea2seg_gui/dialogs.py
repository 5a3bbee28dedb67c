"""Settings dialog (checkpoint paths, device, evaluator endpoint, review preferences) and the
compare dialog. The export dialog is in :mod:`rea2seg_gui.export_dialog`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.models.config import setting_kinds, settings_fields
from rea2seg_gui import preferences as prefs
from rea2seg_gui.models import config_path, load_config, path_problems, save_config
from rea2seg_gui.plain_dialogs import browse_into

# Every entry of the preset registry's config tables (segmenters and evaluators), in its order.
FIELDS = tuple(settings_fields())
DIRECTORY_KEYS = tuple(k for k, kind in setting_kinds().items() if kind == "dir")
FILE_KEYS = tuple(k for k, kind in setting_kinds().items() if kind == "file")
DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def setting_problems(cfg: dict[str, Any]) -> list[str]:
    """Plain-language problems beyond missing paths: a file where a folder is expected (or the
    reverse), an unknown device or SAM model type."""
    problems = []
    for table, entries in cfg.items():
        if not isinstance(entries, dict):
            continue
        for name, section in entries.items():
            if not isinstance(section, dict):
                continue
            for key, value in section.items():
                v = str(value).strip()
                if not v:
                    continue
                where = f"{table}.{name}.{key}"
                p = Path(v).expanduser()
                if table == "presets":
                    pass  # core.models.config checks the presets' paths itself
                elif key in DIRECTORY_KEYS and p.exists() and not p.is_dir():
                    problems.append(f"{where}: '{v}' is a file; a model directory is expected")
                elif key in FILE_KEYS and p.exists() and not p.is_file():
                    problems.append(
                        f"{where}: '{v}' is a directory; the checkpoint file itself is expected"
                    )
                if key == "device" and not DEVICE.match(v):
                    problems.append(f"{where}: '{v}' is not a device; use cpu, cuda, cuda:N or mps")
                if key == "sam_model_type" and v not in ("vit_h", "vit_l", "vit_b"):
                    problems.append(
                        f"{where}: '{v}' is not a SAM model type; use vit_h, vit_l or vit_b"
                    )
    return problems


class SettingsDialog(QtWidgets.QDialog):
    """Edits the user config file; problems are explained in the dialog, never as a traceback."""

    def __init__(self, parent=None, path=None, preferences: QtCore.QSettings | None = None) -> None:
        """``preferences``: the window's QSettings; when given, its review preferences are shown too."""
        super().__init__(parent)
        self.preferences = preferences
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
        where = QtWidgets.QLabel(f"Config file: {self.path}")
        where.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        form.addRow(where)
        self.edits: dict[tuple[str, str, str], QtWidgets.QLineEdit] = {}
        for table, name, key, label in FIELDS:
            section = (
                self.cfg.get(table, {}).get(name, {})
                if isinstance(self.cfg.get(table), dict)
                else {}
            )
            e = QtWidgets.QLineEdit(str(section.get(key, "")) if isinstance(section, dict) else "")
            e.setObjectName(f"{table}.{name}.{key}")
            self.edits[(table, name, key)] = e
            if key in DIRECTORY_KEYS or key in FILE_KEYS:
                row = QtWidgets.QHBoxLayout()
                row.addWidget(e, 1)
                browse = QtWidgets.QToolButton()
                browse.setText("…")
                browse.setToolTip("Choose a folder" if key in DIRECTORY_KEYS else "Choose a file")
                browse.clicked.connect(
                    lambda _=False, e=e, d=key in DIRECTORY_KEYS: self._browse(e, d)
                )
                row.addWidget(browse)
                form.addRow(f"{label}  [{name}]", row)
            else:
                form.addRow(f"{label}  [{name}]", e)
        self.pref_widgets: dict[str, QtWidgets.QWidget] = {}
        if preferences is not None:
            form.addRow(QtWidgets.QLabel("<b>Review</b>"))
            for pref in prefs.PREFERENCES:
                value = prefs.read(preferences, pref)
                if isinstance(pref.default, bool):
                    w = QtWidgets.QCheckBox(pref.label)
                    w.setChecked(bool(value))
                    form.addRow(w)
                else:
                    w = QtWidgets.QSpinBox()
                    w.setRange(0, pref.maximum)
                    w.setValue(int(value))
                    form.addRow(pref.label, w)
                w.setObjectName(pref.name)
                w.setToolTip(f"{pref.name} (default {pref.default})")
                self.pref_widgets[pref.name] = w
        self.problem.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        form.addRow(self.problem)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Save
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        check = buttons.addButton("Check paths", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        check.clicked.connect(self.check)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self, edit: QtWidgets.QLineEdit, directory: bool) -> None:
        browse_into(self, edit, directory, "Choose a model directory")

    def collected(self) -> dict[str, Any]:
        """The config with the dialog's values; an emptied field removes its setting."""
        cfg = {
            t: (
                {n: dict(v) if isinstance(v, dict) else v for n, v in entries.items()}
                if isinstance(entries, dict)
                else entries
            )
            for t, entries in self.cfg.items()
        }
        for (table, name, key), e in self.edits.items():
            section = cfg.setdefault(table, {}).setdefault(name, {})
            if e.text().strip():
                section[key] = e.text().strip()
            else:
                section.pop(key, None)
        return {
            t: (
                {n: v for n, v in entries.items() if v != {}}
                if isinstance(entries, dict)
                else entries
            )
            for t, entries in cfg.items()
        }

    def check(self) -> list[str]:
        cfg = self.collected()
        problems = path_problems(cfg) + setting_problems(cfg)
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
        if self.preferences is not None:
            for name, w in self.pref_widgets.items():
                self.preferences.setValue(
                    name, w.isChecked() if isinstance(w, QtWidgets.QCheckBox) else w.value()
                )
        self.accept()


class CompareDialog(QtWidgets.QDialog):
    """Two traces of the same sample side by side (e.g. before / after changing parameters)."""

    def __init__(
        self,
        image: np.ndarray,
        gt: np.ndarray | None,
        left,
        right,
        titles: tuple[str, str],
        parent=None,
    ) -> None:
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
            origins = {
                o: sum(c.origin == o for c in t.candidates)
                for o in ("multimask", "semantic", "amg")
            }
            best = (
                max((mask_iou(c.mask, gt) for c in t.candidates), default=0.0)
                if gt is not None
                else None
            )
            g = t.graph
            return (
                f"{len(t.candidates)} candidates {origins}; k-core k={g.k if g else '—'} with "
                f"{len(g.core_members) if g else 0} points; best true IoU {'—' if best is None else f'{best:.3f}'}"
            )

        text = QtWidgets.QPlainTextEdit()
        text.setReadOnly(True)
        text.setPlainText(
            "Changed settings: "
            + ("; ".join(rows) or "none")
            + f"\nleft:  {summary(left)}\nright: {summary(right)}"
        )
        text.setMaximumHeight(90)
        self.summary = text
        grid.addWidget(text, 2, 0, 1, 2)
