from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6 import QtCore  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Per-test user folder and QSettings, so tests never touch the real ones."""
    monkeypatch.setenv("REA2SEG_HOME", str(tmp_path / "home"))
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path / "qsettings"))


@pytest.fixture
def settings(tmp_path):
    return QtCore.QSettings(str(tmp_path / "gui.ini"), QtCore.QSettings.Format.IniFormat)


@pytest.fixture
def demo_store(tmp_path):
    from core.demo import ensure_demo_store
    from core.store import open_store

    st = open_store(ensure_demo_store(tmp_path / "demo.sqlite"))
    yield st
    st.close()


@pytest.fixture
def window(qtbot, demo_store, settings):
    from rea2seg_gui.main_window import MainWindow

    w = MainWindow(demo_store, user="tester", settings=settings)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w
