"""An ask drawn as it goes: partial results reach the canvas, the Candidates tab and the Evaluator
tab in order from the worker thread; Cancel at any point; the segmenter and the evaluator loaded
one after the other when they do not both fit. The pipeline is replaced by a scripted one that
hands out the partial results of a hand-made trace, one per step the test allows."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from core.cancel import Cancelled
from core.models.memory import LoadPlan
from core.pipeline.cache import ModelCache
from core.pipeline.partial import (
    CandidateReady,
    CoreReady,
    GroupScored,
    GroupStarted,
    HeatmapReady,
    InitialMaskReady,
    ReasoningDelta,
    SeedsReady,
    Stage1Done,
)
from core.trace import (
    AttentionTrace,
    Candidate,
    EvaluatorGroup,
    EvaluatorTrace,
    FeatureGraphTrace,
    PipelineTrace,
    SeedTrace,
    TokenScore,
)

H, W = 40, 60


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def make_trace() -> PipelineTrace:
    """A 2×3 token grid, two seeds in a 2-core, three candidates scored in two groups."""
    boxes = np.array(
        [[x * 20, y * 20, x * 20 + 20, y * 20 + 20] for y in range(2) for x in range(3)], np.float32
    )
    att = AttentionTrace((2, 3), np.arange(6, dtype=np.float32).reshape(2, 3), boxes, [0])
    toks = [
        TokenScore(5, 1, 2, 5.0, (40.0, 20.0, 60.0, 40.0)),
        TokenScore(4, 1, 1, 4.0, (20.0, 20.0, 40.0, 40.0)),
    ]
    seeds = SeedTrace(2, 2, toks, toks, np.array([[50.0, 30.0], [30.0, 30.0]]), [5, 4])
    graph = FeatureGraphTrace(0.5, -5.0, [(0, 1, 0.9)], 1, [0, 1], (2.0, 2.0), -9.0, False)
    L = np.where(box(10, 30, 20, 50), 4.0, -4.0).astype(np.float32)
    cands = [
        Candidate(0, "multimask", 0, box(10, 30, 20, 50), 0.9),
        Candidate(1, "semantic", 0, box(0, 20, 0, 30), 0.8),
        Candidate(2, "amg", 0, box(20, 40, 30, 60), 0.7, seed_index=0),
    ]
    groups = [
        EvaluatorGroup(
            0, [1, 0], "p", "left one\nMask 1: 0.2\nMask 2: 0.9", "left one", [0.2, 0.9]
        ),
        EvaluatorGroup(1, [2, 1], "p", "Mask 1: 0.4\nMask 2: 0.3", None, [0.4, 0.3], padded=1),
    ]
    ev = EvaluatorTrace(
        "hand", "hand-ev", True, 2, 0, True, groups, {0: 0.9, 1: 0.2, 2: 0.4}, [0, 2, 1]
    )
    return PipelineTrace(
        "which one?", (H, W), "hand", {}, True, {}, L, L > 0, att, seeds, graph, cands, ev
    )


def partials(trace: PipelineTrace) -> list[object]:
    ev = trace.evaluator
    about = {"backend": ev.backend, "model_id": ev.model_id, "is_random": True, "group_size": 2}
    out: list[object] = [
        HeatmapReady(trace.attention),
        InitialMaskReady(trace.initial_logits),
        SeedsReady(trace.seeds),
        CoreReady(trace.graph),
        *[CandidateReady(c, i, 3) for i, c in enumerate(trace.candidates)],
        Stage1Done(replace(trace, evaluator=None)),
    ]
    for g in ev.groups:
        out.append(GroupStarted(g.index, 2, g.candidate_ids, g.padded, about))
        half = len(g.raw_text) // 2
        out += [
            ReasoningDelta(g.index, g.raw_text[:half]),
            ReasoningDelta(g.index, g.raw_text[half:]),
        ]
        out.append(GroupScored(g, 2))
    return out


class Script:
    """A stand-in for :func:`core.pipeline.ask.ask`: hands out one partial result each time
    :meth:`step` is called, polling ``should_cancel`` as the real one does."""

    def __init__(self, trace: PipelineTrace) -> None:
        self.trace, self.items = trace, partials(trace)
        self.gate = threading.Semaphore(0)
        self.events: list[str] = []

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.gate.release()

    def __call__(
        self, image, question, segmenter, *, partial, should_cancel, load_evaluator=None, **_k
    ):
        for item in self.items:
            if not self.gate.acquire(timeout=20):
                raise RuntimeError("the test never let the script go on")
            if should_cancel():
                raise Cancelled("cancelled")
            partial(item)
            if isinstance(item, Stage1Done) and load_evaluator is not None:
                self.events.append("evaluator requested")
                load_evaluator()
        return self.trace


@pytest.fixture
def scripted(window, monkeypatch, tmp_path):
    import cv2

    import core.pipeline.ask as ask_mod

    script = Script(make_trace())
    monkeypatch.setattr(ask_mod, "ask", script)
    events = script.events

    def load_segmenter(preset, cfg):
        events.append("segmenter loaded")
        return object()

    def load_evaluator(name, cfg):
        events.append(
            f"evaluator loaded (segmenter in memory: {models.loaded_segmenter('tiny-random-lisa') is not None})"
        )
        return object()

    models = ModelCache(load_segmenter=load_segmenter, load_evaluator=load_evaluator)
    window.asking.models = models
    window.asking.plan_memory = lambda m, p, e: None
    window.asking._choice = lambda: ("tiny-random-lisa", "e", True, 2)
    img = np.full((H, W, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "mine.png"), img)
    assert window.asking.open_image(tmp_path / "mine.png")
    return script


def _step(qtbot, window, script, kind: str) -> None:
    """Let the script hand out one result and wait until the window has drawn it."""
    with qtbot.waitSignal(window.asking.updated, timeout=5000) as got:
        script.step()
    assert got.args == [kind]
    qtbot.waitUntil(lambda: not window.asking._flush_pending, timeout=2000)


def test_each_partial_result_is_drawn_as_it_arrives(qtbot, window, scripted):
    canvas, cands, ev = window.canvas, window.candidates_panel, window.evaluator_panel
    kinds: list[str] = []
    window.asking.updated.connect(kinds.append)
    assert window.asking.ask("which one?")
    _step(qtbot, window, scripted, "heatmap")
    assert canvas.items["attention"] and not canvas.items["seeds"] and cands.row_count() == 0
    assert "RANDOM WEIGHTS" in (window.viewer.banner_text() or "")  # known from the start
    _step(qtbot, window, scripted, "initial")
    assert canvas.masks["initial"] is not None and not canvas.items["seeds"]
    _step(qtbot, window, scripted, "seeds")
    assert canvas.items["seeds"] and not canvas.items["graph"]
    _step(qtbot, window, scripted, "core")
    assert canvas.items["graph"]
    for n in (1, 2, 3):  # the candidates one by one, each shown as it is found
        _step(qtbot, window, scripted, "candidate")
        assert cands.row_count() == n
        assert np.array_equal(canvas.masks["candidate"], scripted.trace.candidates[n - 1].mask)
    _step(qtbot, window, scripted, "stage1")
    assert ev.item_count() == 0
    _step(qtbot, window, scripted, "group_started")
    assert "Group 0 (1 of 2): scoring…" in ev.plain_text()
    assert ev.item_labels() == ["G0 · mask 1\n#1 · scoring…\n", "G0 · mask 2\n#0 · scoring…\n"]
    _step(qtbot, window, scripted, "reasoning")
    raw = scripted.trace.evaluator.groups[0].raw_text
    half = raw[: len(raw) // 2]
    assert ev.plain_text().endswith("scoring…\n" + half)  # the first half, streamed
    _step(qtbot, window, scripted, "reasoning")
    _step(qtbot, window, scripted, "group")
    assert ev.item_count() == 2 and "scoring…" not in ev.plain_text()
    assert "not ranked" in ev.item_labels()[0]  # no ranking before the last group
    _step(qtbot, window, scripted, "group_started")  # the scored group, then the one scored now
    assert ev.item_count() == 4 and ev.item_labels()[3] == "G1 · mask 2 (pad)\n#1 · scoring…\n"
    with qtbot.waitSignal(window.asking.answered, timeout=5000):
        scripted.step(3)
    assert kinds == [
        "heatmap", "initial", "seeds", "core", "candidate", "candidate", "candidate", "stage1",
        *["group_started", "reasoning", "reasoning", "group"] * 2,
    ]  # fmt: skip
    # the answer's own tabs: the ranked candidates and every group with its rank
    assert cands.row_count() == 3 and cands.trace is scripted.trace
    assert cands.run_title() == "this ask (not saved)"
    assert ev.item_count() == 4 and "rank 1 of 3" in ev.item_labels()[1]
    assert "Final ranking (best first): #0" in ev.plain_text()
    # a mask clicked in the Evaluator tab shows that candidate on the canvas (no store sample)
    ev.select_item(2)
    assert np.array_equal(window.canvas.masks["candidate"], scripted.trace.candidates[2].mask)


def test_a_multimask_candidate_before_the_seeds_is_drawn_at_once_and_kept(qtbot, window, scripted):
    """As stage 1 hands it out: candidate 0 (multimask, total not known yet) right after the
    initial mask, the others after the k-core; each drawn as it arrives, none twice."""
    cands, canvas = window.candidates_panel, window.canvas
    items = scripted.items
    c0 = scripted.trace.candidates[0]
    early = CandidateReady(c0, 0, None)
    items[:] = [items[0], items[1], early, *[i for i in items[2:] if i is not items[4]]]
    assert window.asking.ask("which one?")
    _step(qtbot, window, scripted, "heatmap")
    _step(qtbot, window, scripted, "initial")
    _step(qtbot, window, scripted, "candidate")
    assert cands.row_count() == 1 and not canvas.items["seeds"]
    assert np.array_equal(canvas.masks["candidate"], c0.mask)
    assert window.ask_bar.stage_text() == "candidate 1 found"
    _step(qtbot, window, scripted, "seeds")
    _step(qtbot, window, scripted, "core")
    assert canvas.items["seeds"] and canvas.items["graph"] and cands.row_count() == 1
    for n in (2, 3):
        _step(qtbot, window, scripted, "candidate")
        assert cands.row_count() == n
    assert [c.id for c in window.asking.live.candidates] == [0, 1, 2]
    _step(qtbot, window, scripted, "stage1")
    assert cands.row_count() == 3
    with qtbot.waitSignal(window.asking.answered, timeout=5000):
        scripted.step(len(items))
    assert cands.row_count() == 3 and cands.trace is scripted.trace


def test_cancel_keeps_what_was_drawn_and_stops_the_rest(qtbot, window, scripted):
    kinds: list[str] = []
    window.asking.updated.connect(kinds.append)
    assert window.asking.ask("which one?")
    _step(qtbot, window, scripted, "heatmap")
    _step(qtbot, window, scripted, "initial")
    with qtbot.waitSignal(
        window.jobs.busy_changed, timeout=10_000, check_params_cb=lambda b, _: not b
    ):
        window.ask_bar.cancel_button.click()
        assert window.ask_bar.stage_text() == "cancelling…"
        scripted.step(20)
    qtbot.wait(50)
    assert kinds == ["heatmap", "initial"] and window.ask_bar.stage_text() == "cancelled"
    assert window.canvas.items["attention"] and window.asking.trace is None
    assert window.ask_bar.ask_button.isEnabled() and not window.ask_bar.add_button.isEnabled()


def test_models_that_do_not_both_fit_are_loaded_one_after_the_other(qtbot, window, scripted):
    msg = "segmenter 9.0 GiB + evaluator 9.0 GiB do not both fit in 10.0 GiB free: loading them one after the other"
    window.asking.plan_memory = lambda m, p, e: LoadPlan(
        False, 9 * 2**30, 9 * 2**30, 10 * 2**30, msg
    )
    seen: list[str] = []
    window.asking.status.connect(seen.append)
    assert window.asking.ask("which one?")
    with qtbot.waitSignal(window.asking.answered, timeout=10_000):
        scripted.step(len(scripted.items))
    assert scripted.events == [
        "segmenter loaded",
        "evaluator requested",
        "evaluator loaded (segmenter in memory: False)",
    ]
    assert any("one after the other" in s for s in seen)
    assert any("segmenter freed" in s for s in seen)


def test_models_that_fit_are_loaded_together(qtbot, window, scripted):
    assert window.asking.ask("which one?")
    with qtbot.waitSignal(window.asking.answered, timeout=10_000):
        scripted.step(len(scripted.items))
    assert scripted.events == ["segmenter loaded", "evaluator loaded (segmenter in memory: True)"]


# ---------------------------------------------------------------------- open / drop / paste
def _png(path, hw=(12, 16)) -> np.ndarray:
    import cv2

    img = np.random.default_rng(1).integers(0, 255, (*hw, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img[:, :, ::-1])
    return img


def test_file_open_image_menu_opens_the_chosen_file(qtbot, window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    img = _png(tmp_path / "mine.png")
    monkeypatch.setattr(
        QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "mine.png"), "")
    )
    file_menu = window.menuBar().actions()[0].menu()
    action = next(a for a in file_menu.actions() if a.text().startswith("Open &image"))
    action.trigger()
    assert np.array_equal(window.asking.image, img)
    assert window.asking.image_path == tmp_path / "mine.png" and window.canvas.hw == (12, 16)


def test_paste_of_a_copied_file_and_of_an_empty_clipboard(qtbot, window, tmp_path):
    from PySide6 import QtCore, QtWidgets

    img = _png(tmp_path / "copied.png")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(tmp_path / "copied.png"))])
    QtWidgets.QApplication.clipboard().setMimeData(mime)
    assert window.paste_ask_image()
    assert window.asking.image_path == tmp_path / "copied.png"
    assert np.array_equal(window.asking.image, img)
    QtWidgets.QApplication.clipboard().setText("just words")
    with qtbot.waitSignal(window.asking.status, timeout=2000) as said:
        assert not window.paste_ask_image()
    assert said.args == ["the clipboard holds no image"]
    assert window.asking.image_path == tmp_path / "copied.png"  # nothing else changed


def test_drag_accepts_files_only_and_a_dropped_non_image_changes_nothing(qtbot, window, tmp_path):
    from PySide6 import QtCore, QtGui

    def event(cls, mime):
        return cls(
            QtCore.QPoint(10, 10) if cls is QtGui.QDragEnterEvent else QtCore.QPointF(10, 10),
            QtCore.Qt.DropAction.CopyAction,
            mime,
            QtCore.Qt.MouseButton.LeftButton,
            QtCore.Qt.KeyboardModifier.NoModifier,
        )

    text = QtCore.QMimeData()
    text.setText("words")
    enter = event(QtGui.QDragEnterEvent, text)
    enter.ignore()
    window.dragEnterEvent(enter)
    assert not enter.isAccepted()
    img = _png(tmp_path / "ok.png")
    files = QtCore.QMimeData()
    files.setUrls([QtCore.QUrl.fromLocalFile(str(tmp_path / "ok.png"))])
    enter = event(QtGui.QDragEnterEvent, files)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(event(QtGui.QDropEvent, files))
    assert np.array_equal(window.asking.image, img)
    (tmp_path / "notes.txt").write_text("not an image")
    bad = QtCore.QMimeData()
    bad.setUrls([QtCore.QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    with qtbot.waitSignal(window.asking.status, timeout=2000) as said:
        window.dropEvent(event(QtGui.QDropEvent, bad))
    assert "notes.txt" in said.args[0]
    assert (
        np.array_equal(window.asking.image, img) and window.asking.image_path == tmp_path / "ok.png"
    )


@pytest.mark.slow  # builds the tiny random models
def test_a_real_ask_with_the_tiny_models_draws_in_order(qtbot, window, tmp_path):
    from rea2seg_gui.models import tiny_lisa_preset

    window.run_panel.set_preset(tiny_lisa_preset())
    window.run_panel.set_evaluator("tiny-random")
    _png(tmp_path / "mine.png", (48, 64))
    window.asking.open_image(tmp_path / "mine.png")
    kinds: list[str] = []
    window.asking.updated.connect(kinds.append)
    with qtbot.waitSignal(window.asking.answered, timeout=120_000) as done:
        assert window.asking.ask("the thing on the left")
    trace = done.args[0]
    n = len(trace.candidates)
    m = sum(c.origin == "multimask" for c in trace.candidates)  # shown right after the initial mask
    assert kinds[: 5 + n] == [
        "heatmap", "initial", *["candidate"] * m, "seeds", "core", *["candidate"] * (n - m), "stage1"
    ]  # fmt: skip
    rest = [k for k in kinds[5 + n :] if k != "reasoning"]
    assert rest == ["group_started", "group"] * len(trace.evaluator.groups)
    assert "reasoning" in kinds  # the local evaluator streams its answer
    assert window.candidates_panel.row_count() == n
    assert window.evaluator_panel.item_count() == sum(
        len(g.candidate_ids) for g in trace.evaluator.groups
    )
