"""File → New store / Import / Export driven with the file dialogs patched: the same core
functions as the CLI, in the worker, with the report shown and the sample list refreshed."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.cli import main
from core.formats.sgdr import SgdrSample, read_sgdr, write_sgdr
from core.masks import encode_rle
from tests.export_data import fill_two_datasets


def _sgdr(tmp_path, n=2):
    (tmp_path / "img").mkdir(exist_ok=True)
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "img" / "a.png"), img)
    m = np.zeros((30, 40), bool)
    m[5:15, 5:20] = True
    samples = [
        SgdrSample(f"s{i}", "img/a.png", f"Which one {i}?", "other", "t", "pending", encode_rle(m))
        for i in range(n)
    ]
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
    fresh.file_actions.actions["export_sgdr"].trigger()
    dlg = fresh.file_actions.export_dialog
    # verified by default (the command shown says so); these imported samples are pending
    assert dlg.isVisible() and dlg.export_kwargs() == {"status": "verified", "dataset": None}
    assert dlg.matching.text() == "0 samples" and "--status verified" in dlg.command()
    dlg.set_filters(status=None)  # any
    assert dlg.matching.text() == "2 samples" and "--status" not in dlg.command()
    _patch(monkeypatch, "getSaveFileName", (str(out), ""))
    qtbot.mouseClick(
        dlg.findChild(QtWidgets.QPushButton, "browse"), QtCore.Qt.MouseButton.LeftButton
    )
    assert dlg.out_path() == str(out)
    with qtbot.waitSignal(fresh.file_actions.finished, timeout=30_000) as got:
        dlg.export_button.click()
    assert got.args[0] == "export" and got.args[1].written == 2
    assert "wrote 2 samples" in fresh.file_actions.report_box.text()
    assert (
        main(["export", "sgdr", "--db", fresh.store.url, "--out", str(tmp_path / "cli.json")]) == 0
    )
    assert out.read_bytes() == (tmp_path / "cli.json").read_bytes()
    assert [s.id for s in read_sgdr(out)[0]] == ["s0", "s1"]


def test_import_reasonseg_reports_skipped_files(qtbot, fresh, tmp_path, monkeypatch):
    d = tmp_path / "rs"
    d.mkdir()
    cv2.imwrite(str(d / "a.jpg"), np.full((20, 30, 3), 128, np.uint8))
    (d / "a.json").write_text(
        json.dumps(
            {
                "text": ["the grey thing"],
                "is_sentence": False,
                "shapes": [{"label": "target", "points": [[2, 2], [20, 2], [20, 15]]}],
            }
        )
    )
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


def _hold_first_call(monkeypatch, module, name: str) -> tuple[threading.Event, threading.Event]:
    """Make ``module.name``'s first call wait until ``gate`` is set; ``first`` is set when it
    starts. Returns ``(gate, first)``."""
    gate, first = threading.Event(), threading.Event()
    real = getattr(module, name)

    def held(*a, **k):
        if not first.is_set():
            first.set()
            gate.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(module, name, held)
    return gate, first


def test_cancel_stops_the_import_between_samples(qtbot, fresh, tmp_path, monkeypatch):
    import core.importers.sgdr as imp

    src = _sgdr(tmp_path, n=3)
    gate, first = _hold_first_call(
        monkeypatch, imp, "resolve_inside"
    )  # the first sample waits for Cancel
    _patch(monkeypatch, "getOpenFileName", (str(src), ""))
    with qtbot.waitSignal(fresh.file_actions.finished, timeout=30_000) as got:
        fresh.file_actions.actions["import_sgdr"].trigger()
        assert first.wait(20) and fresh.file_actions.actions["cancel"].isEnabled()
        fresh.file_actions.actions["cancel"].trigger()
        gate.set()
    report = got.args[1]
    assert report.cancelled and report.added == 1
    assert (
        "cancelled" in fresh.file_actions.report_box.text() and fresh.samples_panel.row_count() == 1
    )
    assert not fresh.file_actions.actions["cancel"].isEnabled()


@pytest.fixture
def two(fresh, tmp_path):
    """The window on a store of two datasets with accepted and rejected samples (tests/export_data.py)."""
    fill_two_datasets(fresh.store, tmp_path / "src")
    fresh.review.refresh_samples()
    return fresh


def _export_with_dialog(qtbot, window, out, **filters):
    window.file_actions.actions["export_sgdr"].trigger()
    dlg = window.file_actions.export_dialog
    dlg.out_edit.setText(str(out))
    dlg.set_filters(**filters)
    with qtbot.waitSignal(window.file_actions.finished, timeout=30_000) as got:
        dlg.export_button.click()
    return dlg, got.args[1]


def test_export_dialog_filters_as_the_cli_does_byte_for_byte(qtbot, two, tmp_path):
    from core.cli import build_parser

    two.file_actions.actions["export_sgdr"].trigger()
    dlg = two.file_actions.export_dialog
    # the choices: any, then the store's datasets / the review statuses
    assert [dlg.dataset_combo.itemText(i) for i in range(dlg.dataset_combo.count())] == [
        "any",
        "alpha",
        "beta",
    ]
    assert [dlg.status_combo.itemText(i) for i in range(dlg.status_combo.count())] == [
        "any",
        "pending",
        "verified",
        "rejected",
        "flagged",
    ]
    dlg.reject()
    for filters, want in (
        ({"dataset": "beta", "status": "verified"}, ["b_ok"]),
        ({"status": "rejected"}, ["a_no", "b_no"]),
        ({"dataset": "alpha"}, ["a_no", "a_ok"]),
        ({}, ["a_no", "a_ok", "b_new", "b_no", "b_ok"]),
    ):
        gui, cli = tmp_path / "out" / "gui.json", tmp_path / "out" / "cli.json"
        dlg, report = _export_with_dialog(qtbot, two, gui, **filters)
        assert sorted(s.id for s in read_sgdr(gui)[0]) == want and report.written == len(want)
        assert (
            dlg.matching.text() == f"{len(want)} sample{'' if len(want) == 1 else 's'}"
        )  # said before Export
        argv = ["export", "sgdr", "--db", two.store.url, "--out", str(cli)]
        for opt in ("status", "dataset"):
            if opt in filters:
                argv += [f"--{opt}", filters[opt]]
        assert main(argv) == 0
        assert gui.read_bytes() == cli.read_bytes()
        # the command line the dialog shows is that export, with the same options
        shown = build_parser().parse_args(dlg.cli_args())
        assert (shown.db, shown.out, shown.status, shown.dataset) == (
            two.store.url,
            str(gui),
            filters.get("status"),
            filters.get("dataset"),
        )
        assert dlg.command().startswith("rea2seg export sgdr --db ")


def test_export_to_an_unwritable_path_is_explained_and_writes_nothing(qtbot, two, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    two.file_actions.actions["export_sgdr"].trigger()
    dlg = two.file_actions.export_dialog
    bad = blocker / "x.json"
    dlg.out_edit.setText(str(bad))
    dlg.set_filters(status="verified")
    dlg.export_button.click()
    assert dlg.isVisible() and not two.jobs.busy  # the dialog stays open; no job started
    assert (
        dlg.problem.text()
        == f"Not exported: {bad}: cannot create folder {blocker} ({blocker} is a file)"
    )
    dlg.out_edit.setText(str(tmp_path))
    dlg.export_button.click()
    assert dlg.isVisible() and dlg.problem.text().endswith("is a folder; give a file name")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and blocker.read_text() == "keep"
    # a path that turns bad after the dialog closed: the worker's one-line error, nothing written
    dlg.reject()
    with qtbot.waitSignal(two.file_actions.failed, timeout=30_000) as got:
        two.file_actions.export_to(str(bad), status="verified")
    assert "cannot create folder" in got.args[0] and "\n" not in got.args[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and not two.jobs.busy


def _folder(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_export_reasonseg_dialog_writes_what_the_cli_writes_byte_for_byte(qtbot, two, tmp_path):
    from core.cli import build_parser

    menu_texts = [a.text() for a in two.file_actions.actions.values()]
    assert (
        menu_texts.index("Export ReasonSeg &folder…") == menu_texts.index("&Export SGDR file…") + 1
    )
    for n, (filters, options) in enumerate(
        (({}, {}), ({"dataset": "beta", "status": "verified"}, {"mask": "gt", "min_iou": 0.5}))
    ):
        gui, cli = tmp_path / f"gui{n}", tmp_path / f"cli{n}"
        two.file_actions.actions["export_reasonseg"].trigger()
        dlg = two.file_actions.export_dialog
        assert dlg.windowTitle() == "Export ReasonSeg folder" and dlg.fmt == "reasonseg"
        dlg.out_edit.setText(str(gui))
        dlg.set_filters(**filters)
        if options:
            dlg.set_options(**options)
        with qtbot.waitSignal(two.file_actions.finished, timeout=30_000) as got:
            dlg.export_button.click()
        kind, report = got.args
        assert kind == "export" and report.ok and report.written == (5 if not filters else 1)
        assert report.summary().splitlines()[0] in two.file_actions.report_box.text()
        # the command line the dialog shows is that export, with the same options
        shown = build_parser().parse_args(dlg.cli_args())
        assert (shown.out_dir, shown.status, shown.dataset) == (
            str(gui),
            filters.get("status"),
            filters.get("dataset"),
        )
        assert (shown.mask, shown.min_iou) == (
            options.get("mask", "reviewed"),
            options.get("min_iou", 0.99),
        )
        argv = ["export", "reasonseg", str(cli), "--db", two.store.url]
        for opt in ("status", "dataset"):
            if opt in filters:
                argv += [f"--{opt}", filters[opt]]
        argv += [a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        assert main(argv) == 0
        assert _folder(gui) == _folder(cli) and len(_folder(gui)) == (
            10 if not filters else 2
        )  # x.png: a JSON + copy per mask


def test_export_reasonseg_refusals_and_skips_are_explained(qtbot, two, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep")
    two.file_actions.actions["export_reasonseg"].trigger()
    dlg = two.file_actions.export_dialog
    dlg.set_filters()  # any status: every sample
    dlg.out_edit.setText(str(full))
    dlg.export_button.click()
    assert dlg.isVisible() and not two.jobs.busy  # the dialog stays open; no job started
    assert (
        dlg.problem.text()
        == f"Not exported: {full}: folder is not empty; give a new or empty folder"
    )
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    # an image gone from disk: the report names it (as a warning), the rest is written
    (tmp_path / "src" / "img" / "x.png").unlink()
    dlg.out_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(two.file_actions.finished, timeout=30_000) as got:
        dlg.export_button.click()
    report = got.args[1]
    assert report.written == 0 and len(report.skipped) == 5 and not report.ok
    assert "no longer exists" in two.file_actions.report_box.text()
    assert two.file_actions.report_box.icon() == QtWidgets.QMessageBox.Icon.Warning


def test_cancel_stops_a_reasonseg_export_and_nothing_is_written(qtbot, two, tmp_path, monkeypatch):
    import core.exporters.reasonseg as exp

    gate, first = _hold_first_call(
        monkeypatch, exp, "mask_to_shapes"
    )  # the first JSON waits for Cancel
    cancel = two.file_actions.actions["cancel"]
    assert cancel.text() == "&Cancel import / export"
    two.file_actions.actions["export_reasonseg"].trigger()
    dlg = two.file_actions.export_dialog
    dlg.out_edit.setText(str(tmp_path / "out"))
    before = sorted(p.name for p in tmp_path.iterdir())
    with qtbot.waitSignal(two.file_actions.finished, timeout=30_000) as got:
        dlg.export_button.click()
        assert first.wait(20) and cancel.isEnabled()
        cancel.trigger()
        gate.set()
    report = got.args[1]
    assert report.cancelled and not report.ok
    assert "cancelled: nothing written" in two.file_actions.report_box.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not cancel.isEnabled()


def test_an_sgdr_export_cannot_be_cancelled_half_way(qtbot, two, tmp_path):
    with qtbot.waitSignal(two.file_actions.finished, timeout=30_000):
        two.file_actions.export_to(str(tmp_path / "all.json"))
        assert not two.file_actions.actions["cancel"].isEnabled()  # one atomic write
    assert (tmp_path / "all.json").exists()


def test_the_export_dialog_says_when_the_store_cannot_be_counted(qtbot, two):
    from rea2seg_gui.export_dialog import ExportDialog

    def broken(status, dataset):
        raise RuntimeError("disk I/O error\n(sqlite)")

    dlg = ExportDialog(["alpha"], two.store.url, two, count=broken)
    qtbot.addWidget(dlg)
    assert dlg.matching.text() == "cannot count the samples: disk I/O error (sqlite)"
    assert ExportDialog(["alpha"], two.store.url, two).matching.text() == ""
