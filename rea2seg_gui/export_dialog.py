"""The export dialog: File → Export SGDR file… / Export ReasonSeg folder…, with the options of
``rea2seg export sgdr`` / ``rea2seg export reasonseg``."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.vocab import EXPORT_MASKS, IMAGE_MODES, STATUSES
from rea2seg_gui.file_types import SGDR_FILTER

ANY = "any"  # the filter choice that filters nothing (the option left out on the command line)
DEFAULT_STATUS = "verified"
"""The status the dialog starts with: an export holds what reviewers accepted unless the user
chooses otherwise (the command line's ``--status`` has no default; the command shown says it)."""

# per export format: window title, output row label, placeholder (File → Export SGDR file… /
# Export ReasonSeg folder…; the formats are core.exporters.EXPORT_FORMATS)
EXPORT_KINDS = {
    "sgdr": ("Export SGDR file", "Output file", "the SGDR JSON file to write"),
    "reasonseg": ("Export ReasonSeg folder", "Output folder", "a new or empty folder to write"),
}
MASK_LABELS = {
    "reviewed": "reviewed (else the imported ground truth)",
    "gt": "imported ground truth",
}


class ExportDialog(QtWidgets.QDialog):
    """File → Export SGDR file… / Export ReasonSeg folder… (``fmt`` ``"sgdr"`` / ``"reasonseg"``):
    the output and the options of ``rea2seg export sgdr`` / ``rea2seg export reasonseg`` —
    *Dataset* (``--dataset``) and *Status* (``--status``, starting at :data:`DEFAULT_STATUS`),
    each with the choice *any* (the option left out), and for ReasonSeg *Mask* (``--mask``), *Images* (``--images``) and
    *Min IoU* (``--min-iou``), starting at :class:`core.exporters.ReasonSegSettings`' defaults.
    :meth:`export_kwargs` are the keyword arguments the command line passes to
    :func:`core.exporters.export_dataset`; :meth:`cli_args` is the same export as a command line,
    shown in the dialog. An output that cannot be written is explained in the dialog, which
    stays open (:func:`core.exporters.output_problem`); nothing is written."""

    def __init__(
        self,
        datasets: Sequence[str],
        db: str,
        parent: QtWidgets.QWidget | None = None,
        out: str = "",
        fmt: str = "sgdr",
        count: Callable[[str | None, str | None], int] | None = None,
    ) -> None:
        """``datasets``: the store's dataset names (:func:`core.exporters.dataset_names`);
        ``db``: the store's URL, for the command line shown; ``fmt``: a key of :data:`EXPORT_KINDS`;
        ``count(status, dataset)``: how many samples those filters select (shown as they change)."""
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
        self.dataset_combo.setToolTip(
            "Only samples of this dataset (--dataset); any: every dataset"
        )
        form.addRow("Dataset", self.dataset_combo)
        self.status_combo = QtWidgets.QComboBox()
        self.status_combo.addItem(ANY, None)
        for st in STATUSES:
            self.status_combo.addItem(st, st)
        self.status_combo.setCurrentIndex(self.status_combo.findData(DEFAULT_STATUS))
        self.status_combo.setToolTip(
            "Only samples with this review status (--status); any: every status. "
            "Verified by default: what a reviewer accepted"
        )
        form.addRow("Status", self.status_combo)
        self._count = count
        self.matching = QtWidgets.QLabel()
        self.matching.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        form.addRow("Selected", self.matching)
        for combo in (self.dataset_combo, self.status_combo):
            combo.currentIndexChanged.connect(self._count_matching)
        self._count_matching()
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
            self.images_combo.setToolTip(
                "Copy the images beside their JSON, or symlink to them (--images)"
            )
            form.addRow("Images", self.images_combo)
            combos += [self.mask_combo, self.images_combo]
            self.min_iou_spin = QtWidgets.QDoubleSpinBox()
            self.min_iou_spin.setRange(0.0, 1.0)
            self.min_iou_spin.setDecimals(3)
            self.min_iou_spin.setSingleStep(0.01)
            self.min_iou_spin.setValue(self.defaults.min_iou)
            self.min_iou_spin.setToolTip(
                "List the samples whose polygons reach a lower IoU with their mask "
                "(holes are filled) (--min-iou)"
            )
            self.min_iou_spin.valueChanged.connect(self._changed)
            form.addRow("Min IoU", self.min_iou_spin)
        for combo in combos:
            combo.currentIndexChanged.connect(self._changed)
        self.command_label = QtWidgets.QLabel()
        self.command_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)  # paths may hold any text
        self.command_label.setWordWrap(True)
        self.command_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )
        form.addRow("Same as", self.command_label)
        self.problem = QtWidgets.QLabel()
        self.problem.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#b3261e;")
        form.addRow(self.problem)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
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
                raise LookupError(
                    f"{value!r} is not offered: {[combo.itemText(j) for j in range(combo.count())]}"
                )
            combo.setCurrentIndex(i)

    def set_options(
        self, *, mask: str | None = None, images: str | None = None, min_iou: float | None = None
    ) -> None:
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
        kw: dict[str, Any] = {
            "status": self.status_combo.currentData(),
            "dataset": self.dataset_combo.currentData(),
        }
        if self.fmt == "reasonseg":
            from core.exporters import ReasonSegSettings

            kw["settings"] = ReasonSegSettings(
                mask=self.mask_combo.currentData(),
                images=self.images_combo.currentData(),
                min_iou=round(self.min_iou_spin.value(), 3),
            )
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
                    args += [
                        f"--{name.replace('_', '-')}",
                        f"{value:g}" if isinstance(value, float) else value,
                    ]
        return args

    def command(self) -> str:
        return shlex.join(["rea2seg", *self.cli_args()])

    def _count_matching(self) -> None:
        if self._count is None:
            self.matching.setText("")
            return
        try:
            n = self._count(self.status_combo.currentData(), self.dataset_combo.currentData())
        except Exception as exc:  # noqa: BLE001 - a store that cannot be read is said, not raised
            self.matching.setText(f"cannot count the samples: {' '.join(str(exc).split())}")
            return
        self.matching.setText(f"{n} sample{'' if n == 1 else 's'}")

    def _changed(self) -> None:
        self.command_label.setText(self.command())
        self.problem.clear()

    def _browse(self) -> None:
        if self.fmt == "reasonseg":
            path = QtWidgets.QFileDialog.getExistingDirectory(
                self, EXPORT_KINDS[self.fmt][0], self.out_path()
            )
        else:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(
                self, EXPORT_KINDS[self.fmt][0], self.out_path(), SGDR_FILTER
            )
        if path:
            self.out_edit.setText(path)

    def accept(self) -> None:
        from core.exporters import output_problem

        problem = output_problem(self.fmt, self.out_path())  # type: ignore[arg-type]
        if problem is not None:
            self.problem.setText(f"Not exported: {problem}")
            return
        super().accept()
