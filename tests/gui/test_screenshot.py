"""A real window under Xvfb, screenshotted with ImageMagick's ``import`` (skipped without them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytestmark = pytest.mark.xvfb

SCRIPT = textwrap.dedent(
    """
    import subprocess, sys
    from PySide6 import QtCore, QtWidgets
    app = QtWidgets.QApplication([])
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow
    w = MainWindow(open_store(sys.argv[1]), user="shot",
                   settings=QtCore.QSettings(sys.argv[3], QtCore.QSettings.Format.IniFormat))
    w.setGeometry(0, 0, 1600, 1000)
    w.show()
    for key in ("topk2", "graph", "seeds", "attention"):
        w.layers_panel.set_visible(key, True)
    w.tabs.setCurrentWidget(w.candidates_panel)
    w.candidates_panel.table.sortItems(7, QtCore.Qt.SortOrder.DescendingOrder)  # best true IoU first
    w.candidates_panel.select_row(0)
    def shoot():
        subprocess.run(["import", "-window", "root", sys.argv[2]], check=True)
        app.quit()
    QtCore.QTimer.singleShot(2500, shoot)
    app.exec()
    """
)


@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("import")), reason="needs Xvfb and ImageMagick")
def test_main_window_screenshot_under_xvfb(tmp_path):
    from core.cli import main
    from core.demo import ensure_demo_store

    db = ensure_demo_store(tmp_path / "shot.sqlite")
    assert main(["run", "--db", str(db), "--preset", "tiny-random", "--sample", "1"]) == 0
    display = f":{90 + os.getpid() % 100}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        out = tmp_path / "main_window.png"
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        r = subprocess.run([sys.executable, "-c", SCRIPT, str(db), str(out), str(tmp_path / "s.ini")],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    import cv2

    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (1000, 1600)
    assert float(np.std(img)) > 20  # not a blank screen
    keep = os.environ.get("REA2SEG_SCREENSHOT_DIR")
    if keep:
        shutil.copy(out, keep)
