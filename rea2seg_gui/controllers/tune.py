"""What-if on stage 1 from the GUI: prepare once (MLLM forward + SAM embedding,
:func:`core.pipeline.tune.prepare_stage1`), then re-tune on every change
(:func:`core.pipeline.tune.retune`), off the GUI thread.

Both run in the window's job runner, so they never overlap a run or an ask on the same models.
Right after an ask on the image shown, with the same question, preset and segmenter, Prepare
adopts the ask's stage-1 cache (:attr:`rea2seg_gui.controllers.ask.AskController.stage1_cache`)
and runs no MLLM forward or SAM embedding.
Edits are debounced (:data:`DEBOUNCE_MS`) and the latest wins: while a re-tune runs, newer edits
wait as one pending request, and a result that a newer request has overtaken is dropped.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6 import QtCore

from core.pipeline.cache import ModelCache
from core.pipeline.settings import Stage1Settings
from core.trace import PipelineTrace
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.preload import import_model_stack
from rea2seg_gui.panels.tune import TunePanel

DEBOUNCE_MS = 150
"""Quiet time after an edit before a re-tune starts (not from the paper)."""


def _holds(cache: Any, settings: Stage1Settings) -> bool:
    """``cache`` can be re-tuned with ``settings`` (its layers and heads are there)."""
    try:
        cache.check(settings)
    except ValueError:  # NeedsForward included
        return False
    return True


class TuneController(QtCore.QObject):
    """``prepared(cache)``, ``retuned(trace)`` (the latest settings' trace only),
    ``apply_requested(preset, overrides)`` and ``status(text)``."""

    prepared = QtCore.Signal(object)
    retuned = QtCore.Signal(object)
    apply_requested = QtCore.Signal(str, dict)
    status = QtCore.Signal(str)

    def __init__(
        self,
        jobs: JobRunner,
        models: ModelCache,
        panel: TunePanel,
        parent: QtCore.QObject | None = None,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        super().__init__(parent)
        self.jobs, self.models, self.panel = jobs, models, panel
        self.cache: Any = None  # core.pipeline.tune.Stage1Cache
        self.base: Stage1Settings | None = None
        self.settings: Stage1Settings | None = None  # of the trace shown
        self.trace: PipelineTrace | None = None
        self.gt: np.ndarray | None = None
        self.ignore: np.ndarray | None = None
        self._pending: Stage1Settings | None = None
        self._requested: Stage1Settings | None = None  # the newest settings asked for
        self._generation = 0  # of the latest re-tune started
        self._preparing = False
        self._source: tuple[str, object] | None = None
        self.retunes_started = 0
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._request)
        panel.settings_changed.connect(self._timer.start)
        panel.apply_requested.connect(self.apply)
        jobs.busy_changed.connect(self._on_busy)

    # ------------------------------------------------------------------------- prepare
    def prepare(
        self,
        image_rgb: np.ndarray,
        question: str,
        preset: str,
        *,
        gt: np.ndarray | None = None,
        ignore: np.ndarray | None = None,
        is_sentence: bool | None = None,
        source: str = "",
        cache: Any = None,
    ) -> bool:
        """The expensive part for ``image_rgb`` (uint8 (H, W, 3)) and ``question`` with
        ``preset``'s models, then a first re-tune with the settings a run of the preset uses.
        ``gt`` / ``ignore``: bool (H, W) for the true IoUs. ``cache``: a
        :class:`core.pipeline.tune.Stage1Cache` already made for this image, question and
        preset (an ask's), adopted instead of the expensive part when it holds the layers those
        settings need. False when a job is running."""
        from core.models.config import preset_stage1
        from core.pipeline.settings import run_defaults
        from core.pipeline.tune import prepare_stage1, retune

        if not question.strip():
            self.status.emit("What-if: type a question first")
            self.panel.show_error("Type a question first (the Ask bar, or a sample's question).")
            return False
        import_model_stack()
        models, image, given = self.models, np.ascontiguousarray(image_rgb), cache

        def job(progress, should_cancel):
            progress(0, 3, f"loading {preset}")
            seg = models.segmenter(preset)
            base = run_defaults(str(seg.sam.kind), bool(seg.is_random), **preset_stage1(seg.preset))
            with models.sam_lock(seg.sam):
                cache = given if given is not None and _holds(given, base) else None
                if cache is None:
                    cache = prepare_stage1(
                        seg.prompt_model,
                        seg.sam,
                        image,
                        question.strip(),
                        base,
                        preset=seg.preset,
                        is_sentence=is_sentence,
                        progress=lambda step, f: progress(int(f * 3), 3, step),
                        should_cancel=should_cancel,
                    )
                trace = retune(cache, base)
            return cache, base, trace, cache is given

        def done(result) -> None:
            self._preparing = False
            self.panel.set_preparing(False)
            cache, base, trace, adopted = result
            self.cache, self.base, self.gt, self.ignore = cache, base, gt, ignore
            self._pending, self._requested = None, base
            self.panel.show_settings(base.to_dict())
            self.panel.set_ready(True)
            self.panel.show_error("")
            from core.pipeline.tune import format_indices

            self.panel.show_source(
                f"{source or 'image'} · {cache.preset} · “{cache.question}” · attention of "
                f"layers {format_indices(cache.cached_layers)} cached"
                + (" · from the ask (no new MLLM forward)" if adopted else "")
                + (" · RANDOM WEIGHTS: noise, not a result" if cache.is_random else "")
            )
            self.prepared.emit(cache)
            self._show(base, trace)
            self._prefill_next()

        def failed(msg: str) -> None:
            self._preparing = False
            self.panel.set_preparing(False)
            self.panel.show_error(f"Prepare failed: {msg.splitlines()[0] if msg else ''}")

        if not self.jobs.start(job, done, "What-if prepare", failed):
            self.status.emit(f"{self.jobs.name} is still running")
            return False
        self._preparing = True
        self.panel.set_preparing(True)
        self.panel.show_error("")
        return True

    def prepare_shown(
        self, asking: Any, state: Any, store: Any, preset: str, ask_question: str
    ) -> bool:
        """Prepare for what the canvas shows: the Ask image (``asking``, an
        :class:`~rea2seg_gui.controllers.ask.AskController`) with ``ask_question``, else the
        current sample of ``state`` (a :class:`~rea2seg_gui.controllers.state.SampleState`) with
        its question, ReasonSeg flag and ground truth from ``store``."""
        from core.store import repo

        if getattr(asking, "_on_canvas", False) and asking.image is not None:
            path = asking.image_path
            ok = self.prepare(
                asking.image,
                ask_question,
                preset,
                source=path.name if path is not None else "pasted image",
                cache=asking.cache_for(
                    asking.image, ask_question, preset, self.models.loaded_segmenter(preset)
                ),
            )
            key: tuple[str, object] = ("ask", asking.image)
        elif state.image is not None and state.sample_id is not None:
            sid = state.sample_id

            def read(s: Any) -> tuple[str, bool | None]:
                sample = repo.get_sample(s, sid)
                return sample.question, sample.is_sentence

            question, is_sentence = store.run(read, write=False)
            ok = self.prepare(
                state.image,
                question,
                preset,
                gt=state.gt,
                ignore=state.ignore,
                is_sentence=is_sentence,
                source=f"sample {sid}",
            )
            key = ("sample", sid)
        else:
            self.panel.show_error("Open an image (Ask bar) or pick a sample first.")
            return False
        if ok:
            self._source = key
        return ok

    def source_shown(self, asking: Any, state: Any) -> bool:
        """The canvas still shows the image the cache was prepared on."""
        kind, key = self._source or ("", None)
        if kind == "ask":
            return bool(getattr(asking, "_on_canvas", False)) and asking.image is key
        return kind == "sample" and state.sample_id == key

    # -------------------------------------------------------------------------- retune
    def settings_from_panel(self) -> Stage1Settings:
        """The panel's fields over the prepared base settings; ``ValueError`` (one line) for a
        bad combination, :class:`core.pipeline.tune.NeedsForward` for layers not cached."""
        if self.cache is None or self.base is None:
            raise ValueError("prepare first")
        s = Stage1Settings.from_dict({**self.base.to_dict(), **self.panel.values()})
        self.cache.check(s)
        return s

    def _request(self) -> None:
        """The debounced edit: validate, then re-tune now or after the running job."""
        try:
            s = self.settings_from_panel()
        except ValueError as exc:
            self.panel.show_error(str(exc))
            return
        self.panel.show_error("")
        if s == self._requested:  # shown, running or waiting already
            return
        self._pending = self._requested = s
        self._kick()

    def _kick(self) -> None:
        from core.pipeline.tune import retune

        if self._pending is None or self.cache is None or self.jobs.busy:
            return  # a busy runner calls back through busy_changed when it ends
        s, self._pending = self._pending, None
        self._generation += 1
        generation, cache, models = self._generation, self.cache, self.models
        self.retunes_started += 1

        def job(_progress, should_cancel):
            t0 = time.perf_counter()
            with models.sam_lock(cache.sam):
                trace = retune(cache, s, should_cancel=should_cancel)
            return trace, time.perf_counter() - t0

        def done(result) -> None:
            if generation == self._generation and self._pending is None:
                self._show(s, result[0], result[1])

        def failed(msg: str) -> None:
            if generation == self._generation:
                self.panel.show_error(msg.splitlines()[0] if msg else "re-tune failed")

        self.jobs.start(job, done, "What-if", failed)

    def _on_busy(self, busy: bool, _cancellable: bool) -> None:
        if not busy:
            self._kick()
            self._prefill_next()

    # ---------------------------------------------------------------------- seed bank
    def _prefill_next(self) -> None:
        """Decode the next chunk of token centre seeds into the cache's seed bank as a
        background job (:func:`core.pipeline.tune_prefill.prefill_seed_bank`), when nothing else
        runs or waits; any other job cancels it and it goes on when that job has ended."""
        from core.pipeline.tune_prefill import PREFILL_CHUNK, bank_progress, prefill_seed_bank

        cache, s = self.cache, self.settings or self.base
        if cache is None or s is None or cache.seed_bank() is None or cache.bank.full():
            return
        if self._pending is not None or self._timer.isActive():
            return  # the re-tune first; busy_changed brings us back
        if self.jobs.busy or self.jobs.background_running:
            return
        held, total = bank_progress(cache, s)
        self._show_bank(held, total)
        if held >= total:
            return
        lock = self.models.sam_lock(cache.sam)

        def job(_progress, should_cancel):
            prefill_seed_bank(
                cache, s, max_seeds=PREFILL_CHUNK, lock=lock, should_cancel=should_cancel
            )
            return bank_progress(cache, s)

        def done(result) -> None:
            if cache is self.cache:
                self._show_bank(*result)
                QtCore.QTimer.singleShot(0, self._prefill_next)

        def failed(msg: str) -> None:
            if cache is self.cache and "cancel" not in msg.lower():
                self.panel.show_bank(f"seed bank stopped: {msg.splitlines()[0] if msg else ''}")

        self.jobs.start(job, done, "What-if seed bank", failed, background=True)

    def _show_bank(self, held: int, total: int) -> None:
        bank = self.cache.bank if self.cache is not None else None
        mib = (bank.nbytes if bank is not None else 0) / 2**20
        state = "complete" if held >= total else "filling in the background"
        self.panel.show_bank(
            f"seed bank: {held} of {total} token seeds decoded ({mib:.1f} MiB), {state}"
            + (
                " · full: the rest are decoded when needed"
                if bank is not None and bank.full()
                else ""
            )
        )

    def bank_filling(self) -> bool:
        """A seed-bank chunk is running (tests wait on it)."""
        return self.jobs.background_running

    def _show(self, s: Stage1Settings, trace: PipelineTrace, seconds: float | None = None) -> None:
        from core.pipeline.tune import best_true_iou, candidate_ious

        self.settings, self.trace = s, trace
        ious = best = None
        if self.gt is not None and self.gt.shape == tuple(trace.image_hw):
            ious = candidate_ious(trace, self.gt, self.ignore)
            best = best_true_iou(trace, self.gt, self.ignore)
        self.panel.show_result(
            trace, ious, best, trace.timings.get("retune", 0.0) if seconds is None else seconds
        )
        self.retuned.emit(trace)

    def busy(self) -> bool:
        """A re-tune is waiting or running (tests wait on it)."""
        return self._pending is not None or self._timer.isActive()

    # --------------------------------------------------------------------------- apply
    def apply(self) -> bool:
        """Ask for a run with the panel's settings (``apply_requested(preset, overrides)``);
        a bad field is reported in the panel and nothing starts."""
        try:
            s = self.settings_from_panel()
        except ValueError as exc:
            self.panel.show_error(str(exc))
            return False
        overrides = s.to_dict()
        overrides.pop("extra", None)
        self.apply_requested.emit(self.cache.preset, overrides)
        return True
