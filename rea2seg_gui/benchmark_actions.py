"""The Benchmark menu: the whole benchmark loop of paper §3 / App. C in the app.

*Import COCO…* (:func:`core.importers.coco.import_coco`, as ``rea2seg import coco``), *Generate
questions…* (:func:`core.benchmark.generate.generate_questions` with the generator and the
verifier on an OpenAI-compatible endpoint, as ``rea2seg questions generate``) and *Agreement…*
(:func:`core.benchmark.agreement.agreement`, as ``rea2seg stats --agreement``). Each runs in the
window's worker with progress in the Run tab and the status bar; imports and generation can be
cancelled between items; the report is shown when the job ends. Reviewing the generated
questions is the window's review loop (the generated-question dock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.store import Store
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.plain_dialogs import report_box


def benchmark_menu(window: Any) -> BenchmarkActions:
    """Add the Benchmark menu to ``window``'s (a :class:`~rea2seg_gui.main_window.MainWindow`)
    menu bar, wired to its job runner, store, sample list and status bar."""

    def changed() -> None:  # new generated questions: the list, and their dock
        window.review.refresh_samples()
        window._show_questions_dock()

    def show(sid: int) -> None:  # its row when the filters show it, else the sample alone
        if not window.samples_panel.select(sid):
            window.review.show_sample(sid)

    actions = BenchmarkActions(
        window, window.jobs, lambda: window.store, changed, show, window.settings
    )
    actions.add_to(window.menuBar().addMenu("&Benchmark"))
    actions.status.connect(window.statusBar().showMessage)
    return actions


class BenchmarkActions(QtCore.QObject):
    """``status(text)``; ``finished(kind, report)`` with ``kind`` ``"import"`` (an
    :class:`~core.importers.common.ImportReport`), ``"generate"`` (a
    :class:`~core.benchmark.generate.GenerationReport`) or ``"agreement"`` (an
    :class:`~core.benchmark.agreement.AgreementReport`); ``failed(message)``."""

    status = QtCore.Signal(str)
    finished = QtCore.Signal(str, object)
    failed = QtCore.Signal(str)

    def __init__(
        self,
        window: QtWidgets.QWidget,
        jobs: JobRunner,
        store: Callable[[], Store],
        refresh: Callable[[], None],
        show_sample: Callable[[int], None],
        settings: QtCore.QSettings | None = None,
    ) -> None:
        super().__init__(window)
        self.window, self.jobs, self._store = window, jobs, store
        self._refresh, self._show_sample, self.settings = refresh, show_sample, settings
        self.dialog: QtWidgets.QDialog | None = None
        self.agreement_dialog: Any = None
        self.report_box: QtWidgets.QMessageBox | None = None
        self._running: str | None = None
        self.actions: dict[str, QtGui.QAction] = {}
        for key, label, slot in (
            ("import_coco", "Import &COCO instances…", self.import_coco),
            ("generate", "&Generate questions…", self.generate),
            ("agreement", "&Agreement between annotators…", self.agreement),
            ("cancel", "&Cancel import / generation", self.cancel),
        ):
            act = QtGui.QAction(label, self)
            act.triggered.connect(slot)
            self.actions[key] = act
        self.actions["cancel"].setEnabled(False)

    def add_to(self, menu: QtWidgets.QMenu) -> None:
        for key in ("import_coco", "generate"):
            menu.addAction(self.actions[key])
        menu.addAction(self.actions["cancel"])
        menu.addSeparator()
        menu.addAction(self.actions["agreement"])

    # ------------------------------------------------------------------------- dialogs
    def _replace_dialog(self, dlg: QtWidgets.QDialog) -> QtWidgets.QDialog:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = dlg
        return dlg

    def import_coco(self) -> bool:
        """Open the import dialog; its *Import* runs the import in the worker."""
        from rea2seg_gui.benchmark_dialogs import ImportCocoDialog

        dlg = self._replace_dialog(ImportCocoDialog(self._store().url, self.window))
        dlg.accepted.connect(lambda: self.run_import(**dlg.import_kwargs()))
        dlg.open()
        return True

    def generate(self) -> bool:
        """Open the generation dialog; its *Generate* runs generation and verification in the
        worker. False when the store cannot be read."""
        from core.exporters import dataset_names
        from rea2seg_gui.benchmark_dialogs import GenerateDialog

        store = self._store()
        try:
            names = dataset_names(store)
        except Exception as exc:  # noqa: BLE001 - a store that cannot be read is reported
            self._show("Generate questions", f"The store cannot be read: {exc}", error=True)
            return False
        dlg = self._replace_dialog(GenerateDialog(store.url, names, self.settings, self.window))
        dlg.accepted.connect(lambda: self.run_generate(dlg.options(), dlg.api_key()))
        dlg.open()
        return True

    def agreement(self, users: list[str] | None = None) -> bool:
        """Compute the agreement in the worker and show it in the (non-modal) agreement window."""
        from core.benchmark.agreement import agreement
        from rea2seg_gui.benchmark_dialogs import AgreementDialog

        if self.agreement_dialog is None:
            self.agreement_dialog = AgreementDialog(self.window)
            self.agreement_dialog.sample_chosen.connect(self._show_sample)
            self.agreement_dialog.refresh_requested.connect(self.agreement)
        store, who = self._store(), list(users or [])

        def job(progress, should_cancel):
            return agreement(store, users=who or None)

        def done(rep) -> None:
            self._ended()
            self.agreement_dialog.show_report(rep)
            self.agreement_dialog.show()
            self.agreement_dialog.raise_()
            self.status.emit(
                f"agreement: {rep.overall.n} samples decided by two annotators or more, "
                f"{len(rep.disagreements)} disagreements"
            )
            self.finished.emit("agreement", rep)

        return self._start(job, done, "agreement", "Computing the agreement…", cancellable=False)

    # ---------------------------------------------------------------------------- jobs
    def run_import(
        self,
        ann_file: str,
        images_dir: str,
        *,
        dataset: str | None = None,
        category_filter: list[str] | None = None,
        allow_outside: bool = False,
    ) -> bool:
        """``rea2seg import coco ANN_FILE --images IMAGES_DIR …`` in the worker."""
        from core.importers.coco import import_coco

        store = self._store()

        def job(progress, should_cancel):
            return import_coco(
                store,
                ann_file,
                images_dir,
                dataset=dataset,
                category_filter=category_filter,
                allow_outside=allow_outside,
                progress=progress,
                should_cancel=should_cancel,
            )

        def done(rep) -> None:
            self._ended()
            text = rep.summary().replace("added", "targets added", 1)
            text += (
                "\n\nNext: Benchmark → Generate questions… turns the targets into questions."
                if rep.added or rep.existing
                else ""
            )
            self.status.emit(text.splitlines()[0])
            self._show("Import COCO", text, error=not rep.ok)
            self.finished.emit("import", rep)

        return self._start(job, done, "import", f"Importing {ann_file}…", cancellable=True)

    def run_generate(self, options: dict[str, Any], api_key: str | None = None) -> bool:
        """``rea2seg questions generate`` with ``options`` (:meth:`GenerateDialog.options`) in the
        worker; ``api_key`` for both clients."""
        from core.benchmark.generate import generate_questions
        from core.llm_client import ChatClient

        o, store = dict(options), self._store()
        gen = ver = None
        if o.get("endpoint"):
            try:
                gen = ChatClient(
                    o["endpoint"], o["model"], api_key, concurrency=o.get("concurrency", 4)
                )
                ver = ChatClient(
                    o.get("verifier_endpoint") or o["endpoint"],
                    o.get("verifier_model") or o["model"],
                    api_key,
                    concurrency=o.get("concurrency", 4),
                )
            except ValueError as exc:
                self._show("Generate questions", str(exc), error=True)
                return False

        def job(progress, should_cancel):
            return generate_questions(
                store,
                o["split"],
                gen,
                ver,
                kind=o.get("kind"),
                resume=bool(o.get("resume")),
                limit=o.get("limit"),
                dataset=o.get("dataset"),
                progress=progress,
                should_cancel=should_cancel,
            )

        def done(rep) -> None:
            self._ended()
            self._refresh()
            text = rep.summary()
            if rep.verdicts:
                text += "\n\nReview them in the sample list (verdict filter) and the Generated question dock."
            self.status.emit(f"questions: {text.splitlines()[0]}")
            self._show("Generate questions", text, error=bool(rep.errors))
            self.finished.emit("generate", rep)

        return self._start(
            job, done, "generate", f"Generating {o['split']} questions…", cancellable=True
        )

    def cancel(self) -> None:
        if self._running and self.jobs.cancel():
            self.status.emit(f"cancelling the {self._running} after the current item…")

    def _start(self, job, done, kind: str, what: str, *, cancellable: bool) -> bool:
        name = {"import": "Import COCO", "generate": "Generation", "agreement": "Agreement"}[kind]
        if not self.jobs.start(job, done, name, self._failed, cancellable=cancellable):
            self.status.emit(f"{self.jobs.name} is still running; try again after it")
            return False
        self._running = kind
        self.actions["cancel"].setEnabled(cancellable)
        self.status.emit(what)
        return True

    def _ended(self) -> None:
        self._running = None
        self.actions["cancel"].setEnabled(False)

    def _failed(self, msg: str) -> None:
        what = self._running or "job"
        self._ended()
        self._show(f"The {what} failed", msg, error=True)
        self.failed.emit(msg)

    def _show(self, title: str, text: str, *, error: bool = False) -> None:
        self.report_box = report_box(self.window, title, text, error=error)
