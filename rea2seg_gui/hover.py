"""The canvas's hover read-out: the trace at the pixel under the pointer, as one line of text.

The logit map L is not part of a quickly loaded trace; it is fetched on the first hover over
a trace, by a plain loader function run in a worker thread, and the read-out is shown again
when it arrives while the pointer still rests on the image.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.trace import PipelineTrace
from rea2seg_gui.overlays import Readout, readout

# what the read-out reads: the shown trace and the image's (H, W), None without an image
ViewState = Callable[[], tuple[PipelineTrace | None, tuple[int, int] | None]]


class HoverReadout(QtCore.QObject):
    """Emits ``text(str)`` with the read-out of the pixel under the pointer (empty when it
    leaves the image); ``label`` shows it. ``logits``: L of the shown trace, once loaded."""

    text = QtCore.Signal(str)
    _logits_arrived = QtCore.Signal(object, object)

    def __init__(self, view_state: ViewState, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._view_state = view_state
        self.logits: np.ndarray | None = None
        self._loader: Callable[[], np.ndarray | None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._logits_arrived.connect(self._on_logits, QtCore.Qt.ConnectionType.QueuedConnection)
        self.label = QtWidgets.QLabel("")
        self.label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.text.connect(self.label.setText)
        self.last: Readout | None = None
        self._xy: tuple[float, float] | None = None

    def reset(self, logits: np.ndarray | None = None) -> None:
        """Another trace (or none) is shown: its L when the trace holds it, and no loader yet."""
        self.logits = logits
        self._loader = None

    def set_loader(self, loader: Callable[[], np.ndarray | None] | None) -> None:
        """How to get L for the shown trace (run in a worker thread on the first hover)."""
        self._loader = loader

    def at(self, x: float | None, y: float | None = None) -> Readout | None:
        """Read the trace at image point (x, y) and emit ``text`` (``None``: pointer left).
        Without a trace the read-out is the pixel position alone."""
        self._xy = None if x is None or y is None else (x, y)
        trace, hw = self._view_state()
        if x is None or y is None or hw is None:
            self.last = None
            self.text.emit("")
            return None
        if trace is not None and self.logits is None and trace.initial_logits is None:
            self._request_logits(trace)
        r = readout(trace, self.logits, x, y)
        if r is None:
            h, w = hw
            px, py = int(np.floor(x)), int(np.floor(y))
            text = f"x {px}, y {py}" if 0 <= px < w and 0 <= py < h else ""
        else:
            text = r.text()
        self.last = r
        self.text.emit(text)
        return r

    def _request_logits(self, trace: PipelineTrace) -> None:
        loader, self._loader = self._loader, None
        if loader is None:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logits")

        def done(fut) -> None:
            try:
                self._logits_arrived.emit(trace, fut.result())
            except Exception:  # noqa: BLE001 - no L: the read-out says "L not loaded"
                pass

        self._pool.submit(loader).add_done_callback(done)

    @QtCore.Slot(object, object)
    def _on_logits(self, trace: PipelineTrace | None, logits: np.ndarray | None) -> None:
        if trace is self._view_state()[0] and logits is not None:
            self.logits = logits
            if self._xy is not None:  # the pointer still rests on the image: show L now
                self.at(*self._xy)

    def shutdown(self) -> None:
        """Stop the loader thread (pending loads are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
