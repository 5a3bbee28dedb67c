"""Screenshots of an ask on a user's own image (``docs/images/ask-live-*.png``): a JPEG of an odd
size from outside any store, opened as File → Open image… would, asked a question of one's own
with the ``mini-geometric`` segmenter and evaluator (small models trained by ``rea2seg train
miniature``; they know only synthetic geometric scenes, so the image is such a scene re-saved
as a phone would). One shot while stage 2 streams its text, one when the answer is in.

Run it under Xvfb, from the repository root (needs ImageMagick's ``import``)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_ask.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
SCENE = ROOT / "resources" / "demo" / "images" / "scene00005.png"
QUESTION = "Which cylinder is the furthest from the camera?"
SIZE = (1920, 1080)
WIDTH = 1440


def _user_image(folder: Path) -> Path:
    """The scene as a user's download: 777×583 JPEG, quality 85."""
    from PIL import Image

    path = folder / "Downloads" / "IMG_2041.jpg"
    path.parent.mkdir(parents=True)
    Image.open(SCENE).convert("RGB").resize((777, 583), Image.Resampling.BICUBIC).save(
        path, quality=85
    )
    return path


def _save(raw: Path, out: Path) -> None:
    from PIL import Image

    img = Image.open(raw).convert("RGB").crop((0, 0, *SIZE))
    img = img.resize((WIDTH, round(WIDTH * SIZE[1] / SIZE[0])), Image.Resampling.LANCZOS)
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(out, optimize=True)
    print(f"{out.relative_to(ROOT)}: {out.stat().st_size // 1024} KB")


def window(folder: Path) -> tuple[Any, Any]:
    """The application and a main window on a scratch store in ``folder``, shown at ``SIZE``."""
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication([])
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow

    settings = QtCore.QSettings(str(folder / "ui.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(open_store(folder / "scratch.sqlite", create=True), "demo", settings)
    w.setGeometry(0, 0, *SIZE)
    w.show()
    return app, w


def _shoot(folder: Path) -> None:
    from PySide6 import QtCore

    app, w = window(folder)
    image = _user_image(folder)
    shots: list[str] = []

    def grab(name: str) -> None:
        shots.append(name)  # first: processEvents may call back in
        app.processEvents()
        raw = folder / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(raw)], check=True)
        _save(raw, OUT / f"ask-live-{name}.png")

    def on_update(kind: str) -> None:
        # the first piece of the evaluator's answer: drawn (processEvents), then shot while
        # the worker goes on generating
        live = w.asking.live
        text = "" if live is None or live.scoring is None else live.reasoning[live.scoring]
        if kind == "reasoning" and "streaming" not in shots and text.count("Mask") >= 3:
            grab("streaming")

    def start() -> None:
        w.run_panel.set_preset("mini-geometric")
        w.run_panel.set_evaluator("mini-geometric")
        w.run_panel.eval_cot.setChecked(False)  # its evaluator was trained without it
        w.asking.open_image(image)
        w.tabs.setCurrentWidget(w.evaluator_panel)
        w.ask_bar.question.setText(QUESTION)
        w.asking.updated.connect(on_update)
        w.asking.answered.connect(lambda _t: QtCore.QTimer.singleShot(1500, done))
        w.asking.ask(QUESTION)

    def done() -> None:
        w.canvas.fit()
        grab("answer")
        w.tabs.setCurrentWidget(w.candidates_panel)
        QtCore.QTimer.singleShot(800, lambda: (grab("candidates"), app.quit()))

    QtCore.QTimer.singleShot(1500, start)
    QtCore.QTimer.singleShot(600_000, app.quit)  # never hang
    app.exec()


def run(name: str, shoot: Callable[[Path], None]) -> int:
    """``shoot(folder)`` on the X display, with a scratch home and config in ``folder``."""
    if not os.environ.get("DISPLAY"):
        print(f"{name}: no X display; run it under xvfb-run", file=sys.stderr)
        return 2
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("REA2SEG_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("REA2SEG_CONFIG", str(Path(tmp) / "config.toml"))
        shoot(Path(tmp))
    return 0


def main() -> int:
    return run("screenshot_ask", _shoot)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
