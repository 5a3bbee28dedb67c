"""The drawing features wired into the window: colour swatches, outline / legend / difference
keys, the hover read-out in the status bar, and the candidate gallery's keys and IoU picker."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.metrics import intersection_union, sample_iou
from core.store import repo, review
from rea2seg_gui.canvas import LAYER_BY_KEY, MASK_LAYERS


@pytest.fixture
def traced(qtbot, demo_store, settings):
    """A window on the demo store with a tiny-random trace for sample 1 and an edited mask."""
    from core.cli import main
    from rea2seg_gui.main_window import MainWindow

    assert main(["run", "--db", demo_store.url, "--preset", "tiny-random", "--sample", "1"]) == 0
    gt = demo_store.run(lambda s: repo.gt_mask(s, 1), write=False)
    edited = gt.copy()
    edited[:40, :60] = True  # added by the edit
    ys, xs = np.nonzero(gt)
    edited[ys[:50], xs[:50]] = False  # removed by the edit
    review.replace_mask(demo_store, 1, edited, user="tester", provenance={"tool": "test"})
    w = MainWindow(demo_store, user="tester", settings=settings)
    w.loader.trace_wait_s = 60
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    w.review.show_sample(1)
    assert w.state.trace is not None
    return w, gt, edited


def key(qtbot, w, k) -> None:
    qtbot.keyClick(w, k)
    QtWidgets.QApplication.processEvents()


@pytest.mark.slow  # builds the tiny random models
def test_swatches_keys_and_difference_counts(traced, qtbot, settings):
    w, gt, edited = traced
    lp = w.layers_panel
    style = lp.style_controls
    assert set(style.swatches) == set(MASK_LAYERS)  # the initial mask M has a swatch too
    assert style.swatches["initial"].color == LAYER_BY_KEY["initial"].color
    # a swatch opens the colour dialog; the colour is used and remembered
    orig = QtWidgets.QColorDialog.getColor
    try:
        QtWidgets.QColorDialog.getColor = staticmethod(lambda *a, **k: QtGui.QColor(250, 250, 0))
        style.swatches["gt"].click()
    finally:
        QtWidgets.QColorDialog.getColor = orig
    assert w.canvas.colors["gt"] == (250, 250, 0) and settings.value("layers/color/gt") == "#fafa00"
    w.canvas.setFocus()
    key(qtbot, w.canvas, QtCore.Qt.Key.Key_O)
    assert w.canvas.outline_mode and style.outline_check.isChecked()
    key(qtbot, w.canvas, QtCore.Qt.Key.Key_G)
    assert not w.canvas.legend.isVisible() and not style.legend_check.isChecked()
    key(qtbot, w.canvas, QtCore.Qt.Key.Key_G)
    assert w.canvas.legend.isVisible()
    key(qtbot, w.canvas, QtCore.Qt.Key.Key_D)
    assert lp.checks["diff"].isChecked() and w.canvas.diff is not None
    added = int((edited & ~gt).sum())
    removed = int((gt & ~edited).sum())
    assert added > 0 and removed > 0
    assert (w.canvas.diff.added, w.canvas.diff.removed) == (added, removed)
    text = style.diff_label.text()
    assert f"added {added} px" in text and f"removed {removed} px" in text
    assert f"Added by the edit: {added} px" in w.canvas.legend.titles()
    key(qtbot, w.canvas, QtCore.Qt.Key.Key_D)
    assert w.canvas.diff is None and "off" in style.diff_label.text()


@pytest.mark.slow  # builds the tiny random models
def test_hover_readout_in_the_status_bar_with_L_loaded(traced, qtbot):
    w, _, _ = traced
    tr = w.state.trace
    assert tr.initial_logits is None  # shown without L
    full = w.store.run(lambda s: repo.load_trace(s, w.candidates_panel.run_id(), 1), write=False)
    x, y = (int(v) for v in tr.seeds.seeds_xy[0])
    w.canvas.hover_at(x + 0.5, y + 0.5)
    label = w.canvas.readout_label
    assert label.parent() is not None and label.isVisible()  # in the status bar
    assert label.text().startswith(f"x {x}, y {y}") and "seed 0" in label.text()
    qtbot.waitUntil(lambda: w.canvas.logits is not None, timeout=10_000)
    r = w.canvas.hover_at(x + 0.5, y + 0.5)
    assert r.logit == pytest.approx(float(full.initial_logits[y, x]))
    assert f"L {r.logit:+.3f}" in label.text()
    assert r.topk2_rank is not None  # a seed sits on a top-k2 token


@pytest.mark.slow  # builds the tiny random models
def test_gallery_keys_step_candidates_not_samples_and_iou_picker(traced, qtbot):
    w, gt, edited = traced
    cp = w.candidates_panel
    w.tabs.setCurrentWidget(cp)
    tr = w.state.trace
    assert cp.row_count() == len(tr.candidates) >= 2
    # the reviewed mask exists: picked by default, and said so in the header
    assert cp.gallery.header_text() == "true IoU vs reviewed"
    ign = w.state.ignore
    first = cp.gallery.candidate_at(0)
    assert cp.value(0, "true IoU") == round(
        sample_iou(*intersection_union(first.mask, edited, ign)), 3
    )
    cp.gallery.set_against("gt")
    assert cp.gallery.header_text() == "true IoU vs GT"
    assert cp.value(0, "true IoU") == round(sample_iou(*intersection_union(first.mask, gt, ign)), 3)
    # the arrow keys step through the candidates (the window's Down = next sample is not fired)
    cp.table.setFocus()
    qtbot.keyClick(cp.table, QtCore.Qt.Key.Key_Down)
    qtbot.keyClick(cp.table, QtCore.Qt.Key.Key_Down)
    assert w.state.sample_id == 1
    c = cp.selected_candidate()
    assert c is not None and c.id == cp.gallery.candidate_at(1).id
    assert np.array_equal(w.canvas.items["candidate"][0].image.astype(bool), c.mask)
    qtbot.keyClick(cp.table, QtCore.Qt.Key.Key_Left)
    assert cp.selected_candidate().id == cp.gallery.candidate_at(0).id
    names = {cp.value(r, "origin") for r in range(cp.row_count())}
    assert names <= {"multimask", "semantic", "AMG"} and "multimask" in names


def test_docs_and_app_agree_on_names_and_keys(qtbot, settings):
    """The docs' app page names the controls and keys as the app shows them."""
    from pathlib import Path

    from rea2seg_gui.canvas import Canvas
    from rea2seg_gui.gallery import AGAINST_NAMES, CandidateGallery
    from rea2seg_gui.layer_style import LEGEND_SHORTCUT, OUTLINE_SHORTCUT, LayerStyle
    from rea2seg_gui.overlays import ORIGIN_NAMES
    from rea2seg_gui.shortcuts import SHORTCUTS

    page = (
        Path(__file__).resolve().parents[2].joinpath("docs", "app.md").read_text(encoding="utf-8")
    )
    app_section = " ".join(page.split())
    canvas = Canvas()
    qtbot.addWidget(canvas)
    style = LayerStyle(canvas, settings)
    qtbot.addWidget(style)
    outline = style.outline_check.text().split("[")[0].strip()
    legend = style.legend_check.text().split("[")[0].strip()
    assert (
        f"*{outline}* ({OUTLINE_SHORTCUT})" in app_section
        and f"*{legend}* ({LEGEND_SHORTCUT})" in app_section
    )
    diff = LAYER_BY_KEY["diff"]
    assert f"*{diff.title}* ({diff.shortcut})" in app_section
    keys = {k for k, _ in SHORTCUTS}
    assert {diff.shortcut, f"{OUTLINE_SHORTCUT} / {LEGEND_SHORTCUT}"} <= keys
    gallery = CandidateGallery()
    qtbot.addWidget(gallery)
    assert "*True IoU against*" in app_section
    for name in AGAINST_NAMES.values():
        assert f"*{name}*" in app_section
    for origin in ("multimask", "semantic", "amg"):
        assert f"*{ORIGIN_NAMES[origin]}*" in app_section
    for header in ("true IoU vs GT", "true IoU vs reviewed"):
        assert f"`{header}`" in app_section
    gallery.set_against("gt")
    assert gallery.header_text() == "true IoU vs GT"
