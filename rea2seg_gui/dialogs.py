"""Settings dialog (checkpoint paths, device, evaluator endpoint, review preferences), the compare
dialog and the export dialog (File → Export SGDR file… / Export ReasonSeg folder…)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.vocab import EXPORT_MASKS, IMAGE_MODES, STATUSES
from rea2seg_gui import preferences as prefs
from rea2seg_gui.file_actions import SGDR_FILTER
from rea2seg_gui.models import config_path, load_config, path_problems, save_config

FIELDS = (
    ("presets", "lisa-7b", "mllm_path", "LISA-style model directory"),
    ("presets", "lisa-7b", "sam_checkpoint", "SAM checkpoint (.pth)"),
    ("presets", "lisa-7b", "sam_model_type", "SAM model type (vit_h / vit_l / vit_b)"),
    ("presets", "lisa-7b", "device", "Device (cpu / cuda)"),
    ("presets", "lens-3b", "mllm_path", "LENS (Qwen2.5-VL) model directory"),
    ("presets", "lens-3b", "sam2_checkpoint", "SAM2 checkpoint (.pt)"),
    ("presets", "lens-3b", "sam2_config", "SAM2 model config (e.g. configs/sam2.1/sam2.1_hiera_l.yaml)"),
    ("presets", "lens-3b", "device", "Device (cpu / cuda)"),
    ("evaluator", "internvl3-8b", "model_path", "InternVL3 -hf directory"),
    ("evaluator", "internvl3-8b", "lora_path", "Evaluator LoRA adapter (optional)"),
    ("evaluator", "internvl3-8b", "device", "Evaluator device"),
    ("evaluator", "openai", "base_url", "OpenAI-compatible base URL"),
    ("evaluator", "openai", "model", "Endpoint model name"),
)


ANY = "any"  # the filter choice that filters nothing (the option left out on the command line)

DIRECTORY_KEYS = ("mllm_path", "model_path", "lora_path")
FILE_KEYS = ("sam_checkpoint", "sam2_checkpoint")
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
                    problems.append(f"{where}: '{v}' is a directory; the checkpoint file itself is expected")
                if key == "device" and not DEVICE.match(v):
                    problems.append(f"{where}: '{v}' is not a device; use cpu, cuda, cuda:N or mps")
                if key == "sam_model_type" and v not in ("vit_h", "vit_l", "vit_b"):
                    problems.append(f"{where}: '{v}' is not a SAM model type; use vit_h, vit_l or vit_b")
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
            section = self.cfg.get(table, {}).get(name, {}) if isinstance(self.cfg.get(table), dict) else {}
            e = QtWidgets.QLineEdit(str(section.get(key, "")) if isinstance(section, dict) else "")
            e.setObjectName(f"{table}.{name}.{key}")
            self.edits[(table, name, key)] = e
            if key in DIRECTORY_KEYS or key in FILE_KEYS:
                row = QtWidgets.QHBoxLayout()
                row.addWidget(e, 1)
                browse = QtWidgets.QToolButton()
                browse.setText("…")
                browse.setToolTip("Choose a folder" if key in DIRECTORY_KEYS else "Choose a file")
                browse.clicked.connect(lambda _=False, e=e, d=key in DIRECTORY_KEYS: self._browse(e, d))
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
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Save | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        check = buttons.addButton("Check paths", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        check.clicked.connect(self.check)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self, edit: QtWidgets.QLineEdit, directory: bool) -> None:
        start = edit.text().strip() or str(Path.home())
        if directory:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a model directory", start)
        else:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Choose a checkpoint", start,
                                                            "Checkpoints (*.pth *.pt *.safetensors);;All files (*)")
        if path:
            edit.setText(path)

    def collected(self) -> dict[str, Any]:
        """The config with the dialog's values; an emptied field removes its setting."""
        cfg = {t: ({n: dict(v) if isinstance(v, dict) else v for n, v in entries.items()} if isinstance(entries, dict) else entries)
               for t, entries in self.cfg.items()}
        for (table, name, key), e in self.edits.items():
            section = cfg.setdefault(table, {}).setdefault(name, {})
            if e.text().strip():
                section[key] = e.text().strip()
            else:
                section.pop(key, None)
        return {t: ({n: v for n, v in entries.items() if v != {}} if isinstance(entries, dict) else entries)
                for t, entries in cfg.items()}

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
                self.preferences.setValue(name, w.isChecked() if isinstance(w, QtWidgets.QCheckBox) else w.value())
        self.accept()


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


