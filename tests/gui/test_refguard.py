"""The binding's None / True / False reference leak on repaint, and the guard that offsets it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PySide6 import QtWidgets

from rea2seg_gui import refguard
from rea2seg_gui.canvas import Canvas

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="None is immortal from Python 3.12"
)


def test_repaints_leak_none_and_the_guard_tops_it_up(qtbot, monkeypatch):
    c = Canvas()
    qtbot.addWidget(c)
    c.resize(300, 300)
    c.show()
    qtbot.waitExposed(c)
    assert refguard._timer is not None and refguard._timer.isActive()  # the canvas installed it
    refguard.install()  # idempotent
    timer = refguard._timer
    m = np.zeros((60, 80), bool)
    c.set_image(np.zeros((60, 80, 3), np.uint8))
    c.set_mask("gt", m)
    c.set_mask("edited", m)
    app = QtWidgets.QApplication.instance()
    timer.stop()
    try:
        before = sys.getrefcount(None)
        for i in range(100):
            m[5, i % 80] = True
            c.update_mask("edited", m)
            app.processEvents()
        drop = before - sys.getrefcount(None)
    finally:
        timer.start()
    # the leak this guard exists for: several references per repaint (if this fails, the
    # binding no longer leaks and refguard can go)
    assert drop >= 100
    monkeypatch.setattr(refguard, "TOP_UP", 1000)
    monkeypatch.setattr(refguard, "FLOOR", sys.getrefcount(None) + 10)
    n = sys.getrefcount(None)
    assert refguard.top_up() >= 1000
    assert sys.getrefcount(None) - n >= 990
    monkeypatch.setattr(refguard, "FLOOR", 0)
    assert refguard.top_up() == 0  # nothing while the counts are above the floor
