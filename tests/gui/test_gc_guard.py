"""Cycles holding Qt objects are collected on the GUI thread, never in a worker.

Without the guard, PySide destroys a QObject (not a QWidget) whose wrapper a worker's collection
frees right there, on the worker thread: a QTimer, a QButtonGroup or a controller of a closed
window then dies off the GUI thread.
"""

from __future__ import annotations

import gc
import threading

from PySide6 import QtCore, QtWidgets

from rea2seg_gui import gc_guard


def test_qt_objects_in_a_garbage_cycle_die_on_the_gui_thread_while_workers_allocate(qtbot, window):
    assert gc_guard.active() and not gc.isenabled()
    seen: list[str] = []
    objs = [QtCore.QTimer(), QtWidgets.QButtonGroup(), QtCore.QObject()]
    for o in objs:
        o.cycle = o  # only the cycle collector can free it
        o.destroyed.connect(
            lambda *_: seen.append(threading.current_thread().name),
            QtCore.Qt.ConnectionType.DirectConnection,
        )  # runs where the object dies
    del objs, o

    def allocate() -> None:  # far past every generation's threshold, as a model load does
        junk = []
        for i in range(200_000):
            a: list = [i]
            a.append(a)
            junk.append(a)

    t = threading.Thread(target=allocate, name="worker")
    t.start()
    t.join(60)
    assert seen == []  # the worker's allocations did not collect anything
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=5000)  # the GUI thread's timer did
    assert seen == [threading.main_thread().name] * 3


def test_closing_the_last_window_turns_automatic_collection_back_on(qtbot, demo_store, settings):
    from rea2seg_gui.main_window import MainWindow

    was = gc.isenabled()
    w = MainWindow(demo_store, user="t", settings=settings)
    qtbot.addWidget(w)
    assert not gc.isenabled()
    w.close()
    assert gc.isenabled() == was
