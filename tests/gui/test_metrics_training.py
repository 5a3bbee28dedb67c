"""The metrics tab's evaluator-training plots: an adapter folder's loss curve and the
predicted-vs-true IoU scatter of its quality.json."""

from __future__ import annotations

import json

import pyqtgraph as pg

from rea2seg_gui.panels.metrics import MetricsView


def _quality(points):
    return {
        "n_questions": 2,
        "n_candidates": len(points),
        "unscored": 0,
        "pearson": 0.5,
        "spearman": 0.4,
        "mae": 0.2,
        "giou": {"top1": 0.6, "initial": None, "oracle": 0.9},
        "no_pick": 0,
        "position_bias": {
            "repeats": 3,
            "kendall_tau": 0.7,
            "score_spread": 0.05,
            "top1_agreement": 1.0,
        },
        "points": points,
    }


def _scatter_points(view) -> int:
    items = [i for i in view.scatter_plot.getPlotItem().items if isinstance(i, pg.ScatterPlotItem)]
    return sum(len(i.data) for i in items)


def test_the_view_draws_the_loss_curve_and_the_scatter(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    tv = view.training
    rows = [{"step": s, "loss": 3.0 / s} for s in range(1, 6)] + [{"step": 5, "train_runtime": 2.0}]
    tv.show_training("/x/adapter", rows, _quality([[0.2, 0.1], [0.8, 0.9], [0.5, 0.4]]))
    (curve,) = tv.loss_plot.getPlotItem().listDataItems()
    x, y = curve.getData()
    assert list(x) == [1, 2, 3, 4, 5] and y[0] == 3.0  # rows without a loss are not drawn
    assert _scatter_points(tv) == 3
    assert "Spearman 0.400" in tv.summary.text() and "Kendall τ 0.700" in tv.summary.text()
    tv.show_training("/x/other", rows[:2], None)  # no quality.json yet: the scatter says how
    assert (
        _scatter_points(tv) == 0
        and "rea2seg eval --evaluator" in tv.scatter_plot.getPlotItem().titleLabel.text
    )


def test_the_window_reads_an_adapter_folder(qtbot, window, tmp_path):
    (tmp_path / "loss_curve.jsonl").write_text(
        "\n".join(
            json.dumps({"step": s, "epoch": s / 4, "loss": 2.0 - 0.1 * s}) for s in range(1, 9)
        )
        + '\n{"step": 9, "lo'  # a line cut by a kill is skipped
    )
    (tmp_path / "quality.json").write_text(json.dumps(_quality([[0.3, 0.2]] * 4)))
    with qtbot.waitSignal(window.metrics_view.training.adapter_chosen, timeout=1000):
        window.metrics_view.training.adapter_chosen.emit(str(tmp_path))
    tv = window.metrics_view.training
    assert tv.path_label.text() == str(tmp_path)
    assert len(tv.loss_plot.getPlotItem().listDataItems()[0].getData()[0]) == 8
    assert _scatter_points(tv) == 4
