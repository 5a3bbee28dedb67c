"""File → New store / Import / Export driven with the file dialogs patched: the same core
functions as the CLI, in the worker, with the report shown and the sample list refreshed."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest
from PySide6 import QtWidgets

from core.cli import main
from core.formats.sgdr import SgdrSample, read_sgdr, write_sgdr
from core.masks import encode_rle


def _sgdr(tmp_path, n=2):
    (tmp_path / "img").mkdir(exist_ok=True)
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "img" / "a.png"), img)
    m = np.zeros((30, 40), bool)
    m[5:15, 5:20] = True
    samples = [SgdrSample(f"s{i}", "img/a.png", f"Which one {i}?", "other", "t", "pending", encode_rle(m))
               for i in range(n)]
    path = tmp_path / "set.json"
    write_sgdr(path, samples)
    return path


def _patch(monkeypatch, name, value):
    monkeypatch.setattr(QtWidgets.QFileDialog, name, staticmethod(lambda *a, **k: value))


@pytest.fixture
def fresh(qtbot, window, tmp_path, monkeypatch):
    """The window switched to a new, empty store through File → New store…"""
    _patch(monkeypatch, "getSaveFileName", (str(tmp_path / "new.sqlite"), ""))
    window.file_actions.actions["new"].trigger()
    assert window.store.url.endswith("new.sqlite") and window.samples_panel.row_count() == 0
    return window


def test_new_store_never_replaces_a_file(qtbot, fresh, tmp_path, monkeypatch):
    url = fresh.store.url
    _patch(monkeypatch, "getSaveFileName", (str(tmp_path / "new.sqlite"), ""))
    assert fresh.file_actions.new_store() is False
    assert "already exists" in fresh.file_actions.report_box.text() and fresh.store.url == url


def test_import_sgdr_then_export_writes_what_the_cli_writes(qtbot, fresh, tmp_path, monkeypatch):
    src = _sgdr(tmp_path)
    _patch(monkeypatch, "getOpenFileName", (str(src), ""))
    with qtbot.waitSignal(fresh.file_actions.finished, timeout=30_000) as got:
        fresh.file_actions.actions["import_sgdr"].trigger()
    kind, report = got.args
    assert kind == "import" and (report.added, report.existing, report.skipped) == (2, 0, 0)
    assert fresh.samples_panel.row_count() == 2  # the list was refreshed
    assert "added 2, already present 0, skipped 0" in fresh.file_actions.report_box.text()
    out = tmp_path / "gui.json"
    _patch(monkeypatch, "getSaveFileName", (str(out), ""))
    with qtbot.waitSignal(fresh.file_actions.finished, timeout=30_000) as got:
        fresh.file_actions.actions["export_sgdr"].trigger()
    assert got.args[0] == "export" and got.args[1].written == 2
    assert "wrote 2 samples" in fresh.file_actions.report_box.text()
    assert main(["export", "sgdr", "--db", fresh.store.url, "--out", str(tmp_path / "cli.json")]) == 0
    assert out.read_bytes() == (tmp_path / "cli.json").read_bytes()
    assert [s.id for s in read_sgdr(out)[0]] == ["s0", "s1"]


def test_import_reasonseg_reports_skipped_files(qtbot, fresh, tmp_path, monkeypatch):
    d = tmp_path / "rs"
    d.mkdir()
    cv2.imwrite(str(d / "a.jpg"), np.full((20, 30, 3), 128, np.uint8))
    (d / "a.json").write_text(json.dumps({"text": ["the grey thing"], "is_sentence": False,
                                          "shapes": [{"label": "target", "points": [[2, 2], [20, 2], [20, 15]]}]}))
    (d / "b.json").write_text("{broken")  # no image either
    _patch(monkeypatch, "getExistingDirectory", str(d))
    with qtbot.waitSignal(fresh.file_actions.finished, timeout=30_000) as got:
        fresh.file_actions.actions["import_reasonseg"].trigger()
    report = got.args[1]
    assert report.added == 1 and report.skipped == 1 and report.errors[0][0] == "b.json"
    assert "skipped b.json" in fresh.file_actions.report_box.text()
    assert fresh.samples_panel.row_count() == 1


def test_an_unreadable_file_is_an_error_and_nothing_lands(qtbot, fresh, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text("not json at all")
    _patch(monkeypatch, "getOpenFileName", (str(bad), ""))
    with qtbot.waitSignal(fresh.file_actions.failed, timeout=30_000) as got:
        fresh.file_actions.actions["import_sgdr"].trigger()
    assert "JSON" in got.args[0] and "Traceback" not in got.args[0]
    assert fresh.file_actions.report_box.icon() == QtWidgets.QMessageBox.Icon.Warning
    assert fresh.samples_panel.row_count() == 0 and not fresh.jobs.busy


def test_cancel_stops_the_import_between_samples(qtbot, fresh, tmp_path, monkeypatch):
    import core.importers.sgdr as imp

    src = _sgdr(tmp_path, n=3)
    gate, first = threading.Event(), threading.Event()
    real = imp.resolve_inside

    def held(*a, **k):  # the first sample waits until the test has pressed Cancel
        if not first.is_set():
            first.set()
            gate.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(imp, "resolve_inside", held)
    _patch(monkeypatch, "getOpenFileName", (str(src), ""))
    with qtbot.waitSignal(fresh.file_actions.finished, timeout=30_000) as got:
        fresh.file_actions.actions["import_sgdr"].trigger()
        assert first.wait(20) and fresh.file_actions.actions["cancel"].isEnabled()
        fresh.file_actions.actions["cancel"].trigger()
        gate.set()
    report = got.args[1]
    assert report.cancelled and report.added == 1
    assert "cancelled" in fresh.file_actions.report_box.text() and fresh.samples_panel.row_count() == 1
    assert not fresh.file_actions.actions["cancel"].isEnabled()
