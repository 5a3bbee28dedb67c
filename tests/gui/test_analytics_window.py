"""The metrics tab's analytics in the window: failure classes and origins as clickable tables that
filter the sample list, the ablation plot, two existing runs compared side by side without a
write, and the sample list ordered by doubt."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from PySide6 import QtCore

from core.store import repo
from core.trace import Candidate, EvaluatorTrace, PipelineTrace


def _trace(question, hw, cands, scores) -> PipelineTrace:
    from core.evaluator.grouping import rerank

    cs = [Candidate(i, o, i, m, 0.9 - 0.1 * i) for i, (o, m) in enumerate(cands)]
    ev = EvaluatorTrace("hand", "hand", False, 5, 0, False, [], scores, rerank(scores))
    return PipelineTrace(
        question, hw, "test", {}, False, {}, None, np.zeros(hw, bool), None, None, None, cs, ev
    )


@pytest.fixture
def two_runs(window, demo_store):
    """Run A over samples 1–4: 1 and 2 pick their exact mask (semantic), 3 picks an empty-ish
    wrong mask while its ground truth is an AMG candidate (mis-ranked), 4 has only wrong masks
    (generator missed). Run B over samples 1–3: always the wrong mask first."""

    def make(s):
        ra = repo.create_run(s, name="A", preset="test", config={}, model_ids={}, is_random=False)
        rb = repo.create_run(s, name="B", preset="test", config={}, model_ids={}, is_random=False)
        for sid in (1, 2, 3, 4):
            smp, gt = repo.get_sample(s, sid), repo.gt_mask(s, sid)
            wrong = np.zeros_like(gt)
            wrong[:2, :2] = True
            good = gt if sid != 4 else wrong
            first_good = sid in (1, 2)
            cands = (
                [("semantic", good), ("multimask", wrong)]
                if sid != 3
                else [
                    ("multimask", wrong),
                    ("amg", gt),
                ]
            )
            scores = {0: 0.9, 1: 0.1}
            repo.save_trace(s, ra, sid, _trace(smp.question, gt.shape, cands, scores))
            if sid != 4:
                b = [("multimask", wrong), ("semantic", gt)]
                repo.save_trace(s, rb, sid, _trace(smp.question, gt.shape, b, scores))
            assert first_good or sid in (3, 4)
        return ra, rb

    ra, rb = demo_store.run(make)
    window.refresh_runs()
    return ra, rb


def _rows(st) -> dict[str, int]:
    with st.engine.connect() as c:
        names = sa.inspect(c).get_table_names()
        return {n: c.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar() for n in names}


def _pick(combo, data) -> None:
    combo.setCurrentIndex(combo.findData(data))


def _compute(qtbot, window, run_id):
    mv = window.metrics_view
    window.tabs.setCurrentWidget(mv)
    _pick(mv.run_combo, run_id)
    with qtbot.waitSignal(window.runs.metrics_ready, timeout=30_000):
        mv.compute_button.click()
    return mv


def test_failure_counts_filter_the_sample_list(qtbot, window, two_runs):
    ra, _ = two_runs
    mv = _compute(qtbot, window, ra)
    av = mv.analytics
    t = av.classes
    heads = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]
    cats = [t.verticalHeaderItem(r).text() for r in range(t.rowCount())]
    assert heads == ["generator missed", "evaluator mis-ranked", "fine"] and cats[-1] == "overall"
    overall = cats.index("overall")
    assert [t.item(overall, c).text() for c in range(3)] == ["1", "1", "2"]
    origins = av.origins
    oh = [origins.horizontalHeaderItem(c).text() for c in range(origins.columnCount())]
    assert origins.item(overall, oh.index("amg")).text() == "1"
    top1, oracle = av.ablation_plot.listDataItems()  # bars: all, w/o multimask, semantic, amg
    assert top1.opts["height"][0] == pytest.approx(0.5, abs=1e-4)
    assert oracle.opts["height"][0] == pytest.approx(0.75, abs=1e-4)
    assert oracle.opts["height"][3] == pytest.approx(0.5, abs=1e-4)  # w/o amg: sample 3 lost
    samples = window.samples_panel
    assert samples.row_count() == 40
    with qtbot.waitSignal(samples.filters_changed, timeout=2000):
        t.cellClicked.emit(overall, 2)  # "fine"
    assert samples.ids() == [1, 2] and samples.only_label.bar.isVisibleTo(samples)
    t.cellClicked.emit(overall, 1)
    assert samples.ids() == [3]
    samples.only_clear.click()
    assert samples.row_count() == 40 and not samples.only_label.bar.isVisibleTo(samples)


def test_compare_two_runs_writes_nothing_and_shows_both_traces(qtbot, window, demo_store, two_runs):
    ra, rb = two_runs
    mv = _compute(qtbot, window, ra)
    _pick(mv.analytics.other_combo, rb)
    before = _rows(demo_store)
    with qtbot.waitSignal(window.analytics.compared, timeout=30_000) as sig:
        mv.analytics.compare_button.click()
    res = sig.args[0]
    assert res["shared"] == 3 and res["only_a"] == 1
    dlg = window.run_compare_dialog
    qtbot.waitUntil(lambda: dlg.sample_id is not None, timeout=5000)
    qtbot.waitUntil(lambda: dlg.candidates[1].rowCount() > 0, timeout=10_000)
    assert _rows(demo_store) == before
    assert dlg.samples.rowCount() == 3
    # the most changed first: samples 1 and 2 went from IoU 1 (A) to 0 (B)
    assert dlg.samples.item(0, 2).text() == "+1.000"
    t = dlg.table
    cats = [t.verticalHeaderItem(r).text() for r in range(t.rowCount())]
    assert cats[-1] == "overall" and "[" in t.item(len(cats) - 1, 2).text()
    for table in dlg.candidates:
        picks = [table.item(r, 6).text() for r in range(table.rowCount())]
        assert picks.count("★") == 1
    assert all(c.trace is not None for c in dlg.canvases)
    dlg.close()


def test_order_by_doubt(qtbot, window, two_runs):
    ra, rb = two_runs
    mv = _compute(qtbot, window, ra)
    av = mv.analytics
    samples = window.samples_panel
    _pick(av.doubt_combo, "gt")
    with qtbot.waitSignal(
        window.jobs.busy_changed, timeout=30_000, check_params_cb=lambda b, *_: not b
    ):
        av.doubt_button.click()
    ids = samples.ids()
    assert ids[:2] == [3, 4] and set(ids[2:4]) == {1, 2}  # 1 − IoU: 1, 1, 0, 0 then no value
    assert samples.model.columnCount() == 5 and samples.cell_text(0, 4) == "1.000"
    assert samples.cell_text(10, 4) == "—"
    _pick(av.other_combo, rb)
    _pick(av.doubt_combo, "runs")
    with qtbot.waitSignal(
        window.jobs.busy_changed, timeout=30_000, check_params_cb=lambda b, *_: not b
    ):
        av.doubt_button.click()
    assert samples.ids()[:2] == [1, 2] and samples.cell_text(2, 4) == "0.000"
    samples.doubt_clear.click()
    assert samples.model.columnCount() == 4 and samples.ids()[:3] == [1, 2, 3]
    assert (
        QtCore.Qt.SortOrder.AscendingOrder == samples.table.horizontalHeader().sortIndicatorOrder()
    )


def test_another_store_drops_the_filter_and_the_doubt_order(qtbot, window, two_runs, tmp_path):
    from core.demo import ensure_demo_store

    samples = window.samples_panel
    samples.show_only([1, 2], "fine (overall, run 1)")
    samples.set_doubt({3: 1.0}, "test")
    assert samples.ids()[0] == 1 and samples.row_count() == 2
    assert window.open_store(str(ensure_demo_store(tmp_path / "other.sqlite")))
    assert samples.only_ids() is None and samples.model.columnCount() == 4
    assert samples.row_count() == 40 and not samples.only_label.bar.isVisibleTo(samples)
