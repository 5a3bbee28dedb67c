"""Settings dialog, metrics view and a stage 1 + 2 run from the GUI."""

from __future__ import annotations

from core.models.presets import load_config


def test_settings_dialog_explains_missing_paths_and_saves(qtbot, tmp_path):
    from rea2seg_gui.dialogs import SettingsDialog

    cfg = tmp_path / "config.toml"
    dlg = SettingsDialog(path=cfg)
    qtbot.addWidget(dlg)
    dlg.edits[("presets", "lisa-7b", "mllm_path")].setText(str(tmp_path / "nope"))
    dlg.save()
    assert not cfg.exists()
    assert "does not exist" in dlg.problem.text() and "mllm_path" in dlg.problem.text()
    (tmp_path / "lisa").mkdir()
    dlg.edits[("presets", "lisa-7b", "mllm_path")].setText(str(tmp_path / "lisa"))
    dlg.edits[("evaluator", "openai", "base_url")].setText('http://127.0.0.1:8000/v1 "quoted"')
    dlg.save()
    back = load_config(cfg)
    assert back["presets"]["lisa-7b"]["mllm_path"] == str(tmp_path / "lisa")
    assert back["evaluator"]["openai"]["base_url"] == 'http://127.0.0.1:8000/v1 "quoted"'


def test_run_with_evaluator_then_metrics_view(qtbot, window, demo_store):
    window._select_row(0)
    window.eval_preset.setCurrentText("tiny-random")
    window.eval_cot.setChecked(False)
    with qtbot.waitSignal(window.run_finished, timeout=180_000):
        window.start_button.click()
    tr = window.trace
    assert tr is not None and tr.evaluator is not None and tr.evaluator.is_random and tr.evaluator.cot is False
    window.tabs.setCurrentWidget(window.evaluator_tab)
    text = window.eval_text.toPlainText()
    assert "RANDOM WEIGHTS" in text and "Group 0" in text and "Final ranking" in text
    assert window.eval_groups.count() == len(tr.candidates)  # every mask as the evaluator saw it
    # ranks appear in the gallery
    window.tabs.setCurrentWidget(window.candidates_tab)
    ranks = [window.cand_table.item(r, 6).data(0) for r in range(window.cand_table.rowCount())]
    assert sorted(ranks) == list(range(1, len(ranks) + 1))
    window.tabs.setCurrentWidget(window.metrics_view)
    assert window.metrics_view.run_combo.count() == 1
    with qtbot.waitSignal(window.metrics_view.compute_button.clicked, timeout=1000):
        window.metrics_view.compute_button.click()
    qtbot.waitUntil(lambda: "top-1" in window.metrics_view.table.toPlainText(), timeout=60_000)
    assert "RANDOM WEIGHTS" in window.metrics_view.table.toPlainText()
    assert "RANDOM WEIGHTS" in window.metrics_view.bars.getPlotItem().titleLabel.text
    assert len(window.metrics_view.bars.listDataItems()) + len(window.metrics_view.bars.getPlotItem().items) >= 3
    assert window.metrics_view.curve.getPlotItem().listDataItems()


def test_cancel_stops_a_whole_project_run(qtbot, window, demo_store):
    from PySide6 import QtCore

    from core.store import repo

    window.scope_all.setChecked(True)
    seen_threads = []
    window.progress.valueChanged.connect(lambda _: seen_threads.append(QtCore.QThread.currentThread()))
    with qtbot.waitSignal(window.run_finished, timeout=180_000) as blocker:
        window.start_button.click()
        qtbot.waitUntil(lambda: window.progress.value() >= 1, timeout=120_000)
        window.cancel_button.click()
    done = demo_store.run(lambda s: repo.finished_sample_ids(s, blocker.args[0]), write=False)
    assert 1 <= len(done) < 40
    # progress reached the widgets on the GUI thread
    gui_thread = QtCore.QCoreApplication.instance().thread()
    assert seen_threads and all(t is gui_thread for t in seen_threads)


def test_rerun_one_sample_and_compare_side_by_side(qtbot, window):
    window._select_row(0)
    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        window.start_button.click()
    assert window.trace is not None
    window.use_paper_defaults.setChecked(False)
    window.params["k2"].setValue(5)
    window.params["k1"].setValue(10)
    window.params["seeds_total"].setValue(10)
    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        window.compare_button.click()
    dlg = window.compare_dialog
    assert len(dlg.canvases) == 2 and all(c.items["seeds"] for c in dlg.canvases)
    text = dlg.summary.toPlainText()
    assert "k2:" in text and "→ 5" in text and "left:" in text and "right:" in text
