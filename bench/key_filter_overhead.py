"""Cost of the review window's one application-wide event filter
(:class:`rea2seg_gui.key_guard.AppFilter`: the typed-burst guard and the focus keeper).

Every event of the application passes through it. The bench sends ``--events`` custom events to
a table view with and without the filter, in one process, alternating rounds, and prints the
time per event and the ratio. Offscreen; a few seconds on 2 CPU cores.

    .venv/bin/python bench/key_filter_overhead.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from PySide6 import QtCore, QtWidgets

    from rea2seg_gui.key_guard import AppFilter, FocusKeeper, KeyBurst

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = QtWidgets.QMainWindow()
    table = QtWidgets.QTableView()
    window.setCentralWidget(table)
    window.show()
    ev = QtCore.QEvent(QtCore.QEvent.Type.User)

    def per_event_us() -> float:
        t0 = time.perf_counter()
        for _ in range(args.events):
            QtCore.QCoreApplication.sendEvent(table, ev)
        return (time.perf_counter() - t0) / args.events * 1e6

    without, with_filter = [], []
    for _ in range(args.rounds):
        without.append(per_event_us())
        filt = AppFilter(window, KeyBurst(window, 250), FocusKeeper(window, table))
        with_filter.append(per_event_us())
        app.removeEventFilter(filt)
        filt.deleteLater()
    a, b = min(without), min(with_filter)
    print(f"per event: without the filter {a:.2f} us, with it {b:.2f} us")
    print(f"extra {b - a:.2f} us per event; ratio with/without {b / a:.2f}")
    sys.stdout.flush()
    os._exit(0)  # skip Qt's teardown of the offscreen window (not what is measured)


if __name__ == "__main__":
    raise SystemExit(main())
