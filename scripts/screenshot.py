"""Take the screenshot of the docs (``docs/images/app.png``): the real window on a copy of the
demo project, after a run of the ``mini-geometric`` presets (the small models trained by
``rea2seg train miniature`` and shipped in ``resources/models/mini-geometric/``) on one sample.

Run it under Xvfb, from the repository root (needs ImageMagick's ``import``)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot.py

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
SIZE = (1920, 1080)  # the window, in logical pixels: the Xvfb screen's size
WIDTH = 1440  # the saved image's width


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


def _shoot(db: Path, raw: Path) -> None:
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication([])
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow

    settings = QtCore.QSettings(str(raw.with_suffix(".ini")), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(open_store(db), user="demo", settings=settings)
    w.loader.trace_wait_s = 60
    w.setGeometry(0, 0, *SIZE)
    w.show()
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

    def shoot() -> None:
        subprocess.run(["import", "-window", "root", str(raw)], check=True)
        app.quit()

    QtCore.QTimer.singleShot(2000, arrange)
    app.exec()


def main() -> int:
    if not os.environ.get("DISPLAY"):
        print("screenshot: no X display; run it under xvfb-run", file=sys.stderr)
        return 2
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("REA2SEG_HOME", str(Path(tmp) / "home"))  # tiny models built here
        raw = Path(tmp) / "raw.png"
        _shoot(_store(Path(tmp)), raw)
        img = Image.open(raw).convert("RGB").crop((0, 0, *SIZE))
        img = img.resize((WIDTH, round(WIDTH * SIZE[1] / SIZE[0])), Image.Resampling.LANCZOS)
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        img.save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
