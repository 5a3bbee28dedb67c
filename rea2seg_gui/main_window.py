"""The main window: docks and tabs, menus, and the wiring between panels and controllers (the
shortcuts are bound by :mod:`rea2seg_gui.key_bindings`).

Panels (:mod:`rea2seg_gui.panels`) only draw what they are given and emit what the user asked
for; controllers (:mod:`rea2seg_gui.controllers`) hold the logic: loading and read-ahead, mask
editing and SAM clicks, runs, and one job at a time in a worker thread. Every review action and
every finished mask edit is one store transaction, committed at once; Ctrl+Z undoes it through
the store's history.
"""

from __future__ import annotations

import getpass
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.benchmark.provenance import regenerate
from core.models.base import ModelLoadError
from core.pipeline.cache import ModelCache
from core.store import Store
from core.trace import PipelineTrace
from rea2seg_gui import gc_guard
from rea2seg_gui import models as gui_models
from rea2seg_gui import preferences as prefs
from rea2seg_gui import window_layout as layout
from rea2seg_gui.benchmark_actions import benchmark_menu
from rea2seg_gui.controllers.analytics import AnalyticsController
from rea2seg_gui.controllers.ask import AskController
from rea2seg_gui.controllers.editing import EditController
from rea2seg_gui.controllers.history import describe_provenance  # noqa: F401 - re-exported
from rea2seg_gui.controllers.jobs import JobRunner
from rea2seg_gui.controllers.loading import SampleLoader
from rea2seg_gui.controllers.refresh import RefreshController
from rea2seg_gui.controllers.review import Panels, ReviewController
from rea2seg_gui.controllers.runs import RunController
from rea2seg_gui.controllers.state import SampleState
from rea2seg_gui.controllers.text_prompt import TextPromptController
from rea2seg_gui.controllers.tune import TuneController
from rea2seg_gui.file_actions import FileActions
from rea2seg_gui.key_bindings import bind_keys, cheatsheet
from rea2seg_gui.layer_style import LayerStyle
from rea2seg_gui.memory_status import MemoryLabel
from rea2seg_gui.panels.ask import AskBar
from rea2seg_gui.panels.candidates import CandidatesPanel
from rea2seg_gui.panels.edit import EditPanel
from rea2seg_gui.panels.evaluator import EvaluatorPanel
from rea2seg_gui.panels.layers import LayersPanel
from rea2seg_gui.panels.metrics import MetricsView
from rea2seg_gui.panels.questions import QuestionsPanel
from rea2seg_gui.panels.reasoning import ReasoningPanel
from rea2seg_gui.panels.review import ReviewPanel
from rea2seg_gui.panels.run import RunPanel
from rea2seg_gui.panels.samples import SamplesPanel
from rea2seg_gui.panels.tune import TunePanel
from rea2seg_gui.panels.viewer import ViewerPanel
from rea2seg_gui.store_prompt import open_or_ask
from rea2seg_gui.window_runs import RunActions


def message(
    parent: QtWidgets.QWidget | None, title: str, text: str, *, error: bool = False
) -> None:
    """A modal message whose text is shown as plain text (it may quote user or model text)."""
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(
        QtWidgets.QMessageBox.Icon.Critical if error else QtWidgets.QMessageBox.Icon.Warning
    )
    box.setWindowTitle(title)
    box.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    box.setText(text)
    box.exec()


def _config_or_empty() -> dict[str, Any]:
    """The user config for a model load (a broken file is reported by the load itself)."""
    try:
        return gui_models.load_config()
    except ModelLoadError:
        return {}


