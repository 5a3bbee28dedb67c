"""Long work off the GUI thread: a QObject worker in a QThread with typed signals.

The job is a plain callable ``job(progress, should_cancel) -> result`` from ``core``; the worker
adapts ``progress(done, total, label)`` to a signal, exposes ``cancel()``, and reports either
``finished(result)`` or ``failed(message)`` on the GUI thread.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore


class Worker(QtCore.QObject):
    progress = QtCore.Signal(int, int, str)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(
        self, job: Callable[[Callable[[int, int, str], None], Callable[[], bool]], Any]
    ) -> None:
        super().__init__()
        self._job = job
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True

    @property
    def cancelled(self) -> bool:
        return self._cancel

    @QtCore.Slot()
    def run(self) -> None:
        try:
            result = self._job(
                lambda d, t, label="": self.progress.emit(int(d), int(t), str(label)),
                lambda: self._cancel,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the user
            msg = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (ValueError, LookupError, RuntimeError, OSError)):
                msg += "\n\n" + traceback.format_exc(limit=4)
            self.failed.emit(msg)
            return
        self.finished.emit(result)


def start(worker: Worker, parent: QtCore.QObject) -> QtCore.QThread:
    """Run ``worker`` in a new thread owned by ``parent``; the thread quits when the job ends."""
    thread = QtCore.QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
