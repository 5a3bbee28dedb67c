"""A real window under Xvfb, screenshotted with ImageMagick's ``import`` (skipped without them):
the main window, the candidates with the canvas legend (and the same view without it), the
GT-vs-edited difference view, the window at 3840 × 2160 with ``QT_SCALE_FACTOR=2``, on a
1024 × 700 screen, with ``QT_SCALE_FACTOR=2`` on a 1920 × 1080 screen (960 × 540 logical), and
the review of a generated question. ``REA2SEG_SCREENSHOT_DIR=folder`` keeps the images."""

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
        g, a = w.frameGeometry(), w.screen().availableGeometry()
        info.update(frame=[g.x(), g.y(), g.width(), g.height()],
                    avail=[a.x(), a.y(), a.width(), a.height()],
                    canvas_size=[c.width(), c.height()],
                    window=[w.width(), w.height()])
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
    script: str = SCRIPT,
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
                script,
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


def _inside(frame: list[int], avail: list[int]) -> bool:
    fx, fy, fw, fh = frame
    ax, ay, aw, ah = avail
    return ax <= fx and ay <= fy and fx + fw <= ax + aw and fy + fh <= ay + ah


@needs_x
def test_a_1024x700_screen_keeps_the_canvas_usable(tmp_path):
    info = _shoot(tmp_path, _store(tmp_path), (1024, 700), (1024, 700), {}, "small_")
    main = _read(tmp_path / "main_window.png")
    assert main.shape[:2] == (700, 1024)
    assert info["canvas_size"][0] >= 400 and info["canvas_size"][1] >= 300, info
    assert _inside(info["frame"], info["avail"]), info
    assert float(np.std(_crop(main, info["canvas"]))) > 20  # the image is drawn in the canvas


@needs_x
def test_scale_2_on_a_1080p_screen_opens_within_the_screen(tmp_path):
    """1920 × 1080 at ``QT_SCALE_FACTOR=2`` is 960 × 540 logical pixels: the window asked for
    1920 × 1080 opens clamped to it."""
    info = _shoot(
        tmp_path,
        _store(tmp_path),
        (1920, 1080),
        (1920, 1080),
        {"QT_SCALE_FACTOR": "2"},
        "scale2_1080p_",
    )
    assert info["dpr"] == 2.0 and info["screen"] == [960, 540]
    assert _inside(info["frame"], info["avail"]), info
    assert info["window"][0] <= 960 and info["window"][1] <= 540
    main = _read(tmp_path / "main_window.png")
    assert main.shape[:2] == (1080, 1920) and float(np.std(main)) > 20


# argv: store, output folder, settings file, window width, height (logical pixels)
QUESTION_SCRIPT = textwrap.dedent(
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
    w.setGeometry(0, 0, int(sys.argv[4]), int(sys.argv[5]))
    w.show()

    def pick():
        w.samples_panel.select_row(0)
        QtCore.QTimer.singleShot(1500, shoot)

    def shoot():
        q = w.questions_panel
        g = q.mapToGlobal(q.rect().topLeft())
        c = w.canvas
        cg = c.mapToGlobal(c.rect().topLeft())
        info = {"panel": [g.x(), g.y(), q.width(), q.height()],
                "dock_visible": w.questions_dock.isVisible(),
                "verdict": q.verdict_label.text(),
                "question": w.review_panel.question_edit.text(),
                "canvas": [cg.x(), cg.y(), c.width(), c.height()],
                "layers": {k: bool(v) for k, v in c.visible.items()}}
        subprocess.run(["import", "-window", "root", str(out / "question_review.png")], check=True)
        (out / "info.json").write_text(json.dumps(info))
        app.quit()

    QtCore.QTimer.singleShot(1500, pick)
    app.exec()
    """
)


def _question_store(tmp_path: Path) -> Path:
    """Three cups and a plate on a table, spatial questions generated and verified over a
    loopback server (the first accepted, the second rejected)."""
    import cv2

    from core.benchmark.generate import generate_questions
    from core.importers.coco import import_coco
    from core.llm_client import ChatClient
    from core.store import open_store
    from tests.unit.llm_server import ChatServer, Reply
    from tests.unit.test_benchmark_build import ACCEPT, PHRASE, REJECT

    img = np.full((240, 360, 3), (120, 160, 190), np.uint8)  # BGR: a light wooden table
    cv2.ellipse(img, (250, 150), (70, 35), 0, 0, 360, (235, 235, 235), -1)  # the plate
    cups = [(60, 80, 110, 150), (150, 60, 200, 130), (300, 40, 345, 105)]
    colours = [(40, 60, 150), (60, 140, 60), (150, 80, 40)]
    for (x0, y0, x1, y1), col in zip(cups, colours, strict=True):
        cv2.rectangle(img, (x0, y0), (x1, y1), col, -1)
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "table.png"), img)
    data = {
        "images": [{"id": 1, "file_name": "table.png", "height": 240, "width": 360}],
        "categories": [{"id": 1, "name": "cup"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
            }
            for i, (x0, y0, x1, y1) in enumerate(cups)
        ],
    }
    (tmp_path / "cups.json").write_text(json.dumps(data))
    db = tmp_path / "questions.sqlite"
    st = open_store(db)
    import_coco(st, tmp_path / "cups.json", tmp_path / "img")
    verdicts = [ACCEPT, REJECT, ACCEPT]

    def script(req):
        if req.role == "generator":
            return PHRASE
        return verdicts.pop(0) if verdicts else Reply(ACCEPT.content)

    server = ChatServer(script)
    try:
        generate_questions(
            st,
            "spatial",
            ChatClient(server.url, "gen", concurrency=1),
            ChatClient(server.url, "ver"),
        )
    finally:
        server.close()
        st.close()
    return db


@needs_x
def test_question_review_screenshot(tmp_path):
    info = _shoot(
        tmp_path,
        _question_store(tmp_path),
        (1600, 1000),
        (1600, 1000),
        {},
        "question_",
        script=QUESTION_SCRIPT,
    )
    shot = _read(tmp_path / "question_review.png")
    assert info["dock_visible"] and info["verdict"].startswith("verifier: ")
    assert info["question"]  # the question under review is in the Review tab
    assert float(np.std(_crop(shot, info["panel"]))) > 10  # the dock is drawn
    assert float(np.std(_crop(shot, info["canvas"]))) > 10  # and the image
