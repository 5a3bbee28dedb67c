"""One long job at a time in a worker thread, its result or error delivered on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from rea2seg_gui import worker as workers


class JobRunner(QtCore.QObject):
    """``progress(done, total, label)``, ``busy_changed(busy, cancellable)``, ``failed(name, message)``
    (only for a job started without its own error handler)."""

    progress = QtCore.Signal(int, int, str)
    busy_changed = QtCore.Signal(bool, bool)
    failed = QtCore.Signal(str, str)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: workers.Worker | None = None
        self.thread: QtCore.QThread | None = None
        self._job: dict[str, Any] | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    @property
    def name(self) -> str:
        return self._job["name"] if self._job else ""

    def start(
        self,
        job: Callable,
        done: Callable[[Any], None] | None,
        name: str,
        on_error: Callable[[str], None] | None = None,
        cancellable: bool = True,
    ) -> bool:
        """Run ``job(progress, should_cancel)`` in a worker; False (and nothing started) when busy."""
        if self.worker is not None:
            return False
        # bound slots of this GUI-thread object: Qt queues the worker's signals to the GUI thread
        w = workers.Worker(job)
        self._job = {"name": name, "done": done, "error": on_error}
        w.progress.connect(self._on_progress, QtCore.Qt.ConnectionType.QueuedConnection)
        w.finished.connect(self._on_done, QtCore.Qt.ConnectionType.QueuedConnection)
        w.failed.connect(self._on_failed, QtCore.Qt.ConnectionType.QueuedConnection)
        self.worker = w
        self.busy_changed.emit(True, cancellable)
        self.thread = workers.start(w, self)
        return True

    def cancel(self) -> bool:
        if self.worker is None:
            return False
        self.worker.cancel()
        return True

    def _ended(self) -> dict[str, Any]:
        job, self._job = self._job or {}, None
        self.worker = None
        self.busy_changed.emit(False, False)
        return job

    @QtCore.Slot(int, int, str)
    def _on_progress(self, done: int, total: int, label: str) -> None:
        self.progress.emit(done, total, label)

    @QtCore.Slot(object)
    def _on_done(self, result: Any) -> None:
        job = self._ended()
        if job.get("done") is not None:
            job["done"](result)

    @QtCore.Slot(str)
    def _on_failed(self, msg: str) -> None:
        job = self._ended()
        if job.get("error") is not None:
            job["error"](msg)
        self.failed.emit(job.get("name", "job"), msg)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        if self.thread is not None:
            try:
                self.thread.quit()
                self.thread.wait(5000)
            except RuntimeError:  # the thread object was already deleted
                pass
