"""File → Models…: each segmenter and evaluator of the registry with its checkpoint folder(s),
device and dtype, checked as they are edited with the loaders' own messages
(:func:`core.pipeline.memory.model_problems`) and sized from their files
(:func:`core.pipeline.memory.footprint_text`); Save writes ``config.toml``
(:func:`core.models.config.save_config`), so nobody has to edit it by hand.

A device or dtype that cannot be used here is shown greyed out with the reason beside it
(no CUDA device, no bfloat16 on this GPU, 4-bit without bitsandbytes or for a segmenter).
Nothing here loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.models.config import EVALUATOR_SPECS, PRESET_SPECS, Setting
from core.pipeline.memory import (
    DTYPES,
    device_choices,
    dtype_problem,
    footprint_text,
    model_problems,
)
from rea2seg_gui.models import config_path, load_config, save_config
from rea2seg_gui.plain_dialogs import browse_into

DEFAULT_DTYPE = "default (bfloat16 on CUDA, float32 otherwise)"
WHY_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1


def models() -> list[tuple[str, str, str, tuple[Setting, ...]]]:
    """``(table, name, title, path settings)`` of every model the dialog manages: the
    segmenters with weights on disk (tiny random ones have nothing to set) and the local
    evaluators (an OpenAI-compatible endpoint has no weights here; File → Settings sets it)."""
    out = [
        ("presets", p.name, f"Segmenter {p.name}", p.adapter.settings)
        for p in PRESET_SPECS
        if not p.is_random
    ]
    out += [
        ("evaluator", e.name, f"Evaluator {e.name}", e.settings)
        for e in EVALUATOR_SPECS
        if e.backend in ("local", "mini")
    ]
    return [
        (t, n, title, tuple(s for s in settings if s.kind in ("dir", "file")))
        for t, n, title, settings in out
    ]


@dataclass
class _Row:
    paths: dict[str, QtWidgets.QLineEdit]
    device: QtWidgets.QComboBox
    dtype: QtWidgets.QComboBox
    status: QtWidgets.QLabel


def _set_choices(combo: QtWidgets.QComboBox, choices: list[tuple[str | None, str, str | None]]):
    """``(value, text, why not)`` items; one with a reason is greyed out and says why."""
    current = combo.currentData()
    combo.blockSignals(True)
    combo.clear()
    model = combo.model()
    for value, text, why in choices:
        combo.addItem(text if why is None else f"{text} — {why}", value)
        item = model.item(combo.count() - 1)
        item.setData(why, WHY_ROLE)
        if why is not None:
            item.setEnabled(False)
            item.setToolTip(why)
    i = combo.findData(current)
    combo.setCurrentIndex(i if i >= 0 else 0)
    combo.blockSignals(False)


class ModelManagerDialog(QtWidgets.QDialog):
    """``devices``: ``(device, why not)`` pairs (default :func:`device_choices`, which imports
    torch); ``path``: the config file (default the user's)."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        path: str | Path | None = None,
        devices: list[tuple[str, str | None]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.path = Path(path) if path else config_path()
        self.problem = QtWidgets.QLabel()
        self.problem.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#b3261e;")
        try:
            self.cfg: dict[str, Any] = load_config(self.path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.cfg = {}
            self.problem.setText(f"{exc}\nSaving writes a new file.")
        self.devices = list(device_choices() if devices is None else devices)
        outer = QtWidgets.QVBoxLayout(self)
        where = QtWidgets.QLabel(f"Config file: {self.path}")
        where.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        outer.addWidget(where)
        body = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(body)
        self.rows: dict[tuple[str, str], _Row] = {}
        for table, name, title, settings in models():
            column.addWidget(self._group(table, name, title, settings))
        column.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        outer.addWidget(self.problem)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Save
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.resize(760, 640)
        for key in self.rows:
            self._validate(key)

    # -------------------------------------------------------------------------------- build
    def _section(self, table: str, name: str) -> dict[str, Any]:
        entries = self.cfg.get(table)
        section = entries.get(name) if isinstance(entries, dict) else None
        return section if isinstance(section, dict) else {}

    def _group(
        self, table: str, name: str, title: str, settings: tuple[Setting, ...]
    ) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox(title)
        form = QtWidgets.QFormLayout(box)
        section = self._section(table, name)
        paths: dict[str, QtWidgets.QLineEdit] = {}
        for st in settings:
            edit = QtWidgets.QLineEdit(str(section.get(st.key, "")))
            edit.setObjectName(f"{table}.{name}.{st.key}")
            browse = QtWidgets.QToolButton()
            browse.setText("…")
            browse.clicked.connect(lambda _=False, e=edit, d=st.kind == "dir": self._browse(e, d))
            line = QtWidgets.QHBoxLayout()
            line.addWidget(edit, 1)
            line.addWidget(browse)
            form.addRow(st.label, line)
            paths[st.key] = edit
        device = QtWidgets.QComboBox()
        device.setObjectName(f"{table}.{name}.device")
        known = [d for d, _ in self.devices]
        wanted = str(section.get("device") or "cpu")
        extra = [] if wanted in known else [(wanted, wanted, "not a device of this machine")]
        _set_choices(device, [(d, d, why) for d, why in self.devices] + extra)
        device.setCurrentIndex(device.findData(wanted))
        form.addRow("Device", device)
        dtype = QtWidgets.QComboBox()
        dtype.setObjectName(f"{table}.{name}.dtype")
        dtype.addItem(DEFAULT_DTYPE, None)
        form.addRow("Dtype", dtype)
        status = QtWidgets.QLabel()
        status.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        status.setWordWrap(True)
        form.addRow(status)
        row = self.rows[(table, name)] = _Row(paths, device, dtype, status)
        self._fill_dtypes((table, name))
        i = dtype.findData(section.get("dtype"))
        if section.get("dtype") and i < 0:
            dtype.addItem(str(section["dtype"]), str(section["dtype"]))
            i = dtype.count() - 1
        dtype.setCurrentIndex(max(i, 0))
        key = (table, name)
        for edit in paths.values():
            edit.textChanged.connect(lambda _t, k=key: self._validate(k))
        device.currentIndexChanged.connect(lambda _i, k=key: self._device_changed(k))
        dtype.currentIndexChanged.connect(lambda _i, k=key: self._validate(k))
        del row
        return box

    def _fill_dtypes(self, key: tuple[str, str]) -> None:
        row = self.rows[key]
        device = str(row.device.currentData() or "cpu")
        is_eval = key[0] == "evaluator"
        _set_choices(
            row.dtype,
            [(None, DEFAULT_DTYPE, None)]
            + [(d, d, dtype_problem(d, device, evaluator=is_eval)) for d in DTYPES],
        )

    def _device_changed(self, key: tuple[str, str]) -> None:
        self._fill_dtypes(key)
        self._validate(key)

    def _browse(self, edit: QtWidgets.QLineEdit, directory: bool) -> None:
        browse_into(self, edit, directory)

    # ------------------------------------------------------------------------------- checks
    def collected(self) -> dict[str, Any]:
        """The config with the dialog's choices (an emptied field, or the default dtype,
        removes its setting); other settings are kept as they are."""
        cfg = {
            t: (
                {n: dict(v) if isinstance(v, dict) else v for n, v in e.items()}
                if isinstance(e, dict)
                else e
            )
            for t, e in self.cfg.items()
        }
        for (table, name), row in self.rows.items():
            section = cfg.setdefault(table, {}).setdefault(name, {})
            values = {k: e.text().strip() for k, e in row.paths.items()}
            device = row.device.currentData()
            values["device"] = "" if device == "cpu" and "device" not in section else device
            values["dtype"] = row.dtype.currentData() or ""
            for k, v in values.items():
                if v:
                    section[k] = v
                else:
                    section.pop(k, None)
        return {
            t: ({n: v for n, v in e.items() if v != {}} if isinstance(e, dict) else e)
            for t, e in cfg.items()
        }

    def _validate(self, key: tuple[str, str]) -> list[str]:
        """Check one model with the dialog's values; its status line says what is wrong, or
        its size."""
        row = self.rows[key]
        table, name = key
        cfg = self.collected()
        problems = model_problems(table, name, cfg, self.devices)
        if problems:
            row.status.setText("\n".join(problems))
            row.status.setStyleSheet("color:#b3261e;")
        else:
            size = footprint_text(table, name, cfg)
            row.status.setText("ready" + (f" — {size}" if size else ""))
            row.status.setStyleSheet("color:#1b5e20;")
        return problems

    def check(self) -> list[str]:
        """Every model's problems; models left untouched that cannot load are not a problem
        for saving (they stay disabled in the pickers, with the reason)."""
        out: list[str] = []
        for key, row in self.rows.items():
            problems = self._validate(key)
            edited = any(e.text().strip() for e in row.paths.values()) or (
                row.dtype.currentData() is not None or row.device.currentData() != "cpu"
            )
            if edited:
                out += problems
        return out

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

    def choice_why(self, combo: QtWidgets.QComboBox, value: str | None) -> str | None:
        """The reason shown for a greyed-out choice (``None`` when it can be chosen)."""
        i = combo.findData(value)
        return None if i < 0 else combo.model().item(i).data(WHY_ROLE)
