"""Settings dialog, metrics view, evaluator panel and a stage 1 + 2 run from the GUI."""

from __future__ import annotations

import pytest

from rea2seg_gui.models import load_config


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
    (tmp_path / "sam.pth").write_bytes(b"weights")
    dlg.edits[("presets", "lisa-7b", "mllm_path")].setText(str(tmp_path / "lisa"))
    dlg.edits[("presets", "lisa-7b", "sam_checkpoint")].setText(str(tmp_path / "sam.pth"))
    dlg.edits[("evaluator", "openai", "base_url")].setText('http://127.0.0.1:8000/v1 "quoted"')
    dlg.save()
    back = load_config(cfg)
    assert back["presets"]["lisa-7b"]["mllm_path"] == str(tmp_path / "lisa")
    assert back["evaluator"]["openai"]["base_url"] == 'http://127.0.0.1:8000/v1 "quoted"'
    assert "device" not in back["presets"]["lisa-7b"]  # an empty field writes nothing


def test_settings_dialog_explains_wrong_kinds_of_setting(qtbot, tmp_path):
    from rea2seg_gui.dialogs import SettingsDialog

    cfg = tmp_path / "config.toml"
    (tmp_path / "weights.pth").write_bytes(b"x")
    (tmp_path / "ckpt_dir").mkdir()
    dlg = SettingsDialog(path=cfg)
    qtbot.addWidget(dlg)
    dlg.edits[("evaluator", "internvl3-8b", "model_path")].setText(str(tmp_path / "weights.pth"))
    dlg.edits[("presets", "lisa-7b", "mllm_path")].setText(str(tmp_path / "ckpt_dir"))
    dlg.edits[("presets", "lisa-7b", "sam_checkpoint")].setText(str(tmp_path / "ckpt_dir"))
    dlg.edits[("presets", "lisa-7b", "device")].setText("gpu")
    dlg.edits[("presets", "lisa-7b", "sam_model_type")].setText("vit_xl")
    dlg.save()
    text = dlg.problem.text()
    assert not cfg.exists() and text.startswith("Not saved")
    assert (
        "evaluator.internvl3-8b.model_path" in text
        and "is a file; a model directory is expected" in text
    )
    assert (
        "is a directory; the checkpoint file itself is expected" in text
        or "'sam_checkpoint' is not a file" in text
        or ("sam_checkpoint" in text and "is not a file" in text)
    )
    assert "'gpu' is not a device" in text and "'vit_xl' is not a SAM model type" in text


@pytest.mark.slow  # builds the tiny random models
def test_run_with_evaluator_then_metrics_view(qtbot, window, demo_store):
    window.samples_panel.select_row(0)
    window.run_panel.eval_preset.setCurrentText("tiny-random")
    window.run_panel.eval_cot.setChecked(False)
    with qtbot.waitSignal(window.run_finished, timeout=180_000):
        window.run_panel.start_button.click()
    tr = window.state.trace
    assert (
        tr is not None
        and tr.evaluator is not None
        and tr.evaluator.is_random
        and tr.evaluator.cot is False
    )
    window.tabs.setCurrentWidget(window.evaluator_panel)
    text = window.evaluator_panel.text.toPlainText()
    assert "RANDOM WEIGHTS" in text and "Group 0" in text and "Final ranking" in text
    # every mask as the evaluator saw it, padding slots of the last group included and marked
    assert window.evaluator_panel.groups.count() == sum(
        len(g.candidate_ids) for g in tr.evaluator.groups
    )
    padded = sum(g.padded for g in tr.evaluator.groups)
    labels = [
        window.evaluator_panel.groups.item(i).text()
        for i in range(window.evaluator_panel.groups.count())
    ]
    assert sum("(pad)" in t for t in labels) == padded
    # ranks appear in the gallery
    window.tabs.setCurrentWidget(window.candidates_panel)
    ranks = [
        window.candidates_panel.value(r, "rank") for r in range(window.candidates_panel.row_count())
    ]
    assert sorted(ranks) == list(range(1, len(ranks) + 1))
    window.tabs.setCurrentWidget(window.metrics_view)
    assert window.metrics_view.run_combo.count() == 1
    with qtbot.waitSignal(window.metrics_view.compute_button.clicked, timeout=1000):
        window.metrics_view.compute_button.click()
    qtbot.waitUntil(lambda: "top-1" in window.metrics_view.table.toPlainText(), timeout=60_000)
    assert "RANDOM WEIGHTS" in window.metrics_view.table.toPlainText()
    assert "RANDOM WEIGHTS" in window.metrics_view.bars.getPlotItem().titleLabel.text
    assert window.metrics_view.bars.getPlotItem().titleLabel.text.startswith("gIoU")
    res = window.metrics_view.result
    bars = [
        i
        for i in window.metrics_view.bars.getPlotItem().items
        if i.__class__.__name__ == "BarGraphItem"
    ]
    assert len(bars) == 4  # top-1, best of top-3, initial, oracle
    overall = bars[0].opts["height"][-1]
    assert overall == pytest.approx(res["top1"]["overall"]["giou"] or 0.0)
    window.metrics_view.metric_combo.setCurrentText("cIoU")
    bars = [
        i
        for i in window.metrics_view.bars.getPlotItem().items
        if i.__class__.__name__ == "BarGraphItem"
    ]
    assert bars[-1].opts["height"][-1] == pytest.approx(res["oracle"]["overall"]["ciou"] or 0.0)
    assert (
        len(window.metrics_view.bars.listDataItems())
        + len(window.metrics_view.bars.getPlotItem().items)
        >= 3
    )
    assert window.metrics_view.curve.getPlotItem().listDataItems()


