"""The run pickers of the Candidates and Metrics tabs keep their width whatever a run is called
(a long run title used to widen the inspector dock and squeeze the canvas)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("which", ["candidates", "metrics"])
def test_a_long_run_title_does_not_widen_the_panel(qtbot, which):
    from rea2seg_gui.panels.candidates import CandidatesPanel
    from rea2seg_gui.panels.metrics import MetricsView

    panel = CandidatesPanel() if which == "candidates" else MetricsView()
    qtbot.addWidget(panel)
    panel.run_combo.addItem("#1 short", 1)
    narrow = panel.sizeHint().width()
    title = "#2 " + "mini-geometric + mini-geometric 2026-12-06 17:00 " * 6
    panel.run_combo.addItem(title, 2)
    panel.run_combo.setCurrentIndex(1)
    assert panel.sizeHint().width() == narrow
    assert panel.run_combo.toolTip() == title  # the whole name, where the box cuts it
    # the plain combo box it replaces would have grown with the title
    from PySide6 import QtWidgets

    plain = QtWidgets.QComboBox()
    qtbot.addWidget(plain)
    plain.addItem(title)
    assert plain.sizeHint().width() > narrow
