"""Keeps ``None``, ``True`` and ``False`` alive under a PySide6 reference-count leak.

With the PySide6 in use (6.12) on Python 3.11, every Python override of a Qt virtual that
Qt calls (``QGraphicsItem.paint``, ``paintEvent``, …) and every painter call returning
``None`` drops one reference to ``None`` (``True`` / ``False`` likewise) that it never took.
Python 3.11 does not make these objects immortal, so after some thousands of canvas repaints
(a minute of brush strokes) the count reaches zero and the interpreter aborts with
"deallocating None" (``tests/gui/test_refguard.py`` measures the drop per repaint).

The guard tops the counts up from a timer: whenever a count falls below ``FLOOR`` it raises
it by ``TOP_UP`` in place (CPython's ``ob_refcnt``), restoring the references the binding took
without taking them. Nothing is allocated and nothing is released at exit (a list holding the
extra references would be freed during interpreter shutdown and abort it the same way).
Remove it once the binding is fixed or Python ≥ 3.12 (immortal singletons) is required.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6 import QtCore

FLOOR = 200_000
TOP_UP = 200_000
INTERVAL_MS = 200

_timer: QtCore.QTimer | None = None


def top_up() -> int:
    """Add references to each singleton whose count is below ``FLOOR``; returns how many."""
    added = 0
    if (
        sys.version_info >= (3, 12) or sys.implementation.name != "cpython"
    ):  # immortal / not affected
        return 0
    for obj in (None, True, False):
        if sys.getrefcount(obj) < FLOOR:
            ctypes.c_ssize_t.from_address(id(obj)).value += TOP_UP  # ob_refcnt is the first field
            added += TOP_UP
    return added


def install() -> None:
    """Start the guard once per application (idempotent); needs a QCoreApplication."""
    global _timer
    if _timer is not None or QtCore.QCoreApplication.instance() is None:
        return
    top_up()
    _timer = QtCore.QTimer(QtCore.QCoreApplication.instance())
    _timer.setInterval(INTERVAL_MS)
    _timer.timeout.connect(top_up)
    _timer.start()