def test_the_gui_lists_its_presets_and_settings_from_the_registry(window):
    from core.models import config
    from rea2seg_gui import dialogs
    from rea2seg_gui.panels.run import NO_EVALUATOR

    def items(combo):
        return [combo.itemText(i) for i in range(combo.count())]

    assert items(window.run_panel.eval_preset) == [NO_EVALUATOR, *config.EVALUATOR_PRESETS]
    assert sorted(items(window.run_panel.preset)) == sorted(config.PRESETS)
    assert list(dialogs.FIELDS) == config.settings_fields()
    assert {n for t, n, _, _ in dialogs.FIELDS if t == "evaluator"} == {
        e.name for e in config.EVALUATOR_SPECS if e.settings
    }


@pytest.mark.slow  # builds the tiny random models
def test_two_runs_with_an_evaluator_load_it_once(qtbot, window, demo_store, monkeypatch):
    """The evaluator comes from the window's ModelCache, like the segmenter: a second run
    reuses it instead of loading it again."""
    from core.evaluator import presets
    from core.store import repo

    loads = []
    real = presets.load_evaluator
    monkeypatch.setattr(
        presets,
        "load_evaluator",
        lambda name, config=None, **kw: loads.append(name) or real(name, config, **kw),
    )
    window.samples_panel.select_row(0)
    window.run_panel.eval_preset.setCurrentText("tiny-random")
    window.run_panel.eval_cot.setChecked(False)
    runs = []
    for _ in range(2):
        with qtbot.waitSignal(window.run_finished, timeout=180_000) as blocker:
            window.run_panel.start_button.click()
        runs.append(blocker.args[0])
    assert loads == ["tiny-random"] and runs[0] != runs[1]
    for run_id in runs:
        trace = demo_store.run(
            lambda s, r=run_id: repo.load_trace(s, r, window.state.sample_id), write=False
        )
        assert trace.evaluator is not None and trace.evaluator.cot is False


@pytest.mark.slow  # builds the tiny random models
def test_cancel_stops_a_whole_project_run(qtbot, window, demo_store):
    from PySide6 import QtCore

    from core.store import repo

    window.run_panel.scope_all.setChecked(True)
    seen_threads = []
    window.run_panel.progress.valueChanged.connect(
        lambda _: seen_threads.append(QtCore.QThread.currentThread())
    )
    with qtbot.waitSignal(window.run_finished, timeout=180_000) as blocker:
        window.run_panel.start_button.click()
        qtbot.waitUntil(lambda: window.run_panel.progress.value() >= 1, timeout=120_000)
        window.run_panel.cancel_button.click()
    done = demo_store.run(lambda s: repo.finished_sample_ids(s, blocker.args[0]), write=False)
    assert 1 <= len(done) < 40
    said = f"run {blocker.args[0]}: cancelled after {len(done)} of 40 samples"
    assert window.statusBar().currentMessage().startswith(said)
    assert said in window.run_panel.error_text()
    # progress reached the widgets on the GUI thread
    gui_thread = QtCore.QCoreApplication.instance().thread()
    assert seen_threads and all(t is gui_thread for t in seen_threads)


@pytest.mark.slow  # builds the tiny random models
def test_rerun_one_sample_and_compare_side_by_side(qtbot, window):
    window.samples_panel.select_row(0)
    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        window.run_panel.start_button.click()
    assert window.state.trace is not None
    window.run_panel.use_defaults.setChecked(False)
    window.run_panel.params["k2"].setValue(5)
    window.run_panel.params["k1"].setValue(10)
    window.run_panel.params["seeds_total"].setValue(10)
    shown = window.run_panel.open_choices.text()
    assert (
        "seed_policy = one_per_token" in shown
        and "dedupe_iou = None" in shown
        and "layer_base = 0" in shown
    )
    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        window.run_panel.compare_button.click()
    dlg = window.compare_dialog
    assert len(dlg.canvases) == 2 and all(c.items["seeds"] for c in dlg.canvases)
    text = dlg.summary.toPlainText()
    assert "k2:" in text and "→ 5" in text and "left:" in text and "right:" in text


