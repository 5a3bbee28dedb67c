"""The dialogs of the Benchmark menu (paper §3, App. C): *Import COCO…* and *Generate
questions…* with the options of ``rea2seg import coco`` / ``rea2seg questions generate`` (each
shows the same work as a command line), and *Agreement* (``rea2seg stats --agreement``) as
tables. They only collect and show; :mod:`rea2seg_gui.benchmark_actions` runs the work."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.vocab import DISCRIMINATIVE_KINDS, SPLITS

ANY = "any"
KEY_ENV = "REA2SEG_EVAL_API_KEY"  # the environment variable that holds the key, as on the CLI


def _label() -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel()
    lab.setTextFormat(QtCore.Qt.TextFormat.PlainText)  # paths, names and model text: plain
    lab.setWordWrap(True)
    return lab


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


class _Dialog(QtWidgets.QDialog):
    """A form, the command line it stands for, a problem line and OK (renamed) / Cancel; a
    problem found by :meth:`problem` keeps the dialog open."""

    def __init__(self, title: str, ok: str, parent: QtWidgets.QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.form = QtWidgets.QFormLayout(self)
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.command_label = _label()
        self.command_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.problem_label = _label()
        self.problem_label.setStyleSheet("color:#b3261e;")
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._buttons = buttons

    def _finish(self) -> None:
        self.form.addRow("Same as", self.command_label)
        self.form.addRow(self.problem_label)
        self.form.addRow(self._buttons)
        self._changed()

    def _path_row(self, label: str, edit: QtWidgets.QLineEdit, browse) -> None:
        b = QtWidgets.QPushButton("Browse…")
        b.setObjectName(f"browse_{edit.objectName()}")
        b.clicked.connect(browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(b)
        self.form.addRow(label, row)
        edit.textChanged.connect(self._changed)

    def cli_args(self) -> list[str]:
        raise NotImplementedError

    def command(self) -> str:
        return shlex.join(["rea2seg", *self.cli_args()])

    def problem(self) -> str | None:
        return None

    def _changed(self, *_a: object) -> None:
        self.command_label.setText(self.command())
        self.problem_label.clear()

    def accept(self) -> None:
        why = self.problem()
        if why is not None:
            self.problem_label.setText(why)
            return
        super().accept()


class ImportCocoDialog(_Dialog):
    """Benchmark → Import COCO…: the instances file, the images folder, the dataset name, a
    category filter and *allow outside*, as ``rea2seg import coco``. :meth:`import_kwargs` are
    the arguments of :func:`core.importers.coco.import_coco`."""

    def __init__(self, db: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Import COCO instances", "Import", parent)
        self.db = db
        self.file_edit = QtWidgets.QLineEdit()
        self.file_edit.setObjectName("file")
        self.file_edit.setPlaceholderText("COCO instances JSON")
        self._path_row("Annotations", self.file_edit, self._browse_file)
        self.images_edit = QtWidgets.QLineEdit()
        self.images_edit.setObjectName("images")
        self.images_edit.setPlaceholderText("the folder each file_name is relative to")
        self._path_row("Images folder", self.images_edit, self._browse_images)
        self.dataset_edit = QtWidgets.QLineEdit()
        self.dataset_edit.setPlaceholderText("default: the file's name without .json")
        self.dataset_edit.textChanged.connect(self._changed)
        self.form.addRow("Dataset", self.dataset_edit)
        self.categories_edit = QtWidgets.QLineEdit()
        self.categories_edit.setPlaceholderText("all categories (or: cup, dog, …)")
        self.categories_edit.textChanged.connect(self._changed)
        self.form.addRow("Only categories", self.categories_edit)
        self.outside_check = QtWidgets.QCheckBox(
            "Accept image paths that lead outside the images folder"
        )
        self.outside_check.toggled.connect(self._changed)
        self.form.addRow(self.outside_check)
        self._finish()

    def _browse_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "COCO instances file", self.file_edit.text(), "JSON (*.json);;All files (*)"
        )
        if path:
            self.file_edit.setText(path)
            if not self.images_edit.text():
                self.images_edit.setText(str(Path(path).parent))

    def _browse_images(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Images folder", self.images_edit.text()
        )
        if path:
            self.images_edit.setText(path)

    def import_kwargs(self) -> dict[str, Any]:
        return {
            "ann_file": self.file_edit.text().strip(),
            "images_dir": self.images_edit.text().strip(),
            "dataset": self.dataset_edit.text().strip() or None,
            "category_filter": _names(self.categories_edit.text()),
            "allow_outside": self.outside_check.isChecked(),
        }

    def cli_args(self) -> list[str]:
        kw = self.import_kwargs()
        args = ["import", "coco", kw["ann_file"] or "FILE", "--images", kw["images_dir"] or "DIR"]
        args += ["--db", self.db]
        if kw["dataset"]:
            args += ["--dataset", kw["dataset"]]
        if kw["category_filter"]:
            args += ["--category-filter", ",".join(kw["category_filter"])]
        if kw["allow_outside"]:
            args.append("--allow-outside")
        return args

    def problem(self) -> str | None:
        kw = self.import_kwargs()
        if not kw["ann_file"]:
            return "Choose the COCO instances file."
        if not Path(kw["ann_file"]).is_file():
            return f"{kw['ann_file']}: no such file"
        if not kw["images_dir"] or not Path(kw["images_dir"]).is_dir():
            return f"{kw['images_dir'] or 'the images folder'}: no such folder"
        return None


class GenerateDialog(_Dialog):
    """Benchmark → Generate questions…: the split (and the discriminative kind), the generator's
    and the verifier's OpenAI-compatible endpoint and model, the dataset, a limit and *resume*,
    as ``rea2seg questions generate``. The API key is read from the environment variable named
    (never typed here). Endpoint and models are remembered in ``settings``."""

    def __init__(
        self,
        db: str,
        datasets: Sequence[str],
        settings: QtCore.QSettings | None = None,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__("Generate questions", "Generate", parent)
        self.db, self.settings = db, settings
        self.split_combo = QtWidgets.QComboBox()
        self.split_combo.addItems(SPLITS)
        self.split_combo.setToolTip(
            "spatial: Figure S3 + verifier S4; multi_step: Figure S5 + verifier; "
            "discriminative: the fixed questions of App. C (no model)"
        )
        self.form.addRow("Split", self.split_combo)
        self.kind_combo = QtWidgets.QComboBox()
        self.kind_combo.addItems(DISCRIMINATIVE_KINDS)
        self.form.addRow("Discriminative kind", self.kind_combo)
        self.endpoint_edit = QtWidgets.QLineEdit()
        self.endpoint_edit.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.form.addRow("Endpoint", self.endpoint_edit)
        self.model_edit = QtWidgets.QLineEdit()
        self.model_edit.setPlaceholderText("generator model name")
        self.form.addRow("Generator model", self.model_edit)
        self.verifier_model_edit = QtWidgets.QLineEdit()
        self.verifier_model_edit.setPlaceholderText("default: the generator model")
        self.form.addRow("Verifier model", self.verifier_model_edit)
        self.verifier_endpoint_edit = QtWidgets.QLineEdit()
        self.verifier_endpoint_edit.setPlaceholderText("default: the endpoint")
        self.form.addRow("Verifier endpoint", self.verifier_endpoint_edit)
        self.key_env_edit = QtWidgets.QLineEdit(KEY_ENV)
        self.key_env_edit.setToolTip(
            "The environment variable holding the API key (a key is never typed or shown here)"
        )
        self.form.addRow("API key variable", self.key_env_edit)
        self.dataset_combo = QtWidgets.QComboBox()
        self.dataset_combo.addItem(ANY, None)
        for name in datasets:
            self.dataset_combo.addItem(name, name)
        self.form.addRow("Dataset", self.dataset_combo)
        self.limit_spin = QtWidgets.QSpinBox()
        self.limit_spin.setRange(0, 10_000_000)
        self.limit_spin.setSpecialValueText("all")
        self.form.addRow("At most (targets)", self.limit_spin)
        self.concurrency_spin = QtWidgets.QSpinBox()
        self.concurrency_spin.setRange(1, 64)
        self.concurrency_spin.setValue(4)
        self.form.addRow("Requests in flight", self.concurrency_spin)
        self.resume_check = QtWidgets.QCheckBox("Resume: skip finished targets, retry failed ones")
        self.form.addRow(self.resume_check)
        for edit, key in self._remembered():
            if settings is not None and settings.value(key):
                edit.setText(str(settings.value(key)))
        for w in (
            self.endpoint_edit,
            self.model_edit,
            self.verifier_model_edit,
            self.verifier_endpoint_edit,
            self.key_env_edit,
        ):
            w.textChanged.connect(self._changed)
        for c in (self.split_combo, self.kind_combo, self.dataset_combo):
            c.currentIndexChanged.connect(self._changed)
        for s in (self.limit_spin, self.concurrency_spin):
            s.valueChanged.connect(self._changed)
        self.resume_check.toggled.connect(self._changed)
        self._finish()

    def _remembered(self) -> list[tuple[QtWidgets.QLineEdit, str]]:
        return [
            (self.endpoint_edit, "questions/endpoint"),
            (self.model_edit, "questions/model"),
            (self.verifier_model_edit, "questions/verifier_model"),
            (self.verifier_endpoint_edit, "questions/verifier_endpoint"),
        ]

    def _changed(self, *_a: object) -> None:
        model_free = self.split_combo.currentText() == "discriminative"
        self.kind_combo.setEnabled(model_free)
        for w in (
            self.endpoint_edit,
            self.model_edit,
            self.verifier_model_edit,
            self.verifier_endpoint_edit,
            self.key_env_edit,
            self.concurrency_spin,
        ):
            w.setEnabled(not model_free)
        super()._changed()

    def options(self) -> dict[str, Any]:
        """What :func:`core.benchmark.generate.generate_questions` needs besides the clients, and
        the clients' endpoints and models (``None`` for the discriminative split)."""
        model_free = self.split_combo.currentText() == "discriminative"
        endpoint = self.endpoint_edit.text().strip()
        model = self.model_edit.text().strip()
        return {
            "split": self.split_combo.currentText(),
            "kind": self.kind_combo.currentText() if model_free else None,
            "endpoint": None if model_free else endpoint,
            "model": None if model_free else model,
            "verifier_endpoint": None
            if model_free
            else self.verifier_endpoint_edit.text().strip() or endpoint,
            "verifier_model": None
            if model_free
            else self.verifier_model_edit.text().strip() or model,
            "key_env": self.key_env_edit.text().strip() or KEY_ENV,
            "dataset": self.dataset_combo.currentData(),
            "limit": self.limit_spin.value() or None,
            "resume": self.resume_check.isChecked(),
            "concurrency": self.concurrency_spin.value(),
        }

    def cli_args(self) -> list[str]:
        o = self.options()
        args = ["questions", "generate", "--db", self.db, "--split", o["split"]]
        if o["kind"]:
            args += ["--kind", o["kind"]]
        if o["endpoint"] is not None:
            args += ["--endpoint", o["endpoint"] or "URL", "--model", o["model"] or "MODEL"]
            if self.verifier_model_edit.text().strip():
                args += ["--verifier-model", o["verifier_model"]]
            if self.verifier_endpoint_edit.text().strip():
                args += ["--verifier-endpoint", o["verifier_endpoint"]]
            if o["key_env"] != KEY_ENV:
                args += ["--api-key-env", o["key_env"]]
            if o["concurrency"] != 4:
                args += ["--concurrency", str(o["concurrency"])]
        if o["dataset"]:
            args += ["--dataset", o["dataset"]]
        if o["limit"]:
            args += ["--limit", str(o["limit"])]
        if o["resume"]:
            args.append("--resume")
        return args

    def problem(self) -> str | None:
        o = self.options()
        if o["endpoint"] is not None and (not o["endpoint"] or not o["model"]):
            return f"The {o['split']} split needs an endpoint and a generator model."
        return None

    def accept(self) -> None:
        if self.problem() is None and self.settings is not None:
            for edit, key in self._remembered():
                self.settings.setValue(key, edit.text().strip())
        super().accept()

    def api_key(self) -> str | None:
        return os.environ.get(self.options()["key_env"]) or None


