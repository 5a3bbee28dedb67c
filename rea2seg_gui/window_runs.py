"""The main window's runs: start one, open the demo run, compare, refresh the run lists and the
metrics tab (:class:`RunActions`, a part of :class:`~rea2seg_gui.main_window.MainWindow`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.store import repo

if TYPE_CHECKING:
    from core.trace import PipelineTrace


class RunActions:
    """Run actions of the main window; every attribute used here is made by the window."""

    def start_run(self) -> None:
        """Stage 1 (and stage 2 when an evaluator is chosen) on the selection or the whole project."""
        ids = None if self.run_panel.whole_project() else self.samples_panel.selected_ids()
        if ids is not None and not ids:
            self.run_panel.show_error("Select samples first, or choose 'Whole project'.")
            return
        if not self.runs.start(ids):
            self.statusBar().showMessage(f"{self.jobs.name} is still running")

    def open_demo_run(self, limit: int | None = None) -> bool:
        """Show the demo run (:data:`core.demo.DEMO_RUN_NAME`): select it when it is finished,
        else run it in the Run tab's worker and select it when it ends. False when another job
        is running. ``limit``: at most this many samples (tests)."""
        from core.demo import demo_run_request, finished_demo_run

        run_id = finished_demo_run(self.store)
        if run_id is not None:
            self._show_run(run_id)
            return True
        self._demo_pending = True
        if not self.runs.start_request(demo_run_request(limit)):
            self._demo_pending = False
            self.statusBar().showMessage(f"{self.jobs.name} is still running")
            return False
        self.statusBar().showMessage(
            "Preparing the demo: mini-geometric (small models trained on the synthetic "
            "geometric split) runs over the demo samples…"
        )
        return True

    def _show_run(self, run_id: int) -> None:
        """Select ``run_id`` in the Candidates tab and show its trace of the current sample
        (the first one of the list when none is shown)."""
        sid = self.state.sample_id
        if sid is None:
            ids = self.samples_panel.ids()
            if not ids:
                return
            sid = ids[0]
        self.review.show_sample(sid)
        if self.candidates_panel.select_run(run_id):
            self.review.load_trace()

    def _run_done(self, run_id: int, note: str, detail: str) -> None:
        if self._closing:  # the window closed while the run ended: nothing left to show
            return
        if detail:
            self.run_panel.show_error(detail)
        self.refresh_runs()
        if self.state.sample_id is not None:
            self.review.show_sample(self.state.sample_id)
        if self._demo_pending:
            self._demo_pending = False
            self._show_run(run_id)
        self.statusBar().showMessage(note)  # after the sample's own status line
        self.run_finished.emit(run_id)

    def rerun_and_compare(self) -> None:
        """Stage 1 on the current sample with the Run tab's parameters, shown beside its last trace."""
        if self.state.sample_id is None or self.state.trace is None:
            self.run_panel.show_error(
                "Pick a sample that already has a trace (choose its run in the Candidates tab)."
            )
            return
        self.run_panel.show_error("")
        self._compare_with = (
            self.state.trace,
            self.candidates_panel.run_title(),
            self.run_panel.preset_name(),
        )
        if not self.runs.compare(self.state.sample_id):
            self.statusBar().showMessage(f"{self.jobs.name} is still running")

    def _compared(self, run_id: int, new: PipelineTrace | None) -> None:
        from rea2seg_gui.dialogs import CompareDialog

        old, old_title, preset = self._compare_with
        if new is None:
            self.run_panel.show_error("The re-run produced no trace (cancelled?).")
            return
        self.compare_dialog = CompareDialog(
            self.state.image,
            self.state.gt,
            old,
            new,
            (old_title, f"#{run_id} {preset} (new parameters)"),
            self,
        )
        self.compare_dialog.show()
        self.refresh_runs()
        self.run_finished.emit(run_id)

    def _runs_compared(self, result) -> None:
        """Two existing runs side by side (the metrics tab's Compare runs…); nothing written."""
        from rea2seg_gui.run_compare import open_run_compare

        self.run_compare_dialog = open_run_compare(self, self.store, result)

    def refresh_runs(self) -> None:
        runs = self.store.run(
            lambda s: [(r.id, r.name, r.is_random) for r in repo.list_runs(s)], write=False
        )
        self.metrics_view.show_runs(
            [
                (rid, f"#{rid} {name}" + (" [random]" if rnd else ""))
                for rid, name, rnd in reversed(runs)
            ]
        )

    def compute_metrics(self) -> None:
        run_id = self.metrics_view.run_id()
        if run_id is None:
            self.refresh_runs()
            run_id = self.metrics_view.run_id()
            if run_id is None:
                self.statusBar().showMessage("no runs yet")
                return
        if not self.runs.compute_metrics(run_id, self.metrics_view.against()):
            self.statusBar().showMessage(f"{self.jobs.name} is still running")

    def show_adapter_training(self, path: str) -> None:
        """The metrics tab's evaluator-training plots for adapter folder ``path``."""
        from core.evaluator.quality import read_quality
        from core.training.common import read_loss_curve

        self.metrics_view.training.show_training(path, read_loss_curve(path), read_quality(path))
