"""One long job at a time in a worker thread, its result or error delivered on the GUI thread.

A *background* job (``start(..., background=True)``: work done ahead of the user, such as the
What-if seed bank) gives way: it does not count as busy, and a job started while it runs cancels
it and starts as soon as it has stopped (one such job waits; a second is refused as usual).
"""

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
        self._queued: tuple[Any, ...] | None = None  # a job waiting for a background one to stop

    @property
    def busy(self) -> bool:
        """A job other than a background one is running (or waiting for one to give way)."""
        return self.worker is not None and (
            not self._job.get("background") or self._queued is not None
        )

    @property
    def background_running(self) -> bool:
        return self.worker is not None and bool(self._job and self._job.get("background"))

    @property
    def name(self) -> str:
        if self._queued is not None:
            return str(self._queued[2])
        return self._job["name"] if self._job else ""

    def start(
        self,
        job: Callable,
        done: Callable[[Any], None] | None,
        name: str,
        on_error: Callable[[str], None] | None = None,
        cancellable: bool = True,
        background: bool = False,
    ) -> bool:
        """Run ``job(progress, should_cancel)`` in a worker; False (and nothing started) when busy.
        A background job emits no ``busy_changed`` and no ``progress``; it is cancelled (its
        error handler gets the message) when another job starts, which then waits for it."""
        if self.worker is not None:
            if background or self._queued is not None or not self.background_running:
                return False
            self._queued = (job, done, name, on_error, cancellable)
            self.busy_changed.emit(True, cancellable)
            self.worker.cancel()
            return True
        # bound slots of this GUI-thread object: Qt queues the worker's signals to the GUI thread
        w = workers.Worker(job)
        self._job = {"name": name, "done": done, "error": on_error, "background": background}
        if not background:
            w.progress.connect(self._on_progress, QtCore.Qt.ConnectionType.QueuedConnection)
        w.finished.connect(self._on_done, QtCore.Qt.ConnectionType.QueuedConnection)
        w.failed.connect(self._on_failed, QtCore.Qt.ConnectionType.QueuedConnection)
        self.worker = w
        if not background:
            self.busy_changed.emit(True, cancellable)
        self.thread = workers.start(w, self)
        return True

    def cancel(self) -> bool:
        if self.worker is None:
            return False
        if self.background_running and self._queued is not None:
            self._queued = None  # the waiting job is what the user sees: drop it
            self.busy_changed.emit(False, False)
            return True
        self.worker.cancel()
        return True

    def _ended(self) -> dict[str, Any]:
        job, self._job = self._job or {}, None
        self.worker = None
        if self._queued is not None:
            queued, self._queued = self._queued, None
            # straight on, with no "not busy" in between that another caller could take
            self.start(*queued)
        elif not job.get("background"):
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
        if not job.get("background"):
            self.failed.emit(job.get("name", "job"), msg)

    def shutdown(self) -> None:
        self._queued = None  # nothing starts after the window has closed
        if self.worker is not None:
            self.worker.cancel()
        if self.thread is not None:
            try:
                self.thread.quit()
                self.thread.wait(5000)
            except RuntimeError:  # the thread object was already deleted
                pass
