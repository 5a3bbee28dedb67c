"""The benchmark loop in the app (Benchmark menu): Import COCO in the worker with progress and
cancel, questions generated and verified over a loopback OpenAI-compatible server, and the
agreement between annotators as tables."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.cli import main


def _coco(tmp_path, images: int = 1):
    (tmp_path / "img").mkdir(exist_ok=True)
    data: dict = {"images": [], "categories": [{"id": 1, "name": "cup"}], "annotations": []}
    for k in range(1, images + 1):
        cv2.imwrite(str(tmp_path / "img" / f"a{k}.png"), np.full((40, 60, 3), 128, np.uint8))
        data["images"].append({"id": k, "file_name": f"a{k}.png", "height": 40, "width": 60})
        for i, x in enumerate((2, 20, 40)):
            data["annotations"].append(
                {
                    "id": 10 * k + i,
                    "image_id": k,
                    "category_id": 1,
                    "segmentation": [[x, 5, x + 10, 5, x + 10, 15, x, 15]],
                }
            )
    path = tmp_path / "cups.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def empty(qtbot, tmp_path, settings):
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow

    st = open_store(tmp_path / "bench.sqlite")
    w = MainWindow(st, user="ann", settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def _targets(store) -> int:
    from sqlalchemy import func, select

    from core.store.models import Target

    return store.run(lambda s: s.scalar(select(func.count()).select_from(Target)), write=False)


def test_import_coco_dialog_runs_the_cli_import_in_the_worker(qtbot, empty, tmp_path):
    ann = _coco(tmp_path, images=2)
    menu = next(
        a.menu() for a in empty.menuBar().actions() if a.text() == "&Benchmark" and a.menu()
    )
    assert [a.text() for a in menu.actions() if a.text()][:2] == [
        "Import &COCO instances…",
        "&Generate questions…",
    ]
    empty.benchmark_actions.actions["import_coco"].trigger()
    dlg = empty.benchmark_actions.dialog
    assert dlg.isVisible() and dlg.windowTitle() == "Import COCO instances"
    dlg.ok_button.click()  # nothing chosen: said in the dialog, which stays open
    assert dlg.isVisible() and dlg.problem_label.text() == "Choose the COCO instances file."
    dlg.file_edit.setText(str(ann))
    dlg.images_edit.setText(str(tmp_path / "img"))
    dlg.dataset_edit.setText("cups")
    assert dlg.command() == (
        f"rea2seg import coco {ann} --images {tmp_path / 'img'} --db {empty.store.url} "
        "--dataset cups"
    )
    seen: list[tuple[int, int, str]] = []
    empty.jobs.progress.connect(lambda d, t, label: seen.append((d, t, label)))
    with qtbot.waitSignal(empty.benchmark_actions.finished, timeout=30_000) as got:
        dlg.ok_button.click()
    kind, report = got.args
    assert kind == "import" and (report.added, report.skipped) == (6, 0)
    assert seen[0] == (0, 2, "start") and seen[-1] == (2, 2, "a2.png")
    assert empty.run_panel.progress.value() == 2  # progress shown in the Run tab
    assert "targets added 6" in empty.benchmark_actions.report_box.text()
    assert "Generate questions" in empty.benchmark_actions.report_box.text()  # what comes next
    # the same as the command line: importing again through it adds nothing
    assert main(dlg.command().split()[1:]) == 0 and _targets(empty.store) == 6


def test_import_coco_keeps_the_gui_responsive_and_can_be_cancelled(
    qtbot, empty, tmp_path, monkeypatch
):
    import core.importers.coco as coco

    ann = _coco(tmp_path, images=3)
    started, gate = threading.Event(), threading.Event()
    real = coco._import_image

    def held(*a, **k):
        started.set()
        assert gate.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(coco, "_import_image", held)
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    cancel = empty.benchmark_actions.actions["cancel"]
    with qtbot.waitSignal(empty.benchmark_actions.finished, timeout=30_000) as got:
        assert empty.benchmark_actions.run_import(str(ann), str(tmp_path / "img"))
        assert started.wait(20) and empty.jobs.busy and cancel.isEnabled()
        qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=5000)  # the event loop runs meanwhile
        cancel.trigger()
        gate.set()
    timer.stop()
    report = got.args[1]
    assert report.cancelled and report.added == 3  # the image in progress finished, no more
    assert "cancelled" in empty.benchmark_actions.report_box.text() and not cancel.isEnabled()


def test_generate_questions_with_the_verifier_from_the_app(qtbot, empty, tmp_path, settings):
    from core.importers.coco import import_coco
    from tests.unit.llm_server import ChatServer, Reply
    from tests.unit.test_benchmark_build import ACCEPT, PHRASE, REJECT

    import_coco(empty.store, _coco(tmp_path), tmp_path / "img", dataset="cups")
    verdicts = [ACCEPT, REJECT, ACCEPT]

    def script(req):
        if req.role == "generator":
            return PHRASE
        return verdicts.pop(0) if verdicts else Reply(ACCEPT.content)

    server = ChatServer(script)
    try:
        empty.benchmark_actions.actions["generate"].trigger()
        dlg = empty.benchmark_actions.dialog
        assert (
            dlg.windowTitle() == "Generate questions" and dlg.split_combo.currentText() == "spatial"
        )
        dlg.ok_button.click()
        assert dlg.isVisible() and "needs an endpoint" in dlg.problem_label.text()
        dlg.endpoint_edit.setText(server.url)
        dlg.model_edit.setText("gen-m")
        dlg.verifier_model_edit.setText("ver-m")
        dlg.concurrency_spin.setValue(1)
        assert dlg.cli_args()[:7] == [
            "questions", "generate", "--db", empty.store.url, "--split", "spatial", "--endpoint",
        ]  # fmt: skip
        with qtbot.waitSignal(empty.benchmark_actions.finished, timeout=60_000) as got:
            dlg.ok_button.click()
        kind, report = got.args
        assert kind == "generate" and (
            report.verdicts["accepted"],
            report.verdicts["rejected"],
        ) == (2, 1)
        assert {r.body["model"] for r in server.by_role("verifier")} == {"ver-m"}
        assert {r.body["model"] for r in server.by_role("generator")} == {"gen-m"}
        # the questions are samples to review, with their dock
        assert empty.samples_panel.row_count() == 3 and empty.questions_dock.isVisible()
        assert settings.value("questions/endpoint") == server.url  # remembered for next time
        empty.benchmark_actions.actions["generate"].trigger()
        assert empty.benchmark_actions.dialog.endpoint_edit.text() == server.url
        empty.benchmark_actions.dialog.reject()
    finally:
        server.close()


def test_agreement_window_lists_categories_and_disagreements(qtbot, window, demo_store):
    from core.store import review

    for sid, a, b in ((1, "accept", "accept"), (2, "accept", "reject"), (3, "flag", "flag")):
        review.decide(demo_store, sid, a, user="ann")
        review.decide(demo_store, sid, b, user="bob")
    with qtbot.waitSignal(window.benchmark_actions.finished, timeout=30_000) as got:
        window.benchmark_actions.actions["agreement"].trigger()
    rep = got.args[1]
    dlg = window.benchmark_actions.agreement_dialog
    assert dlg.isVisible() and rep.overall.n == 3 and rep.overall.agree == 2
    last = dlg.row(dlg.table, dlg.table.rowCount() - 1)
    assert last[:4] == ["overall", "3", "2", "66.7"] and last[4].startswith("ann/bob ")
    assert dlg.disagreements.rowCount() == 1
    assert dlg.row(dlg.disagreements, 0)[0] == "2"
    assert dlg.row(dlg.disagreements, 0)[3] == "ann: accept, bob: reject"
    dlg.disagreements.cellDoubleClicked.emit(0, 0)  # shows the sample to resolve
    assert window.state.sample_id == 2
    # one annotator only: nothing to compare, and said so
    dlg.users_edit.setText("ann")
    with qtbot.waitSignal(window.benchmark_actions.finished, timeout=30_000):
        dlg.refresh_button.click()
    assert "needs two reviews" in dlg.disagreements_label.text()
    assert isinstance(dlg, QtWidgets.QDialog) and not dlg.isModal()
