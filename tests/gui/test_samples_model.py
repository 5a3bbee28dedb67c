"""The sample table model: row lookup, filters, sorting and one-row updates agree with a list
rebuilt from scratch; and the app at 20,000 samples (slow)."""

from __future__ import annotations

import random
import time

import pytest
from PySide6 import QtCore

from core.store import open_store, review
from core.store.listing import SampleRow
from core.store.models import CATEGORIES, STATUSES
from rea2seg_gui.panels.samples import SampleTableModel
from tests.big_store import fill_store

ASC, DESC = QtCore.Qt.SortOrder.AscendingOrder, QtCore.Qt.SortOrder.DescendingOrder


def _rows(n: int, rng: random.Random) -> dict[int, SampleRow]:
    return {
        i: SampleRow(
            i, f"ext{i}", rng.choice(CATEGORIES), rng.choice(STATUSES), f"q {rng.random()}"
        )
        for i in range(1, n + 1)
    }


def _expected(rows, column, descending, status=None, text=None):
    keep = [
        r
        for r in rows.values()
        if (status is None or r.status == status) and (text is None or text in r.question)
    ]
    keep.sort(key=lambda r: (r[column + 1], r.id) if column else r.id, reverse=descending)
    return [r.id for r in keep]


def _check(model: SampleTableModel, want: list[int]) -> None:
    assert model.ids() == want and model.rowCount() == len(want)
    for r, sid in enumerate(want):
        assert model.row_of(sid) == r and model.id_at(r) == sid


@pytest.mark.parametrize(("column", "order"), [(0, ASC), (2, ASC), (3, DESC), (0, DESC)])
def test_updates_keep_the_rows_a_rebuild_would_show(qtmodeltester, column, order):
    rng = random.Random(column * 10 + int(order == DESC))
    rows = _rows(300, rng)
    model = SampleTableModel()
    model.sort(column, order)
    model.set_filter(status="pending", text="q 0.")
    model.reset(rows)
    _check(model, _expected(rows, column, order == DESC, "pending", "q 0."))
    for step in range(200):
        batch = set()
        for _ in range(1 if step % 2 else rng.randint(2, 12)):  # one row, or several at once
            sid = rng.randint(1, len(rows) + 3)
            if sid > len(rows):  # a new sample
                sid = len(rows) + 1
            rows[sid] = SampleRow(
                sid, f"ext{sid}", rng.choice(CATEGORIES), rng.choice(STATUSES), f"q {rng.random()}"
            )
            batch.add(sid)
        model.update(sorted(batch))
        if step % 10 == 0:
            _check(model, _expected(rows, column, order == DESC, "pending", "q 0."))
    _check(model, _expected(rows, column, order == DESC, "pending", "q 0."))
    qtmodeltester.check(model)
    model.sort(1, ASC)
    _check(model, _expected(rows, 1, False, "pending", "q 0."))
    model.update([], removed=[model.id_at(0)])
    assert model.rowCount() == len(_expected(rows, 1, False, "pending", "q 0.")) - 1


def test_cells_tooltips_and_headers():
    rows = {7: SampleRow(7, "SGDR-7", "spatial", "flagged", "Which cup is left?")}
    model = SampleTableModel()
    model.reset(rows)
    idx = [model.index(0, c) for c in range(4)]
    assert [model.data(i) for i in idx] == [7, "spatial", "flagged", "Which cup is left?"]
    tip = QtCore.Qt.ItemDataRole.ToolTipRole
    assert model.data(idx[0], tip) == "SGDR-7" and model.data(idx[3], tip) == "Which cup is left?"
    assert [model.headerData(c, QtCore.Qt.Orientation.Horizontal) for c in range(4)] == [
        "id",
        "category",
        "status",
        "question",
    ]


def test_sorting_by_a_header_keeps_the_shown_sample_selected(qtbot, window):
    p = window.samples_panel
    p.select(5)
    p.table.sortByColumn(0, DESC)
    assert p.id_at(0) == 40 and p.selected_ids() == [5] and window.state.sample_id == 5
    p.table.sortByColumn(3, ASC)
    assert p.selected_ids() == [5]
    qs = [p.cell_text(r, 3) for r in range(p.row_count())]
    assert qs == sorted(qs)


@pytest.mark.slow
def test_the_app_at_20000_samples_survives_200_decisions_and_refreshes(
    qtbot, tmp_path, settings, reasons
):
    from rea2seg_gui.main_window import MainWindow

    st = open_store(tmp_path / "big.sqlite")
    ids = fill_store(st, tmp_path / "img", 20_000)
    other = open_store(st.url)  # a second annotator on the same store
    t = time.perf_counter()
    w = MainWindow(st, user="tester", settings=settings)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    opened = time.perf_counter() - t
    p = w.samples_panel
    try:
        assert p.row_count() == 20_000 and w.state.sample_id == ids[0]
        decided: dict[int, str] = {}
        keys = (QtCore.Qt.Key.Key_A, QtCore.Qt.Key.Key_R, QtCore.Qt.Key.Key_F)
        status = dict(zip(keys, ("verified", "rejected", "flagged"), strict=True))
        for i in range(100):
            sid = w.state.sample_id
            key = keys[i % 3]
            qtbot.keyClick(w, key)
            decided[sid] = status[key]
            assert w.state.sample_id == p.neighbour(sid, 1) != sid
            theirs = ids[-1 - i]
            review.decide(other, theirs, "flag", user="other", note="elsewhere")
            decided[theirs] = "flagged"
            qtbot.keyClick(w, QtCore.Qt.Key.Key_F5)
            assert p.cell_text(p.row_of(theirs), 2) == "flagged"
        assert p.row_count() == 20_000 and p.ids() == ids
        for sid, st_ in decided.items():
            assert p.cell_text(p.row_of(sid), 2) == st_
        assert f"flagged {list(decided.values()).count('flagged')}" in p.counts_label.text()
        p.status_filter.setCurrentText("pending")
        assert p.row_count() == 20_000 - len(decided)
        qtbot.keyClick(w, QtCore.Qt.Key.Key_A)  # the accepted row leaves the pending list
        assert p.row_count() == 20_000 - len(decided) - 1
        assert opened < 30  # generous: the figure that matters is the bench's
    finally:
        w.close()
        other.close()
        st.close()
