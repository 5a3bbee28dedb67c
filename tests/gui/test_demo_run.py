"""``rea2seg-gui --demo`` opens on the mini-geometric demo run: made on first open in the Run
tab's worker, reused afterwards, labelled as trained small models (not random, not the paper's)."""

from __future__ import annotations

import json
import shutil

import pytest


def test_demo_run_is_made_once_then_reused_and_labelled(qtbot, window):
    from core.demo import DEMO_RUN_NAME, finished_demo_run
    from core.store import repo

    store = window.store
    assert finished_demo_run(store) is None
    with qtbot.waitSignal(window.run_finished, timeout=240_000) as blocker:
        assert window.open_demo_run(limit=3)
    run_id = blocker.args[0]
    run = store.run(lambda s: repo.get_run(s, run_id), write=False)
    assert run.name == DEMO_RUN_NAME and run.preset == "mini-geometric"
    # the window shows that run's trace of the first listed sample
    assert window.candidates_panel.run_id() == run_id
    assert window.state.sample_id == window.samples_panel.ids()[0]
    trace = window.state.trace
    assert trace is not None and trace.preset == "mini-geometric" and not trace.is_random
    assert trace.evaluator is not None and not trace.evaluator.is_random
    assert window.viewer.banner_text() is None  # no RANDOM WEIGHTS strip
    note = window.viewer.model_note_text()
    assert note and "small models trained on the synthetic geometric split" in note
    # only 3 of 40 samples ran: not finished, so the next open would resume it, not reuse it
    assert finished_demo_run(store) is None


@pytest.fixture
def small_window(qtbot, tmp_path, settings):
    """A window on a store of the demo's first three samples (a whole demo run in seconds)."""
    from core.demo import DEMO_SGDR
    from core.importers.sgdr import import_sgdr
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow

    data = json.loads(DEMO_SGDR.read_text(encoding="utf-8"))
    data["samples"] = data["samples"][:3]
    (tmp_path / "small" / "images").mkdir(parents=True)
    for smp in data["samples"]:
        shutil.copy2(DEMO_SGDR.parent / smp["image"], tmp_path / "small" / smp["image"])
    sgdr = tmp_path / "small" / "sgdr.json"
    sgdr.write_text(json.dumps(data), encoding="utf-8")
    store = open_store(tmp_path / "small.sqlite")
    import_sgdr(store, sgdr, dataset="demo")
    w = MainWindow(store, user="tester", settings=settings)
    w.loader.trace_wait_s = 60
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    store.close()


def test_finished_demo_run_is_selected_without_running(qtbot, small_window, monkeypatch):
    from core.demo import DEMO_RUN_NAME
    from core.pipeline.plan import RunRequest
    from core.store import repo

    window = small_window
    store = window.store
    with qtbot.waitSignal(window.run_finished, timeout=240_000) as blocker:
        assert window.open_demo_run()
    run_id = blocker.args[0]
    ids = sorted(store.run(lambda s: repo.finished_sample_ids(s, run_id), write=False))
    assert len(ids) == store.run(repo.count_samples, write=False) == 3
    # a later run of another preset is newer; the demo opens on the demo run all the same
    with qtbot.waitSignal(window.run_finished, timeout=120_000) as later:
        assert window.runs.start_request(RunRequest("tiny-random-lisa", samples=ids[:1]))
    assert later.args[0] > run_id and window.candidates_panel.run_id() == later.args[0]
    monkeypatch.setattr(
        window.runs, "start_request", lambda *_: (_ for _ in ()).throw(AssertionError("ran"))
    )
    assert window.open_demo_run()
    assert window.candidates_panel.run_id() == run_id
    assert store.run(lambda s: repo.get_run(s, run_id), write=False).name == DEMO_RUN_NAME
