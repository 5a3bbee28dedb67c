"""The training-reasoning panel (widget alone) and its review loop in the main window."""

from __future__ import annotations

import datetime as dt

import pytest

from core.evaldata.provenance import AnnotationView
from rea2seg_gui.panels.reasoning import ReasoningPanel


def _view(**kw) -> AnnotationView:
    base = dict(
        id=1, builder="gqa", item_key="vqa:1", sample_id=5, verdict="accepted", stage="annotator",
        reasons="The box marks the only cup.", question="What is on the table?", answer="cup",
        reasoning="A table. The cup.",
        prompt_versions={"annotator": "gqa_annotator@v1 (Figure S8)"},
        endpoint="http://127.0.0.1:1/v1",
        calls=[{"role": "annotator", "model": "gpt-5-mini", "system": "gqa_annotator@v1",
                "user": "Grounding question: What is on the table?", "raw": "FinalDecision: Keep"}],
        details={}, usage={"annotator": {"total_tokens": 980}}, seconds=1.5, error=None,
        requested_by="", created_at=dt.datetime(2026, 12, 6, 12, 0),
    )  # fmt: skip
    base.update(kw)
    return AnnotationView(**base)


def test_panel_shows_the_reasoning_beside_the_model_answers_and_emits(qtbot):
    panel = ReasoningPanel()
    qtbot.addWidget(panel)
    assert not panel.accept_button.isEnabled() and not panel.edit_button.isEnabled()
    panel.show_sample(5, "A table. The cup.", "pending", "reasoning:gqa:gpt-5-mini", [_view()])
    assert panel.status_label.text() == "reasoning: pending"
    assert "gqa_annotator@v1 (Figure S8)" in panel.info_label.text()
    assert "980 tokens" in panel.info_label.text() and "gpt-5-mini" in panel.info_label.text()
    assert "FinalDecision: Keep" in panel.calls_text.toPlainText()
    assert "accepted at annotator" in panel.reasons_label.text()
    for button, signal in ((panel.accept_button, panel.accept_requested),
                           (panel.reject_button, panel.reject_requested)):  # fmt: skip
        with qtbot.waitSignal(signal, timeout=2000) as blocker:
            button.click()
        assert blocker.args == [5]
    panel.reasoning_edit.setPlainText("  Better.  ")
    with qtbot.waitSignal(panel.edit_requested, timeout=2000) as blocker:
        panel.edit_button.click()
    assert blocker.args == [5, "Better."]
    panel.show_sample(6, None, None, None, [])
    assert panel.status_label.text() == "reasoning: no reasoning"
    assert not panel.accept_button.isEnabled() and panel.calls_text.toPlainText() == ""


@pytest.fixture
def annotated_store(filled_sqlite):
    from core.evaldata.build import annotate
    from core.llm_client import ChatClient
    from tests.unit.llm_server import ChatServer, Reply

    def script(req):
        if "Which cube?" in req.text:
            return Reply('{"valid": false}')
        return Reply('{"valid": true, "answer": "The scene shows shapes. It is this one."}')

    server = ChatServer(script)
    try:
        annotate(filled_sqlite, "answer", ChatClient(server.url, "m", max_retries=0))
    finally:
        server.close()
    return filled_sqlite


@pytest.fixture
def filled_sqlite(tmp_path):
    from core.formats.sgdr import SgdrSample, write_sgdr
    from core.importers.sgdr import import_sgdr
    from core.masks import encode_rle
    from core.store import open_store
    from tests.unit.conftest import box_mask, make_image

    (tmp_path / "img").mkdir()
    make_image(tmp_path / "img" / "a.png", (40, 60), 0)
    samples = [
        SgdrSample(f"a{i}", "img/a.png", q, "spatial", "t", "pending", encode_rle(m))
        for i, (q, m) in enumerate(
            [
                ("Which cube?", box_mask((40, 60), 5, 15, 5, 25)),
                ("Left one?", box_mask((40, 60), 20, 30, 30, 50)),
                ("Right one?", box_mask((40, 60), 20, 30, 0, 10)),
                ("Nothing?", box_mask((40, 60), 0, 0, 0, 0)),
            ]
        )
    ]
    write_sgdr(tmp_path / "p.json", samples)
    st = open_store(tmp_path / "store.sqlite")
    assert import_sgdr(st, tmp_path / "p.json").ok
    yield st
    st.close()


def test_window_reviews_the_reasoning_with_filter_and_history(qtbot, annotated_store, settings):
    from core.store import repo, review
    from rea2seg_gui.main_window import MainWindow

    st = annotated_store
    w = MainWindow(st, user="ann", settings=settings)
    qtbot.addWidget(w)
    w.show()
    assert w.reasoning_dock.isVisible()  # a store with reasoning annotations shows the dock
    sp = w.samples_panel
    sp.verdict_filter.setCurrentText("reasoning: rejected")
    assert sp.row_count() == 1  # "Which cube?": the annotator found the box wrong
    sp.verdict_filter.setCurrentText("reasoning: accepted")
    assert sp.row_count() == 2  # the empty-mask sample was skipped, so it has no annotation
    sp.select_row(0)
    sid = sp.id_at(0)
    rp = w.reasoning_panel
    assert rp.reasoning == "The scene shows shapes. It is this one."
    assert rp.status_label.text() == "reasoning: pending"
    rp.accept_button.click()
    assert st.run(lambda s: repo.get_sample(s, sid).reasoning_status, write=False) == "verified"
    assert st.run(lambda s: repo.get_sample(s, sid).status, write=False) == "pending"  # kept
    sp.verdict_filter.setCurrentText("reasoning: reviewed")
    assert sp.row_count() == 1
    sp.select_row(0)
    rp.reasoning_edit.setPlainText("A clearer reasoning.")
    rp.edit_button.click()
    assert (
        st.run(lambda s: repo.get_sample(s, sid).reasoning, write=False) == "A clearer reasoning."
    )
    fields = [h.field for h in review.history(st, sid)]
    assert fields[-2:] == ["reasoning_status", "reasoning"]
    rows = [w.review_panel.history_row(i) for i in range(w.review_panel.history_count())]
    assert rows[0][2] == "reasoning" and rows[0][3].endswith("→ A clearer reasoning.")
    # re-annotation in a worker, against the endpoint the annotation recorded
    from core.evaldata.reannotate import reannotate  # noqa: F401 - what the button runs
    from tests.unit.llm_server import ChatServer, Reply

    srv = ChatServer(lambda req: Reply('{"valid": true, "answer": "Asked again."}'))
    try:
        with st.session() as s:
            from core.store.models import ReasoningAnnotation

            for r in s.query(ReasoningAnnotation):
                r.endpoint = srv.url
        assert rp.reannotate_button.isEnabled()
        rp.reannotate_button.click()
        qtbot.waitUntil(lambda: not w.jobs.busy and rp.reasoning == "Asked again.", timeout=10_000)
    finally:
        srv.close()
    assert st.run(lambda s: repo.get_sample(s, sid).reasoning, write=False) == "Asked again."
    assert "annotation 2 of" in rp.info_label.text()
    w.close()
