"""Ask from the GUI: one's own image (file, paste or drop) and question, answered by
:func:`core.pipeline.ask.ask` in the window's job runner, drawn as it progresses.

The worker hands each partial result (:mod:`core.pipeline.partial`) to the GUI thread through a
queued signal; :class:`~core.pipeline.partial.LiveTrace` adds them up and the canvas, the
Candidates tab and the Evaluator tab draw what is known: the heatmap after the MLLM forward, the
initial mask, seeds and k-core, the candidates one by one, then stage 2 group by group with the
evaluator's text as it streams. Redraws are coalesced (one per turn of the event loop). The
result is a scratch trace until Add to store keeps it (:func:`core.pipeline.ask.save_answer`).

When the segmenter and the evaluator do not both fit in memory
(:func:`core.pipeline.memory.plan_ask`), the segmenter is freed after stage 1 and the evaluator
loaded only then; the Ask bar says so.

The multimask candidates arrive right after the initial mask, the others after the k-core; each
is drawn as it arrives. Otherwise (the segmenter stays loaded) the ask keeps its stage-1 cache
(:class:`AskCache`), which the What-if tab adopts for the same image, question, preset and
segmenter instead of running the MLLM forward again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore

from core.pipeline.cache import ModelCache
from core.pipeline.partial import LiveTrace
from core.store import Store
from core.trace import PipelineTrace
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.preload import import_model_stack
from rea2seg_gui.panels.ask import AskBar
from rea2seg_gui.panels.candidates import CandidatesPanel
from rea2seg_gui.panels.evaluator import EvaluatorPanel
from rea2seg_gui.panels.viewer import ViewerPanel

STAGE_LABELS = {
    "mllm": "MLLM forward…",
    "sam_embed": "SAM image embedding…",
    "initial": "initial mask…",
    "seeds": "seeds…",
    "amg": "seeded AMG…",
    "semantic": "k-core and semantic masks…",
    "candidates": "candidates…",
    "evaluator": "stage 2: scoring groups…",
    "done": "done",
}
"""What the Ask bar says during each stage of :data:`core.pipeline.ask.ASK_STEPS`."""

_STAGE1_KINDS = frozenset({"heatmap", "initial", "seeds", "core", "stage1"})
_EVALUATOR_KINDS = frozenset({"group_started", "reasoning", "group"})


@dataclass(frozen=True)
class AskCache:
    """The stage-1 cache an ask left (:class:`core.pipeline.tune.Stage1Cache`, made by
    :func:`core.pipeline.ask.ask` with ``stage1_cache=``) and what it was made from: the image
    array shown (the same object), the preset name asked with and the segmenter object."""

    cache: Any
    image: np.ndarray
    preset: str
    segmenter: Any


class _Relay(QtCore.QObject):
    """Lives on the GUI thread; the worker emits ``item(ask number, partial result)`` on it."""

    item = QtCore.Signal(int, object)


def _plan(models: ModelCache, preset: str, evaluator: str) -> Any:
    """The memory plan of an ask (:func:`core.pipeline.memory.plan_ask`); ``None`` when it
    cannot be made (the load itself then reports the problem)."""
    from core.models.base import ModelLoadError
    from core.pipeline.memory import plan_ask

    try:
        return plan_ask(preset, evaluator, models.config(), device=models.device)
    except (ModelLoadError, ValueError, OSError):
        return None


def qimage_rgb(image: Any) -> np.ndarray:
    """A QImage as uint8 (H, W, 3) RGB (a copy; alpha dropped)."""
    from PySide6 import QtGui

    img = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def _is_random(preset: str) -> bool:
    from core.models.base import ModelLoadError
    from rea2seg_gui.models import is_random_preset

    try:
        return is_random_preset(preset)
    except ModelLoadError:
        return False


class AskController(QtCore.QObject):
    """``image_shown(hw)``, ``partial(trace)`` (stage 1 done, stage 2 running),
    ``updated(kind)`` (each partial result drawn, :func:`core.pipeline.partial.partial_kind`),
    ``answered(trace)``, ``saved(sample_id, run_id)``, ``status(text)``.

    ``choice()`` returns the segmenter preset, the evaluator preset (or ``None``), chain of
    thought and the group size, as the Run tab shows them; ``store()`` the open store.
    """

    image_shown = QtCore.Signal(object)
    partial = QtCore.Signal(object)
    updated = QtCore.Signal(str)
    answered = QtCore.Signal(object)
    saved = QtCore.Signal(int, int)
    status = QtCore.Signal(str)

    def __init__(
        self,
        jobs: JobRunner,
        models: ModelCache,
        bar: AskBar,
        viewer: ViewerPanel,
        store: Callable[[], Store],
        choice: Callable[[], tuple[str, str | None, bool, int]],
        parent: QtCore.QObject | None = None,
        candidates: CandidatesPanel | None = None,
        evaluator: EvaluatorPanel | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs, self.models, self.bar, self.viewer = jobs, models, bar, viewer
        self.candidates_panel, self.evaluator_panel = candidates, evaluator
        self._store, self._choice = store, choice
        self.plan_memory: Callable[[ModelCache, str, str], Any] = _plan
        self.live: LiveTrace | None = None
        self._ask_no = 0
        self._dirty: set[str] = set()
        self._flush_pending = False
        self._relay = _Relay(self)
        self._relay.item.connect(self._on_partial, QtCore.Qt.ConnectionType.QueuedConnection)
        self.image: np.ndarray | None = None
        self.image_path: Path | None = None  # None: pasted (written out when added to a store)
        self.trace: PipelineTrace | None = None
        self.stage1_cache: AskCache | None = None  # the last ask's, for the What-if tab
        self._running = False
        self._latest: dict[str, Any] = {}  # written by the worker, read on the GUI thread
        self._partial_shown = False
        self._on_canvas = False  # the canvas shows the ask image (not a store sample)
        bar.ask_requested.connect(self.ask)
        bar.cancel_requested.connect(self.cancel)
        bar.add_requested.connect(self.add_to_store)
        jobs.progress.connect(self._on_progress)
        jobs.busy_changed.connect(self._on_busy)

    # ------------------------------------------------------------------------- the image
    def open_image(self, path: str | Path) -> bool:
        """Read an image file with the project's reader; an unreadable one is reported."""
        from core.images import ImageError, load_image_rgb

        try:
            image = load_image_rgb(path)
        except ImageError as exc:
            self.status.emit(str(exc))
            return False
        self.set_image(image, Path(path))
        return True

    def choose_image(self, parent: Any = None) -> bool:
        """File → Open image…: a file dialog, then :meth:`open_image`."""
        from PySide6 import QtWidgets

        from rea2seg_gui.file_types import IMAGE_FILTER

        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            parent, "Open image for Ask", "", IMAGE_FILTER
        )
        return bool(path) and self.open_image(path)

    @staticmethod
    def dropped_file(mime: Any) -> str | None:
        """The first local file of a drag's data (``None``: nothing this window takes)."""
        if mime is None or not mime.hasUrls():
            return None
        return next((u.toLocalFile() for u in mime.urls() if u.isLocalFile()), None)

    def paste(self) -> bool:
        """Show the clipboard's image file (a copied file) or image (a copied picture) for
        asking; False, with a status line, when it holds neither."""
        from PySide6 import QtWidgets

        clipboard = QtWidgets.QApplication.clipboard()
        data = clipboard.mimeData()
        if data is not None and data.hasUrls():
            for url in data.urls():
                if url.isLocalFile():
                    return self.open_image(url.toLocalFile())
        img = clipboard.image()
        if img.isNull():
            self.status.emit("the clipboard holds no image")
            return False
        self.set_image(qimage_rgb(img))
        return True

    def set_image(self, image_rgb: np.ndarray, path: Path | None = None) -> None:
        """Show ``image_rgb`` (uint8 (H, W, 3) RGB) for asking; ``path`` its file, if any."""
        if self._running:
            self.status.emit("an ask is running; cancel it first")
            return
        self.image, self.image_path, self.trace = np.ascontiguousarray(image_rgb), path, None
        self.stage1_cache = None  # another image: its memory can go
        self._on_canvas = True
        canvas = self.viewer.canvas
        canvas.set_image(self.image)
        canvas.set_trace(None)
        self.viewer.show_banner(None)
        self.viewer.image_error.setVisible(False)
        self.viewer.show_question("")
        self._show_panels(None)
        self.bar.set_has_image(True)
        self.bar.set_can_add(False)
        h, w = self.image.shape[:2]
        where = path.name if path is not None else "pasted image"
        self.bar.show_stage(f"{where}, {w}x{h}")
        self.bar.question.setFocus()
        self.image_shown.emit((h, w))

    def cache_for(
        self, image: np.ndarray | None, question: str, preset: str, segmenter: Any
    ) -> Any:
        """The last ask's :class:`core.pipeline.tune.Stage1Cache` when it was made on ``image``
        (the same array), ``question`` (stripped), ``preset`` and ``segmenter`` (the same
        object); else ``None``."""
        rec = self.stage1_cache
        if rec is None or segmenter is None or image is None:
            return None
        if rec.image is not image or rec.preset != preset or rec.segmenter is not segmenter:
            return None
        return rec.cache if rec.cache.question == question.strip() else None

    def leave_canvas(self) -> None:
        """The canvas now shows something else (a store sample): the ask draws nothing more
        there until its image is shown again (the next ask shows it)."""
        self._on_canvas = False

    # --------------------------------------------------------------------------- asking
    def ask(self, question: str) -> bool:
        """Start an ask on the image shown; False when there is none or a job is running."""
        from core.pipeline.ask import ask
        from core.pipeline.settings import Stage2Settings

        if self.image is None or not question.strip():
            return False
        if self._running:
            return False
        if not self._on_canvas:
            self.set_image(self.image, self.image_path)
        import_model_stack()
        preset, ev_name, cot, group_size = self._choice()
        models, image, latest = self.models, self.image, self._latest
        stage2 = Stage2Settings(ev_name, cot=cot, group_size=group_size)
        latest.clear()
        self.stage1_cache = None  # replaced by this ask's, if it leaves one
        self._ask_no += 1
        number, relay, plan_memory = self._ask_no, self._relay, self.plan_memory

        def job(progress, should_cancel):
            def emit(item: object) -> None:
                relay.item.emit(number, item)

            plan = plan_memory(models, preset, ev_name) if ev_name else None
            together = plan is None or plan.together
            if not together:
                emit(plan.message)
            progress(0, 100, f"loading {preset}")
            segmenter = models.segmenter(preset)
            evaluator = models.evaluator(ev_name) if ev_name and together else None

            def load_evaluator():
                models.release_segmenter(preset)
                emit(f"stage 1 done; segmenter freed, loading {ev_name}…")
                return models.evaluator(ev_name)

            def on_stage(stage: str, fraction: float, trace: PipelineTrace | None) -> None:
                if trace is not None:
                    latest["trace"] = trace
                progress(int(round(fraction * 100)), 100, stage)

            def keep(cache: Any) -> None:
                latest["cache"] = AskCache(cache, image, preset, segmenter)

            return ask(
                image,
                question,
                segmenter,
                evaluator=evaluator,
                stage2=stage2,
                progress=on_stage,
                should_cancel=should_cancel,
                partial=emit,
                load_evaluator=None if together or not ev_name else load_evaluator,
                # a segmenter freed after stage 1 must not stay alive in a kept cache
                stage1_cache=keep if together else None,
            )

        self._partial_shown = False
        h, w = self.image.shape[:2]
        self.live = LiveTrace(question.strip(), (h, w), preset, _is_random(preset))
        self._dirty.clear()
        self._running = True  # before start: busy_changed is emitted from it
        if not self.jobs.start(job, self._done, "Ask", self._failed):
            self._running = False
            self.status.emit(f"{self.jobs.name} is still running")
            return False
        self.trace = None
        self.viewer.canvas.set_trace(None)
        self.viewer.canvas.set_mask("candidate", None)
        self._show_panels(None)
        self.viewer.show_question(question.strip())
        self.bar.set_can_add(False)
        self.bar.show_stage(f"loading {preset}…")
        return True

    def cancel(self) -> None:
        if self._running and self.jobs.cancel():
            self.bar.show_stage("cancelling…")

    def _on_busy(self, busy: bool, _cancellable: bool) -> None:
        self.bar.set_busy(busy and self._running)
        if not busy:
            self.bar.set_has_image(self.image is not None)

    def _on_progress(self, done: int, total: int, label: str) -> None:
        if not self._running:
            return
        if label in STAGE_LABELS:
            self.bar.show_stage(f"{done}% {STAGE_LABELS[label]}")
        trace = self._latest.get("trace")
        if trace is not None and not self._partial_shown:
            # stage 1 is complete: draw heatmap, seeds, k-core and candidates now
            self._partial_shown = True
            self._draw(trace)
            self.partial.emit(trace)

    # ---------------------------------------------------------------- partial results
    def _on_partial(self, number: int, item: object) -> None:
        """One partial result of ask ``number`` (older asks' late results are dropped)."""
        if number != self._ask_no or not self._running or self.live is None:
            return
        if isinstance(item, str):  # a note: the memory plan, the evaluator loading later
            self.bar.show_stage(item)
            self.status.emit(f"Ask: {item}")
            return
        kind = self.live.apply(item)
        self._dirty.add(kind)
        if not self._flush_pending:
            self._flush_pending = True
            QtCore.QTimer.singleShot(0, self._flush)
        self.updated.emit(kind)

    def _flush(self) -> None:
        """Draw what arrived since the last draw (several results, one redraw)."""
        self._flush_pending = False
        dirty, self._dirty = self._dirty, set()
        live = self.live
        if live is None or not self._running or not dirty:
            return
        trace = live.trace()
        if dirty & _STAGE1_KINDS and self._on_canvas:
            self.viewer.canvas.set_trace(trace)
            if trace.is_random or live.is_random:
                self._banner(True)
        if "candidate" in dirty or "stage1" in dirty:
            if self.candidates_panel is not None:
                self.candidates_panel.show_trace(trace, self.image)
            if self._on_canvas and trace.candidates and trace.evaluator is None:
                self.viewer.canvas.set_mask("candidate", trace.candidates[-1].mask)
            if "candidate" in dirty and trace.candidates:
                n = live.candidates[-1].id + 1
                self.bar.show_stage(f"candidate {n} found")
        if dirty & _EVALUATOR_KINDS and self.evaluator_panel is not None:
            if dirty & {"group_started", "group"}:
                self.evaluator_panel.show_trace(trace, self.image)
                g = live.pending
                if g is not None:
                    self.evaluator_panel.show_pending(g.index, g.candidate_ids, g.padded)
            if live.scoring is not None:
                i = live.scoring
                self.evaluator_panel.show_streaming(i, live.n_groups, live.reasoning.get(i, ""))
                self.bar.show_stage(f"stage 2: group {i + 1} of {live.n_groups}…")

    def _show_panels(self, trace: PipelineTrace | None) -> None:
        if self.candidates_panel is not None:
            if self._on_canvas and self.candidates_panel.run_ids() != [None]:
                self.candidates_panel.show_runs([(None, "this ask (not saved)")])
            self.candidates_panel.show_trace(trace, self.image)
        if self.evaluator_panel is not None:
            self.evaluator_panel.show_trace(trace, self.image)

    def _banner(self, random: bool) -> None:
        self.viewer.show_banner(
            "RANDOM WEIGHTS — not a result  ·  this answer comes from random-init models"
            if random
            else None
        )

    def _draw(self, trace: PipelineTrace) -> None:
        from core.evaluator.stage2 import answer_mask

        if not self._on_canvas:
            return
        canvas = self.viewer.canvas
        canvas.set_trace(trace)
        canvas.set_mask("candidate", answer_mask(trace) if trace.evaluator is not None else None)
        ev = trace.evaluator
        self._banner(bool(trace.is_random or (ev is not None and ev.is_random)))

    def _done(self, trace: PipelineTrace) -> None:
        from core.pipeline.ask import answer_id

        self._running = False
        self.trace = trace
        self.stage1_cache = self._latest.get("cache")
        self._draw(trace)
        self._show_panels(trace)
        if trace.evaluator is None and self._on_canvas:
            from core.evaluator.stage2 import answer_mask

            self.viewer.canvas.set_mask("candidate", answer_mask(trace))
        aid = answer_id(trace)
        seconds = trace.timings.get("ask_total", 0.0)
        what = f"candidate {aid}" if aid is not None else "the initial mask M"
        self.bar.show_stage(f"answer: {what} ({len(trace.candidates)} candidates, {seconds:.1f} s)")
        self.bar.set_can_add(True)
        self.answered.emit(trace)

    def _failed(self, msg: str) -> None:
        self._running = False
        self.stage1_cache = self._latest.get("cache")  # stage 1 was complete when it was kept
        first = msg.splitlines()[0] if msg else "failed"
        self.bar.show_stage("cancelled" if "Cancelled" in first else "failed")
        self.status.emit(f"Ask: {first}")

    # ---------------------------------------------------------------------- keeping it
    def add_to_store(self) -> tuple[int, int] | None:
        """Save the answer as a sample of dataset ``ask`` with a run and its trace; a pasted
        image is first written as a PNG under the user data folder (``ask-images``)."""
        from core.pipeline.ask import save_answer

        if self.trace is None or self.image is None or self._running:
            return None
        path = self.image_path or self._write_pasted(self.image)
        try:
            sample_id, run_id = save_answer(self._store(), self.trace, path)
        except (ValueError, OSError) as exc:
            self.status.emit(f"Add to store failed: {exc}")
            return None
        self.image_path = path
        self.bar.set_can_add(False)
        self.bar.show_stage(f"saved as sample {sample_id} (run {run_id})")
        self.saved.emit(sample_id, run_id)
        return sample_id, run_id

    @staticmethod
    def _write_pasted(image: np.ndarray) -> Path:
        import cv2

        from core.fileio import atomic_write
        from core.paths import data_dir

        ok, data = cv2.imencode(".png", image[:, :, ::-1])
        if not ok:
            raise OSError("cannot encode the pasted image as PNG")
        raw = data.tobytes()
        folder = data_dir() / "ask-images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"pasted-{hashlib.sha256(raw).hexdigest()[:16]}.png"
        if not path.exists():
            atomic_write(path, raw)
        return path
