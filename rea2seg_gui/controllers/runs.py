"""Runs from the GUI: stage 1 (+ stage 2) on a selection or the project, re-run-and-compare, metrics.

Runs are created through :func:`core.pipeline.runner.create_run` and executed by
:func:`core.pipeline.runner.run_samples` in the window's job runner; segmenters come from the
shared :class:`core.pipeline.cache.ModelCache`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from core.pipeline.cache import ModelCache
from core.store import Store, repo
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.preload import import_model_stack
from rea2seg_gui.panels.run import RunPanel


class RunController(QtCore.QObject):
    """``finished(run_id, note, skipped_text)``, ``compared(run_id, new_trace)``, ``metrics(result tuple)``,
    ``status(text)``."""

    finished = QtCore.Signal(int, str, str)
    compared = QtCore.Signal(int, object)
    metrics_ready = QtCore.Signal(object)
    status = QtCore.Signal(str)

    def __init__(
        self,
        jobs: JobRunner,
        models: ModelCache,
        panel: RunPanel,
        store: Callable[[], Store],
        config: Callable[[], dict[str, Any]],
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs, self.models, self.panel, self._store, self._config = (
            jobs,
            models,
            panel,
            store,
            config,
        )
        self.total = 0
        self.done = 0
        jobs.progress.connect(self._on_progress)

    def _on_progress(self, done: int, total: int, label: str) -> None:
        if label == "running":
            self.done, self.total = done, total

    def start(self, ids: list[int] | None) -> bool:
        """Stage 1 (and stage 2 when an evaluator is chosen) on ``ids`` (``None``: every sample)."""
        from core.pipeline.runner import Stage2Settings, create_run, default_settings, run_samples

        import_model_stack()
        p = self.panel
        preset, overrides, ev_preset = p.preset_name(), p.overrides(), p.evaluator()
        cot, group_size = p.cot(), p.group_size.value()
        store, models = self._store(), self.models
        cfg = self._config()
        p.show_error("")
        self.done, self.total = 0, 0

        def job(progress, should_cancel):
            progress(0, len(ids) if ids else 1, f"loading {preset}")
            seg = models.segmenter(preset)
            evaluator = None
            if ev_preset:
                from core.evaluator.presets import load_evaluator

                evaluator = load_evaluator(ev_preset, cfg, cot=cot)  # refused before the run row
            settings = default_settings(seg, **overrides)
            todo = (
                ids
                if ids is not None
                else store.run(lambda s: [x.id for x in repo.list_samples(s)], write=False)
            )
            stage2 = Stage2Settings(ev_preset, cot=cot, group_size=group_size)
            run_id = create_run(
                store,
                seg,
                settings,
                stage2=stage2,
                evaluator=evaluator,
                name=f"{preset}{' + ' + ev_preset if ev_preset else ''} (GUI)",
            )
            progress(0, len(todo), "running")
            skipped: list[tuple[int, str]] = []
            n = run_samples(
                store,
                seg,
                todo,
                run_id,
                settings,
                progress=progress,
                should_cancel=should_cancel,
                evaluator=evaluator,
                cot=cot,
                group_size=group_size,
                pad_last=stage2.pad_last,
                skipped=skipped,
            )
            return run_id, n, len(todo), skipped, should_cancel()

        def done(result) -> None:
            run_id, n, total, skipped, cancelled = result
            note = (
                f"run {run_id}: cancelled after {n} of {total} samples"
                if cancelled
                else f"run {run_id}: {n} of {total} samples done"
            )
            text = ""
            if skipped:
                note += f"; {len(skipped)} skipped"
                text = "Skipped samples:\n" + "\n".join(f"{sid}: {why}" for sid, why in skipped)
            if cancelled:
                text = (note + "\n" + text).strip()
            self.finished.emit(int(run_id), note, text)

        return self.jobs.start(job, done, "Run")

    def compare(self, sample_id: int) -> bool:
        """Stage 1 on one sample with the panel's parameters; ``compared`` carries the new trace."""
        from core.pipeline.runner import create_run, default_settings, run_samples

        import_model_stack()
        preset, overrides = self.panel.preset_name(), self.panel.values()
        store, models = self._store(), self.models

        def job(progress, should_cancel):
            seg = models.segmenter(preset)
            settings = default_settings(seg, **overrides)
            run_id = create_run(store, seg, settings, name=f"{preset} compare (GUI)")
            run_samples(
                store,
                seg,
                [sample_id],
                run_id,
                settings,
                progress=progress,
                should_cancel=should_cancel,
            )
            return run_id, store.run(lambda s: repo.load_trace(s, run_id, sample_id), write=False)

        return self.jobs.start(job, lambda r: self.compared.emit(int(r[0]), r[1]), "Compare")

    def cancel(self) -> None:
        if self.jobs.cancel():
            self.status.emit("cancelling after the current sample…")

    def compute_metrics(self, run_id: int, against: str = "gt") -> bool:
        """Metrics of ``run_id`` against ``"gt"`` or ``"reviewed"`` (as ``rea2seg eval --against``)."""
        from core.evaluator.evaluate import coverage_curve, evaluate_run, format_table

        store = self._store()

        def job(progress, should_cancel):
            res = evaluate_run(store, run_id, against=against)
            return res, coverage_curve(store, run_id, against=against), format_table(res)

        return self.jobs.start(job, self.metrics_ready.emit, "Metrics")