def test_evaluator_panel_shows_model_text_plainly_with_parse_failures(qtbot, window, demo_store):
    """A hand-made trace: HTML in model text stays literal text; a parse failure is spelled out."""
    import numpy as np

    from core.store import repo
    from core.trace import Candidate, EvaluatorGroup, EvaluatorTrace, PipelineTrace

    m1 = np.zeros((360, 480), bool)
    m1[50:100, 50:100] = True
    m2 = np.zeros((360, 480), bool)
    m2[200:300, 100:300] = True
    groups = [
        EvaluatorGroup(
            0,
            [1, 0],
            "prompt text",
            "<b>Mask 1</b> is the cup. Scores: 0.9, 0.1",
            "<b>Mask 1</b> is the cup.",
            [0.9, 0.1],
        ),
        EvaluatorGroup(
            1,
            [0, 1],
            "prompt text",
            "I cannot decide <script>",
            None,
            [None, None],
            parse_error="no score list found",
            padded=1,
        ),
    ]
    ev = EvaluatorTrace(
        "local",
        "tiny",
        False,
        2,
        7,
        True,
        groups,
        {0: 0.1, 1: 0.9},
        [1, 0],
        prompt_format="rea2seg-v1-cot",
        image_tiling="dynamic max 12",
    )
    trace = PipelineTrace(
        "Which one is the cup?",
        (360, 480),
        "hand",
        {},
        False,
        {},
        None,
        None,
        None,
        None,
        None,
        [Candidate(0, "multimask", 0, m1, 0.5), Candidate(1, "amg", 0, m2, 0.7)],
        evaluator=ev,
    )
    with demo_store.session() as s:
        run_id = repo.create_run(
            s, name="hand", preset="hand", config={}, model_ids={}, is_random=False
        )
        repo.save_trace(s, run_id, 1, trace)
    window.review.show_sample(1)
    assert not window.viewer.banner.isVisible()
    window.tabs.setCurrentWidget(window.evaluator_panel)
    text = window.evaluator_panel.text.toPlainText()
    assert "<b>Mask 1</b> is the cup." in text and "<script>" in text  # literal, not rendered
    assert "PARSE FAILURE: no score list found" in text
    assert "last 1 are padding" in text
    assert "Last group padded; prompt format rea2seg-v1-cot; image tiling dynamic max 12" in text
    assert window.evaluator_panel.groups.count() == 4
    window.evaluator_panel.groups.item(0).setSelected(True)
    assert np.array_equal(window.canvas.items["candidate"][0].image.astype(bool), m2)
    # the gallery: evaluator score, rank and true IoU against the ground truth
    window.tabs.setCurrentWidget(window.candidates_panel)
    rows = {window.candidates_panel.value(r, "id"): r for r in range(2)}
    assert (
        window.candidates_panel.value(rows[1], "rank") == 1
        and window.candidates_panel.value(rows[0], "rank") == 2
    )
    from core.metrics import intersection_union, sample_iou

    want = round(sample_iou(*intersection_union(m2, window.state.gt, window.state.ignore)), 3)
    assert window.candidates_panel.value(rows[1], "true IoU") == pytest.approx(want)
    # "use as mask" saves the candidate with its provenance
    window.candidates_panel.table.selectRow(rows[1])
    window.candidates_panel.use_button.click()
    from core.store.models import Mask, Sample

    prov = demo_store.run(
        lambda s: s.get(Mask, s.get(Sample, 1).edited_mask_id).provenance, write=False
    )
    assert prov == {"tool": "candidate", "from_candidate": 1, "origin": "amg", "run": run_id}


def test_random_evaluator_alone_raises_the_banner(qtbot, window, demo_store):
    import numpy as np

    from core.store import repo
    from core.trace import Candidate, EvaluatorTrace, PipelineTrace

    ev = EvaluatorTrace("local", "tiny", True, 5, 0, False, [], {}, [])
    trace = PipelineTrace(
        "q",
        (360, 480),
        "hand",
        {},
        False,
        {},
        None,
        None,
        None,
        None,
        None,
        [Candidate(0, "amg", 0, np.zeros((360, 480), bool), 0.5)],
        evaluator=ev,
    )
    with demo_store.session() as s:
        run_id = repo.create_run(
            s, name="hand", preset="hand", config={}, model_ids={}, is_random=True
        )
        repo.save_trace(s, run_id, 2, trace)
    window.review.show_sample(2)
    assert window.viewer.banner.isVisible() and window.viewer.banner.text().startswith(
        "RANDOM WEIGHTS — not a result"
    )
    assert "evaluator" in window.viewer.banner.text()
