"""The main window: sample list, canvas with trace layers, review / candidates / edit / run panels.

All data comes from ``core`` (store, review API, saved traces); long work (model loading,
stage-1/2 runs, SAM clicks, metrics) runs in :mod:`rea2seg_gui.worker` threads. Every review
action and every finished mask edit (a brush stroke, a polygon, a SAM click) is one store
transaction, committed at once: nothing is lost on a crash, and Ctrl+Z undoes it through the
store's history.
"""

from __future__ import annotations

import getpass
import html
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.benchmark.provenance import filter_by_verdict, latest_generation, regenerate
from core.evaluator.presets import EVALUATOR_PRESETS
from core.images import ImageError, load_image_rgb
from core.metrics import intersection_union, sample_iou
from core.models.base import ModelLoadError
from core.store import Store, repo, review
from core.store.models import CATEGORIES, STATUSES
from core.trace import PipelineTrace
from rea2seg_gui import models as gui_models
from rea2seg_gui import worker as workers
from rea2seg_gui.canvas import LAYERS, Canvas
from rea2seg_gui.panels.questions import VERDICT_FILTERS, QuestionsPanel

SHORTCUTS = (
    ("A", "Accept (verified) and go to the next sample"),
    ("R", "Reject and go to the next sample"),
    ("F", "Flag with a note (asked for when the Note field is empty) and go to the next sample"),
    ("Note field: Enter / Esc", "Accept with the typed note / leave the field"),
    ("N / Down", "Next sample"),
    ("P / Up", "Previous sample"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo the last change of this sample (status, question, mask)"),
    ("I, 1 … 9, 0", "Toggle a layer: image, ground truth, ignore, attention, … (Layers tab)"),
    ("Ctrl+0", "Fit the image to the view (wheel zooms, drag pans)"),
    ("B / E / L / S / Esc", "Tool: brush / eraser / polygon / SAM clicks / pan"),
    ("[ / ]", "Brush smaller / larger"),
    ("Polygon: click · Enter or double-click", "Add a vertex · fill the polygon (Shift+Enter erases it)"),
    ("SAM: left / right click", "Positive / negative point"),
    ("Backspace", "Polygon: remove the last vertex · SAM: undo the last click"),
    ("M", "SAM: re-prompt with the chosen mask prompt alone (no clicks)"),
    ("F1 or ?", "This cheat sheet"),
)
SAM_PROMPTS = (
    ("none", "no mask prompt"),
    ("current", "current mask (edited, else ground truth)"),
    ("candidate", "selected candidate"),
    ("gt", "ground truth"),
)
MASK_PROMPT_LOGIT = 10.0  # a binary mask given to SAM as a mask prompt: +10 inside, −10 outside


def message(parent: QtWidgets.QWidget | None, title: str, text: str, *, error: bool = False) -> None:
    """A modal message whose text is shown as plain text (it may quote user or model text)."""
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(QtWidgets.QMessageBox.Icon.Critical if error else QtWidgets.QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    box.setText(text)
    box.exec()


def describe_provenance(prov: dict[str, Any] | None) -> str:
    """A short plain description of how an edited mask was made (from its provenance dict)."""
    if not prov:
        return "(no provenance)"
    tool = prov.get("tool", "?")
    if tool == "sam":
        if prov.get("clicks_undone"):
            return "SAM clicks undone"
        mp = prov.get("mask_prompt") or {}
        src = mp.get("source")
        if src == "candidate":
            src = f"candidate {mp.get('from_candidate')} of run {mp.get('run')}"
        n = len(prov.get("points_xy") or [])
        return f"SAM, {n} click{'s' if n != 1 else ''}" + (f", mask prompt: {src}" if src else "") + (
            " (random weights)" if prov.get("is_random") else "")
    if tool == "candidate":
        return f"candidate {prov.get('from_candidate')} ({prov.get('origin')}) of run {prov.get('run')}"
    if tool in ("brush", "eraser"):
        return f"{tool} r={prov.get('radius')}"
    if tool == "polygon":
        return f"polygon ({prov.get('mode', 'add')}, {len(prov.get('points_xy') or [])} vertices)"
    return str(tool).replace("_", " ")


OPEN_CHOICES = ("seed_policy", "dedupe_iou", "mask_prompt", "attention_renorm", "layer_base", "box_nms_thresh")


class MainWindow(QtWidgets.QMainWindow):
    """``trace_wait_s``: how long switching samples waits for the trace; a slower trace is drawn
    when it arrives (``trace_shown``), so the image and masks appear at once."""

    trace_wait_s = 0.015
    sample_shown = QtCore.Signal(int)
    trace_shown = QtCore.Signal(int)
    _trace_arrived = QtCore.Signal(int, object)
    mask_saved = QtCore.Signal(int)
    run_finished = QtCore.Signal(int)
    run_failed = QtCore.Signal(str)
    sam_finished = QtCore.Signal()

    def __init__(self, store: Store, user: str | None = None, settings: QtCore.QSettings | None = None) -> None:
        super().__init__()
        self.store = store
        self.user = user or getpass.getuser() or "annotator"
        self.settings = settings or QtCore.QSettings("Rea2Seg", "Rea2Seg Studio")
        self.setWindowTitle(f"Rea2Seg Studio — {store.url}")
        self.current_id: int | None = None
        self.image: np.ndarray | None = None
        self.gt: np.ndarray | None = None
        self.ignore: np.ndarray | None = None
        self.trace: PipelineTrace | None = None
        self.edit_mask: np.ndarray | None = None  # the saved edited mask (or the stroke being drawn)
        self.edit_provenance: dict[str, Any] = {}
        self.tool = "none"
        self.poly_points: list[tuple[float, float]] = []
        self._stroke: dict[str, Any] | None = None
        # SAM click session: its clicks, its mask prompt (fixed when the session starts) and the
        # mask it started from (restored when every click is undone)
        self.sam_points: list[tuple[float, float, int]] = []
        self._sam_session: dict[str, Any] | None = None
        self._sam_rerun = False
        self._sam_running = False
        self.segmenters: dict[str, Any] = {}
        self.sams: dict[str, tuple[Any, bool]] = {}
        self._config_for_worker: dict[str, Any] = {}  # the config read on the GUI thread for a job
        self.active_worker: workers.Worker | None = None
        self.worker_thread: QtCore.QThread | None = None
        self._job: dict[str, Any] | None = None
        self._stale_panels: set[str] = set()
        self._thumb_base: tuple[int, np.ndarray] | None = None
        self._pending_trace: tuple[int | None, PipelineTrace | None] = (None, None)
        self._trace_future: tuple[int, int | None, Future] | None = None
        # read-ahead of the next sample's image and trace (plain data, no Qt objects)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="load")
        # read-ahead has its own thread so that a jump never queues behind it
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self._prefetched: dict[tuple[int, int | None], tuple[Future, Future]] = {}
        self._trace_arrived.connect(self._on_trace_arrived, QtCore.Qt.ConnectionType.QueuedConnection)
        self._build()
        self._shortcuts()
        self.refresh_presets()
        self.refresh_samples()
        self.refresh_runs()
        geo = self.settings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self._remember_recent(store.url)

    # ----------------------------------------------------------------------------- layout
    def _build(self) -> None:
        self.resize(1500, 900)
        # left: sample list
        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        row = QtWidgets.QHBoxLayout()
        self.status_filter = QtWidgets.QComboBox()
        self.status_filter.addItems(["all statuses", *STATUSES])
        self.category_filter = QtWidgets.QComboBox()
        self.category_filter.addItems(["all categories", *CATEGORIES])
        row.addWidget(self.status_filter)
        row.addWidget(self.category_filter)
        self.verdict_filter = QtWidgets.QComboBox()
        self.verdict_filter.addItems(["all verdicts", *VERDICT_FILTERS])
        self.verdict_filter.setToolTip("The verifier's verdict on a generated question")
        row.addWidget(self.verdict_filter)
        lv.addLayout(row)
        self.text_filter = QtWidgets.QLineEdit()
        self.text_filter.setPlaceholderText("Filter by question or id…")
        self.text_filter.setClearButtonEnabled(True)
        lv.addWidget(self.text_filter)
        self.sample_table = QtWidgets.QTableWidget(0, 4)
        self.sample_table.setHorizontalHeaderLabels(["id", "category", "status", "question"])
        self.sample_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.sample_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.sample_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sample_table.verticalHeader().setVisible(False)
        self.sample_table.verticalHeader().setDefaultSectionSize(22)
        header = self.sample_table.horizontalHeader()
        header.setStretchLastSection(True)
        for col, width in enumerate((40, 84, 66)):
            self.sample_table.setColumnWidth(col, width)
        self.sample_table.setSortingEnabled(True)
        self.sample_table.sortByColumn(0, QtCore.Qt.SortOrder.AscendingOrder)
        lv.addWidget(self.sample_table, 1)
        self.counts_label = QtWidgets.QLabel()
        self.counts_label.setWordWrap(True)
        lv.addWidget(self.counts_label)
        self.samples_dock = QtWidgets.QDockWidget("Samples", self)
        self.samples_dock.setObjectName("samples_dock")
        self.samples_dock.setWidget(left)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, self.samples_dock)

        # centre: banner + question + canvas
        centre = QtWidgets.QWidget()
        cv = QtWidgets.QVBoxLayout(centre)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.setSpacing(0)
        self.banner = QtWidgets.QLabel()
        self.banner.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.banner.setStyleSheet("background:#b3261e;color:white;font-weight:bold;padding:4px;")
        self.banner.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.banner.setVisible(False)
        cv.addWidget(self.banner)
        self.question_label = QtWidgets.QLabel()
        self.question_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.question_label.setWordWrap(True)
        self.question_label.setStyleSheet("font-size:15px;padding:6px;")
        cv.addWidget(self.question_label)
        self.canvas = Canvas()
        cv.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)

        # right: tabs
        self.tabs = QtWidgets.QTabWidget()
        self.review_tab = self._review_tab()
        self.tabs.addTab(self.review_tab, "Review")
        self.tabs.addTab(self._layers_tab(), "Layers")
        self.candidates_tab = self._candidates_tab()
        self.evaluator_tab = self._evaluator_tab()
        self.tabs.addTab(self.candidates_tab, "Candidates")
        self.tabs.addTab(self.evaluator_tab, "Evaluator")
        self.edit_tab = self._edit_tab()
        self.tabs.addTab(self.edit_tab, "Edit")
        self.run_tab = self._run_tab()
        self.tabs.addTab(self.run_tab, "Run")
        from rea2seg_gui.dialogs import MetricsView

        self.metrics_view = MetricsView()
        self.metrics_view.compute_button.clicked.connect(self.compute_metrics)
        self.tabs.addTab(self.metrics_view, "Metrics")
        self.inspector_dock = QtWidgets.QDockWidget("Inspector", self)
        self.inspector_dock.setObjectName("inspector_dock")
        self.inspector_dock.setWidget(self.tabs)
        self.tabs.currentChanged.connect(self._refresh_visible_panel)
        self.inspector_dock.setMinimumWidth(360)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.inspector_dock)
        self.resizeDocks([self.samples_dock, self.inspector_dock], [330, 430], QtCore.Qt.Orientation.Horizontal)
        self.questions_panel = QuestionsPanel()
        self.questions_dock = QtWidgets.QDockWidget("Generated question", self)
        self.questions_dock.setObjectName("questions_dock")
        self.questions_dock.setWidget(self.questions_panel)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, self.questions_dock)
        self.questions_panel.accept_requested.connect(lambda sid: self._decide_generated(sid, "accept"))
        self.questions_panel.reject_requested.connect(lambda sid: self._decide_generated(sid, "reject"))
        self.questions_panel.edit_requested.connect(self._edit_generated)
        self.questions_panel.regenerate_requested.connect(self._regenerate)

        self.statusBar().showMessage("Ready")
        menu = self.menuBar().addMenu("&File")
        menu.addAction("&Open store…", self._open_dialog)
        menu.addAction("Open store &URL…", self._open_url_dialog)
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        menu.addAction("&Settings…", self.show_settings)
        menu.addSeparator()
        menu.addAction("&Quit", self.close)
        view = self.menuBar().addMenu("&View")
        view.addAction(self.samples_dock.toggleViewAction())
        view.addAction(self.inspector_dock.toggleViewAction())
        view.addAction(self.questions_dock.toggleViewAction())
        view.addAction("&Fit image (Ctrl+0)", self.canvas.fit)
        helpm = self.menuBar().addMenu("&Help")
        helpm.addAction("Keyboard &shortcuts (F1)", self.show_cheatsheet)

        self.status_filter.currentIndexChanged.connect(self.refresh_samples)
        self.category_filter.currentIndexChanged.connect(self.refresh_samples)
        self.text_filter.textChanged.connect(self.refresh_samples)
        self.verdict_filter.currentIndexChanged.connect(self.refresh_samples)
        self.sample_table.itemSelectionChanged.connect(self._on_select)
        self.canvas.clicked.connect(self._on_canvas_click)
        self.canvas.double_clicked.connect(self._on_canvas_double_click)
        self.canvas.dragged.connect(self._on_canvas_drag)
        self.canvas.drag_finished.connect(self._on_stroke_finished)

    def _review_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.question_edit = QtWidgets.QLineEdit()
        self.question_edit.setToolTip("Edit and press Enter to save the question")
        self.question_edit.returnPressed.connect(self.save_question)
        f.addRow("Question", self.question_edit)
        self.status_value = QtWidgets.QLabel("—")
        self.status_value.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        f.addRow("Status", self.status_value)
        self.note_edit = QtWidgets.QLineEdit()
        self.note_edit.setPlaceholderText("Note for accept / reject / flag (Enter accepts, Esc leaves)")
        self.note_edit.returnPressed.connect(lambda: self.decide("accept"))
        f.addRow("Note", self.note_edit)
        row = QtWidgets.QHBoxLayout()
        for label, decision in (("Accept (A)", "accept"), ("Reject (R)", "reject"), ("Flag (F)", "flag")):
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(lambda _=False, d=decision: self.decide(d))
            row.addWidget(b)
        f.addRow(row)
        row2 = QtWidgets.QHBoxLayout()
        for label, fn in (("Undo (Ctrl+Z)", self.undo), ("Redo (Ctrl+Shift+Z)", self.redo)):
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(fn)
            row2.addWidget(b)
        f.addRow(row2)
        self.history_table = QtWidgets.QTableWidget(0, 5)
        self.history_table.setHorizontalHeaderLabels(["when", "who", "what", "before → after", "note"])
        self.history_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.horizontalHeader().setStretchLastSection(True)
        self.history_table.verticalHeader().setVisible(False)
        f.addRow(QtWidgets.QLabel("History of this sample (newest first)"))
        f.addRow(self.history_table)
        return w

    def _layers_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        g = QtWidgets.QGridLayout(w)
        self.layer_checks: dict[str, QtWidgets.QCheckBox] = {}
        self.layer_sliders: dict[str, QtWidgets.QSlider] = {}
        g.addWidget(QtWidgets.QLabel("Layer  [key]"), 0, 0)
        g.addWidget(QtWidgets.QLabel("Opacity"), 0, 1)
        for r, spec in enumerate(LAYERS, start=1):
            cb = QtWidgets.QCheckBox(f"{spec.title}  [{spec.shortcut}]")
            cb.setChecked(self.canvas.visible[spec.key])
            cb.toggled.connect(lambda on, k=spec.key: self.canvas.set_layer_visible(k, on))
            if spec.color is not None:
                cb.setStyleSheet(f"QCheckBox {{ border-left: 6px solid rgb{spec.color}; padding-left: 4px; }}")
            sl = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            sl.setRange(0, 100)
            sl.setValue(int(spec.opacity * 100))
            sl.valueChanged.connect(lambda v, k=spec.key: self.canvas.set_layer_opacity(k, v / 100))
            g.addWidget(cb, r, 0)
            g.addWidget(sl, r, 1)
            self.layer_checks[spec.key] = cb
            self.layer_sliders[spec.key] = sl
        self.attention_legend = QtWidgets.QLabel("Attention: —")
        self.attention_legend.setWordWrap(True)
        g.addWidget(self.attention_legend, len(LAYERS) + 1, 0, 1, 2)
        g.setRowStretch(len(LAYERS) + 2, 1)
        return w

    def _candidates_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(w)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Run"))
        self.run_combo = QtWidgets.QComboBox()
        self.run_combo.currentIndexChanged.connect(lambda _: self._load_trace())
        row.addWidget(self.run_combo, 1)
        v.addLayout(row)
        self.cand_table = QtWidgets.QTableWidget(0, 8)
        self.cand_table.setHorizontalHeaderLabels(["mask", "id", "origin", "SAM", "stability", "eval", "rank", "true IoU"])
        self.cand_table.horizontalHeaderItem(7).setToolTip(
            "IoU with the sample's current mask (edited, else imported ground truth), ignore region "
            "excluded: the metrics view's definition")
        self.cand_table.setIconSize(QtCore.QSize(64, 48))
        self.cand_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.cand_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.cand_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cand_table.verticalHeader().setVisible(False)
        cheader = self.cand_table.horizontalHeader()
        cheader.setMinimumSectionSize(30)
        cheader.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        cheader.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Fixed)
        for col in (1, 6):  # id, rank: narrow
            cheader.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.cand_table.setColumnWidth(0, 70)
        self.cand_table.setSortingEnabled(True)
        self.cand_table.itemSelectionChanged.connect(self._on_candidate)
        v.addWidget(self.cand_table, 1)
        self.use_candidate_button = QtWidgets.QPushButton("Use as mask")
        self.use_candidate_button.setToolTip("Copy the selected candidate into the edited mask (saved with its provenance)")
        self.use_candidate_button.clicked.connect(self.use_candidate)
        v.addWidget(self.use_candidate_button)
        self.trace_info = QtWidgets.QPlainTextEdit()
        self.trace_info.setReadOnly(True)
        self.trace_info.setMaximumHeight(150)
        v.addWidget(self.trace_info)
        return w

    def _evaluator_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(w)
        self.eval_groups = QtWidgets.QListWidget()  # the masks as the evaluator saw them, per group
        self.eval_groups.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.eval_groups.setIconSize(QtCore.QSize(72, 54))
        self.eval_groups.setGridSize(QtCore.QSize(96, 100))
        self.eval_groups.setMaximumHeight(230)
        self.eval_groups.setWrapping(True)
        self.eval_groups.setMovement(QtWidgets.QListView.Movement.Static)
        self.eval_groups.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.eval_groups.itemSelectionChanged.connect(self._on_eval_item)
        v.addWidget(self.eval_groups)
        self.eval_text = QtWidgets.QPlainTextEdit()  # model text is plain text, never HTML
        self.eval_text.setReadOnly(True)
        v.addWidget(self.eval_text, 1)
        return w

    def _edit_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.tool_group = QtWidgets.QButtonGroup(w)
        grid = QtWidgets.QGridLayout()
        tools = (("none", "Pan (Esc)"), ("brush", "Brush (B)"), ("eraser", "Eraser (E)"),
                 ("polygon", "Polygon (L)"), ("sam", "SAM clicks (S)"))
        self.tool_buttons: dict[str, QtWidgets.QRadioButton] = {}
        for i, (name, label) in enumerate(tools):
            rb = QtWidgets.QRadioButton(label)
            rb.setObjectName(f"tool_{name}")
            rb.setChecked(name == "none")
            rb.toggled.connect(lambda on, n=name: on and self.set_tool(n))
            self.tool_group.addButton(rb)
            self.tool_buttons[name] = rb
            grid.addWidget(rb, i // 3, i % 3)
        f.addRow(grid)
        self.brush_size = QtWidgets.QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(8)
        self.brush_size.valueChanged.connect(lambda v: setattr(self.canvas, "brush_radius", float(v)))
        f.addRow("Brush radius (px)  [ / ]", self.brush_size)
        f.addRow(QtWidgets.QLabel("<b>SAM click refinement</b>"))
        self.sam_preset = QtWidgets.QComboBox()
        self.sam_preset.setToolTip("The SAM of this preset; greyed-out presets are not configured (hover for why)")
        f.addRow("SAM from preset", self.sam_preset)
        self.sam_prompt = QtWidgets.QComboBox()
        for key, label in SAM_PROMPTS:
            self.sam_prompt.addItem(label, key)
        self.sam_prompt.setCurrentIndex(1)
        self.sam_prompt.setToolTip("A mask given to SAM with the clicks (fixed for the click session)")
        self.sam_prompt.currentIndexChanged.connect(lambda _: self._end_sam_session())
        f.addRow("Mask prompt", self.sam_prompt)
        self.sam_mask_only = QtWidgets.QPushButton("Re-prompt SAM with this mask alone (M)")
        self.sam_mask_only.clicked.connect(self.sam_prompt_mask_only)
        f.addRow(self.sam_mask_only)
        f.addRow(QtWidgets.QLabel("<b>Clean up</b>"))
        row2 = QtWidgets.QHBoxLayout()
        for label, fn in (("Fill holes", self.fill_holes), ("Remove specks", self.remove_specks), ("Clear", self.clear_mask)):
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(fn)
            row2.addWidget(b)
        f.addRow(row2)
        self.speck_area = QtWidgets.QSpinBox()
        self.speck_area.setRange(1, 100000)
        self.speck_area.setValue(20)
        f.addRow("Speck area (px)", self.speck_area)
        hint = QtWidgets.QLabel("Every stroke, polygon and SAM click is saved at once, with the prompts "
                                "that produced it; Ctrl+Z undoes it.")
        hint.setWordWrap(True)
        f.addRow(hint)
        self.edit_state = QtWidgets.QLabel("")
        self.edit_state.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.edit_state.setWordWrap(True)
        f.addRow(self.edit_state)
        return w

    def _run_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.run_preset = QtWidgets.QComboBox()
        self.run_preset.setToolTip("Greyed-out presets are not configured (hover for why; File → Settings)")
        self.run_preset.currentIndexChanged.connect(lambda _: self._show_preset_defaults())
        f.addRow("Preset", self.run_preset)
        self.use_paper_defaults = QtWidgets.QCheckBox("Use the preset's defaults (paper defaults; open filters for random weights)")
        self.use_paper_defaults.setChecked(True)
        self.use_paper_defaults.toggled.connect(lambda _: self._show_preset_defaults())
        f.addRow(self.use_paper_defaults)
        self.params: dict[str, QtWidgets.QAbstractSpinBox] = {}
        tips = {"k1": "tokens kept by attention (§4.2)", "k2": "tokens kept after the logit rerank",
                "top_n": "N: AMG mask budget", "seeds_total": "seed points over the k2 tokens (only with seed_policy 'proportional', not from the paper)",
                "tau": "τ: cosine threshold of the seed-feature graph", "delta": "δ: logit threshold of the negative point",
                "pred_iou_thresh": "AMG predicted-IoU filter", "stability_score_thresh": "AMG stability filter"}
        spec = (("k1", 1, 1000), ("k2", 1, 1000), ("top_n", 0, 50), ("seeds_total", 1, 2000))
        for name, lo, hi in spec:
            sb = QtWidgets.QSpinBox()
            sb.setRange(lo, hi)
            self.params[name] = sb
        for name, lo, hi in (("tau", -1, 1), ("delta", -100, 100), ("pred_iou_thresh", 0, 1), ("stability_score_thresh", 0, 1)):
            sb = QtWidgets.QDoubleSpinBox()
            sb.setRange(lo, hi)
            sb.setDecimals(3)
            sb.setSingleStep(0.05)
            self.params[name] = sb
        labels = {"top_n": "N (top_n)", "tau": "τ (tau)", "delta": "δ (delta)"}
        for name, sb in self.params.items():
            sb.setToolTip(tips[name])
            f.addRow(labels.get(name, name), sb)
        self.open_choices = QtWidgets.QLabel()  # the stage-1 choices the paper leaves open (README)
        self.open_choices.setWordWrap(True)
        self.open_choices.setToolTip("Choices the paper leaves open, as this run makes them (not from the paper; "
                                     "see the README's method section)")
        f.addRow("Not from the paper", self.open_choices)
        self.eval_preset = QtWidgets.QComboBox()
        self.eval_preset.setToolTip("Stage 2 evaluator; greyed-out presets are not configured (hover for why)")
        f.addRow("Evaluator (stage 2)", self.eval_preset)
        self.eval_cot = QtWidgets.QCheckBox("Chain of thought before the scores")
        self.eval_cot.setChecked(True)
        f.addRow(self.eval_cot)
        self.group_size = QtWidgets.QSpinBox()
        self.group_size.setRange(1, 15)
        self.group_size.setValue(5)
        f.addRow("Group size s", self.group_size)
        self.scope_selected = QtWidgets.QRadioButton("Selected samples")
        self.scope_all = QtWidgets.QRadioButton("Whole project")
        self.scope_selected.setChecked(True)
        row0 = QtWidgets.QHBoxLayout()
        row0.addWidget(self.scope_selected)
        row0.addWidget(self.scope_all)
        f.addRow("Run on", row0)
        row = QtWidgets.QHBoxLayout()
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.clicked.connect(self.start_run)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_run)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        f.addRow(row)
        self.compare_button = QtWidgets.QPushButton("Re-run this sample with these parameters and compare")
        self.compare_button.clicked.connect(self.rerun_and_compare)
        f.addRow(self.compare_button)
        self.progress = QtWidgets.QProgressBar()
        f.addRow(self.progress)
        self.run_error = QtWidgets.QPlainTextEdit()
        self.run_error.setReadOnly(True)
        self.run_error.setMaximumHeight(120)
        self.run_error.setPlaceholderText("Errors from runs appear here.")
        f.addRow(self.run_error)
        return w

    def _shortcuts(self) -> None:
        def sc(key: str, fn) -> QtGui.QShortcut:
            s = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            s.activated.connect(fn)
            return s

        sc("A", lambda: self.decide("accept"))
        sc("R", lambda: self.decide("reject"))
        sc("F", lambda: self.decide("flag"))
        for k in ("N", "Down"):
            sc(k, lambda: self.step(1))
        for k in ("P", "Up"):
            sc(k, lambda: self.step(-1))
        sc("Ctrl+Z", self.undo)
        sc("Ctrl+Shift+Z", self.redo)
        sc("Ctrl+0", self.canvas.fit)
        sc("F1", self.show_cheatsheet)
        sc("?", self.show_cheatsheet)
        sc("B", lambda: self._check_tool("brush"))
        sc("E", lambda: self._check_tool("eraser"))
        sc("L", lambda: self._check_tool("polygon"))
        sc("S", lambda: self._check_tool("sam"))
        sc("Esc", self._escape)
        sc("[", lambda: self.brush_size.setValue(max(1, self.brush_size.value() - 2)))
        sc("]", lambda: self.brush_size.setValue(self.brush_size.value() + 2))
        sc("Backspace", self.undo_click)
        sc("M", self.sam_prompt_mask_only)
        # Enter fills the polygon; enabled only with the polygon tool so that Enter in the
        # question field keeps saving the question
        self.poly_fill_shortcuts = [sc("Return", lambda: self.close_polygon(True)),
                                    sc("Enter", lambda: self.close_polygon(True)),
                                    sc("Shift+Return", lambda: self.close_polygon(False))]
        for s in self.poly_fill_shortcuts:
            s.setEnabled(False)
        for spec in LAYERS:
            sc(spec.shortcut, lambda k=spec.key: self.layer_checks[k].toggle())

    # ----------------------------------------------------------------------------- presets
    def _config(self) -> dict[str, Any]:
        try:
            return gui_models.load_config()
        except ModelLoadError as exc:
            self.statusBar().showMessage(f"{exc} — fix it in File → Settings")
            return {}

    def refresh_presets(self) -> None:
        """Fill the preset pickers; presets that are not configured are disabled, the reason as tooltip."""
        cfg = self._config()

        def fill(combo: QtWidgets.QComboBox, names: list[str], problem, first: str | None = None) -> None:
            keep = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            if first is not None:
                combo.addItem(first)
            model = combo.model()
            for name in names:
                combo.addItem(name)
                why = problem(name, cfg)
                item = model.item(combo.count() - 1)
                item.setEnabled(why is None)
                item.setToolTip(why or f"{name}: ready")
            idx = combo.findText(keep)
            if idx < 0 or not model.item(idx).isEnabled():  # else the first usable one
                idx = next((i for i in range(combo.count()) if model.item(i).isEnabled()), 0)
            combo.setCurrentIndex(idx)
            combo.blockSignals(False)

        presets = list(gui_models.segmenter_presets())
        fill(self.run_preset, presets, gui_models.segmenter_problem)
        fill(self.sam_preset, presets, gui_models.sam_problem)
        fill(self.eval_preset, list(EVALUATOR_PRESETS), gui_models.evaluator_problem, first="none (stage 1 only)")
        self._show_preset_defaults()

    def _show_preset_defaults(self) -> None:
        """Show the parameters the preset runs with; editable once 'use the preset's defaults' is off."""
        from core.pipeline.runner import preset_default_settings

        defaults = preset_default_settings(self.run_preset.currentText()).to_dict()
        use_defaults = self.use_paper_defaults.isChecked()
        for name, w in self.params.items():
            if use_defaults:
                w.setValue(defaults[name])
            w.setEnabled(not use_defaults)
        self.open_choices.setText(", ".join(f"{k} = {defaults[k]}" for k in OPEN_CHOICES))

    # ------------------------------------------------------------------------------ samples
    def refresh_samples(self) -> None:
        status = self.status_filter.currentText()
        cat = self.category_filter.currentText()
        text = self.text_filter.text().strip() or None
        rows = self.store.run(
            lambda s: [(x.id, x.external_id, x.category, x.status, x.question) for x in repo.list_samples(
                s, status=None if status.startswith("all") else status, category=None if cat.startswith("all") else cat,
                text=text)],
            write=False,
        )
        verdict = self.verdict_filter.currentText()
        if not verdict.startswith("all"):
            ok = set(filter_by_verdict(self.store, [r[0] for r in rows], verdict))
            rows = [r for r in rows if r[0] in ok]
        keep = self.current_id
        self.sample_table.blockSignals(True)
        self.sample_table.setSortingEnabled(False)
        self.sample_table.setRowCount(len(rows))
        for r, (sid, ext, c, st, q) in enumerate(rows):
            it = QtWidgets.QTableWidgetItem()
            it.setData(QtCore.Qt.ItemDataRole.DisplayRole, sid)
            it.setToolTip(ext)
            self.sample_table.setItem(r, 0, it)
            for col, val in ((1, c), (2, st), (3, q)):
                item = QtWidgets.QTableWidgetItem(val)
                if col == 3:
                    item.setToolTip(q)
                self.sample_table.setItem(r, col, item)
        self.sample_table.setSortingEnabled(True)
        self.sample_table.blockSignals(False)
        counts = review.counts(self.store)
        by_status = {st: sum(n for (_, s2), n in counts.items() if s2 == st) for st in STATUSES}
        self.counts_label.setText(f"{len(rows)} shown · " + " · ".join(f"{k} {v}" for k, v in by_status.items()))
        if keep is not None and self._row_of(keep) is not None:
            self._select_row(self._row_of(keep))
        elif rows and self.current_id is None:
            self._select_row(0)

    def _row_of(self, sample_id: int) -> int | None:
        for r in range(self.sample_table.rowCount()):
            if self.sample_table.item(r, 0).data(QtCore.Qt.ItemDataRole.DisplayRole) == sample_id:
                return r
        return None

    def _select_row(self, r: int) -> None:
        self.sample_table.selectRow(r)
        self.sample_table.scrollToItem(self.sample_table.item(r, 0))
        sid = self.sample_table.item(r, 0).data(QtCore.Qt.ItemDataRole.DisplayRole)
        if sid != self.current_id:  # selection signals are not emitted for an unchanged selection
            self.show_sample(sid)

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.sample_table.selectedIndexes()})
        return [self.sample_table.item(r, 0).data(QtCore.Qt.ItemDataRole.DisplayRole) for r in rows]

    def _on_select(self) -> None:
        ids = self.selected_ids()
        if ids and ids[0] != self.current_id:
            self.show_sample(ids[0])

    def step(self, delta: int) -> None:
        r = self._row_of(self.current_id) if self.current_id is not None else None
        n = self.sample_table.rowCount()
        if n == 0:
            return
        r = 0 if r is None else min(max(r + delta, 0), n - 1)
        self._select_row(r)

    def show_sample(self, sample_id: int) -> None:
        smp, runs = self.store.run(lambda s: (repo.get_sample(s, sample_id), repo.runs_for_sample(s, sample_id)), write=False)
        self.current_id = sample_id
        self.poly_points = []
        self._stroke = None
        self._end_sam_session()
        run_id = runs[-1].id if runs else None
        # image and trace decode in the pool (read ahead, or now) while the masks decode here
        futures = self._prefetched.pop((sample_id, run_id), None) or self._submit_loads(sample_id, run_id, smp)
        gt, ign = self.store.run(lambda s: (repo.gt_mask(s, sample_id), repo.ignore_mask(s, sample_id)), write=False)
        try:
            image = futures[0].result(timeout=30)
        except ImageError as exc:
            image = np.zeros((smp.image.height, smp.image.width, 3), np.uint8)
            self.statusBar().showMessage(str(exc))
        trace, ready = None, True
        try:
            trace = futures[1].result(timeout=self.trace_wait_s)
        except FutureTimeout:
            ready = False
        except Exception:  # noqa: BLE001 - _load_trace loads it again and reports the error
            trace = None
        self.image = image
        self._pending_trace = (run_id, trace)
        self._trace_future = None if ready else (sample_id, run_id, futures[1])
        self.canvas.set_image(self.image)
        self._thumb_base = None
        self.gt = gt
        self.ignore = ign
        self.canvas.set_mask("gt", gt)
        self.canvas.set_mask("ignore", ign)
        self.question_label.setText(smp.question)
        self.question_edit.setText(smp.question)
        self.status_value.setText(f"{smp.status}   ·   {smp.category}   ·   {smp.external_id}")
        self._load_masks()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in reversed(runs):
            self.run_combo.addItem(f"#{run.id} {run.name}" + (" [random]" if run.is_random else ""), run.id)
        self.run_combo.blockSignals(False)
        if ready:
            self._load_trace()
        else:
            self._show_trace(None, loading=True)
            futures[1].add_done_callback(lambda _f, sid=sample_id, rid=run_id: self._notify_trace(sid, rid))
        self._load_history()
        self.statusBar().showMessage(f"sample {sample_id} · {smp.image.width}×{smp.image.height} · {smp.image.path}")
        self._prefetch_next()
        self._show_generation(smp)
        self.sample_shown.emit(sample_id)

    def _submit_loads(self, sample_id: int, run_id: int | None, sample, pool: ThreadPoolExecutor | None = None
                      ) -> tuple[Future, Future]:
        """Decode the sample's image and load its trace (without the logit map) in a pool."""
        pool = pool or self._pool
        store, path = self.store, repo.image_path(sample)
        img = pool.submit(load_image_rgb, path)
        if run_id is None:
            tr: Future = Future()
            tr.set_result(None)
        else:
            tr = pool.submit(store.run, lambda s: repo.load_trace(s, run_id, sample_id, with_logits=False), write=False)
        return img, tr

    def _prefetch_next(self) -> None:
        r = self._row_of(self.current_id)
        if r is None or r + 1 >= self.sample_table.rowCount():
            return
        nxt = self.sample_table.item(r + 1, 0).data(QtCore.Qt.ItemDataRole.DisplayRole)
        smp, runs = self.store.run(lambda s: (repo.get_sample(s, nxt), repo.runs_for_sample(s, nxt)), write=False)
        key = (nxt, runs[-1].id if runs else None)
        if key not in self._prefetched:
            for k in [k for k in self._prefetched if k[0] not in (nxt, self.current_id)]:
                for fut in self._prefetched.pop(k):
                    fut.cancel()
            self._prefetched[key] = self._submit_loads(nxt, key[1], smp, self._ahead)

    def _load_masks(self) -> None:
        if self.current_id is None:
            return
        sid = self.current_id
        m = self.store.run(lambda s: repo.edited_mask(s, sid), write=False)
        self.edit_mask = m
        self.canvas.set_mask("edited", m)
        self.edit_state.setText("edited mask saved" if m is not None else "no edited mask yet (painting starts from the ground truth)")

    def _load_history(self) -> None:
        from core.store.models import Mask

        hist = review.history(self.store, self.current_id)
        mask_ids = {v for h in hist if h.field == "edited_mask" for v in (h.before, h.after) if isinstance(v, int)}
        provs = self.store.run(lambda s: {m: (s.get(Mask, m).provenance if s.get(Mask, m) else None) for m in mask_ids},
                               write=False) if mask_ids else {}

        def show(field: str, v: Any) -> str:
            if field == "edited_mask" and v is not None:
                return f"#{v} {describe_provenance(provs.get(v))}"
            return "—" if v is None else str(v)

        self.history_table.setRowCount(len(hist))
        for r, h in enumerate(reversed(hist)):
            what = h.field if h.action == "edit" else f"{h.field} ({h.action})"
            if h.undone:
                what += " [undone]"
            vals = (h.at.strftime("%m-%d %H:%M:%S"), h.user, what, f"{show(h.field, h.before)} → {show(h.field, h.after)}", h.note)
            for c, v in enumerate(vals):
                item = QtWidgets.QTableWidgetItem(str(v))
                item.setToolTip(str(v))
                self.history_table.setItem(r, c, item)
        self.history_table.resizeColumnsToContents()

    # ------------------------------------------------------------------------------- trace
    def _notify_trace(self, sample_id: int, run_id: int | None) -> None:
        """From a pool thread: hand the arrival to the GUI thread (a queued signal)."""
        try:
            self._trace_arrived.emit(sample_id, run_id)
        except RuntimeError:  # the window is already gone
            pass

    @QtCore.Slot(int, object)
    def _on_trace_arrived(self, sample_id: int, run_id: int | None) -> None:
        """A trace loaded in the pool after the sample was shown: draw it if still wanted."""
        waiting = self._trace_future
        if waiting is None or waiting[:2] != (sample_id, run_id) or self.current_id != sample_id:
            return
        self._trace_future = None
        if self.run_combo.currentData() != run_id:
            return
        try:
            self._pending_trace = (run_id, waiting[2].result())
        except Exception:  # noqa: BLE001 - _load_trace loads it again and reports the error
            self._pending_trace = (None, None)
        self._load_trace()

    def _load_trace(self) -> None:
        run_id = self.run_combo.currentData()
        self._trace_future = None
        trace = None
        pending, self._pending_trace = self._pending_trace, (None, None)
        if run_id is not None and pending[0] == run_id and pending[1] is not None:
            trace = pending[1]
        elif run_id is not None and self.current_id is not None:
            sid = self.current_id
            trace = self.store.run(lambda s: repo.load_trace(s, run_id, sid, with_logits=False), write=False)
        self._show_trace(trace)

    def _show_trace(self, trace: PipelineTrace | None, loading: bool = False) -> None:
        self.trace = trace
        self.canvas.set_trace(trace)
        self.canvas.set_mask("candidate", None)
        trace_random = bool(trace and trace.is_random)
        eval_random = bool(trace and trace.evaluator and trace.evaluator.is_random)
        if trace_random or eval_random:
            what = "models" if trace_random and eval_random else ("stage-1 models" if trace_random else "evaluator")
            self.banner.setText(f"RANDOM WEIGHTS — not a result  ·  this trace comes from random-init {what}")
        self.banner.setVisible(trace_random or eval_random)
        if self.canvas.attention_range:
            lo, hi = self.canvas.attention_range
            self.attention_legend.setText(f"Attention (inferno colour bar beside the image): dark {lo:.4g} → bright {hi:.4g}")
        elif loading:
            self.attention_legend.setText("Attention: loading the trace…")
        else:
            self.attention_legend.setText("Attention: no trace for this sample in the chosen run")
        # thumbnails and texts are built when their tab is shown: switching samples stays fast
        self._stale_panels = {"candidates", "evaluator"}
        self._refresh_visible_panel()
        if not loading:
            self.trace_shown.emit(-1 if self.current_id is None else self.current_id)

    def _refresh_visible_panel(self, _index: int = -1) -> None:
        current = self.tabs.currentWidget()
        if current is self.candidates_tab and "candidates" in self._stale_panels:
            self._stale_panels.discard("candidates")
            self._fill_candidates()
        elif current is self.evaluator_tab and "evaluator" in self._stale_panels:
            self._stale_panels.discard("evaluator")
            self._fill_evaluator()

    def _thumb(self, mask: np.ndarray, color: tuple[int, int, int] = (60, 140, 255)) -> QtGui.QIcon:
        h, w = mask.shape
        step = max(1, int(np.ceil(max(h, w) / 72)))
        if self._thumb_base is None or self._thumb_base[0] != step:
            small = self.image[::step, ::step]
            self._thumb_base = (step, small.astype(np.float32))
        img = self._thumb_base[1].copy()
        m = mask[::step, ::step]  # nearest-neighbour subsampling, exact pixels
        img[m] = img[m] * 0.35 + np.array(color) * 0.65
        img[~m] *= 0.55
        img = np.ascontiguousarray(img.astype(np.uint8))
        q = QtGui.QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QtGui.QImage.Format.Format_RGB888)
        return QtGui.QIcon(QtGui.QPixmap.fromImage(q.copy()))

    def _reference_mask(self) -> np.ndarray | None:
        """The mask candidates are scored against: the edited mask, else the imported ground truth."""
        return self.edit_mask if self.edit_mask is not None else self.gt

    def _fill_candidates(self) -> None:
        t = self.trace
        self.cand_table.setSortingEnabled(False)
        self.cand_table.setRowCount(0 if t is None else len(t.candidates))
        self.use_candidate_button.setEnabled(t is not None and bool(t.candidates))
        if t is None:
            self.trace_info.setPlainText("Loading the trace…" if self._trace_future is not None
                                         else "No trace for this sample. Start a run in the Run tab.")
            return
        ev = t.evaluator
        ranks = {cid: i + 1 for i, cid in enumerate(ev.ranking)} if ev else {}
        ref = self._reference_mask()
        for r, c in enumerate(t.candidates):
            it = QtWidgets.QTableWidgetItem()
            it.setIcon(self._thumb(c.mask))
            self.cand_table.setItem(r, 0, it)
            iou = None
            if ref is not None and ref.shape == c.mask.shape:
                iou = sample_iou(*intersection_union(c.mask, ref, self.ignore))
            vals = (c.id, c.origin, c.sam_score, c.stability, ev.final_scores.get(c.id) if ev else None, ranks.get(c.id), iou)
            for col, v in enumerate(vals, start=1):
                item = QtWidgets.QTableWidgetItem()
                item.setData(QtCore.Qt.ItemDataRole.DisplayRole, round(v, 3) if isinstance(v, float) else ("—" if v is None else v))
                self.cand_table.setItem(r, col, item)
            self.cand_table.setRowHeight(r, 52)
        self.cand_table.setSortingEnabled(True)
        lines = [
            f"preset {t.preset}{'  (RANDOM WEIGHTS)' if t.is_random else ''}; models: {t.model_ids}",
            f"{len(t.candidates)} candidates; generated text: {t.generated_text}",
            "timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.timings.items()),
            "settings: " + ", ".join(f"{k}={v}" for k, v in t.settings.items() if k not in ("extra",)),
        ]
        if t.graph is not None:
            g = t.graph
            lines.insert(2, f"feature graph: k = {g.k}, {len(g.core_members)} core points of "
                            f"{len(t.seeds.seeds_xy) if t.seeds else 0} seeds, τ = {g.tau}; negative point "
                            f"{tuple(round(v, 1) for v in g.negative_xy)} (logit {g.negative_logit:.2f}"
                            f"{', fallback' if g.negative_fallback else ''})")
        self.trace_info.setPlainText("\n".join(lines))

    def _fill_evaluator(self) -> None:
        t = self.trace
        self.eval_groups.clear()
        if t is None and self._trace_future is not None:
            self.eval_text.setPlainText("Loading the trace…")
            return
        if t is None or t.evaluator is None:
            self.eval_text.setPlainText("No evaluator output for this sample in this run (stage 2 was not run).")
            return
        ev = t.evaluator
        known = {c.id for c in t.candidates}
        for g in ev.groups:
            own = len(g.candidate_ids) - g.padded
            for slot, cid in enumerate(g.candidate_ids):
                score = g.scores[slot] if slot < len(g.scores) else None
                pad = slot >= own
                label = f"G{g.index} · mask {slot + 1}\n#{cid}: {'—' if score is None else f'{score:.2f}'}" + (" (pad)" if pad else "")
                icon = self._thumb(t.candidate(cid).mask, (150, 150, 150) if pad else (60, 140, 255)) if cid in known else QtGui.QIcon()
                item = QtWidgets.QListWidgetItem(icon, label)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, cid)
                item.setToolTip(f"group {g.index}, mask {slot + 1}: candidate {cid}"
                                + (" — padding slot: its score is not used (the candidate is scored in its own group)" if pad else ""))
                if g.parse_error:
                    item.setForeground(QtGui.QColor(200, 40, 30))
                self.eval_groups.addItem(item)
        out = [f"Question: {t.question}", f"Evaluator: {ev.backend} {ev.model_id}" + ("  (RANDOM WEIGHTS — not a result)" if ev.is_random else ""),
               f"Group size s = {ev.group_size}, shuffle seed {ev.shuffle_seed}, chain of thought {'on' if ev.cot else 'off'}",
               f"Last group {'padded' if ev.pad_last else 'smaller'}; prompt format {ev.prompt_format or '?'}; "
               f"image tiling {ev.image_tiling or '?'}",
               *(["NO READABLE SCORE: the answer falls back to the initial mask M"] if ev.fell_back_to_initial else []),
               ""]
        for g in ev.groups:
            pad = f" (last {g.padded} are padding, not scored here)" if g.padded else ""
            out.append(f"── Group {g.index}: candidates {g.candidate_ids}{pad}   [{g.seconds:.2f} s]")
            out.append(f"parsed scores: {g.scores}")
            if g.parse_error:
                out.append(f"PARSE FAILURE: {g.parse_error}")
            if g.cot:
                out.append(f"chain of thought: {g.cot}")
            out.append(f"raw text: {g.raw_text}")
            if g.index == ev.groups[0].index or g.prompt != ev.groups[0].prompt:
                out.append(f"prompt: {g.prompt}")
            else:
                out.append("prompt: as for group 0")
            out.append("")
        scores = ", ".join(f"#{c}: {'—' if ev.final_scores.get(c) is None else f'{ev.final_scores[c]:.3f}'}" for c in ev.ranking)
        out.append(f"Final ranking (best first): {scores}")
        self.eval_text.setPlainText("\n".join(out))

    def _on_eval_item(self) -> None:
        items = self.eval_groups.selectedItems()
        if items and self.trace is not None:
            cid = items[0].data(QtCore.Qt.ItemDataRole.UserRole)
            if cid in {c.id for c in self.trace.candidates}:
                self.canvas.set_mask("candidate", self.trace.candidate(cid).mask)
                self.layer_checks["candidate"].setChecked(True)

    def _selected_candidate(self):
        rows = {i.row() for i in self.cand_table.selectedIndexes()}
        if not rows or self.trace is None:
            return None
        cid = self.cand_table.item(next(iter(rows)), 1).data(QtCore.Qt.ItemDataRole.DisplayRole)
        return self.trace.candidate(int(cid))

    def _on_candidate(self) -> None:
        c = self._selected_candidate()
        self.canvas.set_mask("candidate", None if c is None else c.mask)
        if c is not None and not self.canvas.visible["candidate"]:
            self.layer_checks["candidate"].setChecked(True)

    def use_candidate(self) -> None:
        c = self._selected_candidate()
        if c is None:
            self.statusBar().showMessage("Select a candidate first")
            return
        self._commit_mask(c.mask.copy(), {"tool": "candidate", "from_candidate": c.id, "origin": c.origin,
                                          "run": self.run_combo.currentData()})

    # ------------------------------------------------------------------------------ review
    def _guard(self, fn, *args, **kwargs) -> bool:
        """Run a review action; a refused action is shown to the user and changes nothing."""
        try:
            fn(*args, **kwargs)
        except (ValueError, LookupError) as exc:
            self.statusBar().showMessage(str(exc))
            message(self, "Rea2Seg Studio", str(exc))
            return False
        return True

    def decide(self, decision: str) -> None:
        if self.current_id is None:
            return
        sid = self.current_id
        note = self.note_edit.text().strip()
        if decision == "flag" and not note:
            note, ok = QtWidgets.QInputDialog.getText(self, "Flag sample", f"Why is sample {sid} flagged?")
            if not ok:
                return
            note = note.strip()
        if not self._guard(review.decide, self.store, sid, decision, user=self.user, note=note):
            return
        self.note_edit.clear()
        self.statusBar().showMessage(f"sample {sid}: {decision}")
        row = self._row_of(sid)
        self.refresh_samples()
        n = self.sample_table.rowCount()
        if n:
            nxt = self._row_of(sid)
            target = (nxt + 1) if nxt is not None else min(row or 0, n - 1)
            self._select_row(min(target, n - 1))
        self._after_change(sid)

    def _after_change(self, sid: int) -> None:
        if self.current_id == sid:
            smp = self.store.run(lambda s: repo.get_sample(s, sid), write=False)
            self.question_label.setText(smp.question)
            self.question_edit.setText(smp.question)
            self.status_value.setText(f"{smp.status}   ·   {smp.category}   ·   {smp.external_id}")
            self._show_generation(smp)
            self._load_history()
            self._load_masks()
            self._stale_panels.add("candidates")  # true IoU follows the current mask
            self._refresh_visible_panel()

    # ------------------------------------------------------------------- generated questions
    def _show_generation(self, smp) -> None:
        self.questions_panel.show_sample(smp.id, smp.question, smp.status, latest_generation(self.store, smp.id))

    def _decide_generated(self, sid: int, decision: str) -> None:
        if sid == self.current_id:
            self.decide(decision)

    def _edit_generated(self, sid: int, question: str) -> None:
        if self._guard(review.edit_question, self.store, sid, question, user=self.user):
            self.refresh_samples()
            self._after_change(sid)

    def _regenerate(self, sid: int) -> None:
        def done(view) -> None:
            self.questions_panel.set_busy(False)
            self.statusBar().showMessage(f"sample {sid}: re-generated, verifier {view.verdict}")
            self.refresh_samples()
            self._after_change(sid)

        def failed(msg: str) -> None:
            self.questions_panel.set_busy(False)
            message(self, "Re-generation failed", msg, error=True)

        store, user = self.store, self.user
        if self._start(lambda progress, should_cancel: regenerate(store, sid, user=user), done, "re-generation", failed):
            self.questions_panel.set_busy(True)

    def save_question(self) -> None:
        if self.current_id is None:
            return
        sid = self.current_id
        self._guard(review.edit_question, self.store, sid, self.question_edit.text(), user=self.user)
        self.refresh_samples()
        self._after_change(sid)

    def undo(self) -> None:
        self._undo_redo(review.undo, "undone", "nothing to undo")

    def redo(self) -> None:
        self._undo_redo(review.redo, "redone", "nothing to redo")

    def _undo_redo(self, fn, done: str, nothing: str) -> None:
        if self.current_id is None:
            return
        sid = self.current_id
        self.poly_points = []
        self.canvas.set_polygon(None)
        self._end_sam_session()
        ok = fn(self.store, sid, user=self.user)
        self.refresh_samples()
        self._after_change(sid)
        self.statusBar().showMessage(f"sample {sid}: {done if ok else nothing}")

    # ------------------------------------------------------------------------------ editing
    def _check_tool(self, name: str) -> None:
        self.tool_buttons[name].setChecked(True)

    def _escape(self) -> None:
        fw = QtWidgets.QApplication.focusWidget()
        if isinstance(fw, QtWidgets.QLineEdit):  # Esc leaves a text field; the review keys work again
            self.canvas.setFocus()
            return
        if self.poly_points:
            self.poly_points = []
            self.canvas.set_polygon(None)
            self.statusBar().showMessage("polygon cancelled")
            return
        self._check_tool("none")

    def set_tool(self, name: str) -> None:
        if name != "sam":
            self._end_sam_session()
        if name != "polygon":
            self.poly_points = []
            self.canvas.set_polygon(None)
        self.tool = name
        self.canvas.paint_mode = name in ("brush", "eraser")
        self.canvas.brush_radius = self.brush_size.value()
        if not self.canvas.paint_mode:
            self.canvas.brush_outline.setVisible(False)
        for s in self.poly_fill_shortcuts:
            s.setEnabled(name == "polygon")
        hints = {"none": "drag to pan, wheel to zoom", "brush": "drag to paint ([ / ] size)", "eraser": "drag to erase",
                 "polygon": "click vertices; Enter or double-click fills, Shift+Enter erases, Backspace removes a vertex",
                 "sam": "left click = positive, right click = negative, Backspace undoes a click"}
        self.statusBar().showMessage(f"tool: {name} — {hints[name]}")

    def _edit_base(self) -> tuple[np.ndarray | None, str]:
        """The mask an edit starts from: the edited mask, else the ground truth, else empty."""
        if self.image is None:
            return None, "none"
        if self.edit_mask is not None:
            return self.edit_mask, "edited"
        if self.gt is not None:
            return self.gt.copy(), "ground truth"
        return np.zeros(self.image.shape[:2], bool), "empty"

    def _commit_mask(self, mask: np.ndarray | None, provenance: dict[str, Any]) -> bool:
        """Save ``mask`` as the sample's edited mask (one store transaction) with its provenance."""
        if self.current_id is None:
            return False
        sid = self.current_id
        if not self._guard(review.replace_mask, self.store, sid, mask, user=self.user, provenance=provenance):
            self._load_masks()
            return False
        self.edit_provenance = dict(provenance)
        self._after_change(sid)
        self.edit_state.setText(f"saved: {provenance.get('tool', 'edit')}" + (" — RANDOM WEIGHTS" if provenance.get("is_random") else ""))
        self.statusBar().showMessage(f"sample {sid}: mask saved ({provenance.get('tool', 'edit')})")
        self.mask_saved.emit(sid)
        return True

    def _on_canvas_drag(self, x0: float, y0: float, x1: float, y1: float) -> None:
        from core.mask_edit import paint_stroke

        if self._stroke is None:
            base, source = self._edit_base()
            if base is None:
                return
            self._stroke = {"mask": base, "base": source}
        self._stroke["mask"] = paint_stroke(self._stroke["mask"], (x0, y0), (x1, y1), self.brush_size.value(), self.tool == "brush")
        if not self.canvas.visible["edited"]:
            self.layer_checks["edited"].setChecked(True)
        self.canvas.update_mask("edited", self._stroke["mask"])

    def _on_stroke_finished(self) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self._commit_mask(stroke["mask"], {"tool": self.tool, "radius": self.brush_size.value(), "base": stroke["base"]})

    def _on_canvas_click(self, x: float, y: float, button: int) -> None:
        if self.tool in ("brush", "eraser") and button == 1:
            self._on_canvas_drag(x, y, x, y)
            self._on_stroke_finished()
        elif self.tool == "polygon" and button == 1:
            self.poly_points.append((x, y))
            self.canvas.set_polygon(self.poly_points)
        elif self.tool == "sam":
            self.sam_click(x, y, 1 if button == 1 else 0)

    def _on_canvas_double_click(self, x: float, y: float) -> None:
        if self.tool == "polygon":
            if not self.poly_points or self.poly_points[-1] != (x, y):
                self.poly_points.append((x, y))
            self.close_polygon(True)

    def close_polygon(self, add: bool) -> None:
        """Fill (or with ``add`` False, erase) the polygon drawn so far and save the mask."""
        from core.mask_edit import fill_polygon

        fw = QtWidgets.QApplication.focusWidget()
        if isinstance(fw, QtWidgets.QLineEdit):  # Enter in a text field keeps its meaning
            fw.returnPressed.emit()
            return
        if self.tool != "polygon" or len(self.poly_points) < 3:
            self.statusBar().showMessage("a polygon needs at least 3 vertices")
            return
        base, source = self._edit_base()
        pts = list(self.poly_points)
        self.poly_points = []
        self.canvas.set_polygon(None)
        self._commit_mask(fill_polygon(base, np.array(pts), add), {"tool": "polygon", "mode": "add" if add else "erase",
                                                              "points_xy": [list(p) for p in pts], "base": source})

    def undo_click(self) -> None:
        """Backspace: remove the last polygon vertex or undo the last SAM click."""
        if self.tool == "polygon" and self.poly_points:
            self.poly_points.pop()
            self.canvas.set_polygon(self.poly_points)
        elif self.tool == "sam" and self.sam_points:
            self.sam_points.pop()
            self.canvas.set_clicks(self.sam_points)
            if self.sam_points:
                self._run_sam()
            elif self._sam_session is not None:
                session = self._sam_session
                self._commit_mask(session["start_mask"], {"tool": "sam", "clicks_undone": True, "restored": session["start_source"]})
                self._end_sam_session()

    def _end_sam_session(self) -> None:
        self.sam_points = []
        self._sam_session = None
        self._sam_rerun = False
        self.canvas.set_clicks([])

    def _mask_prompt(self) -> tuple[np.ndarray | None, dict[str, Any] | None]:
        """The chosen mask prompt as SAM logits (float32 (H, W), ±10) and its description."""
        key = self.sam_prompt.currentData()
        mask, desc = None, None
        if key == "current":
            mask, source = self._edit_base()
            desc = {"source": source}
            if source == "empty":
                mask = None
        elif key == "candidate":
            c = self._selected_candidate()
            if c is not None:
                mask, desc = c.mask, {"source": "candidate", "from_candidate": c.id, "run": self.run_combo.currentData()}
        elif key == "gt" and self.gt is not None:
            mask, desc = self.gt, {"source": "ground truth"}
        if mask is None:
            return None, None
        return np.where(mask, MASK_PROMPT_LOGIT, -MASK_PROMPT_LOGIT).astype(np.float32), desc

    def _start_sam_session(self) -> bool:
        if self._sam_session is not None:
            return True
        if self.image is None or self.current_id is None:
            return False
        if self.sam_prompt.currentData() == "candidate" and self._selected_candidate() is None:
            self.statusBar().showMessage("the mask prompt is 'selected candidate': pick one in the Candidates tab first")
            return False
        logits, desc = self._mask_prompt()
        self._sam_session = {"prior": logits, "prior_desc": desc, "start_mask": self.edit_mask,
                             "start_source": "edited" if self.edit_mask is not None else "none"}
        return True

    def sam_click(self, x: float, y: float, label: int) -> None:
        """A positive (1) or negative (0) click at image pixel (x, y): re-prompt SAM and save."""
        if not self._start_sam_session():
            return
        self.sam_points.append((float(x), float(y), int(label)))
        self.canvas.set_clicks(self.sam_points)
        self._run_sam()

    def sam_prompt_mask_only(self) -> None:
        """Prompt SAM with the chosen mask alone (no clicks): SAM's reading of an existing mask."""
        if self.sam_prompt.currentData() == "none":
            self.statusBar().showMessage("choose a mask prompt first (Edit tab)")
            return
        if self.tool != "sam":
            self._check_tool("sam")
        self._end_sam_session()
        if not self._start_sam_session():
            return
        if self._sam_session["prior"] is None:
            self.statusBar().showMessage("there is no such mask for this sample")
            self._end_sam_session()
            return
        self._run_sam()

    def _sam(self, preset: str) -> tuple[Any, bool]:
        """The preset's SAM (loaded once; the embedding is cached per image inside the backend)."""
        if preset not in self.sams:
            self.sams[preset] = gui_models.load_sam(preset, self._config_for_worker, self.segmenters.get(preset))
        return self.sams[preset]

    def _run_sam(self) -> None:
        if self.image is None or self._sam_session is None:
            return
        if self._sam_running:  # clicks made while SAM works are batched into the next prediction
            self._sam_rerun = True
            return
        if self.active_worker is not None:
            self.statusBar().showMessage(f"{self._job['name'] if self._job else 'a job'} is running; try the click again after it")
            if self.sam_points:
                self.sam_points.pop()
            self.canvas.set_clicks(self.sam_points)
            return
        image, session, sid = self.image, self._sam_session, self.current_id
        pts = np.array([[p[0], p[1]] for p in self.sam_points], np.float32).reshape(-1, 2)
        labels = np.array([p[2] for p in self.sam_points], np.int32)
        preset = self.sam_preset.currentText()
        self._config_for_worker = self._config()

        def job(progress, should_cancel):
            sam, rnd = self._sam(preset)
            sam.set_image(image)
            logits, iou = sam.predict_points(pts, labels, session["prior"], multimask=False)
            return logits[0] > 0, float(iou[0]), sam.name, rnd

        def done(result) -> None:
            self._sam_running = False
            if self._sam_rerun:  # clicks made meanwhile supersede this result
                self._sam_rerun = False
                self._run_sam()
                return
            if self._sam_session is not session or self.current_id != sid:
                self.sam_finished.emit()  # the session ended (other sample, other tool) while SAM worked
                return
            mask, score, name, rnd = result
            self._commit_mask(mask, {"tool": "sam", "model": name, "preset": preset, "is_random": rnd,
                                     "points_xy": pts.tolist(), "labels": labels.tolist(),
                                     "mask_prompt": session["prior_desc"], "multimask": False, "predicted_iou": score})
            self.edit_state.setText(f"SAM mask saved (predicted IoU {score:.3f}, {len(pts)} clicks)"
                                    + (" — RANDOM WEIGHTS" if rnd else ""))
            self.sam_finished.emit()

        def failed(msg: str) -> None:
            self._sam_running = False
            self._end_sam_session()
            self.edit_state.setText(f"SAM failed: {msg}")
            self.sam_finished.emit()

        self._sam_running = True
        self.edit_state.setText(f"SAM ({preset}) working on {len(pts)} click{'s' if len(pts) != 1 else ''}…")
        self._start(job, done, "SAM", failed)

    def _apply(self, fn, provenance: dict[str, Any]) -> None:
        base, source = self._edit_base()
        if base is not None:
            self._commit_mask(fn(base), {**provenance, "base": source})

    def fill_holes(self) -> None:
        from core.mask_edit import fill_holes

        self._apply(fill_holes, {"tool": "fill_holes"})

    def remove_specks(self) -> None:
        from core.mask_edit import remove_specks

        area = self.speck_area.value()
        self._apply(lambda m: remove_specks(m, area), {"tool": "remove_specks", "min_area": area})

    def clear_mask(self) -> None:
        if self.image is not None:
            self._commit_mask(np.zeros(self.image.shape[:2], bool), {"tool": "clear"})

    # --------------------------------------------------------------------------------- runs
    def _start(self, job, done, what: str, on_error=None) -> bool:
        """Run ``job(progress, should_cancel)`` in a worker thread; ``done(result)`` on the GUI thread."""
        if self.active_worker is not None:
            self.statusBar().showMessage(f"{self._job['name']} is still running")
            return False
        # Connect to bound slots of this window (which lives on the GUI thread) so Qt queues
        # the worker's signals to the GUI thread; a lambda would run in the worker's thread.
        w = workers.Worker(job)
        self._job = {"name": what, "done": done, "error": on_error}
        w.progress.connect(self._on_progress, QtCore.Qt.ConnectionType.QueuedConnection)
        w.finished.connect(self._job_done, QtCore.Qt.ConnectionType.QueuedConnection)
        w.failed.connect(self._job_failed, QtCore.Qt.ConnectionType.QueuedConnection)
        self.active_worker = w
        self.start_button.setEnabled(False)
        self.compare_button.setEnabled(False)
        self.cancel_button.setEnabled(what != "SAM")
        self.worker_thread = workers.start(w, self)
        return True

    def _job_ended(self) -> dict[str, Any]:
        job, self._job = self._job or {}, None
        self.active_worker = None
        self.start_button.setEnabled(True)
        self.compare_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        return job

    @QtCore.Slot(int, int, str)
    def _on_progress(self, done: int, total: int, label: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.statusBar().showMessage(f"{done}/{total} {label}")

    @QtCore.Slot(object)
    def _job_done(self, result) -> None:
        job = self._job_ended()
        if job.get("done") is not None:
            job["done"](result)

    @QtCore.Slot(str)
    def _job_failed(self, msg: str) -> None:
        job = self._job_ended()
        what = job.get("name", "job")
        if job.get("error") is not None:
            job["error"](msg)
            self.statusBar().showMessage(f"{what} failed: {msg.splitlines()[0]}")
            return
        self.run_error.setPlainText(f"{what} failed: {msg}")
        self.statusBar().showMessage(f"{what} failed — see the Run tab")
        self.run_failed.emit(msg)

    def _run_overrides(self) -> dict[str, Any]:
        return {} if self.use_paper_defaults.isChecked() else {k: w.value() for k, w in self.params.items()}

    def _get_segmenter(self, preset: str):
        """Load the preset's segmenter once (worker thread); its SAM also serves the click tool."""
        if preset not in self.segmenters:
            seg = gui_models.load_segmenter(preset, self._config_for_worker)
            self.segmenters[preset] = seg
            self.sams[preset] = (seg.sam, bool(seg.is_random))  # one SAM (and embedding cache) per preset
        return self.segmenters[preset]

    def start_run(self) -> None:
        """Stage 1 (and stage 2 when an evaluator is chosen) on the selection or the whole project."""
        from core.pipeline.runner import Stage2Settings, create_run, default_settings, run_samples

        ids = self.selected_ids() if self.scope_selected.isChecked() else None
        if ids is not None and not ids:
            self.run_error.setPlainText("Select samples first, or choose 'Whole project'.")
            return
        preset = self.run_preset.currentText()
        overrides = self._run_overrides()
        store = self.store
        self.run_error.clear()
        ev_preset = None if self.eval_preset.currentIndex() == 0 else self.eval_preset.currentText()
        cot, group_size = self.eval_cot.isChecked(), self.group_size.value()
        self._config_for_worker = cfg = self._config()

        def job(progress, should_cancel):
            progress(0, len(ids) if ids else 1, f"loading {preset}")
            seg = self._get_segmenter(preset)
            evaluator = None
            if ev_preset:
                from core.evaluator.presets import load_evaluator

                evaluator = load_evaluator(ev_preset, cfg)
            settings = default_settings(seg, **overrides)
            todo = ids if ids is not None else store.run(lambda s: [x.id for x in repo.list_samples(s)], write=False)
            stage2 = Stage2Settings(ev_preset, cot=cot, group_size=group_size)
            run_id = create_run(store, seg, settings, stage2=stage2, evaluator=evaluator,
                                name=f"{preset}{' + ' + ev_preset if ev_preset else ''} (GUI)")
            progress(0, len(todo), "running")
            skipped: list[tuple[int, str]] = []
            n = run_samples(store, seg, todo, run_id, settings, progress=progress, should_cancel=should_cancel,
                            evaluator=evaluator, cot=cot, group_size=group_size, pad_last=stage2.pad_last,
                            skipped=skipped)
            return run_id, n, len(todo), skipped

        def done(result) -> None:
            run_id, n, total, skipped = result
            note = f"run {run_id}: {n} of {total} samples done"
            if skipped:
                note += f"; {len(skipped)} skipped"
                self.run_error.setPlainText("Skipped samples:\n" + "\n".join(f"{sid}: {why}" for sid, why in skipped))
            self.statusBar().showMessage(note)
            self.refresh_runs()
            if self.current_id is not None:
                self.show_sample(self.current_id)
            self.run_finished.emit(int(run_id))

        self._start(job, done, "Run")

    def rerun_and_compare(self) -> None:
        """Stage 1 on the current sample with the Run tab's parameters, shown beside its last trace."""
        from core.pipeline.runner import create_run, default_settings, run_samples

        if self.current_id is None or self.trace is None:
            self.run_error.setPlainText("Pick a sample that already has a trace (choose its run in the Candidates tab).")
            return
        sid, old = self.current_id, self.trace
        old_title = self.run_combo.currentText()
        preset = self.run_preset.currentText()
        overrides = {k: w.value() for k, w in self.params.items()}
        store = self.store
        self._config_for_worker = self._config()

        def job(progress, should_cancel):
            seg = self._get_segmenter(preset)
            settings = default_settings(seg, **overrides)
            run_id = create_run(store, seg, settings, name=f"{preset} compare (GUI)")
            run_samples(store, seg, [sid], run_id, settings, progress=progress, should_cancel=should_cancel)
            return run_id, store.run(lambda s: repo.load_trace(s, run_id, sid), write=False)

        def done(result) -> None:
            from rea2seg_gui.dialogs import CompareDialog

            run_id, new = result
            if new is None:
                self.run_error.setPlainText("The re-run produced no trace (cancelled?).")
                return
            self.compare_dialog = CompareDialog(self.image, self.gt, old, new, (old_title, f"#{run_id} {preset} (new parameters)"), self)
            self.compare_dialog.show()
            self.refresh_runs()
            self.run_finished.emit(int(run_id))

        self._start(job, done, "Compare")

    def cancel_run(self) -> None:
        if self.active_worker is not None:
            self.active_worker.cancel()
            self.statusBar().showMessage("cancelling after the current sample…")

    # ------------------------------------------------------------------------------ metrics
    def refresh_runs(self) -> None:
        runs = self.store.run(lambda s: [(r.id, r.name, r.is_random) for r in repo.list_runs(s)], write=False)
        combo = self.metrics_view.run_combo
        combo.clear()
        for rid, name, rnd in reversed(runs):
            combo.addItem(f"#{rid} {name}" + (" [random]" if rnd else ""), rid)

    def compute_metrics(self) -> None:
        from core.evaluator.evaluate import coverage_curve, evaluate_run, format_table

        run_id = self.metrics_view.run_combo.currentData()
        if run_id is None:
            self.refresh_runs()
            run_id = self.metrics_view.run_combo.currentData()
            if run_id is None:
                self.statusBar().showMessage("no runs yet")
                return
        store = self.store

        def job(progress, should_cancel):
            res = evaluate_run(store, run_id)
            return res, coverage_curve(store, run_id), format_table(res)

        self._start(job, lambda r: self.metrics_view.show_result(*r), "Metrics")

    def show_settings(self) -> None:
        from rea2seg_gui.dialogs import SettingsDialog

        dlg = SettingsDialog(self)
        if dlg.exec():
            self.segmenters.clear()  # reload models with the new paths on next use
            self.sams.clear()
            self.refresh_presets()
            self.statusBar().showMessage(f"settings saved to {dlg.path}")

    # ------------------------------------------------------------------------------ misc
    def show_cheatsheet(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in SHORTCUTS)
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setTextFormat(QtCore.Qt.TextFormat.RichText)  # our own escaped table, no user or model text
        box.setText(f"<table cellpadding=4>{rows}</table>")
        box.setModal(False)
        box.show()
        self.cheatsheet = box

    def _remember_recent(self, url: str) -> None:
        recent = [u for u in (self.settings.value("recent", []) or []) if u != url]
        self.settings.setValue("recent", [url, *recent][:8])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for u in self.settings.value("recent", []) or []:
            self.recent_menu.addAction(u, lambda u=u: self.open_store(u))

    def _open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open store", "", "Stores (*.sqlite *.db);;All files (*)")
        if path:
            self.open_store(path)

    def _open_url_dialog(self) -> None:
        url, ok = QtWidgets.QInputDialog.getText(self, "Open store URL", "SQLAlchemy URL (e.g. postgresql+psycopg://user@host/rea2seg):")
        if ok and url.strip():
            self.open_store(url.strip())

    def open_store(self, url: str) -> bool:
        """Switch to another store; one that cannot be opened is explained and the open one kept."""
        from core.store import StoreError, open_store

        if self.active_worker is not None:
            message(self, "Cannot open store", f"{self._job['name']} is running on this store; wait for it or cancel it.")
            return False
        try:
            store = open_store(url)
        except (StoreError, ValueError, OSError) as exc:
            message(self, "Cannot open store", str(exc), error=True)
            return False
        old, self.store = self.store, store
        for pool in (self._pool, self._ahead):
            pool.shutdown(wait=True, cancel_futures=True)  # no load may touch the old store
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="load")
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self._prefetched = {}
        old.close()
        self.current_id = None
        self.trace = None
        self._trace_future = None
        self.setWindowTitle(f"Rea2Seg Studio — {store.url}")
        self._remember_recent(store.url)
        self.refresh_samples()
        self.refresh_runs()
        return True

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        if self.active_worker is not None:
            self.active_worker.cancel()
        for pool in (self._pool, self._ahead):
            pool.shutdown(wait=False, cancel_futures=True)
        if self.worker_thread is not None:
            try:
                self.worker_thread.quit()
                self.worker_thread.wait(5000)
            except RuntimeError:  # the thread object was already deleted
                pass
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        super().closeEvent(ev)
