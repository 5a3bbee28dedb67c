"""The review loop's traps: what is highlighted is what is shown and acted on, keys land where
the user thinks they do, and nothing that cannot be seen changes without a word."""

from __future__ import annotations

from PySide6 import QtCore

from core.store import repo, review


def _status(store, sid):
    return store.run(lambda s: repo.get_sample(s, sid).status, write=False)


def _coherent(window) -> None:
    """The highlighted row is the shown sample, or nothing is highlighted and nothing shown."""
    shown, selected = window.state.sample_id, window.samples_panel.selected_ids()
    if shown is None:
        assert selected == []
    else:
        assert selected == [shown]
        assert window.review_panel.question_edit.text() == window.samples_panel.cell_text(
            window.samples_panel.row_of(shown), 3
        )


# ------------------------------------------------------------------ what you see is what you act on
def test_a_filter_that_hides_the_shown_sample_moves_the_highlight_and_the_view_together(
    qtbot, window, demo_store
):
    window.samples_panel.select(3)
    assert window.state.sample_id == 3
    question = window.samples_panel.cell_text(window.samples_panel.row_of(7), 3)
    window.samples_panel.text_filter.setText(question)  # sample 3 no longer passes
    assert window.samples_panel.row_of(3) is None
    _coherent(window)
    assert window.state.sample_id != 3
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 3) == "pending"  # never the hidden one


def test_a_filter_that_hides_everything_shows_nothing_and_accepts_nothing(
    qtbot, window, demo_store
):
    window.samples_panel.text_filter.setText("no question says this")
    assert window.samples_panel.row_count() == 0
    _coherent(window)
    assert window.state.sample_id is None and window.state.image is None
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert [_status(demo_store, i) for i in (1, 2)] == ["pending", "pending"]
    window.samples_panel.text_filter.setText("")
    _coherent(window)
    assert window.state.sample_id == 1


def test_a_change_elsewhere_that_moves_the_shown_sample_out_of_the_list(qtbot, window, demo_store):
    window.samples_panel.status_filter.setCurrentText("pending")
    window.samples_panel.select(5)
    review.decide(
        demo_store, 5, "reject", user="someone else", note="elsewhere"
    )  # e.g. re-generated
    window.review.refresh()
    assert window.samples_panel.row_of(5) is None
    _coherent(window)
    assert window.state.sample_id == 6  # its neighbour took its row
