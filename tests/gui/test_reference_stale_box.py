"""The metrics tab's reference choice, the stale-trace marker and the SAM box tool, in the window."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from core.store import repo, review
from core.store.models import Mask
from core.trace import Candidate, PipelineTrace
from rea2seg_gui.canvas import DragMode
from rea2seg_gui.models import tiny_lisa_preset

E5 = 1e-5


@pytest.fixture
def hand_run(window, demo_store):
    """A run whose trace of sample 1 has one candidate: its imported ground truth."""

    def make(s):
        smp = repo.get_sample(s, 1)
        gt = repo.gt_mask(s, 1)
        run_id = repo.create_run(
            s, name="hand", preset="test", config={}, model_ids={}, is_random=False
        )
        trace = PipelineTrace(
            smp.question,
            gt.shape,
            "test",
            {},
            False,
            {},
            None,
            None,
            None,
            None,
            None,
            [Candidate(0, "amg", 0, gt, 0.9)],
        )
        repo.save_trace(s, run_id, 1, trace)
        return run_id, gt

    run_id, gt = demo_store.run(make)
    window.refresh_runs()
    window.review.show_sample(1)
    return run_id, gt


def _metrics(qtbot, window, against):
    mv = window.metrics_view
    window.tabs.setCurrentWidget(mv)
    mv.set_against(against)
    with qtbot.waitSignal(window.runs.metrics_ready, timeout=30_000):
        mv.compute_button.click()
    return mv.result


def test_metrics_tab_measures_against_the_chosen_reference(qtbot, window, demo_store, hand_run):
    _run_id, gt = hand_run
    half = gt.copy()
    ys, xs = np.nonzero(gt)
    half[:, : int(np.median(xs))] = False  # the reviewer kept the right part only
    review.replace_mask(demo_store, 1, half, user="tester")
    inter, union = (gt & half).sum(), (gt | half).sum()
    res = _metrics(qtbot, window, "gt")
    assert res["against"] == "gt" and res["top1"]["overall"]["giou"] == pytest.approx(
        union / (union + E5)
    )
    assert (
        window.metrics_view.reference_label.text()
        == "measured against: the imported ground truth (1 samples)"
    )
    res = _metrics(qtbot, window, "reviewed")
    assert res["against"] == "reviewed" and res["reference"] == {"gt": 0, "reviewed": 1}
    assert res["top1"]["overall"]["giou"] == pytest.approx(inter / (union + E5))
    assert window.metrics_view.reference_label.text().startswith(
        "measured against: reviewed masks (1 samples"
    )
    assert window.metrics_view.table.toPlainText().startswith("measured against: reviewed masks")


def test_stale_marker_when_the_question_is_edited_after_the_run(
    qtbot, window, demo_store, hand_run
):
    cp, ep = window.candidates_panel, window.evaluator_panel
    assert window.state.trace is not None and cp.stale_text() == "" and ep.stale_text() == ""
    asked = window.state.trace.question
    window.review.save_question("Which shape is largest?")
    assert (
        cp.stale_text().startswith("stale: question edited after this run")
        and asked in cp.stale_text()
    )
    assert ep.stale_text() == cp.stale_text()
    assert demo_store.run(lambda s: repo.trace_is_stale(s, hand_run[0], 1), write=False)
    window.review.show_sample(2)  # no trace there: no marker
    assert cp.stale_text() == ""
    window.review.show_sample(1)
    assert cp.stale_text() != ""
    window.review.undo()  # the question the run saw: the marker goes
    assert cp.stale_text() == "" and ep.stale_text() == ""


@pytest.mark.slow  # builds the tiny random models
def test_box_tool_drags_a_rectangle_into_a_sam_mask(qtbot, window, demo_store):
    window.edit_panel.sam_preset.setCurrentText(tiny_lisa_preset())
    qtbot.keyClick(window, QtCore.Qt.Key.Key_X)
    assert window.editing.tool == "box" and window.canvas.drag_mode is DragMode.BOX
    c = window.canvas
    with qtbot.waitSignal(window.editing.sam_finished, timeout=60_000):
        c.dragged.emit(220.0, 160.0, 200.0, 150.0)  # drags run from any corner
        c.dragged.emit(200.0, 150.0, 90.0, 60.0)
        assert c.tools.box() == (90.0, 60.0, 220.0, 160.0)  # drawn while dragged
        c.drag_finished.emit()
    assert c.tools.box() == (90.0, 60.0, 220.0, 160.0)  # and kept: it is the session's prompt
    prov = demo_store.run(
        lambda s: s.get(Mask, repo.get_sample(s, 1).edited_mask_id).provenance, write=False
    )
    assert (
        prov["tool"] == "sam_box"
        and prov["box_xyxy"] == [90.0, 60.0, 220.0, 160.0]
        and prov["is_random"] is True
    )
    saved = demo_store.run(lambda s: repo.edited_mask(s, 1), write=False)
    sam, _ = window.models.sam(tiny_lisa_preset())
    sam.set_image(window.state.image)
    logits, _ = sam.predict_points(None, None, None, multimask=False, box_xyxy=(90, 60, 220, 160))
    assert np.array_equal(saved, logits[0] > 0)
    assert (
        "SAM box (90, 60, 220, 160) (random" in window.review_panel.history_table.item(0, 3).text()
    )
    # a box too small is refused: nothing saved, the session's box stays
    n = len(review.history(demo_store, 1))
    c.dragged.emit(10.0, 10.0, 11.0, 11.0)
    c.drag_finished.emit()
    assert len(review.history(demo_store, 1)) == n and c.tools.box() == (90.0, 60.0, 220.0, 160.0)
