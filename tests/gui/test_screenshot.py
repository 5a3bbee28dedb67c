"""A real window under Xvfb, screenshotted with ImageMagick's ``import`` (skipped without them):
the main window, the candidates with the canvas legend (and the same view without it), the
GT-vs-edited difference view, and the window at 3840 × 2160 with ``QT_SCALE_FACTOR=2``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]  # Xvfb, and the tiny random models
needs_x = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("import")), reason="needs Xvfb and ImageMagick"
)

# argv: store, output folder, settings file, window width, height (logical pixels)
SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from PySide6 import QtCore, QtWidgets
    app = QtWidgets.QApplication([])
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow
    out = Path(sys.argv[2])
    w = MainWindow(open_store(sys.argv[1]), user="shot",
                   settings=QtCore.QSettings(sys.argv[3], QtCore.QSettings.Format.IniFormat))
    w.loader.trace_wait_s = 60
    w.setGeometry(0, 0, int(sys.argv[4]), int(sys.argv[5]))
    w.show()
    w.review.show_sample(1)
    c, lp, cp = w.canvas, w.layers_panel, w.candidates_panel
    info = {}

    def shoot(name):
        subprocess.run(["import", "-window", "root", str(out / name)], check=True)

    def rect(widget_or_item):
        if isinstance(widget_or_item, QtWidgets.QWidget):
            r = widget_or_item.rect()
            p = widget_or_item.mapToGlobal(r.topLeft())
        else:  # an item in the canvas's scene
            r = c.mapFromScene(widget_or_item.sceneBoundingRect()).boundingRect()
            p = c.viewport().mapToGlobal(r.topLeft())
        return [p.x(), p.y(), r.width(), r.height()]  # logical pixels

    def main_window():
        x, y = (float(v) + 0.5 for v in w.state.trace.seeds.seeds_xy[0])
        c.hover_at(x, y)  # the read-out in the status bar
        info["canvas"] = rect(c)

    def candidates():
        for key in ("topk1", "topk2", "graph", "seeds", "attention"):
            lp.set_visible(key, True)
        w.tabs.setCurrentWidget(cp)
        cp.select_row(0)
        cp.table.setFocus()
        info["legend"] = rect(c.legend)
        info["legend_titles"] = c.legend.titles()
        info["thumb"] = [*rect(cp.table.viewport())[:2], cp.table.iconSize().width()]
        vr = cp.table.visualItemRect(cp.table.item(0, 0))
        g = cp.table.viewport().mapToGlobal(vr.topLeft())
        info["thumb_cell"] = [g.x(), g.y(), vr.width(), vr.height()]

    def no_legend():
        lp.style_controls.legend_check.setChecked(False)

    def diff():
        lp.style_controls.legend_check.setChecked(True)
        for key in ("topk1", "topk2", "graph", "seeds", "attention", "candidate"):
            lp.set_visible(key, False)
        lp.set_visible("diff", True)
        lp.set_opacity("diff", 1.0)
        w.tabs.setCurrentWidget(lp)
        info["diff"] = [c.diff.added, c.diff.removed]

    def measures():
        info.update(dpr=w.devicePixelRatioF(), font_px=w.fontMetrics().height(),
                    inspector=w.inspector_dock.width(), swatch=lp.style_controls.swatches["gt"].iconSize().width(),
                    screen=[w.screen().size().width(), w.screen().size().height()])
        (out / "info.json").write_text(json.dumps(info))

    steps = [(main_window, "main_window.png"), (candidates, "candidates_legend.png"),
             (no_legend, "candidates_no_legend.png"), (diff, "diff.png"), (measures, None)]

    def run(i=0):
        fn, name = steps[i]
        fn()
        def after():
            if name:
                shoot(name)
            if i + 1 < len(steps):
                run(i + 1)
            else:
                app.quit()
        QtCore.QTimer.singleShot(1500, after)

    QtCore.QTimer.singleShot(1500, run)
    app.exec()
    """
)


