from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6 import QtCore  # noqa: E402


@pytest.fixture(scope="session")
def _tiny_models(tmp_path_factory):
    """One folder for the tiny random models, built once per session and shared by every test."""
    return tmp_path_factory.mktemp("tiny-random")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch, _tiny_models):
    """Per-test user folder, config and QSettings, so tests never touch the real ones."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "tiny-random").symlink_to(_tiny_models, target_is_directory=True)
    monkeypatch.setenv("REA2SEG_HOME", str(home))
    monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("REA2SEG_EVAL_BASE_URL", raising=False)
    QtCore.QSettings.setPath(
        QtCore.QSettings.Format.IniFormat,
        QtCore.QSettings.Scope.UserScope,
        str(tmp_path / "qsettings"),
    )
    from PySide6 import QtWidgets

    def unexpected(
        *a, **k
    ):  # a modal dialog would hang an offscreen test: a test that expects one patches it
        raise AssertionError(f"unexpected modal dialog: {a[1:3]}")

    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", unexpected)
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", unexpected)


@pytest.fixture
def reasons(monkeypatch):
    """Answers for the reason a reject / flag asks for; ``asked`` records the questions."""
    from PySide6 import QtWidgets

    state = {"answers": [], "asked": []}

    def get_text(parent, title, label, *a, **k):
        state["asked"].append(label)
        return state["answers"].pop(0) if state["answers"] else ("a reason", True)

    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", get_text)
    return state


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
    w.loader.trace_wait_s = 60  # traces drawn as part of switching samples: deterministic tests
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(10)  # the window opens clamped to the 800 × 800 offscreen screen; then
    w.resize(1400, 900)  # the size these tests were written for
    return w
