"""The ``rea2seg-gui`` entry point: the demo project and a store that cannot be opened."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

from core.store import repo


def test_demo_opens_the_bundled_project_in_the_user_folder(qtbot, tmp_path, monkeypatch):
    from rea2seg_gui import app
    from rea2seg_gui.main_window import MainWindow

    shown = []
    monkeypatch.setattr(MainWindow, "show", lambda self: shown.append(self))
    monkeypatch.setattr(QtWidgets.QApplication, "exec", lambda self=None: 0)
    assert app.main(["--demo", "--no-demo-run", "--user", "ann"]) == 0
    win = shown[0]
    qtbot.addWidget(win)
    assert (tmp_path / "home" / "demo.sqlite").is_file()
    assert win.samples_panel.row_count() == 40 and win.user == "ann"
    win.review.decide("accept")
    win.close()
    win.store.close()
    # opening it again keeps the review (the import is idempotent)
    assert app.main(["--demo", "--no-demo-run"]) == 0
    again = shown[1]
    qtbot.addWidget(again)
    assert again.store.run(lambda s: repo.get_sample(s, 1).status, write=False) == "verified"
    again.close()
    again.store.close()


def test_demo_starts_its_run_and_a_window_closed_meanwhile_drops_it(qtbot, monkeypatch):
    from rea2seg_gui import app
    from rea2seg_gui.main_window import MainWindow

    shown, started = [], []
    monkeypatch.setattr(MainWindow, "show", lambda self: shown.append(self))
    monkeypatch.setattr(MainWindow, "open_demo_run", lambda self: started.append(self) or True)
    monkeypatch.setattr(QtWidgets.QApplication, "exec", lambda self=None: 0)
    assert app.main(["--demo"]) == 0
    win = shown[0]
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: started == [win], timeout=5000)  # queued once the loop runs
    win.close()
    shows = []
    monkeypatch.setattr(win.review, "show_sample", shows.append)
    with qtbot.assertNotEmitted(win.run_finished):
        win._run_done(1, "run 1: 40 of 40 samples done", "")  # arrives after the close
    assert shows == []
    win.store.close()


def test_a_store_that_cannot_be_opened_is_explained(qtbot, tmp_path, monkeypatch, capsys):
    from rea2seg_gui import app

    said = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: said.append(a[2]))
    assert app.main([str(tmp_path / "no" / "such" / "folder" / "x.sqlite")]) == 2
    assert said and "does not exist" in said[0]
    assert "does not exist" in capsys.readouterr().err


def test_missing_demo_file_is_said_plainly(qtbot, monkeypatch, tmp_path, capsys):
    import core.demo
    from rea2seg_gui import app

    monkeypatch.setattr(core.demo, "DEMO_SGDR", tmp_path / "nope.json")
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: None)
    assert app.main(["--demo"]) == 2
    assert "demo project is missing" in capsys.readouterr().err
    assert QtCore.QCoreApplication.instance() is not None


def test_the_console_script_turns_ctrl_c_into_130(monkeypatch, capsys):
    from rea2seg_gui import app

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "main", interrupted)
    monkeypatch.setattr("sys.argv", ["rea2seg-gui", "--demo"])
    with pytest.raises(SystemExit) as e:
        app.console()
    assert e.value.code == 130
    assert capsys.readouterr().err == "rea2seg-gui: interrupted\n"