def _store(tmp_path: Path) -> Path:
    from core.cli import main
    from core.demo import ensure_demo_store
    from core.store import open_store, repo, review

    db = ensure_demo_store(tmp_path / "shot.sqlite")
    assert main(["run", "--db", str(db), "--preset", "tiny-random", "--sample", "1"]) == 0
    st = open_store(db)
    gt = st.run(lambda s: repo.gt_mask(s, 1), write=False)
    edited = gt.copy()
    edited[20:90, 20:140] = True  # added
    ys, xs = np.nonzero(gt)
    edited[ys[: len(ys) // 3], xs[: len(xs) // 3]] = False  # removed
    review.replace_mask(st, 1, edited, user="shot", provenance={"tool": "test"})
    st.close()
    return db


def _shoot(
    tmp_path: Path,
    db: Path,
    screen: tuple[int, int],
    window: tuple[int, int],
    env_extra: dict[str, str],
    tag: str = "",
) -> dict:
    display = f":{90 + (os.getpid() + len(env_extra)) % 100}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", f"{screen[0]}x{screen[1]}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", **env_extra}
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                str(db),
                str(tmp_path),
                str(tmp_path / "s.ini"),
                str(window[0]),
                str(window[1]),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    keep = os.environ.get("REA2SEG_SCREENSHOT_DIR")
    if keep:
        for png in tmp_path.glob("*.png"):
            shutil.copy(png, Path(keep) / f"{tag}{png.name}")
    return json.loads((tmp_path / "info.json").read_text())


def _read(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path))
    assert img is not None
    return img[..., ::-1].astype(int)  # RGB


def _crop(img: np.ndarray, r: list[float], scale: float = 1.0) -> np.ndarray:
    x, y, w, h = (int(round(v * scale)) for v in r)
    return img[y : y + h, x : x + w]


@needs_x
def test_screenshots_main_window_legend_and_difference_view(tmp_path):
    from rea2seg_gui.overlays import DIFF_ADDED, DIFF_REMOVED

    info = _shoot(tmp_path, _store(tmp_path), (1600, 1000), (1600, 1000), {})
    main = _read(tmp_path / "main_window.png")
    assert main.shape[:2] == (1000, 1600)
    assert float(np.std(main)) > 20  # not a blank screen
    assert float(np.std(_crop(main, info["canvas"]))) > 20  # the image is drawn in the canvas
    # the legend: listed layers, and its corner of the canvas differs from the same view without it
    titles = info["legend_titles"]
    for start in (
        "Seed points",
        "Top-k2 tokens",
        "k-core members",
        "Negative point",
        "Selected candidate",
    ):
        assert any(t.startswith(start) for t in titles), (start, titles)
    with_legend = _crop(_read(tmp_path / "candidates_legend.png"), info["legend"])
    without = _crop(_read(tmp_path / "candidates_no_legend.png"), info["legend"])
    assert with_legend.size > 0 and np.abs(with_legend - without).mean() > 20
    # the candidate thumbnails are at least 128 px and show an image, not an empty cell
    thumb = _crop(_read(tmp_path / "candidates_legend.png"), info["thumb_cell"])
    assert thumb.shape[0] >= 128 and float(np.std(thumb)) > 10
    # the difference view: both colours on screen, in proportion to the counts
    d = _read(tmp_path / "diff.png")
    added, removed = info["diff"]
    assert added > 0 and removed > 0
    n_add = int((d == np.array(DIFF_ADDED)).all(-1).sum())
    n_rem = int((d == np.array(DIFF_REMOVED)).all(-1).sum())
    assert n_add > 100 and n_rem > 100
    assert 0.3 < (n_add / n_rem) / (added / removed) < 3  # same image scale for both


@needs_x
def test_hidpi_text_docks_and_thumbnails_scale_at_3840x2160(tmp_path):
    """QT_SCALE_FACTOR=2 on a 3840 × 2160 screen: sizes are logical pixels, so every widget is
    twice as large on screen; the same window at scale 1 (1920 × 1080) is the reference."""
    db = _store(tmp_path)
    one = tmp_path / "x1"
    two = tmp_path / "x2"
    one.mkdir()
    two.mkdir()
    i1 = _shoot(one, db, (1920, 1080), (1920, 1080), {}, "scale1_")
    i2 = _shoot(two, db, (3840, 2160), (1920, 1080), {"QT_SCALE_FACTOR": "2"}, "hidpi_")
    assert i1["dpr"] == 1.0 and i2["dpr"] == 2.0
    assert i2["screen"] == [1920, 1080]  # logical
    for key in ("font_px", "swatch"):
        assert i2[key] == i1[key]  # the same logical size …
    assert abs(i2["inspector"] - i1["inspector"]) <= 2
    assert i2["thumb"][2] == i1["thumb"][2] >= 128
    big = _read(two / "main_window.png")
    assert big.shape[:2] == (2160, 3840) and float(np.std(big)) > 20
    # … so twice as many screen pixels: the legend box and a thumbnail cell, cropped at 2x
    for name, key in (("candidates_legend.png", "legend"), ("candidates_legend.png", "thumb_cell")):
        small = _crop(_read(one / name), i1[key])
        large = _crop(_read(two / name), i2[key], 2.0)
        assert large.shape[0] == pytest.approx(2 * small.shape[0], abs=3)
        assert large.shape[1] == pytest.approx(2 * small.shape[1], abs=3)
        assert float(np.std(large)) > 10
