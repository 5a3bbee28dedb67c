"""A run from the Run tab says in the panel which model it is building, not only on stderr."""

from __future__ import annotations

import pytest

from rea2seg_gui.models import tiny_lisa_preset


@pytest.mark.slow  # builds the tiny random models
def test_model_building_shows_in_the_run_panel(qtbot, window):
    panel = window.run_panel
    window.samples_panel.select_row(0)
    panel.set_preset(tiny_lisa_preset())
    panel.set_evaluator("tiny-random")
    shown: list[tuple[str, int]] = []  # the panel's label and bar as each progress arrives
    window.jobs.progress.connect(
        lambda *_: shown.append((panel.progress_label.text(), panel.progress.maximum()))
    )
    with qtbot.waitSignal(window.run_finished, timeout=180_000):
        panel.start_button.click()
    labels = [label for label, _ in shown]
    seg = "building models 1/2: segmenter tiny-random-lisa…"
    ev = "building models 2/2: evaluator tiny-random…"
    assert labels[:3] == [seg, ev, "models ready"], labels
    assert [m for _, m in shown[:2]] == [0, 0]  # a busy bar while models load
    assert panel.progress.maximum() > 0 and panel.progress_label.text() != seg
