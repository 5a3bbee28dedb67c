"""The main window: sample list, canvas with trace layers, review / candidates / edit / run panels.

All data comes from ``core`` (store, review API, saved traces); long work (model loading,
stage-1 runs, SAM clicks) runs in :mod:`rea2seg_gui.worker` threads. Every review action is one
store transaction, committed at once: nothing is lost on a crash.
"""

from __future__ import annotations

import getpass
import html
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.images import ImageError, load_image_rgb
from core.masks import mask_iou
from core.pipeline.trace import PipelineTrace
from core.store import Store, repo, review
from core.store.models import CATEGORIES, STATUSES
from rea2seg_gui import worker as workers
from rea2seg_gui.canvas import LAYERS, Canvas

SHORTCUTS = (
    ("A", "Accept (verified) and go to the next sample"),
    ("R", "Reject and go to the next sample"),
    ("F", "Flag with the note and go to the next sample"),
    ("N / Down", "Next sample"),
    ("P / Up", "Previous sample"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo the last change of this sample"),
    ("0 … 9", "Toggle a layer (see the Layers tab)"),
    ("B / E / S / Esc", "Brush / eraser / SAM clicks / no tool"),
    ("[ / ]", "Brush smaller / larger"),
    ("Left / right click", "SAM tool: positive / negative point"),
    ("Backspace", "SAM tool: undo the last click"),
    ("Ctrl+S", "Save the edited mask"),
    ("Ctrl+0", "Fit the image to the view"),
    ("F1", "This cheat sheet"),
)


class MainWindow(QtWidgets.QMainWindow):
    sample_shown = QtCore.Signal(int)
    run_finished = QtCore.Signal(int)
    run_failed = QtCore.Signal(str)

    def __init__(self, store: Store, user: str | None = None, settings: QtCore.QSettings | None = None) -> None:
        super().__init__()
        self.store = store
        self.user = user or getpass.getuser() or "annotator"
        self.settings = settings or QtCore.QSettings("Rea2Seg", "Rea2Seg Studio")
        self.setWindowTitle(f"Rea2Seg Studio — {store.url}")
        self.current_id: int | None = None
        self.image: np.ndarray | None = None
        self.gt: np.ndarray | None = None
        self.trace: PipelineTrace | None = None
        self.edit_mask: np.ndarray | None = None
        self.edit_dirty = False
        self.edit_provenance: dict[str, Any] = {}
        self.sam_points: list[tuple[float, float, int]] = []
        self.segmenters: dict[str, Any] = {}
        self.active_worker: workers.Worker | None = None
        self.worker_thread: QtCore.QThread | None = None
        self.tool = "none"
        self._job_callback = None
        self._job_name = ""
        self._stale_panels: set[str] = set()
        self._thumb_base: tuple[int, np.ndarray] | None = None
        # read-ahead of the next sample's image and trace (plain data, no Qt objects)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._prefetched: dict[tuple[int, int | None], Future] = {}
        self._build()
        self._shortcuts()
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
        self.sample_table.horizontalHeader().setStretchLastSection(True)
        self.sample_table.setSortingEnabled(True)
        self.sample_table.sortByColumn(0, QtCore.Qt.SortOrder.AscendingOrder)
        lv.addWidget(self.sample_table, 1)
        self.counts_label = QtWidgets.QLabel()
        self.counts_label.setWordWrap(True)
        lv.addWidget(self.counts_label)
        dock = QtWidgets.QDockWidget("Samples", self)
        dock.setObjectName("samples_dock")
        dock.setWidget(left)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        # centre: banner + canvas
        centre = QtWidgets.QWidget()
        cv = QtWidgets.QVBoxLayout(centre)
        cv.setContentsMargins(0, 0, 0, 0)
        self.banner = QtWidgets.QLabel("RANDOM WEIGHTS — this trace is noise from random-init models, not a result")
        self.banner.setStyleSheet("background:#b3261e;color:white;font-weight:bold;padding:4px;")
        self.banner.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.banner.setVisible(False)
        cv.addWidget(self.banner)
        self.question_label = QtWidgets.QLabel()
        self.question_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.question_label.setWordWrap(True)
        self.question_label.setStyleSheet("font-size:15px;padding:4px;")
        cv.addWidget(self.question_label)
        self.canvas = Canvas()
        cv.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)

        # right: tabs
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self._review_tab(), "Review")
        self.tabs.addTab(self._layers_tab(), "Layers")
        self.candidates_tab = self._candidates_tab()
        self.evaluator_tab = self._evaluator_tab()
        self.tabs.addTab(self.candidates_tab, "Candidates")
        self.tabs.addTab(self.evaluator_tab, "Evaluator")
        self.tabs.addTab(self._edit_tab(), "Edit")
        self.tabs.addTab(self._run_tab(), "Run")
        from rea2seg_gui.dialogs import MetricsView

        self.metrics_view = MetricsView()
        self.metrics_view.compute_button.clicked.connect(self.compute_metrics)
        self.tabs.addTab(self.metrics_view, "Metrics")
        rdock = QtWidgets.QDockWidget("Inspector", self)
        rdock.setObjectName("inspector_dock")
        rdock.setWidget(self.tabs)
        self.tabs.currentChanged.connect(self._refresh_visible_panel)
        rdock.setMinimumWidth(380)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, rdock)

        self.statusBar().showMessage("Ready")
        menu = self.menuBar().addMenu("&File")
        act = menu.addAction("&Open store…")
        act.triggered.connect(self._open_dialog)
        menu.addAction("Open store &URL…", self._open_url_dialog)
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        menu.addAction("&Settings…", self.show_settings)
        menu.addSeparator()
        menu.addAction("&Quit", self.close)
        helpm = self.menuBar().addMenu("&Help")
        helpm.addAction("Keyboard &shortcuts", self.show_cheatsheet)

        self.status_filter.currentIndexChanged.connect(self.refresh_samples)
        self.category_filter.currentIndexChanged.connect(self.refresh_samples)
        self.text_filter.textChanged.connect(self.refresh_samples)
        self.sample_table.itemSelectionChanged.connect(self._on_select)
        self.canvas.clicked.connect(self._on_canvas_click)
        self.canvas.dragged.connect(self._on_canvas_drag)

    def _review_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.question_edit = QtWidgets.QLineEdit()
        self.question_edit.setToolTip("Edit and press Enter to save the question")
        self.question_edit.returnPressed.connect(self.save_question)
        f.addRow("Question", self.question_edit)
        self.status_value = QtWidgets.QLabel("—")
        f.addRow("Status", self.status_value)
        self.note_edit = QtWidgets.QLineEdit()
        self.note_edit.setPlaceholderText("Note for accept / reject / flag")
        f.addRow("Note", self.note_edit)
        row = QtWidgets.QHBoxLayout()
        for label, decision in (("Accept (A)", "accept"), ("Reject (R)", "reject"), ("Flag (F)", "flag")):
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(lambda _=False, d=decision: self.decide(d))
            row.addWidget(b)
        f.addRow(row)
        row2 = QtWidgets.QHBoxLayout()
        ub = QtWidgets.QPushButton("Undo")
        ub.clicked.connect(self.undo)
        rb = QtWidgets.QPushButton("Redo")
        rb.clicked.connect(self.redo)
        row2.addWidget(ub)
        row2.addWidget(rb)
        f.addRow(row2)
        self.history_table = QtWidgets.QTableWidget(0, 5)
        self.history_table.setHorizontalHeaderLabels(["when", "who", "what", "before → after", "note"])
        self.history_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.horizontalHeader().setStretchLastSection(True)
        self.history_table.verticalHeader().setVisible(False)
        f.addRow(QtWidgets.QLabel("History"))
        f.addRow(self.history_table)
        return w

    def _layers_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        g = QtWidgets.QGridLayout(w)
        self.layer_checks: dict[str, QtWidgets.QCheckBox] = {}
        self.layer_sliders: dict[str, QtWidgets.QSlider] = {}
        for r, spec in enumerate(LAYERS):
            cb = QtWidgets.QCheckBox(f"{spec.title}  [{spec.shortcut}]")
            cb.setChecked(self.canvas.visible[spec.key])
            cb.toggled.connect(lambda on, k=spec.key: self.canvas.set_layer_visible(k, on))
            sl = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            sl.setRange(0, 100)
            sl.setValue(int(spec.opacity * 100))
            sl.valueChanged.connect(lambda v, k=spec.key: self.canvas.set_layer_opacity(k, v / 100))
            g.addWidget(cb, r, 0)
            g.addWidget(sl, r, 1)
            self.layer_checks[spec.key] = cb
            self.layer_sliders[spec.key] = sl
        self.attention_legend = QtWidgets.QLabel("Attention: —")
        g.addWidget(self.attention_legend, len(LAYERS), 0, 1, 2)
        g.setRowStretch(len(LAYERS) + 1, 1)
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
        self.cand_table.setIconSize(QtCore.QSize(72, 54))
        self.cand_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.cand_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.cand_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cand_table.verticalHeader().setVisible(False)
        self.cand_table.setSortingEnabled(True)
        self.cand_table.itemSelectionChanged.connect(self._on_candidate)
        v.addWidget(self.cand_table, 1)
        b = QtWidgets.QPushButton("Use as mask")
        b.setToolTip("Copy the selected candidate into the edited mask (saved with its provenance)")
        b.clicked.connect(self.use_candidate)
        v.addWidget(b)
        self.trace_info = QtWidgets.QPlainTextEdit()
        self.trace_info.setReadOnly(True)
        self.trace_info.setMaximumHeight(140)
        v.addWidget(self.trace_info)
        return w

    def _evaluator_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(w)
        self.eval_groups = QtWidgets.QListWidget()  # the masks as the evaluator saw them, per group
        self.eval_groups.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.eval_groups.setIconSize(QtCore.QSize(72, 54))
        self.eval_groups.setMaximumHeight(220)
        self.eval_groups.setWrapping(True)
        self.eval_groups.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        v.addWidget(self.eval_groups)
        self.eval_text = QtWidgets.QPlainTextEdit()  # model text is plain text, never HTML
        self.eval_text.setReadOnly(True)
        v.addWidget(self.eval_text, 1)
        return w

    def _edit_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.tool_group = QtWidgets.QButtonGroup(w)
        row = QtWidgets.QHBoxLayout()
        for name, label in (("none", "Pan (Esc)"), ("brush", "Brush (B)"), ("eraser", "Eraser (E)"), ("sam", "SAM clicks (S)")):
            rb = QtWidgets.QRadioButton(label)
            rb.setObjectName(f"tool_{name}")
            rb.setChecked(name == "none")
            rb.toggled.connect(lambda on, n=name: on and self.set_tool(n))
            self.tool_group.addButton(rb)
            row.addWidget(rb)
        f.addRow(row)
        self.brush_size = QtWidgets.QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(8)
        f.addRow("Brush radius (px)", self.brush_size)
        self.sam_preset = QtWidgets.QComboBox()
        self.sam_preset.addItems(["tiny-random", "tiny-random-lens", "lisa-7b", "lens-3b"])
        f.addRow("SAM from preset", self.sam_preset)
        self.sam_use_mask = QtWidgets.QCheckBox("Prompt SAM with the current edited mask too")
        self.sam_use_mask.setChecked(True)
        f.addRow(self.sam_use_mask)
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
        row3 = QtWidgets.QHBoxLayout()
        sb = QtWidgets.QPushButton("Save mask (Ctrl+S)")
        sb.clicked.connect(self.save_mask)
        rv = QtWidgets.QPushButton("Revert")
        rv.clicked.connect(self._load_masks)
        row3.addWidget(sb)
        row3.addWidget(rv)
        f.addRow(row3)
        self.edit_state = QtWidgets.QLabel("")
        f.addRow(self.edit_state)
        return w

    def _run_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.run_preset = QtWidgets.QComboBox()
        self.run_preset.addItems(["tiny-random", "tiny-random-lens", "lisa-7b", "lens-3b"])
        f.addRow("Preset", self.run_preset)
        self.params: dict[str, QtWidgets.QAbstractSpinBox] = {}
        spec = (("k1", 1, 1000, 50), ("k2", 1, 1000, 30), ("top_n", 0, 50, 9), ("seeds_total", 1, 2000, 48))
        for name, lo, hi, val in spec:
            sb = QtWidgets.QSpinBox()
            sb.setRange(lo, hi)
            sb.setValue(val)
            self.params[name] = sb
            f.addRow(name, sb)
        fspec = (("tau", -1, 1, 0.8), ("delta", -100, 100, -15.0), ("pred_iou_thresh", 0, 1, 0.88), ("stability_score_thresh", 0, 1, 0.9))
        for name, lo, hi, val in fspec:
            sb = QtWidgets.QDoubleSpinBox()
            sb.setRange(lo, hi)
            sb.setDecimals(3)
            sb.setSingleStep(0.05)
            sb.setValue(val)
            self.params[name] = sb
            f.addRow(name, sb)
        self.use_paper_defaults = QtWidgets.QCheckBox("Use the preset's defaults (paper defaults; opened filters for random weights)")
        self.use_paper_defaults.setChecked(True)
        f.addRow(self.use_paper_defaults)
        self.eval_preset = QtWidgets.QComboBox()
        self.eval_preset.addItems(["none (stage 1 only)", "tiny-random", "internvl3-8b", "openai"])
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
        f.addRow(self.scope_selected)
        f.addRow(self.scope_all)
        row = QtWidgets.QHBoxLayout()
        self.start_button = QtWidgets.QPushButton("Start stage 1")
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
        def sc(key: str, fn) -> None:
            s = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            s.activated.connect(fn)

        sc("A", lambda: self.decide("accept"))
        sc("R", lambda: self.decide("reject"))
        sc("F", lambda: self.decide("flag"))
        for k in ("N", "Down"):
            sc(k, lambda: self.step(1))
        for k in ("P", "Up"):
            sc(k, lambda: self.step(-1))
        sc("Ctrl+Z", self.undo)
        sc("Ctrl+Shift+Z", self.redo)
        sc("Ctrl+S", self.save_mask)
        sc("Ctrl+0", self.canvas.fit)
        sc("F1", self.show_cheatsheet)
        sc("B", lambda: self._check_tool("brush"))
        sc("E", lambda: self._check_tool("eraser"))
        sc("S", lambda: self._check_tool("sam"))
        sc("Esc", lambda: self._check_tool("none"))
        sc("[", lambda: self.brush_size.setValue(max(1, self.brush_size.value() - 2)))
        sc("]", lambda: self.brush_size.setValue(self.brush_size.value() + 2))
        sc("Backspace", self.undo_sam_click)
        for spec in LAYERS:
            sc(spec.shortcut, lambda k=spec.key: self.layer_checks[k].toggle())

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
                self.sample_table.setItem(r, col, QtWidgets.QTableWidgetItem(val))
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
        def load(s):
            smp = repo.get_sample(s, sample_id)
            return smp, repo.gt_mask(s, sample_id), repo.ignore_mask(s, sample_id), repo.runs_for_sample(s, sample_id)

        smp, gt, ign, runs = self.store.run(load, write=False)
        self.current_id = sample_id
        run_id = runs[-1].id if runs else None
        image, trace = self._take_prefetched(sample_id, run_id)
        if image is None:
            try:
                image = load_image_rgb(repo.image_path(smp))
            except ImageError as exc:
                image = np.zeros((smp.image.height, smp.image.width, 3), np.uint8)
                self.statusBar().showMessage(str(exc))
        self.image = image
        self._pending_trace = (run_id, trace)
        self.canvas.set_image(self.image)
        self._thumb_base = None
        self.gt = gt
        self.canvas.set_mask("gt", gt)
        self.canvas.set_mask("ignore", ign)
        self.question_label.setText(smp.question)
        self.question_edit.setText(smp.question)
        self.status_value.setText(f"{smp.status}   ·   {smp.category}   ·   {smp.external_id}")
        self.sam_points.clear()
        self._load_masks()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in reversed(runs):
            self.run_combo.addItem(f"#{run.id} {run.name}" + (" [random]" if run.is_random else ""), run.id)
        self.run_combo.blockSignals(False)
        self._load_trace()
        self._load_history()
        self.statusBar().showMessage(f"sample {sample_id} · {smp.image.width}×{smp.image.height} · {smp.image.path}")
        self._prefetch_next()
        self.sample_shown.emit(sample_id)

    def _load(self, sample_id: int, run_id: int | None):
        def work():
            smp = self.store.run(lambda s: repo.get_sample(s, sample_id), write=False)
            img = load_image_rgb(repo.image_path(smp))
            tr = None if run_id is None else self.store.run(lambda s: repo.load_trace(s, run_id, sample_id, with_logits=False), write=False)
            return img, tr

        return work

    def _prefetch_next(self) -> None:
        r = self._row_of(self.current_id)
        if r is None or r + 1 >= self.sample_table.rowCount():
            return
        nxt = self.sample_table.item(r + 1, 0).data(QtCore.Qt.ItemDataRole.DisplayRole)
        runs = self.store.run(lambda s: repo.runs_for_sample(s, nxt), write=False)
        key = (nxt, runs[-1].id if runs else None)
        if key not in self._prefetched:
            self._prefetched = {k: v for k, v in self._prefetched.items() if k[0] in (nxt, self.current_id)}
            self._prefetched[key] = self._pool.submit(self._load(*key))

    def _take_prefetched(self, sample_id: int, run_id: int | None):
        fut = self._prefetched.pop((sample_id, run_id), None)
        if fut is None:
            return None, None
        try:
            return fut.result(timeout=10)
        except Exception:  # noqa: BLE001 - fall back to a direct load, which reports the error
            return None, None

    def _load_masks(self) -> None:
        if self.current_id is None:
            return
        m = self.store.run(lambda s: repo.edited_mask(s, self.current_id), write=False)
        self.edit_mask = m
        self.edit_dirty = False
        self.edit_provenance = {}
        self.canvas.set_mask("edited", m)
        self.edit_state.setText("saved" if m is not None else "no edited mask")

    def _load_history(self) -> None:
        hist = review.history(self.store, self.current_id)
        self.history_table.setRowCount(len(hist))
        for r, h in enumerate(reversed(hist)):
            what = h.field if h.action == "edit" else f"{h.field} ({h.action})"
            vals = (h.at.strftime("%Y-%m-%d %H:%M:%S"), h.user, what, f"{h.before} → {h.after}", h.note)
            for c, v in enumerate(vals):
                self.history_table.setItem(r, c, QtWidgets.QTableWidgetItem(str(v)))

    # ------------------------------------------------------------------------------- trace
    def _load_trace(self) -> None:
        run_id = self.run_combo.currentData()
        trace = None
        pending = getattr(self, "_pending_trace", (None, None))
        self._pending_trace = (None, None)
        if run_id is not None and pending[0] == run_id and pending[1] is not None:
            trace = pending[1]
        elif run_id is not None and self.current_id is not None:
            trace = self.store.run(lambda s: repo.load_trace(s, run_id, self.current_id, with_logits=False), write=False)
        self.trace = trace
        self.canvas.set_trace(trace)
        self.canvas.set_mask("candidate", None)
        rnd = bool(trace and (trace.is_random or (trace.evaluator and trace.evaluator.is_random)))
        self.banner.setVisible(rnd)
        if self.canvas.attention_range:
            lo, hi = self.canvas.attention_range
            self.attention_legend.setText(f"Attention (inferno colormap): dark {lo:.4g} → bright {hi:.4g}")
        else:
            self.attention_legend.setText("Attention: no trace")
        # thumbnails and texts are built when their tab is shown: switching samples stays fast
        self._stale_panels = {"candidates", "evaluator"}
        self._refresh_visible_panel()

    def _refresh_visible_panel(self, _index: int = -1) -> None:
        current = self.tabs.currentWidget()
        if current is self.candidates_tab and "candidates" in self._stale_panels:
            self._stale_panels.discard("candidates")
            self._fill_candidates()
        elif current is self.evaluator_tab and "evaluator" in self._stale_panels:
            self._stale_panels.discard("evaluator")
            self._fill_evaluator()

    def _thumb(self, mask: np.ndarray) -> QtGui.QIcon:
        h, w = mask.shape
        step = max(1, int(np.ceil(max(h, w) / 72)))
        if self._thumb_base is None or self._thumb_base[0] != step:
            small = self.image[::step, ::step]
            self._thumb_base = (step, small.astype(np.float32))
        img = self._thumb_base[1].copy()
        m = mask[::step, ::step]  # nearest-neighbour subsampling, exact pixels
        img[m] = img[m] * 0.35 + np.array([60, 140, 255]) * 0.65
        img[~m] *= 0.55
        img = np.ascontiguousarray(img.astype(np.uint8))
        q = QtGui.QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QtGui.QImage.Format.Format_RGB888)
        return QtGui.QIcon(QtGui.QPixmap.fromImage(q.copy()))

    def _fill_candidates(self) -> None:
        t = self.trace
        self.cand_table.setSortingEnabled(False)
        self.cand_table.setRowCount(0 if t is None else len(t.candidates))
        if t is None:
            self.trace_info.setPlainText("No trace for this sample. Start a run in the Run tab.")
            return
        ev = t.evaluator
        ranks = {cid: i + 1 for i, cid in enumerate(ev.ranking)} if ev else {}
        for r, c in enumerate(t.candidates):
            it = QtWidgets.QTableWidgetItem()
            it.setIcon(self._thumb(c.mask))
            self.cand_table.setItem(r, 0, it)
            iou = mask_iou(c.mask, self.gt) if self.gt is not None else None
            vals = (c.id, c.origin, c.sam_score, c.stability, ev.final_scores.get(c.id) if ev else None, ranks.get(c.id), iou)
            for col, v in enumerate(vals, start=1):
                item = QtWidgets.QTableWidgetItem()
                item.setData(QtCore.Qt.ItemDataRole.DisplayRole, round(v, 4) if isinstance(v, float) else ("—" if v is None else v))
                self.cand_table.setItem(r, col, item)
            self.cand_table.setRowHeight(r, 58)
        self.cand_table.setSortingEnabled(True)
        lines = [
            f"preset {t.preset}{'  (RANDOM WEIGHTS)' if t.is_random else ''}; models: {t.model_ids}",
            f"{len(t.candidates)} candidates; generated text: {t.generated_text}",
            "timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.timings.items()),
            "settings: " + ", ".join(f"{k}={v}" for k, v in t.settings.items() if k not in ("extra",)),
        ]
        self.trace_info.setPlainText("\n".join(lines))

    def _fill_evaluator(self) -> None:
        t = self.trace
        self.eval_groups.clear()
        if t is None or t.evaluator is None:
            self.eval_text.setPlainText("No evaluator output for this sample in this run (stage 2 was not run).")
            return
        ev = t.evaluator
        for g in ev.groups:
            for slot, (cid, score) in enumerate(zip(g.candidate_ids, g.scores, strict=False)):
                label = f"G{g.index} mask {slot + 1}\n#{cid}: {'—' if score is None else f'{score:.2f}'}"
                self.eval_groups.addItem(QtWidgets.QListWidgetItem(self._thumb(t.candidate(cid).mask), label))
        out = [f"Question: {t.question}", f"Evaluator: {ev.backend} {ev.model_id}" + ("  (RANDOM WEIGHTS)" if ev.is_random else ""),
               f"Group size {ev.group_size}, shuffle seed {ev.shuffle_seed}, chain of thought {'on' if ev.cot else 'off'}", ""]
        for g in ev.groups:
            out.append(f"── Group {g.index}: candidates {g.candidate_ids}")
            out.append(f"scores: {g.scores}")
            if g.parse_error:
                out.append(f"PARSE FAILURE: {g.parse_error}")
            if g.cot:
                out.append(f"reasoning: {g.cot}")
            out.append(f"raw text: {g.raw_text}")
            out.append("")
        out.append(f"Final ranking: {ev.ranking}")
        self.eval_text.setPlainText("\n".join(out))

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
        self.edit_mask = c.mask.copy()
        self.edit_provenance = {"tool": "candidate", "from_candidate": c.id, "origin": c.origin,
                                "run": self.run_combo.currentData()}
        self.save_mask()

    # ------------------------------------------------------------------------------ review
    def _guard(self, fn, *args, **kwargs) -> bool:
        """Run a review action; a refused action is shown to the user and changes nothing."""
        try:
            fn(*args, **kwargs)
        except (ValueError, LookupError) as exc:
            self.statusBar().showMessage(str(exc))
            QtWidgets.QMessageBox.warning(self, "Rea2Seg Studio", str(exc))
            return False
        return True

    def decide(self, decision: str) -> None:
        if self.current_id is None:
            return
        sid = self.current_id
        if not self._guard(review.decide, self.store, sid, decision, user=self.user, note=self.note_edit.text()):
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
            self._load_history()
            self._load_masks()

    def save_question(self) -> None:
        if self.current_id is None:
            return
        sid = self.current_id
        self._guard(review.edit_question, self.store, sid, self.question_edit.text(), user=self.user)
        self.refresh_samples()
        self._after_change(sid)

    def undo(self) -> None:
        if self.current_id is not None:
            ok = review.undo(self.store, self.current_id, user=self.user)
            self.statusBar().showMessage("undone" if ok else "nothing to undo")
            self.refresh_samples()
            self._after_change(self.current_id)

    def redo(self) -> None:
        if self.current_id is not None:
            ok = review.redo(self.store, self.current_id, user=self.user)
            self.statusBar().showMessage("redone" if ok else "nothing to redo")
            self.refresh_samples()
            self._after_change(self.current_id)

    # ------------------------------------------------------------------------------ editing
    def _check_tool(self, name: str) -> None:
        for b in self.tool_group.buttons():
            if b.objectName() == f"tool_{name}":
                b.setChecked(True)

    def set_tool(self, name: str) -> None:
        self.tool = name
        self.canvas.paint_mode = name in ("brush", "eraser")
        self.statusBar().showMessage(f"tool: {name}")

    def _ensure_edit_mask(self) -> np.ndarray | None:
        if self.image is None:
            return None
        if self.edit_mask is None:
            self.edit_mask = np.zeros(self.image.shape[:2], bool)
        return self.edit_mask

    def _on_canvas_drag(self, x0: float, y0: float, x1: float, y1: float) -> None:
        from core.maskops import paint_stroke

        m = self._ensure_edit_mask()
        if m is None:
            return
        self.edit_mask = paint_stroke(m, (x0, y0), (x1, y1), self.brush_size.value(), self.tool == "brush")
        self.edit_provenance = {"tool": "brush/eraser"}
        self.edit_dirty = True
        self.edit_state.setText("unsaved changes")
        if not self.canvas.visible["edited"]:
            self.layer_checks["edited"].setChecked(True)
        self.canvas.update_mask("edited", self.edit_mask)

    def _on_canvas_click(self, x: float, y: float, button: int) -> None:
        if self.tool in ("brush", "eraser"):
            self._on_canvas_drag(x, y, x, y)
        elif self.tool == "sam":
            self.sam_points.append((x, y, 1 if button == 1 else 0))
            self._run_sam()

    def undo_sam_click(self) -> None:
        if self.tool == "sam" and self.sam_points:
            self.sam_points.pop()
            if self.sam_points:
                self._run_sam()
            else:
                self._load_masks()

    def _segmenter(self, preset: str):
        if preset not in self.segmenters:
            from core.models.presets import load_segmenter

            self.segmenters[preset] = load_segmenter(preset)
        return self.segmenters[preset]

    def _run_sam(self) -> None:
        if self.image is None or self.active_worker is not None:
            return
        image = self.image
        pts = np.array([[p[0], p[1]] for p in self.sam_points], np.float32)
        labels = np.array([p[2] for p in self.sam_points], np.int32)
        prior = self.edit_mask if (self.sam_use_mask.isChecked() and self.edit_mask is not None and not self.sam_points[:-1]) else None
        preset = self.sam_preset.currentText()

        def job(progress, should_cancel):
            seg = self._segmenter(preset)
            seg.sam.set_image(image)
            mask_logits = None if prior is None else np.where(prior, 10.0, -10.0).astype(np.float32)
            logits, iou = seg.sam.predict_points(pts, labels, mask_logits, multimask=False)
            return logits[0] > 0, float(iou[0]), seg.sam.name, seg.is_random

        def done(result) -> None:
            mask, score, name, rnd = result
            self.edit_mask = mask
            self.edit_dirty = True
            self.edit_provenance = {"tool": "sam", "model": name, "is_random": rnd, "points_xy": pts.tolist(),
                                    "labels": labels.tolist(), "mask_prompt": prior is not None, "predicted_iou": score}
            self.canvas.set_mask("edited", mask)
            self.edit_state.setText(f"SAM mask (pred. IoU {score:.3f}){' — RANDOM WEIGHTS' if rnd else ''}; unsaved")

        self._start(job, done, "SAM")

    def fill_holes(self) -> None:
        from core.maskops import fill_holes

        if self.edit_mask is not None:
            self.edit_mask = fill_holes(self.edit_mask)
            self.edit_provenance = {**self.edit_provenance, "post": "fill_holes"}
            self.edit_dirty = True
            self.canvas.set_mask("edited", self.edit_mask)

    def remove_specks(self) -> None:
        from core.maskops import remove_specks

        if self.edit_mask is not None:
            self.edit_mask = remove_specks(self.edit_mask, self.speck_area.value())
            self.edit_provenance = {**self.edit_provenance, "post": "remove_specks"}
            self.edit_dirty = True
            self.canvas.set_mask("edited", self.edit_mask)

    def clear_mask(self) -> None:
        if self.image is not None:
            self.edit_mask = np.zeros(self.image.shape[:2], bool)
            self.edit_dirty = True
            self.edit_provenance = {"tool": "clear"}
            self.canvas.set_mask("edited", self.edit_mask)

    def save_mask(self) -> None:
        if self.current_id is None or self.edit_mask is None:
            return
        sid = self.current_id
        if not self._guard(review.replace_mask, self.store, sid, self.edit_mask, user=self.user,
                           provenance=self.edit_provenance or {"tool": "manual"}):
            return
        self.sam_points.clear()
        self._after_change(sid)
        self.statusBar().showMessage(f"sample {sid}: mask saved")

    # --------------------------------------------------------------------------------- runs
    def _start(self, job, done, what: str) -> None:
        # Connect to bound slots of this window (which lives on the GUI thread) so Qt queues
        # the worker's signals to the GUI thread; a lambda would run in the worker's thread.
        w = workers.Worker(job)
        self._job_callback = done
        self._job_name = what
        w.progress.connect(self._on_progress, QtCore.Qt.ConnectionType.QueuedConnection)
        w.finished.connect(self._job_done, QtCore.Qt.ConnectionType.QueuedConnection)
        w.failed.connect(self._job_failed, QtCore.Qt.ConnectionType.QueuedConnection)
        self.active_worker = w
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.worker_thread = workers.start(w, self)

    @QtCore.Slot(int, int, str)
    def _on_progress(self, done: int, total: int, label: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.statusBar().showMessage(f"{done}/{total} {label}")

    @QtCore.Slot(object)
    def _job_done(self, result) -> None:
        self.active_worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        callback, self._job_callback = self._job_callback, None
        if callback is not None:
            callback(result)

    @QtCore.Slot(str)
    def _job_failed(self, msg: str) -> None:
        what = self._job_name
        self.active_worker = None
        self._job_callback = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.run_error.setPlainText(f"{what} failed: {msg}")
        self.statusBar().showMessage(f"{what} failed — see the Run tab")
        self.run_failed.emit(msg)

    def start_run(self) -> None:
        from core.pipeline.cli import default_settings, run_samples

        ids = self.selected_ids() if self.scope_selected.isChecked() else None
        if ids is not None and not ids:
            self.run_error.setPlainText("Select samples first, or choose 'Whole project'.")
            return
        preset = self.run_preset.currentText()
        overrides = {} if self.use_paper_defaults.isChecked() else {k: w.value() for k, w in self.params.items()}
        store = self.store
        self.run_error.clear()
        ev_preset = None if self.eval_preset.currentIndex() == 0 else self.eval_preset.currentText()
        cot, group_size = self.eval_cot.isChecked(), self.group_size.value()

        def job(progress, should_cancel):
            seg = self._segmenter(preset)
            evaluator = None
            if ev_preset:
                from core.evaluator.presets import load_evaluator

                evaluator = load_evaluator(ev_preset)
            settings = default_settings(seg, **overrides)
            todo = ids if ids is not None else store.run(lambda s: [x.id for x in repo.list_samples(s)], write=False)
            run_id = store.run(lambda s: repo.create_run(
                s, name=f"{preset}{' + ' + ev_preset if ev_preset else ''} (GUI)", preset=preset,
                config={"stage1": settings.to_dict(), "stage2": {"evaluator": ev_preset, "cot": cot, "group_size": group_size}},
                model_ids={"mllm": seg.prompt_model.name, "sam": seg.sam.name, "evaluator": evaluator.name if evaluator else None},
                is_random=seg.is_random or bool(evaluator and evaluator.is_random)))
            progress(0, len(todo), "loading")
            run_samples(store, seg, todo, run_id, settings, progress=progress, should_cancel=should_cancel,
                        evaluator=evaluator, cot=cot, group_size=group_size)
            return run_id

        def done(run_id) -> None:
            self.statusBar().showMessage(f"run {run_id} finished")
            self.refresh_runs()
            if self.current_id is not None:
                self.show_sample(self.current_id)
            self.run_finished.emit(int(run_id))

        self._start(job, done, "Run")

    def rerun_and_compare(self) -> None:
        """Stage 1 on the current sample with the Run tab's parameters, shown beside its last trace."""
        from core.pipeline.cli import default_settings, run_samples

        if self.current_id is None or self.trace is None:
            self.run_error.setPlainText("Pick a sample that already has a trace (choose its run in the Candidates tab).")
            return
        sid, old = self.current_id, self.trace
        old_title = self.run_combo.currentText()
        preset = self.run_preset.currentText()
        overrides = {k: w.value() for k, w in self.params.items()}
        store = self.store

        def job(progress, should_cancel):
            seg = self._segmenter(preset)
            settings = default_settings(seg, **overrides)
            run_id = store.run(lambda s: repo.create_run(
                s, name=f"{preset} compare (GUI)", preset=preset, config={"stage1": settings.to_dict()},
                model_ids={"mllm": seg.prompt_model.name, "sam": seg.sam.name}, is_random=seg.is_random))
            run_samples(store, seg, [sid], run_id, settings, progress=progress, should_cancel=should_cancel)
            return run_id, store.run(lambda s: repo.load_trace(s, run_id, sid), write=False)

        def done(result) -> None:
            from rea2seg_gui.dialogs import CompareDialog

            run_id, new = result
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
            self.statusBar().showMessage(f"settings saved to {dlg.path}")

    # ------------------------------------------------------------------------------ misc
    def show_cheatsheet(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in SHORTCUTS)
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setTextFormat(QtCore.Qt.TextFormat.RichText)
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

    def open_store(self, url: str) -> None:
        from core.store import StoreError, open_store

        try:
            store = open_store(url)
        except StoreError as exc:
            QtWidgets.QMessageBox.critical(self, "Cannot open store", str(exc))
            return
        self.store = store
        self.current_id = None
        self.setWindowTitle(f"Rea2Seg Studio — {store.url}")
        self._remember_recent(store.url)
        self.refresh_samples()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        if self.edit_dirty and self.edit_mask is not None:
            ans = QtWidgets.QMessageBox.question(self, "Unsaved mask", "Save the edited mask before closing?",
                                                 QtWidgets.QMessageBox.StandardButton.Save | QtWidgets.QMessageBox.StandardButton.Discard)
            if ans == QtWidgets.QMessageBox.StandardButton.Save:
                self.save_mask()
        if self.active_worker is not None:
            self.active_worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.worker_thread is not None:
            try:
                self.worker_thread.quit()
                self.worker_thread.wait(5000)
            except RuntimeError:
                pass
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        super().closeEvent(ev)
