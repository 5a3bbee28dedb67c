"""``rea2seg-gui``: open a store (path or URL) or the bundled demo project."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rea2seg-gui", description="Rea2Seg Studio")
    ap.add_argument("store", nargs="?", help="store path (SQLite) or SQLAlchemy URL")
    ap.add_argument(
        "--demo",
        action="store_true",
        help="open the bundled demo project (a per-user copy) on its mini-geometric run, made on first "
        "open",
    )
    ap.add_argument(
        "--no-demo-run",
        action="store_true",
        help="with --demo: do not run (or show) the mini-geometric demo run",
    )
    ap.add_argument("--user", help="name recorded with your changes (default: your login)")
    args = ap.parse_args(argv)

    from PySide6 import QtCore, QtWidgets

    from core.store import StoreError
    from rea2seg_gui.store_prompt import open_or_ask

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Rea2Seg Studio")
    target = args.store
    try:
        if args.demo:
            from core.demo import ensure_demo_store

            target = str(ensure_demo_store())
        if not target:
            from core.demo import data_dir

            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                None,
                "Open a Rea2Seg store",
                str(data_dir()),
                "Stores (*.sqlite *.db);;All files (*)",
            )
            if not path:
                return 0
            target = path
        store = open_or_ask(None, target)
    except (StoreError, FileNotFoundError, ValueError) as exc:
        QtWidgets.QMessageBox.critical(None, "Rea2Seg Studio", str(exc))
        print(f"rea2seg-gui: {exc}", file=sys.stderr)
        return 2
    if store is None:  # "create a new store?" — No
        print(f"rea2seg-gui: {target}: no store there; nothing was created", file=sys.stderr)
        return 0
    from rea2seg_gui.main_window import MainWindow

    win = MainWindow(store, user=args.user)
    win.show()
    if args.demo and not args.no_demo_run:
        # the window is up at once; the demo run (19 s measured on 2 shared CPU cores) fills it
        QtCore.QTimer.singleShot(0, win.open_demo_run)
    return app.exec()


def console() -> NoReturn:
    """The ``rea2seg-gui`` console script: ``main(sys.argv[1:])``; Ctrl+C exits 130 with one line."""
    from core.cli.common import run_console

    run_console(main, "rea2seg-gui")


if __name__ == "__main__":
    console()
