"""Python's cycle collector runs on the GUI thread only while a window is open.

CPython runs a cyclic garbage collection in whichever thread happens to allocate when a
generation's threshold is crossed. In this app that can be a worker (a model load importing
transformers, a read-ahead decoding an image): the collection then frees whatever unreachable
cycles exist at that moment, and PySide destroys a QObject whose wrapper is freed there and then
(only QWidgets are handed to the GUI thread): the timers, shortcuts, button groups and
controllers of a closed window or dialog die on the worker thread. That aborted the test suite
("pure virtual method called", then a corrupted heap) or deadlocked it inside
``QObject::~QObject``, in the first run started from the GUI (a model load allocates a lot).

While a window is open, automatic collection is switched off and a timer on the GUI thread
collects each generation when its count passes the interpreter's own threshold
(:func:`gc.get_threshold`), so the collector's policy is unchanged and only the thread is fixed.
The last window to close switches automatic collection back on.
"""

from __future__ import annotations

import gc
import time

from PySide6 import QtCore, QtWidgets

INTERVAL_MS = 250  # how often the GUI thread checks the collector's counts (not from the paper)
FULL_COLLECTION_MIN_S = (
    10.0  # at most one full collection per this many seconds (not from the paper)
)


class _Collector(QtCore.QObject):
    def __init__(self) -> None:
        super().__init__()
        self.users = 0
        self.was_enabled = True
        self.last_full = 0.0
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.collect_due)

    def collect_due(self) -> int:
        """Collect the generations whose counts passed their thresholds (GUI thread); the count freed.

        A full (generation 2) collection runs at most every :data:`FULL_COLLECTION_MIN_S`: the
        interpreter bounds its own full collections by the share of new long-lived objects, which
        Python does not expose, and a full collection of a large process costs milliseconds."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        now = time.monotonic()
        for gen in (2, 1, 0):  # the oldest due generation includes the younger ones
            if gen == 2 and now - self.last_full < FULL_COLLECTION_MIN_S:
                continue
            if thresholds[gen] and counts[gen] > thresholds[gen]:
                if gen == 2:
                    self.last_full = now
                return gc.collect(gen)
        return 0


_collector: _Collector | None = None


def acquire() -> None:
    """A window opened: collect on the GUI thread only (call on the GUI thread)."""
    global _collector
    if _collector is None:
        _collector = _Collector()
        app = QtWidgets.QApplication.instance()
        if app is not None:
            _collector.setParent(app)
    if _collector.users == 0:
        _collector.was_enabled = gc.isenabled()
        gc.disable()
        _collector.timer.start()
    _collector.users += 1


def release() -> None:
    """A window closed: the last one restores automatic collection."""
    if _collector is None or _collector.users == 0:
        return
    _collector.users -= 1
    if _collector.users == 0:
        _collector.timer.stop()
        if _collector.was_enabled:
            gc.enable()


def active() -> bool:
    return _collector is not None and _collector.users > 0 and not gc.isenabled()
