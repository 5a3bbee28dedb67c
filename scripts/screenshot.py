"""Take the screenshots of the docs: the real window on a copy of the demo project, after a
run of the ``mini-geometric`` presets (the small models trained by ``rea2seg train miniature``
and shipped in ``resources/models/mini-geometric/``) on one sample; or (``--questions``) the
review of generated questions.

Run it under Xvfb, from the repository root (needs ImageMagick's ``import``); the window fills
the screen unless ``--window`` asks for another size::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot.py
    xvfb-run -a -s "-screen 0 1024x700x24" .venv/bin/python scripts/screenshot.py \
        --out docs/images/app-1024x700.png
    QT_SCALE_FACTOR=2 xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python \
        scripts/screenshot.py --window 1920x1080 --out docs/images/app-scale2-1080p.png
    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot.py \
        --questions --out docs/images/question-review.png

The third asks for a window as large as the screen's pixels, which at scale 2 is twice the
screen's logical size: the window opens clamped to the screen. ``--questions`` generates
spatial questions for three cups over a loopback server with scripted answers (the one of the
tests, ``tests/unit/llm_server.py``: no model is asked) and shows the first in review.

The models are small and know only the synthetic geometric scenes; the window labels them so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "app.png"
SAMPLE = 1
WIDTH = 1440  # the saved image's width, at most


def _store(folder: Path) -> Path:
    """A demo store whose images live in ``folder`` (the status bar shows the image's path)."""
    from core.cli import main
    from core.demo import DEMO_SGDR

    demo = folder / "demo"
    shutil.copytree(DEMO_SGDR.parent, demo)
    db = folder / "demo.sqlite"
    if main(["import", "sgdr", str(demo / DEMO_SGDR.name), "--db", str(db), "--dataset", "demo"]):
        raise SystemExit("screenshot: the import failed")
    argv = ["run", "--db", str(db), "--preset", "mini-geometric", "--evaluator", "mini-geometric"]
    argv.append("--no-cot")  # its evaluator was trained without chain of thought
    if main([*argv, "--sample", str(SAMPLE)]) != 0:
        raise SystemExit("screenshot: the run failed")
    return db


def _question_store(folder: Path) -> Path:
    """Three cups and a plate; spatial questions generated and verified over the tests'
    loopback server with scripted answers (the second question is rejected)."""
    import json

    import cv2
    import numpy as np

    from core.benchmark.generate import generate_questions
    from core.importers.coco import import_coco
    from core.llm_client import ChatClient
    from core.store import open_store
    from tests.unit.llm_server import ChatServer, Reply
    from tests.unit.test_benchmark_build import ACCEPT, PHRASE, REJECT

    img = np.full((240, 360, 3), (120, 160, 190), np.uint8)  # BGR: a light wooden table
    cv2.ellipse(img, (250, 150), (70, 35), 0, 0, 360, (235, 235, 235), -1)  # the plate
    cups = [(60, 80, 110, 150), (150, 60, 200, 130), (300, 40, 345, 105)]
    for (x0, y0, x1, y1), col in zip(
        cups, [(40, 60, 150), (60, 140, 60), (150, 80, 40)], strict=True
    ):
        cv2.rectangle(img, (x0, y0), (x1, y1), col, -1)
    (folder / "img").mkdir()
    cv2.imwrite(str(folder / "img" / "table.png"), img)
    anns = [
        {
            "id": i + 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
        }
        for i, (x0, y0, x1, y1) in enumerate(cups)
    ]
    data = {
        "images": [{"id": 1, "file_name": "table.png", "height": 240, "width": 360}],
        "categories": [{"id": 1, "name": "cup"}],
        "annotations": anns,
    }
    (folder / "cups.json").write_text(json.dumps(data))
    db = folder / "questions.sqlite"
    st = open_store(db)
    import_coco(st, folder / "cups.json", folder / "img")
    verdicts = [ACCEPT, REJECT, ACCEPT]

    def script(req):
        if req.role == "generator":
            return PHRASE
        return verdicts.pop(0) if verdicts else Reply(ACCEPT.content)

    server = ChatServer(script)
    try:
        gen, ver = (
            ChatClient(server.url, "generator", concurrency=1),
            ChatClient(server.url, "verifier"),
        )
        generate_questions(st, "spatial", gen, ver)
    finally:
        server.close()
        st.close()
    return db


def _shoot(db: Path, raw: Path, window: tuple[int, int] | None, questions: bool) -> None:
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication([])
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow

    settings = QtCore.QSettings(str(raw.with_suffix(".ini")), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(open_store(db), user="demo", settings=settings)
    w.loader.trace_wait_s = 60
    size = window or app.primaryScreen().availableGeometry().size().toTuple()
    w.setGeometry(0, 0, *size)  # a size larger than the screen opens clamped to it
    w.show()

    def shoot() -> None:
        g = w.frameGeometry()
        print(f"window {g.width()}x{g.height()} logical px at {w.devicePixelRatioF():g}x; "
              f"canvas {w.canvas.width()}x{w.canvas.height()}")  # fmt: skip
        subprocess.run(["import", "-window", "root", str(raw)], check=True)
        app.quit()

    if questions:
        QtCore.QTimer.singleShot(1500, lambda: w.samples_panel.select_row(0))
        QtCore.QTimer.singleShot(3500, shoot)
        app.exec()
        return
    w.review.show_sample(SAMPLE)

    def arrange() -> None:
        for key in ("attention", "topk2", "seeds"):
            w.layers_panel.set_visible(key, True)
        w.tabs.setCurrentWidget(w.candidates_panel)
        w.candidates_panel.select_row(0)
        QtCore.QTimer.singleShot(1000, hover)

    def hover() -> None:
        w.canvas.fit()
        x, y = (float(v) + 0.5 for v in w.state.trace.seeds.seeds_xy[0])
        w.canvas.hover_at(x, y)  # the read-out at the right end of the status bar
        QtCore.QTimer.singleShot(1500, shoot)

    QtCore.QTimer.singleShot(2000, arrange)
    app.exec()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="the PNG to write (default: %(default)s)")
    ap.add_argument("--window", help="window size WxH in logical pixels (default: the screen)")
    ap.add_argument("--questions", action="store_true", help="the review of generated questions")
    args = ap.parse_args(argv)
    window = tuple(int(v) for v in args.window.lower().split("x")) if args.window else None
    if not os.environ.get("DISPLAY"):
        print("screenshot: no X display; run it under xvfb-run", file=sys.stderr)
        return 2
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("REA2SEG_HOME", str(Path(tmp) / "home"))  # tiny models built here
        raw = Path(tmp) / "raw.png"
        db = _question_store(Path(tmp)) if args.questions else _store(Path(tmp))
        _shoot(db, raw, window, args.questions)  # type: ignore[arg-type]
        img = Image.open(raw).convert("RGB")
        if img.width > WIDTH:
            img = img.resize(
                (WIDTH, round(WIDTH * img.height / img.width)), Image.Resampling.LANCZOS
            )
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = args.out if args.out.is_absolute() else ROOT / args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        img.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