from rea2seg_gui.panels.metrics import MetricsView  # noqa: E402,F401 - its former home

# per export format: window title, output row label, placeholder (File → Export SGDR file… /
# Export ReasonSeg folder…; the formats are core.exporters.EXPORT_FORMATS)
EXPORT_KINDS = {
    "sgdr": ("Export SGDR file", "Output file", "the SGDR JSON file to write"),
    "reasonseg": ("Export ReasonSeg folder", "Output folder", "a new or empty folder to write"),
}
MASK_LABELS = {"reviewed": "reviewed (else the imported ground truth)", "gt": "imported ground truth"}


class ExportDialog(QtWidgets.QDialog):
    """File → Export SGDR file… / Export ReasonSeg folder… (``fmt`` ``"sgdr"`` / ``"reasonseg"``):
    the output and the options of ``rea2seg export sgdr`` / ``rea2seg export reasonseg`` —
    *Dataset* (``--dataset``) and *Status* (``--status``), each with the choice *any* (the
    option left out), and for ReasonSeg *Mask* (``--mask``), *Images* (``--images``) and
    *Min IoU* (``--min-iou``), starting at :class:`core.exporters.ReasonSegSettings`' defaults.
    :meth:`export_kwargs` are the keyword arguments the command line passes to
    :func:`core.exporters.export_dataset`; :meth:`cli_args` is the same export as a command line,
    shown in the dialog. An output that cannot be written is explained in the dialog, which
    stays open (:func:`core.exporters.output_problem`); nothing is written."""

    def __init__(self, datasets: Sequence[str], db: str, parent: QtWidgets.QWidget | None = None, out: str = "",
                 fmt: str = "sgdr") -> None:
        """``datasets``: the store's dataset names (:func:`core.exporters.dataset_names`);
        ``db``: the store's URL, for the command line shown; ``fmt``: a key of :data:`EXPORT_KINDS`."""
        from core.exporters import ReasonSegSettings

        super().__init__(parent)
        if fmt not in EXPORT_KINDS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {list(EXPORT_KINDS)}")
        self.fmt = fmt
        title, out_label, placeholder = EXPORT_KINDS[fmt]
        self.setWindowTitle(title)
        self.db = db
        form = QtWidgets.QFormLayout(self)
        self.out_edit = QtWidgets.QLineEdit(out)
        self.out_edit.setPlaceholderText(placeholder)
        self.out_edit.textChanged.connect(self._changed)
        browse = QtWidgets.QPushButton("Browse…")
        browse.setObjectName("browse")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        form.addRow(out_label, row)
        self.dataset_combo = QtWidgets.QComboBox()
        self.dataset_combo.addItem(ANY, None)
        for name in datasets:
            self.dataset_combo.addItem(name, name)
        self.dataset_combo.setToolTip("Only samples of this dataset (--dataset); any: every dataset")
        form.addRow("Dataset", self.dataset_combo)
        self.status_combo = QtWidgets.QComboBox()
        self.status_combo.addItem(ANY, None)
        for st in STATUSES:
            self.status_combo.addItem(st, st)
        self.status_combo.setToolTip("Only samples with this review status (--status); any: every status")
        form.addRow("Status", self.status_combo)
        combos = [self.dataset_combo, self.status_combo]
        self.defaults = ReasonSegSettings()
        self.mask_combo = self.images_combo = self.min_iou_spin = None
        if fmt == "reasonseg":
            self.mask_combo = QtWidgets.QComboBox()
            for m in EXPORT_MASKS:
                self.mask_combo.addItem(MASK_LABELS[m], m)
            self.mask_combo.setCurrentIndex(self.mask_combo.findData(self.defaults.mask))
            self.mask_combo.setToolTip("Which mask each sample's polygons hold (--mask)")
            form.addRow("Mask", self.mask_combo)
            self.images_combo = QtWidgets.QComboBox()
            for m in IMAGE_MODES:
                self.images_combo.addItem(m, m)
            self.images_combo.setCurrentIndex(self.images_combo.findData(self.defaults.images))
            self.images_combo.setToolTip("Copy the images beside their JSON, or symlink to them (--images)")
            form.addRow("Images", self.images_combo)
            combos += [self.mask_combo, self.images_combo]
            self.min_iou_spin = QtWidgets.QDoubleSpinBox()
            self.min_iou_spin.setRange(0.0, 1.0)
            self.min_iou_spin.setDecimals(3)
            self.min_iou_spin.setSingleStep(0.01)
            self.min_iou_spin.setValue(self.defaults.min_iou)
            self.min_iou_spin.setToolTip("List the samples whose polygons reach a lower IoU with their mask "
                                         "(holes are filled) (--min-iou)")
            self.min_iou_spin.valueChanged.connect(self._changed)
            form.addRow("Min IoU", self.min_iou_spin)
        for combo in combos:
            combo.currentIndexChanged.connect(self._changed)
        self.command_label = QtWidgets.QLabel()
        self.command_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)  # paths may hold any text
        self.command_label.setWordWrap(True)
        self.command_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Same as", self.command_label)
        self.problem = QtWidgets.QLabel()
        self.problem.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#b3261e;")
        form.addRow(self.problem)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.export_button.setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._changed()

    def out_path(self) -> str:
        return self.out_edit.text().strip()

    def set_filters(self, *, dataset: str | None = None, status: str | None = None) -> None:
        """Choose a dataset / status by name (``None``: any); an unknown name raises ``LookupError``."""
        for combo, value in ((self.dataset_combo, dataset), (self.status_combo, status)):
            i = combo.findData(value) if value is not None else 0
            if i < 0:
                raise LookupError(f"{value!r} is not offered: {[combo.itemText(j) for j in range(combo.count())]}")
            combo.setCurrentIndex(i)

    def set_options(self, *, mask: str | None = None, images: str | None = None, min_iou: float | None = None) -> None:
        """Set the ReasonSeg options (``None``: leave as is); an unknown choice raises ``LookupError``."""
        if self.fmt != "reasonseg":
            raise LookupError("only the ReasonSeg export has these options")
        for combo, value in ((self.mask_combo, mask), (self.images_combo, images)):
            if value is not None:
                i = combo.findData(value)
                if i < 0:
                    raise LookupError(f"{value!r} is not offered")
                combo.setCurrentIndex(i)
        if min_iou is not None:
            self.min_iou_spin.setValue(min_iou)

    def export_kwargs(self) -> dict[str, Any]:
        """``status`` and ``dataset`` (``None``: any), and for ReasonSeg ``settings``, for
        :func:`core.exporters.export_dataset`."""
        kw: dict[str, Any] = {"status": self.status_combo.currentData(), "dataset": self.dataset_combo.currentData()}
        if self.fmt == "reasonseg":
            from core.exporters import ReasonSegSettings

            kw["settings"] = ReasonSegSettings(mask=self.mask_combo.currentData(), images=self.images_combo.currentData(),
                                               min_iou=round(self.min_iou_spin.value(), 3))
        return kw

    def cli_args(self) -> list[str]:
        """This export as arguments of ``rea2seg`` (``export sgdr --db … --out …`` or ``export
        reasonseg FOLDER --db …``, then the options that differ from the defaults)."""
        if self.fmt == "sgdr":
            args = ["export", "sgdr", "--db", self.db, "--out", self.out_path() or "FILE"]
        else:
            args = ["export", "reasonseg", self.out_path() or "FOLDER", "--db", self.db]
        kw = self.export_kwargs()
        if kw["status"] is not None:
            args += ["--status", kw["status"]]
        if kw["dataset"] is not None:
            args += ["--dataset", kw["dataset"]]
        settings = kw.get("settings")
        if settings is not None:
            for name in ("mask", "images", "min_iou"):
                value = getattr(settings, name)
                if value != getattr(self.defaults, name):
                    args += [f"--{name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else value]
        return args

    def command(self) -> str:
        return shlex.join(["rea2seg", *self.cli_args()])

    def _changed(self) -> None:
        self.command_label.setText(self.command())
        self.problem.clear()

    def _browse(self) -> None:
        if self.fmt == "reasonseg":
            path = QtWidgets.QFileDialog.getExistingDirectory(self, EXPORT_KINDS[self.fmt][0], self.out_path())
        else:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, EXPORT_KINDS[self.fmt][0], self.out_path(), SGDR_FILTER)
        if path:
            self.out_edit.setText(path)

    def accept(self) -> None:
        from core.exporters import output_problem

        problem = output_problem(self.fmt, self.out_path())  # type: ignore[arg-type]
        if problem is not None:
            self.problem.setText(f"Not exported: {problem}")
            return
        super().accept()
