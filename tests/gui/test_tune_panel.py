"""The What-if tab: prepare once, then every edit re-tunes stage 1 off the GUI thread from the
cached MLLM outputs and SAM embedding (the models are not called again), latest edit wins, and
Apply to a run starts a run with the tuned settings (tiny random models: the masks are noise)."""

from __future__ import annotations

import pytest

from core.store import repo
from rea2seg_gui.models import tiny_lisa_preset
from rea2seg_gui.panels.tune import TunePanel


def test_panel_round_trips_settings_and_reports_bad_fields(qtbot):
    from core.pipeline.settings import Stage1Settings

    p = TunePanel()
    qtbot.addWidget(p)
    s = Stage1Settings(k1=20, k2=7, tau=0.55, dedupe_iou=0.8, layers=(2, 3, 4, 9), heads=None)
    with qtbot.assertNotEmitted(p.settings_changed):
        p.show_settings(s.to_dict())
    assert p.params["layers"].text() == "2-4, 9" and p.params["heads"].text() == ""
    values = p.values()
    assert Stage1Settings.from_dict({**s.to_dict(), **values}) == s
    with qtbot.waitSignal(p.settings_changed, timeout=1000):
        p.set_value("k2", 5)
    p.set_value("dedupe_iou", None)
    assert p.values()["dedupe_iou"] is None and p.values()["k2"] == 5
    p.params["layers"].setText("3-x")
    with pytest.raises(ValueError, match="layers: '3-x'"):
        p.values()


def count_model_calls(seg, monkeypatch) -> tuple[dict[str, int], object]:
    """``calls``: the MLLM forwards and SAM encoder passes of segmenter ``seg`` from now on; and
    the encoder hook (remove it when done)."""
    calls = {"mllm": 0, "encoder": 0}
    real = seg.prompt_model.encode

    def encode(*a, **k):
        calls["mllm"] += 1
        return real(*a, **k)

    monkeypatch.setattr(seg.prompt_model, "encode", encode)
    hook = seg.sam.sam.image_encoder.register_forward_hook(
        lambda *a: calls.__setitem__("encoder", calls["encoder"] + 1)
    )
    return calls, hook


@pytest.fixture
def tuned(qtbot, window, monkeypatch):
    """The window prepared on sample 1 (with its ground truth); ``calls`` counts MLLM forwards
    and SAM encoder passes from then on."""
    preset = tiny_lisa_preset()
    window.run_panel.set_preset(preset)
    calls, hook = count_model_calls(window.models.segmenter(preset), monkeypatch)
    assert window.state.sample_id == 1 and window.state.gt is not None
    with qtbot.waitSignal(window.tuning.retuned, timeout=120_000):
        assert window.prepare_tune()
    assert calls["mllm"] == 1
    calls.update(mllm=0, encoder=0)
    yield window, calls
    hook.remove()


def _wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.tuning.busy() and not window.jobs.busy, timeout=60_000)


@pytest.mark.slow  # builds the tiny random models
def test_edits_retune_from_the_caches_and_update_candidates_live(qtbot, tuned):
    window, calls = tuned
    panel = window.tune_panel
    first = window.tuning.trace
    assert "best true IoU" in panel.summary_text() and panel.table_model.rowCount() == len(
        first.candidates
    )
    assert window.canvas.trace is first  # drawn on the sample it was prepared on
    assert panel.origins() == [c.origin for c in first.candidates]
    k2 = window.tuning.base.k2 - 2
    with qtbot.waitSignal(window.tuning.retuned, timeout=60_000) as blocker:
        panel.set_value("k2", k2)
    trace = blocker.args[0]
    assert trace.settings["k2"] == k2 and len(trace.seeds.topk2) == k2
    assert window.canvas.trace is trace and panel.table_model.rowCount() == len(trace.candidates)
    true_ious = [panel.table_model.row(i)[6] for i in range(panel.table_model.rowCount())]
    assert all(isinstance(v, float) for v in true_ious)
    assert f"{max(true_ious):.3f}" in panel.summary_text()
    with qtbot.waitSignal(window.tuning.retuned, timeout=60_000) as blocker:
        panel.set_value("layers", "0")  # re-aggregated from the cached per-layer attention
    assert blocker.args[0].attention.layers == [0]
    _wait_idle(qtbot, window)
    assert calls == {"mllm": 0, "encoder": 0}  # neither the MLLM nor the SAM encoder ran again


@pytest.mark.slow
def test_the_latest_edit_wins_and_uncached_layers_are_refused(qtbot, tuned):
    window, _calls = tuned
    tuning, panel = window.tuning, window.tune_panel
    shown = []
    tuning.retuned.connect(shown.append)
    started = tuning.retunes_started
    for v in (0.1, 0.2, 0.3, 0.4):  # within the debounce: one re-tune
        panel.set_value("tau", v)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=60_000)
    _wait_idle(qtbot, window)
    assert tuning.retunes_started == started + 1 and shown[0].settings["tau"] == 0.4
    # a request made while a re-tune runs waits; the overtaken result is never shown
    shown.clear()
    panel.set_value("k2", tuning.base.k2 - 1)
    tuning._timer.stop()
    tuning._request()
    assert window.jobs.busy
    panel.set_value("top_n", 2)
    tuning._timer.stop()
    tuning._request()
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=60_000)
    _wait_idle(qtbot, window)
    qtbot.wait(50)
    assert len(shown) == 1 and shown[0].settings["top_n"] == 2
    assert shown[0].settings["k2"] == tuning.base.k2 - 1
    # back to the shown settings while another re-tune runs: that one is overtaken, not shown
    shown.clear()
    panel.set_value("top_n", 3)
    tuning._timer.stop()
    tuning._request()
    assert window.jobs.busy
    panel.set_value("top_n", 2)
    tuning._timer.stop()
    tuning._request()
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=60_000)
    _wait_idle(qtbot, window)
    assert len(shown) == 1 and shown[0].settings["top_n"] == 2
    # layers the forward did not capture: a one-line message, nothing re-tuned
    before = tuning.retunes_started
    panel.set_value("layers", "0-99")
    qtbot.waitUntil(lambda: "new MLLM forward" in panel.error_text(), timeout=5000)
    assert tuning.retunes_started == before and tuning.trace is shown[0]


@pytest.mark.slow
def test_apply_to_a_run_starts_a_run_with_the_tuned_settings(qtbot, tuned, demo_store):
    window, _calls = tuned
    panel = window.tune_panel
    k2 = window.tuning.base.k2 - 1
    with qtbot.waitSignal(window.tuning.retuned, timeout=60_000):
        panel.set_value("k2", k2)
    _wait_idle(qtbot, window)
    assert window.samples_panel.selected_ids() == [1]
    with qtbot.waitSignal(window.run_finished, timeout=120_000) as blocker:
        panel.apply_button.click()
    run_id = blocker.args[0]
    run = demo_store.run(lambda s: repo.get_run(s, run_id), write=False)
    assert run.config["stage1"]["k2"] == k2 and "what-if" in run.name
    back = demo_store.run(lambda s: repo.load_trace(s, run_id, 1), write=False)
    assert [c.origin for c in back.candidates] == [c.origin for c in window.tuning.trace.candidates]
