"""Two existing runs compared (``rea2seg compare`` in the app): per run, gIoU / cIoU per category
with their differences and paired bootstrap intervals; per sample, the two runs' traces side by
side on two canvases, each with its candidate list (origin, SAM score, evaluator score, rank,
true IoU, the pick). Nothing is written: the numbers come from
:func:`core.analytics.runs.compare_runs` and each sample pair is read in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from rea2seg_gui.canvas import Canvas
from rea2seg_gui.worker import Worker, start

Loaded = tuple[np.ndarray | None, np.ndarray | None, Any, Any]
"""(image RGB, reference mask, trace of run A or None, trace of run B or None)."""

CANDIDATE_HEADERS = ("id", "origin", "SAM", "evaluator", "rank", "true IoU", "pick")


def _item(text: str) -> QtWidgets.QTableWidgetItem:
    it = QtWidgets.QTableWidgetItem(text)
    it.setFlags(it.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
    return it


def _f(v: float | None, d: int = 3, signed: bool = False) -> str:
    return "—" if v is None else (f"{v:+.{d}f}" if signed else f"{v:.{d}f}")


def _ci(ci) -> str:
    return "" if ci is None else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]"


class RunCompareDialog(QtWidgets.QDialog):
    """``result``: :func:`core.analytics.runs.compare_runs`' result (``changed`` lists every
    shared sample, most changed first). ``load(sample_id)`` returns :data:`Loaded`; it runs in a
    worker thread."""

    sample_loaded = QtCore.Signal(int)

    def __init__(self, result: dict[str, Any], load: Callable[[int], Loaded], parent=None) -> None:
        super().__init__(parent)
        self.result, self._load = result, load
        a, b = result["run_a"], result["run_b"]
        self.setWindowTitle(f"Compare run {a} with run {b}")
        self.resize(1400, 900)
        v = QtWidgets.QVBoxLayout(self)
        head = QtWidgets.QLabel(
            f"Run {a} − run {b} ({result['method']}), over the {result['shared']} samples both "
            f"have ({result['only_a']} only in run {a}, {result['only_b']} only in run {b}); "
            f"paired bootstrap 95% intervals ({result['bootstrap']['n_boot']} resamples). "
            "Nothing is written to the store."
        )
        head.setWordWrap(True)
        head.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        v.addWidget(head)
        self.table = self._category_table(result)
        v.addWidget(self.table)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.samples = QtWidgets.QTableWidget(0, 4)
        self.samples.setHorizontalHeaderLabels(["sample", "category", f"IoU {a} − {b}", "IoU"])
        self.samples.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.samples.verticalHeader().setVisible(False)
        for r, c in enumerate(result["changed"]):
            self.samples.insertRow(r)
            self.samples.setItem(r, 0, _item(str(c["sample_id"])))
            self.samples.setItem(r, 1, _item(c["category"]))
            self.samples.setItem(r, 2, _item(_f(c["diff"], signed=True)))
            self.samples.setItem(r, 3, _item(f"{c['a']:.3f} / {c['b']:.3f}"))
        self.samples.itemSelectionChanged.connect(self._chosen)
        split.addWidget(self.samples)
        self.canvases: list[Canvas] = []
        self.candidates: list[QtWidgets.QTableWidget] = []
        self.titles: list[QtWidgets.QLabel] = []
        for run in (a, b):
            col = QtWidgets.QWidget()
            cv = QtWidgets.QVBoxLayout(col)
            cv.setContentsMargins(0, 0, 0, 0)
            title = QtWidgets.QLabel(f"run {run}")
            title.setTextFormat(QtCore.Qt.TextFormat.PlainText)
            canvas = Canvas()
            table = QtWidgets.QTableWidget(0, len(CANDIDATE_HEADERS))
            table.setHorizontalHeaderLabels(list(CANDIDATE_HEADERS))
            table.verticalHeader().setVisible(False)
            table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
            table.setMaximumHeight(220)
            i = len(self.canvases)
            table.itemSelectionChanged.connect(lambda i=i: self._candidate_chosen(i))
            cv.addWidget(title)
            cv.addWidget(canvas, 1)
            cv.addWidget(table)
            split.addWidget(col)
            self.canvases.append(canvas)
            self.candidates.append(table)
            self.titles.append(title)
        split.setSizes([260, 560, 560])
        v.addWidget(split, 1)
        self._traces: list[Any] = [None, None]
        self._threads: list[QtCore.QThread] = []
        self.sample_id: int | None = None
        if result["changed"]:
            self.samples.selectRow(0)

    def _category_table(self, res: dict[str, Any]) -> QtWidgets.QTableWidget:
        a, b = res["run_a"], res["run_b"]
        heads = [
            f"gIoU {a}",
            f"gIoU {b}",
            "Δ gIoU [95% CI]",
            f"cIoU {a}",
            f"cIoU {b}",
            "Δ cIoU [95% CI]",
            "n",
        ]
        rows = [*res["per_category"].items(), ("overall", res["overall"])]
        t = QtWidgets.QTableWidget(len(rows), len(heads))
        t.setHorizontalHeaderLabels(heads)
        t.setVerticalHeaderLabels([c for c, _ in rows])
        for r, (_c, d) in enumerate(rows):
            cells = [
                _f(d["a"]["giou"]),
                _f(d["b"]["giou"]),
                _f(d["giou_diff"], signed=True) + _ci(d["giou_ci"]),
                _f(d["a"]["ciou"]),
                _f(d["b"]["ciou"]),
                _f(d["ciou_diff"], signed=True) + _ci(d["ciou_ci"]),
                str(d["n"]),
            ]
            for col, text in enumerate(cells):
                t.setItem(r, col, _item(text))
        t.resizeColumnsToContents()
        t.setMaximumHeight(40 + 24 * len(rows))
        return t

    # ---------------------------------------------------------------------------- samples
    def _chosen(self) -> None:
        rows = {i.row() for i in self.samples.selectedIndexes()}
        if rows:
            self.show_sample(int(self.samples.item(min(rows), 0).text()))

    def show_sample(self, sample_id: int) -> None:
        """Read the sample's image, reference and both traces in a worker, then draw them."""
        self.sample_id = sample_id
        worker = Worker(lambda progress, cancel: (sample_id, self._load(sample_id)))
        worker.finished.connect(self._loaded)
        worker.failed.connect(lambda msg: self.titles[0].setText(f"could not read: {msg}"))
        self._worker = worker  # held until it reports
        self._threads.append(start(worker, self))

    def _loaded(self, payload: tuple[int, Loaded]) -> None:
        sample_id, (image, gt, ta, tb) = payload
        if sample_id != self.sample_id:
            return  # another sample was chosen meanwhile
        from core.analytics.records import answer_mask

        for i, (trace, run) in enumerate(((ta, self.result["run_a"]), (tb, self.result["run_b"]))):
            canvas, table = self.canvases[i], self.candidates[i]
            self._traces[i] = trace
            if image is not None:
                canvas.set_image(image)
            canvas.set_mask("gt", gt)
            canvas.set_trace(trace)
            canvas.set_mask("candidate", None if trace is None else answer_mask(trace))
            self._fill_candidates(table, trace, gt)
            n = 0 if trace is None else len(trace.candidates)
            self.titles[i].setText(
                f"run {run}, sample {sample_id}: {n} candidates" + ("" if trace else " (no trace)")
            )
        self.sample_loaded.emit(sample_id)

    def _fill_candidates(self, table: QtWidgets.QTableWidget, trace, gt) -> None:
        from core.evaluator.evaluate import ranking_of
        from core.metrics import intersection_union, sample_iou

        table.setRowCount(0)
        if trace is None:
            return
        rank = ranking_of(trace)
        place = {cid: i for i, cid in enumerate(rank)}
        ev = trace.evaluator
        scores = ev.final_scores if ev is not None else {}
        fell_back = ev is not None and ev.fell_back_to_initial
        for c in sorted(trace.candidates, key=lambda c: place[c.id]):
            iou = None if gt is None else sample_iou(*intersection_union(c.mask, gt))
            pick = "★" if (not fell_back and rank and c.id == rank[0]) else ""
            r = table.rowCount()
            table.insertRow(r)
            for col, text in enumerate(
                (
                    str(c.id),
                    c.origin,
                    _f(c.sam_score),
                    _f(scores.get(c.id)),
                    str(place[c.id] + 1),
                    _f(iou),
                    pick,
                )
            ):
                table.setItem(r, col, _item(text))
        if fell_back:
            r = table.rowCount()
            table.insertRow(r)
            table.setItem(r, 1, _item("initial mask M"))
            table.setItem(r, 6, _item("★ (no readable score)"))
        table.resizeColumnsToContents()

    def _candidate_chosen(self, i: int) -> None:
        trace, table = self._traces[i], self.candidates[i]
        rows = {x.row() for x in table.selectedIndexes()}
        if trace is None or not rows:
            return
        item = table.item(min(rows), 0)
        if item is None or not item.text().isdigit():
            return
        cid = int(item.text())
        mask = next((c.mask for c in trace.candidates if c.id == cid), None)
        self.canvases[i].set_mask("candidate", mask)

    def done(self, r: int) -> None:  # noqa: D102 - Qt API: let the readers finish first
        for t in self._threads:
            try:
                t.quit()
                t.wait(2000)
            except RuntimeError:
                pass  # already deleted
        super().done(r)


