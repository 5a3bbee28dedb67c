"""The question checks in the generated-question dock: the panel alone, and the window showing
a checked sample's verdicts."""

from __future__ import annotations

import datetime as dt

from core.benchmark.checks import CheckView
from rea2seg_gui.panels.questions import QuestionsPanel


def _check(check: str, verdict: str, **details) -> CheckView:
    return CheckView(
        check=check,
        verdict=verdict,
        question="the cup by the plate",
        current=True,
        details=details,
        model="checker-m",
        endpoint="http://127.0.0.1:1/v1",
        prompt_versions={"system": f"question_{check}_check@v1"},
        raw='{"boxes": [1, 2]}',
        usage={},
        error=None,
        created_at=dt.datetime(2026, 12, 6, 19, 0),
    )


def test_panel_shows_check_verdicts_and_flags_bad_ones(qtbot):
    panel = QuestionsPanel()
    qtbot.addWidget(panel)
    panel.show_sample(5, "the cup by the plate", "pending", None)
    assert panel.checks_label.text() == "question checks: none"
    panel.show_checks(
        {
            "unique": _check("unique", "unique", boxes=[], picked=[2], target=2),
            "blind": _check("blind", "needs_image", named=None),
        }
    )
    assert panel.checks_label.text() == (
        "blind check: needs_image (named NA)\nuniqueness check: unique (boxes 2; target 2)"
    )
    assert panel.checks_label.styleSheet() == ""
    assert "checker-m" in panel.checks_label.toolTip()
    stale = _check("unique", "ambiguous", picked=[1, 2], target=1)
    stale = CheckView(**{**stale.__dict__, "current": False})
    panel.show_checks({"unique": stale})
    assert panel.checks_label.text() == (
        "uniqueness check: ambiguous (boxes 1, 2; target 1) — checked an earlier wording"
    )
    assert "b3261e" in panel.checks_label.styleSheet()
    panel.show_sample(6, "another", "pending", None)  # a new sample clears the old checks
    assert panel.checks_label.text() == "question checks: none"


def test_window_dock_shows_the_selected_samples_checks(qtbot, tmp_path, settings):
    from core.benchmark.checks import check_questions, latest_checks
    from core.llm_client import ChatClient
    from rea2seg_gui.main_window import MainWindow
    from tests.unit.llm_server import ChatServer, Reply
    from tests.unit.test_question_checks import build_store

    st = build_store(tmp_path)
    server = ChatServer(
        lambda req: (
            Reply('{"category": "cup"}')
            if "NOT shown the image" in req.system
            else Reply('{"boxes": [1, 3]}')
        )
    )
    try:
        check_questions(st, ["blind", "unique"], ChatClient(server.url, "chk", concurrency=1))
    finally:
        server.close()
    w = MainWindow(st, user="ann", settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.samples_panel.select_row(0)
    sid = w.samples_panel.id_at(0)
    assert w.state.sample_id == sid and set(latest_checks(st, sid)) == {"blind", "unique"}
    text = w.questions_panel.checks_label.text()
    assert text.startswith("blind check: shortcut (named cup)\nuniqueness check: ambiguous")
    assert "boxes 1, 3" in text and "chk" in w.questions_panel.checks_label.toolTip()
    w.close()
    st.close()
