"""What-if after an ask: Prepare adopts the ask's stage-1 cache (no MLLM forward, no SAM
encoder pass) for the same image, question, preset and segmenter; anything else prepares anew.
The Ask bar draws the multimask candidates as soon as they arrive, before the seeds (tiny random
models: the masks are noise)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rea2seg_gui.models import tiny_lisa_preset
from tests.gui.test_tune_panel import count_model_calls


@pytest.fixture
def asked(qtbot, window, tmp_path, monkeypatch):
    """An ask (stage 1 only) on a file image with the tiny LISA preset; ``calls`` counts MLLM
    forwards and SAM encoder passes from then on."""
    preset = tiny_lisa_preset()
    window.run_panel.set_preset(preset)
    window.run_panel.set_evaluator(None)
    calls, hook = count_model_calls(window.models.segmenter(preset), monkeypatch)
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "mine.png"), img[:, :, ::-1])
    assert window.asking.open_image(tmp_path / "mine.png")
    window.ask_bar.question.setText("the thing on the left")
    kinds: list[str] = []
    window.asking.updated.connect(kinds.append)
    with qtbot.waitSignal(window.asking.answered, timeout=120_000) as done:
        assert window.asking.ask("the thing on the left")
    assert calls == {"mllm": 1, "encoder": 1}
    calls.update(mllm=0, encoder=0)
    yield window, calls, done.args[0], kinds
    hook.remove()


@pytest.mark.slow  # builds the tiny random models
def test_prepare_after_an_ask_adopts_its_cache_without_a_forward(qtbot, asked):
    window, calls, answer, _kinds = asked
    kept = window.asking.stage1_cache
    assert kept is not None and kept.cache.question == "the thing on the left"
    with qtbot.waitSignal(window.tuning.retuned, timeout=60_000) as got:
        assert window.prepare_tune()
    assert calls == {"mllm": 0, "encoder": 0}  # neither model ran for Prepare
    assert window.tuning.cache is kept.cache
    assert "from the ask (no new MLLM forward)" in window.tune_panel.source.text()
    assert "mine.png" in window.tune_panel.source.text()
    trace = got.args[0]
    assert [c.origin for c in trace.candidates] == [c.origin for c in answer.candidates]
    assert all(
        np.array_equal(a.mask, b.mask)
        for a, b in zip(trace.candidates, answer.candidates, strict=True)
    )


@pytest.mark.slow
def test_another_question_prepares_with_a_forward(qtbot, asked):
    window, calls, _answer, _kinds = asked
    window.ask_bar.question.setText("the thing on the right")
    with qtbot.waitSignal(window.tuning.retuned, timeout=60_000):
        assert window.prepare_tune()
    assert calls["mllm"] == 1
    assert "from the ask" not in window.tune_panel.source.text()
    assert window.tuning.cache is not window.asking.stage1_cache.cache


@pytest.mark.slow
def test_a_released_segmenter_or_a_new_image_drops_the_asks_cache(qtbot, asked, tmp_path):
    window, calls, _answer, _kinds = asked
    preset = tiny_lisa_preset()
    window.models.release_segmenter(preset)
    window.models.segmenter(preset)  # loaded again: another segmenter object
    with qtbot.waitSignal(window.tuning.retuned, timeout=120_000):
        assert window.prepare_tune()
    assert "from the ask" not in window.tune_panel.source.text()
    img = np.zeros((30, 40, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "other.png"), img)
    window.asking.open_image(tmp_path / "other.png")
    assert window.asking.stage1_cache is None


@pytest.mark.slow
def test_the_multimask_candidates_are_drawn_before_the_seeds(qtbot, asked):
    window, _calls, answer, kinds = asked
    m = sum(c.origin == "multimask" for c in answer.candidates)
    n = len(answer.candidates)
    assert m >= 1 and kinds[: 2 + m + 2] == [
        "heatmap",
        "initial",
        *["candidate"] * m,
        "seeds",
        "core",
    ]
    assert kinds.count("candidate") == n and window.candidates_panel.row_count() == n
