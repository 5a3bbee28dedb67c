"""The generated-question panel (widget alone) and its hook in the main window."""

from __future__ import annotations

import datetime as dt
import json

import cv2
import numpy as np
import pytest

from core.benchmark.provenance import GenerationView
from rea2seg_gui.panels.questions import QuestionsPanel


def _view(**kw) -> GenerationView:
    base = dict(
        id=1,
        sample_id=5,
        target_id=2,
        split="spatial",
        verdict="rejected",
        reasons="ambiguous=1; Two cups.",
        question="the cup by the plate",
        generator_model="gen-m",
        generator_raw=json.dumps({"phrase": "the cup by the plate", "relation": "by"}),
        generator_parsed=None,
        verifier_model="ver-m",
        verifier_raw='{"ambiguous": 1, "question": "NA"}',
        verifier_parsed=None,
        prompt_versions={"generator": "spatial_generator@v1 (Figure S3)"},
        endpoint="http://127.0.0.1:1/v1",
        usage={"generator": {"total_tokens": 132, "seconds": 0.4}},
        requested_by="",
        created_at=dt.datetime(2026, 12, 5, 12, 0),
        count=1,
    )
    base.update(kw)
    return GenerationView(**base)


def test_panel_shows_answers_beside_the_question_and_emits(qtbot):
    panel = QuestionsPanel()
    qtbot.addWidget(panel)
    assert not panel.accept_button.isEnabled() and not panel.regenerate_button.isEnabled()
    panel.show_sample(5, "the cup by the plate", "rejected", _view())
    assert panel.verdict_label.text() == "verifier: rejected"
    assert (
        panel.generator_box.title() == "Generator — gen-m"
        and panel.verifier_box.title() == "Verifier — ver-m"
    )
    assert '"phrase": "the cup by the plate"' in panel.generator_text.toPlainText()
    assert "ambiguous=1; Two cups." in panel.reasons_label.text()
    assert (
        "spatial_generator@v1 (Figure S3)" in panel.info_label.text()
        and "132 tokens" in panel.info_label.text()
    )
    for button, signal, args in (
        (panel.accept_button, panel.accept_requested, [5]),
        (panel.reject_button, panel.reject_requested, [5]),
        (panel.regenerate_button, panel.regenerate_requested, [5]),
    ):
        with qtbot.waitSignal(signal, timeout=2000) as blocker:
            button.click()
        assert blocker.args == args
    panel.question_edit.setPlainText("  Which cup is by the plate?  ")
    with qtbot.waitSignal(panel.edit_requested, timeout=2000) as blocker:
        panel.edit_button.click()
    assert blocker.args == [5, "Which cup is by the plate?"]
    panel.set_busy(True)
    assert not panel.regenerate_button.isEnabled() and not panel.accept_button.isEnabled()
    panel.show_sample(
        6, "Imported question?", "pending", None
    )  # not generated: nothing to re-generate
    assert panel.verdict_label.text() == "not generated" and not panel.regenerate_button.isEnabled()
    assert panel.accept_button.isEnabled() and panel.generator_text.toPlainText() == ""


@pytest.fixture
def generated_store(tmp_path):
    from core.benchmark.generate import generate_questions
    from core.importers.coco import import_coco
    from core.llm_client import ChatClient
    from core.store import open_store
    from tests.unit.llm_server import ChatServer, Reply
    from tests.unit.test_benchmark_build import ACCEPT, PHRASE, REJECT

    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((40, 60, 3), 128, np.uint8))
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "cup"}],
        "annotations": [
            {
                "id": i,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[x, 5, x + 10, 5, x + 10, 15, x, 15]],
            }
            for i, x in ((1, 2), (2, 20), (3, 40))
        ],
    }
    (tmp_path / "c.json").write_text(json.dumps(data))
    st = open_store(tmp_path / "s.sqlite")
    import_coco(st, tmp_path / "c.json", tmp_path / "img")
    answers = {"verifier": [ACCEPT, REJECT, ACCEPT]}

    def script(req):
        if req.role == "generator":
            return PHRASE
        q = answers["verifier"]
        return q.pop(0) if q else Reply(ACCEPT.content)

    server = ChatServer(script)
    generate_questions(
        st, "spatial", ChatClient(server.url, "g", concurrency=1), ChatClient(server.url, "v")
    )
    yield st, server
    server.close()
    st.close()


def test_window_filters_by_verdict_and_reviews_generated_questions(
    qtbot, generated_store, settings
):
    from core.store import repo, review
    from rea2seg_gui.main_window import MainWindow

    st, _server = generated_store
    w = MainWindow(st, user="ann", settings=settings)
    qtbot.addWidget(w)
    w.show()
    assert w.questions_dock.isVisible()  # a store with generated questions shows their dock
    assert w.samples_panel.row_count() == 3
    w.samples_panel.category_filter.setCurrentText("spatial")
    w.samples_panel.verdict_filter.setCurrentText("rejected")
    assert w.samples_panel.row_count() == 1
    w.samples_panel.select_row(0)
    sid = w.samples_panel.id_at(0)
    assert (
        w.state.sample_id == sid and w.questions_panel.verdict_label.text() == "verifier: rejected"
    )
    assert w.questions_panel.verifier_box.title() == "Verifier — v"
    w.samples_panel.verdict_filter.setCurrentText("accepted")
    assert w.samples_panel.row_count() == 2
    w.samples_panel.verdict_filter.setCurrentText("rejected")
    w.samples_panel.select_row(0)
    # re-generation in a worker: the verifier now accepts; recorded as ann's change
    w.questions_panel.regenerate_button.click()
    from core.benchmark.provenance import latest_generation

    qtbot.waitUntil(
        lambda: not w.jobs.busy and latest_generation(st, sid).count == 2, timeout=10_000
    )
    # accepted now, the sample left the "rejected" list: nothing is shown (never a sample
    # other than the highlighted row)
    assert w.samples_panel.row_count() == 0 and w.state.sample_id is None
    assert st.run(lambda s: repo.get_sample(s, sid).status, write=False) == "pending"
    assert any(h.user == "ann" and h.field == "question" for h in review.history(st, sid))
    w.samples_panel.verdict_filter.setCurrentText("all verdicts")
    w.samples_panel.select(sid)
    w.questions_panel.accept_button.click()
    assert st.run(lambda s: repo.get_sample(s, sid).status, write=False) == "verified"
    w.samples_panel.select(sid)  # accepting moved on to the next sample
    w.questions_panel.question_edit.setPlainText("Which cup is nearest the plate?")
    w.questions_panel.edit_button.click()
    assert (
        st.run(lambda s: repo.get_sample(s, sid).question, write=False)
        == "Which cup is nearest the plate?"
    )
    w.close()
