"""Screenshot of the What-if tab (``docs/images/whatif-seed-bank.png``) on a user's own image:
the Ask image of :mod:`scripts.screenshot_ask` prepared with the ``mini-geometric`` segmenter,
the seed bank filled in the background, then k2 lowered from 30 to 12 (its AMG masks come from
the bank).

Run it under Xvfb, from the repository root (needs ImageMagick's ``import``)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_whatif.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.screenshot_ask import OUT, QUESTION, _save, _user_image, run, window  # noqa: E402


def _shoot(folder: Path) -> None:
    from PySide6 import QtCore

    app, w = window(folder)
    image = _user_image(folder)

    def start() -> None:
        w.run_panel.set_preset("mini-geometric")
        w.asking.open_image(image)
        w.ask_bar.question.setText(QUESTION)
        w.tabs.setCurrentWidget(w.tune_panel)
        w.prepare_tune()
        QtCore.QTimer.singleShot(500, wait_bank)

    def wait_bank() -> None:
        if "complete" not in w.tune_panel.bank_text():
            QtCore.QTimer.singleShot(200, wait_bank)
            return
        w.tuning.retuned.connect(lambda _t: QtCore.QTimer.singleShot(1000, done))
        w.tune_panel.set_value("k2", 12)

    def done() -> None:
        w.canvas.fit()
        app.processEvents()
        raw = folder / "whatif.png"
        subprocess.run(["import", "-window", "root", str(raw)], check=True)
        _save(raw, OUT / "whatif-seed-bank.png")
        app.quit()

    QtCore.QTimer.singleShot(1500, start)
    QtCore.QTimer.singleShot(300_000, app.quit)  # never hang
    app.exec()


def main() -> int:
    return run("screenshot_whatif", _shoot)


if __name__ == "__main__":
    sys.exit(main())
