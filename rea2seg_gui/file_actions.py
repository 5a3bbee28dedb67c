"""File → New store… / Import ReasonSeg… / Import SGDR… / Export SGDR… / Export ReasonSeg folder…:
the same core functions as ``rea2seg import`` / ``rea2seg export`` (:func:`core.importers.import_dataset`,
:func:`core.exporters.export_dataset`, called with the arguments the command line passes; an
export's options are chosen in :class:`~rea2seg_gui.export_dialog.ExportDialog`, one dialog for both
formats), run in the window's worker with progress, cancel (imports, ReasonSeg exports) and errors; the report
(what landed or was written, what was skipped and why, the polygons' IoU) is shown when the job
ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.store import Store
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.file_types import SGDR_FILTER, STORE_FILTER
from rea2seg_gui.plain_dialogs import report_box


class FileActions(QtCore.QObject):
    """The File menu's data actions. ``status(text)`` for the status bar; ``finished(kind,
    report)`` after an import (:class:`~core.importers.common.ImportReport`) or export
    (:class:`~core.exporters.sgdr.ExportReport` /
    :class:`~core.exporters.reasonseg.ReasonSegExportReport`), ``kind`` ``"import"`` / ``"export"``;
    ``failed(message)`` when a job could not run at all (unreadable file, store error)."""

    status = QtCore.Signal(str)
    finished = QtCore.Signal(str, object)
    failed = QtCore.Signal(str)

    def __init__(
        self,
        window: QtWidgets.QWidget,
        jobs: JobRunner,
        store: Callable[[], Store],
        open_store: Callable[[str], bool],
        refresh: Callable[[], None],
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent or window)
        self.window, self.jobs, self._store, self._open_store, self._refresh = (
            window,
            jobs,
            store,
            open_store,
            refresh,
        )
        self.report_box: QtWidgets.QMessageBox | None = None
        self.export_dialog: QtWidgets.QDialog | None = None
        self.actions: dict[str, QtGui.QAction] = {}
        for key, label, slot in (
            ("new", "&New store…", self.new_store),
            ("import_reasonseg", "Import &ReasonSeg folder…", self.import_reasonseg),
            ("import_sgdr", "Import &SGDR file…", self.import_sgdr),
            ("export_sgdr", "&Export SGDR file…", self.export_sgdr),
            ("export_reasonseg", "Export ReasonSeg &folder…", self.export_reasonseg),
            ("cancel", "&Cancel import / export", self.cancel),
        ):
            act = QtGui.QAction(label, self)
            act.triggered.connect(slot)
            self.actions[key] = act
        self.actions["cancel"].setEnabled(False)
        self._running: str | None = None  # "import" / "export" while one runs

    def add_to(self, menu: QtWidgets.QMenu) -> None:
        """Put the actions in ``menu`` (New first, then the import / export group)."""
        menu.addAction(self.actions["new"])
        menu.addSeparator()
        for key in ("import_reasonseg", "import_sgdr", "export_sgdr", "export_reasonseg", "cancel"):
            menu.addAction(self.actions[key])
        menu.addSeparator()

    # --------------------------------------------------------------------------- actions
    def new_store(self) -> bool:
        """Ask for a file name and open a new, empty store there; an existing file is refused
        (File → Open store opens it), so no store is ever replaced."""
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "New store", "", STORE_FILTER)
        if not path:
            return False
        if Path(path).exists():
            self._show(
                "New store",
                f"{path} already exists; a new store is never written over a file. "
                "Use File → Open store to open it.",
                error=True,
            )
            return False
        return self._open_store(path, create=True)

    def import_reasonseg(self) -> bool:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self.window, "Import ReasonSeg folder (images + labelme JSON)"
        )
        return bool(folder) and self._import("reasonseg", folder)

    def import_sgdr(self) -> bool:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self.window, "Import SGDR file", "", SGDR_FILTER
        )
        return bool(path) and self._import("sgdr", path)

    def export_sgdr(self) -> bool:
        """Open the export dialog (output file, dataset, status); its *Export* runs the export as
        ``rea2seg export sgdr`` does with the same options. False when the store cannot be read."""
        return self._export_dialog("sgdr")

    def export_reasonseg(self) -> bool:
        """Open the export dialog for a ReasonSeg folder (output folder, dataset, status, mask,
        images, min IoU); its *Export* runs the export as ``rea2seg export reasonseg`` does with
        the same options. False when the store cannot be read."""
        return self._export_dialog("reasonseg")

    def _export_dialog(self, fmt: str) -> bool:
        from core.exporters import dataset_names
        from core.store import repo
        from rea2seg_gui.export_dialog import ExportDialog

        store = self._store()
        try:
            names = dataset_names(store)
        except Exception as exc:  # noqa: BLE001 - a store that cannot be read is reported, never raised
            self._show("Export", f"The store cannot be read: {exc}", error=True)
            return False
        if (
            self.export_dialog is not None
        ):  # one at a time: the last one is kept until the next opens
            self.export_dialog.deleteLater()

        def count(status: str | None, dataset: str | None) -> int:
            return store.run(
                lambda s: repo.count_samples(s, status=status, dataset=dataset), write=False
            )

        dlg = self.export_dialog = ExportDialog(names, store.url, self.window, fmt=fmt, count=count)
        dlg.accepted.connect(lambda: self.export_to(dlg.out_path(), fmt=fmt, **dlg.export_kwargs()))
        dlg.open()  # window-modal, without a nested event loop
        return True

    def export_to(
        self,
        out: str,
        *,
        fmt: str = "sgdr",
        status: str | None = None,
        dataset: str | None = None,
        settings: Any = None,
    ) -> bool:
        """Export the store's samples (``status`` / ``dataset``: ``None`` is any) to ``out`` in
        the worker, as ``rea2seg export sgdr --out OUT [--status S] [--dataset D]`` or
        ``rea2seg export reasonseg OUT [...]`` (``settings``: a
        :class:`core.exporters.ReasonSegSettings`, ``None`` for its defaults)."""
        from core.exporters import export_dataset

        store = self._store()

        def job(progress, should_cancel):
            return export_dataset(
                store,
                fmt,
                out,
                status=status,
                dataset=dataset,  # type: ignore[arg-type]
                **(
                    {"settings": settings, "progress": progress, "should_cancel": should_cancel}
                    if fmt == "reasonseg"
                    else {}
                ),
            )

        # the SGDR file is one write (atomic); a ReasonSeg folder is written item by item: cancellable
        return self._start(job, "export", f"Exporting to {out}…", cancellable=fmt == "reasonseg")

    def cancel(self) -> None:
        if self._running and self.jobs.cancel():
            self.status.emit(f"cancelling the {self._running} after the current item…")

    # ---------------------------------------------------------------------------- jobs
    def _import(self, fmt: str, path: str) -> bool:
        from core.importers import import_dataset

        store = self._store()

        def job(progress, should_cancel):
            return import_dataset(store, fmt, path, progress=progress, should_cancel=should_cancel)  # type: ignore[arg-type]

        return self._start(job, "import", f"Importing {path}…", cancellable=True)

    def _start(self, job: Callable, kind: str, what: str, *, cancellable: bool) -> bool:
        if not self.jobs.start(job, lambda r: self._done(kind, r), kind.capitalize(), self._failed):
            self.status.emit(f"{self.jobs.name} is still running; try again after it")
            return False
        self._running = kind
        self.actions["cancel"].setEnabled(cancellable)
        self.status.emit(what)
        return True

    def _ended(self) -> None:
        self._running = None
        self.actions["cancel"].setEnabled(False)

    def _done(self, kind: str, report: Any) -> None:
        self._ended()
        if kind == "import":
            self._refresh()
        text = report.summary()
        self.status.emit(text.splitlines()[0])
        error = (
            bool(report.errors) if kind == "import" else not getattr(report, "ok", True)
        )  # skipped or lossy
        self._show("Import" if kind == "import" else "Export", text, error=error)
        self.finished.emit(kind, report)

    def _failed(self, msg: str) -> None:
        self._ended()
        self._show("Import / export failed", msg, error=True)
        self.failed.emit(msg)

    def _show(self, title: str, text: str, *, error: bool = False) -> None:
        self.report_box = report_box(self.window, title, text, error=error)