def store_loader(store) -> Callable[[int], Loaded]:
    """``load(sample_id)`` for :class:`RunCompareDialog` over ``store`` (reads only; one short
    session per call, safe in the worker thread)."""

    def load_for(run_a: int, run_b: int, against: str) -> Callable[[int], Loaded]:
        def load(sample_id: int) -> Loaded:
            from core.images import load_image_rgb
            from core.store import repo

            with store.session(write=False) as s:
                sample = repo.get_sample(s, sample_id)
                path = repo.image_path(sample)
                gt = repo.reference_mask(s, sample_id, against).mask
                ta = repo.load_trace(s, run_a, sample_id)
                tb = repo.load_trace(s, run_b, sample_id)
            try:
                image = load_image_rgb(path)
            except (OSError, ValueError):
                image = None  # a missing image file: the traces are still shown
            return image, gt, ta, tb

        return load

    return load_for  # type: ignore[return-value]


def open_run_compare(parent: QtWidgets.QWidget, store, result: dict[str, Any]) -> RunCompareDialog:
    """Show :class:`RunCompareDialog` for ``result`` (non-modal) and return it."""
    load = store_loader(store)(result["run_a"], result["run_b"], result.get("against", "gt"))  # type: ignore[operator]
    dialog = RunCompareDialog(result, load, parent)
    dialog.show()
    return dialog