class MainWindow(RunActions, QtWidgets.QMainWindow):
    """Docks (samples, inspector tabs, generated question), the viewer in the centre, menus and
    shortcuts. ``review`` (the review loop), ``editing``, ``runs``, ``jobs``, ``loader`` and
    ``models`` are the controllers; ``*_panel`` the panels. ``run_finished(run_id)`` and
    ``run_failed(message)`` report runs."""

    run_finished = QtCore.Signal(int)
    run_failed = QtCore.Signal(str)

    def __init__(
        self, store: Store, user: str | None = None, settings: QtCore.QSettings | None = None
    ) -> None:
        super().__init__()
        gc_guard.acquire()  # cycles (and the widgets in them) are collected on this thread only
        self._gc_held = True
        self.user = user or getpass.getuser() or "annotator"
        self.settings = settings or QtCore.QSettings("Rea2Seg", "Rea2Seg Studio")
        self.setWindowTitle(f"Rea2Seg Studio — {store.url}")
        self.state = SampleState()
        self.models = ModelCache(
            config=_config_or_empty
        )  # no reference to the window in worker jobs
        self.jobs = JobRunner(self)
        self.loader = SampleLoader(store, self)
        self._build()
        panels = Panels(
            self.samples_panel,
            self.review_panel,
            self.viewer,
            self.layers_panel,
            self.candidates_panel,
            self.evaluator_panel,
            self.edit_panel,
            self.questions_panel,
            self.tabs,
            self.reasoning_panel,
        )
        self.review = ReviewController(
            store, self.user, self.state, self.loader, panels, self._ask_text, self
        )
        self.editing = EditController(
            self.state,
            self.canvas,
            self.edit_panel,
            self.jobs,
            self.models,
            self.review.commit_mask,
            self.candidates_panel.selected_candidate,
            self.candidates_panel.run_id,
            self,
        )
        self.review.editing = self.editing
        self.text_prompt = TextPromptController(
            self.state,
            self.edit_panel.text_prompt,
            self.jobs,
            self.review.commit_mask,
            self.settings,
            self,
        )
        self.runs = RunController(self.jobs, self.models, self.run_panel, lambda: self.store, self)
        self._demo_pending = False  # open_demo_run: show the run when it ends
        self._closing = False
        self.analytics = AnalyticsController(
            self.jobs,
            self.metrics_view.analytics,
            self.samples_panel,
            lambda: self.store,
            self.metrics_view.against,
            self,
        )
        rp = self.run_panel
        self.asking = AskController(
            self.jobs,
            self.models,
            self.ask_bar,
            self.viewer,
            lambda: self.store,
            lambda: (rp.preset_name(), rp.evaluator(), rp.cot(), rp.group_size.value()),
            self,
            self.candidates_panel,
            self.evaluator_panel,
        )
        self.tuning = TuneController(self.jobs, self.models, self.tune_panel, self)
        self.refresher = RefreshController(
            self.review.refresh,
            self,
            lambda: QtWidgets.QApplication.activeModalWidget() is None,
            self,
        )
        self._wire()
        self.poly_fill_shortcuts = bind_keys(self)
        self.apply_preferences()
        self.refresh_presets()
        self.review.refresh_samples()
        self.refresh_runs()
        for key, restore in (
            ("window/geometry", self.restoreGeometry),
            ("window/state", self.restoreState),
        ):
            if self.settings.value(key) is not None:
                restore(self.settings.value(key))
        if self.settings.value("window/state") is not None:
            self.canvas_guard.keep_layout()  # the user's dock sizes
        # saved or default: never larger than the screen
        self.screen_clamp = layout.ScreenClamp(self)
        self._show_questions_dock()
        self._remember_recent(store.url)
        # the review keys work from the start: the sample list has the focus when the window
        # is activated (not the first filter box, where letters would pick a filter value)
        self.samples_panel.table.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)

    @property
    def store(self) -> Store:
        return self.review.store

    # ----------------------------------------------------------------------------- layout
    def _dock(
        self, title: str, name: str, widget: QtWidgets.QWidget, area
    ) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(name)
        layout.compact_combos(widget)  # a long choice never widens the dock
        bottom = area == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        dock.setWidget(layout.scrolled(widget) if bottom else widget)  # a low dock scrolls
        self.addDockWidget(area, dock)
        return dock

    def _build(self) -> None:
        self.resize(1500, 900)
        area = QtCore.Qt.DockWidgetArea
        self.samples_panel = SamplesPanel()
        self.samples_dock = self._dock(
            "Samples", "samples_dock", self.samples_panel, area.LeftDockWidgetArea
        )
        self.viewer = ViewerPanel()
        self.canvas = self.viewer.canvas
        self.setCentralWidget(self.viewer)
        self.review_panel = ReviewPanel()
        self.layers_panel = LayersPanel(self.canvas.visible, LayerStyle(self.canvas, self.settings))
        self.statusBar().addPermanentWidget(
            self.canvas.readout_label
        )  # the canvas's hover read-out
        self.memory_label = MemoryLabel()
        self.statusBar().addPermanentWidget(self.memory_label)
        self.candidates_panel = CandidatesPanel()
        self.evaluator_panel = EvaluatorPanel()
        self.edit_panel = EditPanel()
        self.run_panel = RunPanel()
        self.metrics_view = MetricsView()
        self.tune_panel = TunePanel()
        # each tab scrolls: no panel sets the window's minimum size
        self.tabs = layout.ScrollingTabs()
        for w, title in (
            (self.review_panel, "Review"),
            (self.layers_panel, "Layers"),
            (self.candidates_panel, "Candidates"),
            (self.evaluator_panel, "Evaluator"),
            (self.edit_panel, "Edit"),
            (self.run_panel, "Run"),
            (self.tune_panel, "What-if"),
            (self.metrics_view, "Metrics"),
        ):
            self.tabs.addTab(w, title)
        self.inspector_dock = self._dock(
            "Inspector", "inspector_dock", self.tabs, area.RightDockWidgetArea
        )
        self.resizeDocks(
            [self.samples_dock, self.inspector_dock], [330, 430], QtCore.Qt.Orientation.Horizontal
        )
        self.questions_panel = QuestionsPanel()
        self.questions_dock = self._dock(
            "Generated question", "questions_dock", self.questions_panel, area.BottomDockWidgetArea
        )
        self.reasoning_panel = ReasoningPanel()
        self.reasoning_dock = self._dock(
            "Training reasoning", "reasoning_dock", self.reasoning_panel, area.BottomDockWidgetArea
        )
        self.canvas_guard = layout.CanvasGuard(
            self,
            [self.samples_dock, self.inspector_dock],
            [self.questions_dock, self.reasoning_dock],
        )
        self.ask_bar = AskBar()
        self.ask_dock = self._dock("Ask", "ask_dock", self.ask_bar, area.TopDockWidgetArea)
        self.setAcceptDrops(True)  # an image file dropped on the window is shown for asking
        self.statusBar().showMessage("Ready")
        menu = self.menuBar().addMenu("&File")
        menu.addAction("&Open store…", self._open_dialog)
        menu.addAction("Open &image for Ask… (Ctrl+Shift+O)", self.open_ask_image)
        menu.addAction("&Paste image for Ask (Ctrl+Shift+V)", self.paste_ask_image)
        menu.addAction("Open store &URL…", self._open_url_dialog)
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.file_actions = FileActions(
            self,
            self.jobs,
            lambda: self.store,
            self.open_store,
            lambda: self.review.refresh_samples(),
        )
        self.file_actions.add_to(menu)
        self.file_actions.status.connect(self.statusBar().showMessage)
        menu.addAction("&Settings…", self.show_settings)
        menu.addAction("&Models…", self.show_models)
        menu.addSeparator()
        menu.addAction("&Quit", self.close)
        view = self.menuBar().addMenu("&View")
        for dock in (
            self.ask_dock,
            self.samples_dock,
            self.inspector_dock,
            self.questions_dock,
            self.reasoning_dock,
        ):
            view.addAction(dock.toggleViewAction())
        view.addAction("&Fit image (Ctrl+0)", self.canvas.fit)
        self.benchmark_actions = benchmark_menu(self)  # import COCO, generate, agreement
        self.review_panel.question_edit.escaped.connect(self.canvas.setFocus)
        self.menuBar().addMenu("&Help").addAction("Keyboard &shortcuts (F1)", self.show_cheatsheet)

    def _wire(self) -> None:
        lp, run, status = self.layers_panel, self.run_panel, self.statusBar().showMessage
        lp.visibility_changed.connect(self.canvas.set_layer_visible)
        lp.opacity_changed.connect(self.canvas.set_layer_opacity)
        self.candidates_panel.use_requested.connect(self.editing.use_candidate)
        self.review.status.connect(status)
        self.review.refused.connect(lambda text: message(self, "Rea2Seg Studio", text))
        for ctl in (self.editing, self.text_prompt):
            ctl.show_edited_layer.connect(lambda: lp.set_visible("edited", True))
            ctl.status.connect(status)
        run.preset_changed.connect(self._show_preset_defaults)
        run.start_requested.connect(self.start_run)
        run.cancel_requested.connect(self.runs.cancel)
        run.compare_requested.connect(self.rerun_and_compare)
        self.runs.status.connect(status)
        self.runs.finished.connect(self._run_done)
        self.runs.compared.connect(self._compared)
        self.runs.metrics_ready.connect(lambda r: self.metrics_view.show_result(*r))
        self.metrics_view.compute_button.clicked.connect(self.compute_metrics)
        self.metrics_view.training.adapter_chosen.connect(self.show_adapter_training)
        self.analytics.status.connect(status)
        self.analytics.compared.connect(self._runs_compared)
        self.jobs.progress.connect(self._on_progress)
        self.jobs.busy_changed.connect(run.set_busy)
        self.jobs.failed.connect(self._job_failed)
        self.questions_panel.regenerate_requested.connect(self._regenerate)
        self.reasoning_panel.reannotate_requested.connect(self._reannotate)
        self.ask_bar.open_requested.connect(self.open_ask_image)
        self.asking.status.connect(status)
        self.asking.saved.connect(self._ask_saved)
        self.asking.image_shown.connect(self._leave_sample)
        self.review.sample_shown.connect(self.asking.leave_canvas)
        self.samples_panel.import_requested.connect(
            lambda fmt: getattr(self.file_actions, f"import_{fmt}")()
        )
        self.tune_panel.prepare_requested.connect(self.prepare_tune)
        self.tuning.retuned.connect(self._show_tuned)
        self.tuning.apply_requested.connect(self._apply_tuned)
        self.tuning.status.connect(status)

    def _ask_text(self, title: str, label: str) -> tuple[str, bool]:
        with self.key_burst.guard_dialog():  # typing that opened it does not also close it
            return QtWidgets.QInputDialog.getText(self, title, label)

    # ----------------------------------------------------------------------------- presets
    def _config(self) -> dict[str, Any]:
        try:
            return gui_models.load_config()
        except ModelLoadError as exc:
            self.statusBar().showMessage(f"{exc} — fix it in File → Settings")
            return {}

    def refresh_presets(self) -> None:
        """Fill the preset pickers; presets that are not configured are disabled, the reason as tooltip."""
        from rea2seg_gui.panels.run import fill_presets

        cfg = self._config()
        presets = list(gui_models.segmenter_presets())
        self.run_panel.set_presets(
            presets,
            lambda n: gui_models.segmenter_problem(n, cfg),
            list(gui_models.evaluator_presets()),
            lambda n: gui_models.evaluator_problem(n, cfg),
        )
        fill_presets(self.edit_panel.sam_preset, presets, lambda n: gui_models.sam_problem(n, cfg))
        self._show_preset_defaults()

    def _show_preset_defaults(self) -> None:
        from core.pipeline.settings import preset_default_settings

        self.run_panel.show_defaults(
            preset_default_settings(self.run_panel.preset_name()).to_dict()
        )

    # --------------------------------------------------------------------------------- runs
    def _start(self, job, done, what: str, on_error=None) -> bool:
        if not self.jobs.start(job, done, what, on_error):
            self.statusBar().showMessage(f"{self.jobs.name} is still running")
            return False
        return True

    def _on_progress(self, done: int, total: int, label: str) -> None:
        self.run_panel.show_progress(done, total, label)
        self.statusBar().showMessage(f"{done}/{total} {label}")

    def _job_failed(self, what: str, msg: str) -> None:
        if what == "Run":
            self._demo_pending = False
        if what in ("Run", "Compare", "Metrics"):
            self.run_panel.show_error(f"{what} failed: {msg}")
            self.statusBar().showMessage(f"{what} failed — see the Run tab")
            self.run_failed.emit(msg)
        elif what != "Ask":  # the Ask controller reports its own
            self.statusBar().showMessage(f"{what} failed: {msg.splitlines()[0]}")

    def _regenerate(self, sid: int) -> None:
        def done(view) -> None:
            self.questions_panel.set_busy(False)
            self.statusBar().showMessage(f"sample {sid}: re-generated, verifier {view.verdict}")
            self.review.refresh_samples()
            self.review.after_change(sid)

        def failed(msg: str) -> None:
            self.questions_panel.set_busy(False)
            message(self, "Re-generation failed", msg, error=True)

        store, user = self.store, self.user
        if self._start(
            lambda progress, should_cancel: regenerate(store, sid, user=user),
            done,
            "re-generation",
            failed,
        ):
            self.questions_panel.set_busy(True)

    def _reannotate(self, sid: int) -> None:
        from core.evaldata.reannotate import reannotate

        def done(recs) -> None:
            self.reasoning_panel.set_busy(False)
            verdict = recs[-1].verdict if recs else "?"
            self.statusBar().showMessage(f"sample {sid}: re-annotated, {verdict}")
            self.review.refresh_samples()
            self.review.after_change(sid)

        def failed(msg: str) -> None:
            self.reasoning_panel.set_busy(False)
            message(self, "Re-annotation failed", msg, error=True)

        store, user = self.store, self.user
        if self._start(
            lambda progress, should_cancel: reannotate(store, sid, user=user),
            done,
            "re-annotation",
            failed,
        ):
            self.reasoning_panel.set_busy(True)

    def show_settings(self) -> None:
        from rea2seg_gui.dialogs import SettingsDialog

        dlg = SettingsDialog(self, preferences=self.settings)
        if dlg.exec():
            self.models.clear()  # reload models with the new paths on next use
            self.refresh_presets()
            self.apply_preferences()
            self.statusBar().showMessage(f"settings saved to {dlg.path}")

    def show_models(self) -> None:
        """File → Models…: checkpoint folders, device and dtype per model (config.toml)."""
        from rea2seg_gui.model_manager import ModelManagerDialog

        dlg = ModelManagerDialog(self)
        if dlg.exec():
            self.models.clear()  # loaded again with the new choices on next use
            self.refresh_presets()
            self.statusBar().showMessage(f"models saved to {dlg.path}")

    # ------------------------------------------------------------------------------- ask
    def open_ask_image(self) -> None:
        self.asking.choose_image(self)

    def paste_ask_image(self) -> bool:
        """Show the clipboard's image (or image file) for asking; False when it holds neither."""
        return self.asking.paste()

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if self.asking.dropped_file(ev.mimeData()):
            ev.acceptProposedAction()
        else:
            super().dragEnterEvent(ev)

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802 - Qt API
        path = self.asking.dropped_file(ev.mimeData())
        if path:
            ev.acceptProposedAction()
            self.asking.open_image(path)

    def _leave_sample(self, _hw: object = None) -> None:
        """The canvas shows an ask image: no store sample is current (review keys, edits and
        store refreshes leave it alone); choosing a sample in the list shows it again."""
        self.editing.reset()
        self.review.forget_sample()
        st = self.state
        st.sample_id = st.image = st.image_error = st.image_path = None
        st.gt = st.ignore = st.edit_mask = st.trace = st.run_id = None
        self.samples_panel.forget_current()
        self.samples_panel.table.clearSelection()

    def _ask_saved(self, sample_id: int, run_id: int) -> None:
        """The kept answer is now an ordinary sample: shown as one, with its run and trace."""
        self.review.refresh_samples()
        self.refresh_runs()
        if not self.samples_panel.select(sample_id):  # filtered out of the list
            self.review.show_sample(sample_id)
        self.statusBar().showMessage(f"the answer is saved as sample {sample_id} (run {run_id})")

    # -------------------------------------------------------------------------- what-if
    def prepare_tune(self) -> bool:
        """Prepare the What-if tab for what the canvas shows (the Ask image and question, else
        the current sample with its question and ground truth)."""
        return self.tuning.prepare_shown(
            self.asking,
            self.state,
            self.store,
            self.run_panel.preset_name(),
            self.ask_bar.question.text(),
        )

    def _show_tuned(self, trace: PipelineTrace) -> None:
        if self.tuning.source_shown(self.asking, self.state) and self.canvas.hw == tuple(
            trace.image_hw
        ):
            self.canvas.set_trace(trace)

    def _apply_tuned(self, preset: str, overrides: dict) -> None:
        """Start a run with the What-if settings on the Run tab's scope and evaluator."""
        ids = None if self.run_panel.whole_project() else self.samples_panel.selected_ids()
        if ids is not None and not ids:
            self.tune_panel.show_error("Select samples first, or choose 'Whole project' (Run tab).")
            return
        if self.runs.start(ids, preset=preset, overrides=overrides, label="what-if"):
            self.statusBar().showMessage(f"run started with the What-if settings ({preset})")
        else:
            self.statusBar().showMessage(f"{self.jobs.name} is still running")

    # ------------------------------------------------------------------------------ misc
    def show_cheatsheet(self) -> None:
        self.cheatsheet = cheatsheet(self)

    def _remember_recent(self, url: str) -> None:
        recent = [u for u in (self.settings.value("recent", []) or []) if u != url]
        self.settings.setValue("recent", [url, *recent][:8])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for u in self.settings.value("recent", []) or []:
            self.recent_menu.addAction(u, lambda u=u: self.open_store(u))

    def _open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open store", "", "Stores (*.sqlite *.db);;All files (*)"
        )
        if path:
            self.open_store(path)

    def _open_url_dialog(self) -> None:
        url, ok = QtWidgets.QInputDialog.getText(
            self, "Open store URL", "SQLAlchemy URL (e.g. postgresql+psycopg://user@host/rea2seg):"
        )
        if ok and url.strip():
            self.open_store(url.strip())

    def open_store(self, url: str, create: bool = False) -> bool:
        """Switch to another store; one that cannot be opened is explained and the open one kept.
        A missing store is created when ``create`` (File → New store), else only after asking."""
        from core.store import StoreError

        if self.jobs.busy:
            message(
                self,
                "Cannot open store",
                f"{self.jobs.name} is running on this store; wait for it or cancel it.",
            )
            return False
        try:
            store = open_or_ask(self, url, create=create)
        except (StoreError, ValueError, OSError) as exc:
            message(self, "Cannot open store", str(exc), error=True)
            return False
        if store is None:  # "create a new store?" — No: the open store stays
            self.statusBar().showMessage(f"{url}: no store there; nothing was created")
            return False
        old = self.store
        self.review.set_store(store)
        old.close()
        self.setWindowTitle(f"Rea2Seg Studio — {store.url}")
        self._remember_recent(store.url)
        self.review.refresh_samples()
        self.refresh_runs()
        self._show_questions_dock()
        return True

    def _show_questions_dock(self) -> None:
        """The generated-question dock is shown for stores with generated questions only (View
        menu to show it anyway)."""
        from core.benchmark.provenance import has_generations
        from core.evaldata.provenance import has_annotations

        self.questions_dock.setVisible(has_generations(self.store))
        self.reasoning_dock.setVisible(has_annotations(self.store))

    def apply_preferences(self) -> None:
        """Read the review preferences (File → Settings) into the controllers."""
        self.review.ask_reject_reason = bool(prefs.read(self.settings, prefs.ASK_REJECT_REASON))
        self.refresher.set_interval(int(prefs.read(self.settings, prefs.REFRESH_INTERVAL_S)))
        self.key_burst.interval_ms = int(prefs.read(self.settings, prefs.KEY_BURST_MS))

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        self._closing = True  # a run's result that arrives later is dropped (window_runs)
        self._demo_pending = False
        self.refresher.timer.stop()
        self.jobs.shutdown()
        self.loader.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        super().closeEvent(ev)
        if self._gc_held:
            self._gc_held = False
            gc_guard.release()
