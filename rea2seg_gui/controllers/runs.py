"""Runs from the GUI: stage 1 (+ stage 2) on a selection or the project, re-run-and-compare, metrics.

A run is planned by :func:`core.pipeline.plan.plan_run` and executed by a
:class:`core.pipeline.engine.LocalEngine` in the window's job runner, as ``rea2seg run`` does;
segmenters and evaluators come from the shared :class:`core.pipeline.cache.ModelCache`, so a
second run reuses the models the first one loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6 import QtCore

from core.pipeline.cache import ModelCache
from core.store import Store, repo
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.preload import import_model_stack
from rea2seg_gui.panels.run import BUILDING, RunPanel


def build_models(
    models: ModelCache,
    preset: str,
    evaluator: str | None,
    progress: Callable[[int, int, str], None],
    total: int,
) -> None:
    """Load the run's segmenter and evaluator into ``models`` (on first use a tiny random preset
    builds its models first), each step said through ``progress(0, total, label)`` with a label
    that starts with :data:`~rea2seg_gui.panels.run.BUILDING`; the run then finds them loaded.
    Raises what the loaders raise (e.g. :class:`core.models.base.ModelLoadError`)."""
    from core.models.config import canonical_preset

    name = canonical_preset(preset)
    steps = [("segmenter", name, models.segmenter)]
    if evaluator:
        steps.append(("evaluator", evaluator, models.evaluator))
    for i, (what, which, load) in enumerate(steps, 1):
        progress(0, total, f"{BUILDING} {i}/{len(steps)}: {what} {which}…")
        load(which)
    progress(0, total, "models ready")


if TYPE_CHECKING:
    from core.pipeline.plan import RunRequest


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
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        # the models (and the config they load with) come from the window's ModelCache
        self.jobs, self.models, self.panel, self._store = jobs, models, panel, store
        self.total = 0
        self.done = 0
        jobs.progress.connect(self._on_progress)

    def _on_progress(self, done: int, total: int, label: str) -> None:
        if label == "running":
            self.done, self.total = done, total

    def start(
        self,
        ids: list[int] | None,
        *,
        preset: str | None = None,
        overrides: dict | None = None,
        label: str = "GUI",
    ) -> bool:
        """Stage 1 (and stage 2 when an evaluator is chosen) on ``ids`` (``None``: every sample).
        ``preset`` / ``overrides``: instead of the panel's (the what-if panel's settings);
        ``label``: the run name's suffix."""
        from core.pipeline.plan import RunRequest
        from core.pipeline.settings import Stage2Settings

        p = self.panel
        preset, ev_preset = preset or p.preset_name(), p.evaluator()
        request = RunRequest(
            preset,
            stage2=Stage2Settings(ev_preset, cot=p.cot(), group_size=p.group_size.value()),
            overrides=p.overrides() if overrides is None else overrides,
            samples=ids,
            name=f"{preset}{' + ' + ev_preset if ev_preset else ''} ({label})",
        )
        return self.start_request(request)

    def start_request(self, request: RunRequest) -> bool:
        """Plan ``request`` and run it in the job runner (``finished`` when it ends)."""
        from core.pipeline.engine import LocalEngine
        from core.pipeline.plan import plan_run

        import_model_stack()
        preset, ev_preset, ids = request.preset, request.stage2.evaluator, request.samples
        store, models = self._store(), self.models
        self.panel.show_error("")
        self.done, self.total = 0, 0

        def job(progress, should_cancel):
            build_models(models, preset, ev_preset, progress, len(ids) if ids else 1)
            engine = LocalEngine(models)
            plan = plan_run(store, request, engine)
            progress(0, len(plan.todo), "running")
            report = engine.run(store, plan, progress=progress, should_cancel=should_cancel)
            return plan, report

        def done(result) -> None:
            plan, report = result
            n, total = report.saved, len(plan.todo)
            note = (
                f"run {plan.run_id}: cancelled after {n} of {total} samples"
                if report.cancelled
                else f"run {plan.run_id}: {n} of {total} samples done"
            )
            text = ""
            if report.skipped:
                note += f"; {len(report.skipped)} skipped"
                text = "Skipped samples:\n" + "\n".join(
                    f"{sid}: {why}" for sid, why in report.skipped
                )
            if report.cancelled:
                text = (note + "\n" + text).strip()
            self.finished.emit(int(plan.run_id), note, text)

        return self.jobs.start(job, done, "Run")

    def compare(self, sample_id: int) -> bool:
        """Stage 1 on one sample with the panel's parameters; ``compared`` carries the new trace."""
        from core.pipeline.engine import LocalEngine
        from core.pipeline.plan import RunRequest, plan_run

        import_model_stack()
        preset = self.panel.preset_name()
        request = RunRequest(
            preset,
            overrides=self.panel.values(),
            samples=[sample_id],
            name=f"{preset} compare (GUI)",
        )
        store, models = self._store(), self.models

        def job(progress, should_cancel):
            build_models(models, preset, None, progress, 1)
            engine = LocalEngine(models)
            plan = plan_run(store, request, engine)
            engine.run(store, plan, progress=progress, should_cancel=should_cancel)
            return plan.run_id, store.run(
                lambda s: repo.load_trace(s, plan.run_id, sample_id), write=False
            )

        return self.jobs.start(job, lambda r: self.compared.emit(int(r[0]), r[1]), "Compare")

    def cancel(self) -> None:
        if self.jobs.cancel():
            self.status.emit("cancelling after the current sample…")

    def compute_metrics(self, run_id: int, against: str = "gt") -> bool:
        """Metrics of ``run_id`` against ``"gt"`` or ``"reviewed"`` (as ``rea2seg eval --against``)."""
        from core.analytics.runs import analyse_run, format_analytics
        from core.evaluator.evaluate import evaluate_run, format_table

        store = self._store()

        def job(progress, should_cancel):
            res = evaluate_run(store, run_id, against=against)
            extra, records = analyse_run(store, run_id, against=against)
            res.update(extra)  # failure classes, origins, ablations, coverage, intervals
            res["category_of"] = {r.sample_id: r.category for r in records}
            return res, res["coverage"], format_table(res) + "\n" + format_analytics(res)

        return self.jobs.start(job, self.metrics_ready.emit, "Metrics")