class AgreementDialog(QtWidgets.QDialog):
    """Benchmark → Agreement…: per category, how many samples two or more annotators decided,
    how many agree, the percent and Cohen's kappa per pair (``rea2seg stats --agreement``), and
    the disagreements to resolve; double-clicking one emits ``sample_chosen(id)``. ``users``
    restricts to those annotators; ``refresh_requested(users)`` asks for the numbers again."""

    sample_chosen = QtCore.Signal(int)
    refresh_requested = QtCore.Signal(list)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Agreement between annotators")
        v = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.users_edit = QtWidgets.QLineEdit()
        self.users_edit.setPlaceholderText("all annotators (or: ann, bob)")
        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.clicked.connect(
            lambda: self.refresh_requested.emit(_names(self.users_edit.text()))
        )
        self.users_edit.returnPressed.connect(self.refresh_button.click)
        row.addWidget(QtWidgets.QLabel("Annotators"))
        row.addWidget(self.users_edit, 1)
        row.addWidget(self.refresh_button)
        v.addLayout(row)
        self.table = self._table(["category", "n", "agree", "%", "Cohen's kappa"])
        v.addWidget(self.table, 1)
        self.disagreements_label = _label()
        v.addWidget(self.disagreements_label)
        self.disagreements = self._table(["sample", "category", "external id", "decisions"])
        self.disagreements.cellDoubleClicked.connect(self._chosen)
        v.addWidget(self.disagreements, 1)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        v.addWidget(close)
        self.resize(640, 480)

    @staticmethod
    def _table(headers: list[str]) -> QtWidgets.QTableWidget:
        t = QtWidgets.QTableWidget(0, len(headers))
        t.setHorizontalHeaderLabels(headers)
        t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        t.verticalHeader().setVisible(False)
        t.horizontalHeader().setStretchLastSection(True)
        return t

    def show_report(self, rep: Any) -> None:
        """Fill the tables from a :class:`core.benchmark.agreement.AgreementReport`."""

        def kappas(c: Any) -> str:
            return ", ".join(
                f"{u}/{w} {'n/a' if k is None else f'{k:.3f}'}"
                for (u, w), k in sorted(c.kappa.items())
            )

        cats = [*sorted(rep.categories.values(), key=lambda c: c.category), rep.overall]
        self.table.setRowCount(len(cats))
        for r, c in enumerate(cats):
            pct = "-" if c.percent is None else f"{c.percent:.1f}"
            for col, text in enumerate((c.category, str(c.n), str(c.agree), pct, kappas(c))):
                self.table.setItem(r, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        dis = rep.disagreements
        self.disagreements_label.setText(
            f"{len(dis)} disagreement{'' if len(dis) == 1 else 's'} to resolve"
            + (" (double-click one to show its sample)" if dis else "")
            if rep.overall.n
            else "No sample was decided by two annotators yet: agreement needs two reviews of a sample."
        )
        self.disagreements.setRowCount(len(dis))
        for r, d in enumerate(dis):
            who = ", ".join(f"{u}: {x}" for u, x in d.decisions.items())
            for col, text in enumerate((str(d.sample_id), d.category, d.external_id, who)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, d.sample_id)
                self.disagreements.setItem(r, col, item)
        self.disagreements.resizeColumnsToContents()

    def row(self, table: QtWidgets.QTableWidget, r: int) -> list[str]:
        return [table.item(r, c).text() for c in range(table.columnCount())]

    def _chosen(self, r: int, _c: int) -> None:
        item = self.disagreements.item(r, 0)
        if item is not None:
            self.sample_chosen.emit(int(item.data(QtCore.Qt.ItemDataRole.UserRole)))
