"""The candidate gallery: one row per candidate of the trace with a thumbnail (at least 128
logical pixels, a larger preview on hover), the origin written out, SAM / stability /
evaluator scores, the rank and the true IoU against a mask the user picks (the imported
ground truth, or the reviewed mask when the sample has one). Arrow keys step through the
candidates while the gallery has focus; the selection is announced with
``candidate_selected`` (the window draws it on the canvas).

:class:`ThumbnailCache`, :func:`thumb_side` and :class:`HoverPreview` are shared with the
evaluator panel, whose mask thumbnails look and behave the same."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.metrics import intersection_union, sample_iou
from core.pipeline.ask import answer_id
from core.trace import Candidate, PipelineTrace
from rea2seg_gui.overlays import ORIGIN_DESCRIPTIONS, ORIGIN_NAMES

Against = Literal["gt", "reviewed"]
AGAINST_NAMES: dict[str, str] = {"gt": "imported ground truth", "reviewed": "reviewed mask"}
# the true IoU and the rank first: they stay in view in a narrow dock (the rest scrolls)
COLUMNS = (
    "mask",
    "id",
    "origin",
    "true IoU",
    "rank",
    "answer",
    "evaluator score",
    "SAM score",
    "stability",
)
IOU_COLUMN = COLUMNS.index("true IoU")
RANK_COLUMN = COLUMNS.index("rank")
ANSWER_COLUMN = COLUMNS.index("answer")
ANSWER_MARK = "★ answer"
THUMB_MIN = 128  # logical pixels
PREVIEW_FACTOR = 3  # the hover preview is this many thumbnails wide
MASK_TINT = (60, 140, 255)  # a candidate over its darkened image


def thumb_side(widget: QtWidgets.QWidget) -> int:
    """Thumbnail side in logical pixels: 9 text lines, and never under ``THUMB_MIN``."""
    return max(THUMB_MIN, round(9 * widget.fontMetrics().height()))


class Thumbnails:
    """Candidate thumbnails of one image, the longer side exactly ``side_px`` pixels: the image is
    resampled once by nearest neighbour (each output pixel takes the input pixel under its
    centre: exact pixels, never blended; small images grow, large ones shrink), and each mask is
    shown tinted over a darkened copy."""

    def __init__(
        self, image: np.ndarray, side_px: int, color: tuple[int, int, int] = MASK_TINT
    ) -> None:
        h, w = image.shape[:2]
        # a fixed output size (not a stride, which can give little more than half of side_px)
        oh, ow = (max(1, math.floor(n * side_px / max(h, w))) for n in (h, w))
        rows = np.minimum((np.arange(oh) + 0.5) * h // oh, h - 1).astype(np.intp)
        cols = np.minimum((np.arange(ow) + 0.5) * w // ow, w - 1).astype(np.intp)
        self.index: tuple = np.ix_(rows, cols)
        small = image[self.index].astype(np.uint16)
        self.dark = (small * 55 // 100).astype(np.uint8)
        self.tinted = ((small * 35 + np.array(color, np.uint16) * 65) // 100).astype(np.uint8)

    def image(self, mask: np.ndarray) -> np.ndarray:
        m = mask[self.index]
        return np.ascontiguousarray(np.where(m[..., None], self.tinted, self.dark))

    def pixmap(self, mask: np.ndarray, dpr: float = 1.0) -> QtGui.QPixmap:
        img = self.image(mask)
        q = QtGui.QImage(
            img.data, img.shape[1], img.shape[0], img.strides[0], QtGui.QImage.Format.Format_RGB888
        )
        pm = QtGui.QPixmap.fromImage(q.copy())
        pm.setDevicePixelRatio(dpr)
        return pm


class ThumbnailCache:
    """The :class:`Thumbnails` of the image on screen, one per (pixel size, tint): the image is
    resampled once per sample and size, not once per mask. A new image empties it."""

    def __init__(self) -> None:
        self._image: np.ndarray | None = None
        self._by_key: dict[tuple[int, tuple[int, int, int]], Thumbnails] = {}

    def get(
        self, image: np.ndarray, side_px: int, color: tuple[int, int, int] = MASK_TINT
    ) -> Thumbnails:
        """``image``: uint8 RGB (H, W, 3); ``side_px``: the thumbnails' longer side in device pixels."""
        if image is not self._image:
            self._image, self._by_key = image, {}
        key = (side_px, tuple(color))
        if key not in self._by_key:
            self._by_key[key] = Thumbnails(image, side_px, color)
        return self._by_key[key]

    def pixmap(
        self,
        owner: QtWidgets.QWidget,
        image: np.ndarray,
        mask: np.ndarray,
        color: tuple[int, int, int] = MASK_TINT,
    ) -> QtGui.QPixmap:
        """``mask`` (bool, the image's H × W) as a thumbnail sized for ``owner`` (:func:`thumb_side`,
        sharp on high-density screens)."""
        dpr = owner.devicePixelRatioF()
        return self.get(image, round(thumb_side(owner) * dpr), color).pixmap(mask, dpr)


class HoverPreview(QtWidgets.QLabel):
    """A larger picture of the mask under the pointer (``PREVIEW_FACTOR`` thumbnails wide), in a
    tool-tip window of its own beside the pointer. :meth:`follow` shows it for the items of an
    item view and hides it when the pointer leaves them."""

    def __init__(self, owner: QtWidgets.QWidget) -> None:
        super().__init__(owner, QtCore.Qt.WindowType.ToolTip)
        self.owner = owner
        self.setFrameShape(QtWidgets.QFrame.Shape.Box)

    def show_mask(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        caption: str,
        color: tuple[int, int, int] = MASK_TINT,
    ) -> None:
        """``mask`` (bool, the H × W of ``image``, uint8 RGB) over ``image``, beside the pointer."""
        side = thumb_side(self.owner) * PREVIEW_FACTOR
        dpr = self.owner.devicePixelRatioF()
        self.setPixmap(Thumbnails(image, round(side * dpr), color).pixmap(mask, dpr))
        self.setToolTip(caption)
        self.adjustSize()
        gap = self.owner.fontMetrics().height()
        self.move(QtGui.QCursor.pos() + QtCore.QPoint(gap, gap))
        self.show()

    def follow(
        self, view: QtWidgets.QAbstractItemView, show: Callable[[QtCore.QModelIndex], None]
    ) -> None:
        """Call ``show(index)`` when the pointer enters an item of ``view``; hide on empty space
        and when the pointer leaves the view."""
        view.setMouseTracking(True)
        view.entered.connect(show)
        view.viewportEntered.connect(self.hide)
        view.installEventFilter(self)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 - Qt API
        if ev.type() in (QtCore.QEvent.Type.Leave, QtCore.QEvent.Type.Hide):
            self.hide()
        return super().eventFilter(obj, ev)


class CandidateTable(QtWidgets.QTableWidget):
    """The gallery's table. While it has focus the arrow keys are its own (↑/← previous,
    ↓/→ next candidate), not the window's sample navigation."""

    ARROWS = (
        QtCore.Qt.Key.Key_Up,
        QtCore.Qt.Key.Key_Down,
        QtCore.Qt.Key.Key_Left,
        QtCore.Qt.Key.Key_Right,
    )
    left_table = QtCore.Signal()

    def event(self, ev: QtCore.QEvent) -> bool:
        if (
            ev.type() == QtCore.QEvent.Type.ShortcutOverride
            and ev.key() in self.ARROWS
            and not ev.modifiers()
        ):
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802 - Qt API
        if ev.key() in self.ARROWS and not ev.modifiers():
            self.step(-1 if ev.key() in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_Left) else 1)
            ev.accept()
            return
        super().keyPressEvent(ev)

    def step(self, delta: int) -> None:
        """Select the candidate ``delta`` rows away (as sorted on screen), clamped to the ends."""
        if self.rowCount() == 0:
            return
        rows = {i.row() for i in self.selectedIndexes()}
        r = min(rows) + delta if rows else (0 if delta > 0 else self.rowCount() - 1)
        r = max(0, min(self.rowCount() - 1, r))
        self.selectRow(r)
        self.scrollToItem(self.item(r, 0))

    def leaveEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self.left_table.emit()
        super().leaveEvent(ev)


class CandidateGallery(QtWidgets.QWidget):
    """``set_candidates(trace, image, gt, reviewed, ignore)`` fills it; masks are bool (H, W)."""

    candidate_selected = QtCore.Signal(object)  # Candidate | None

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace: PipelineTrace | None = None
        self.image: np.ndarray | None = None
        self.refs: dict[str, np.ndarray | None] = {"gt": None, "reviewed": None}
        self.ignore: np.ndarray | None = None
        self._thumbs = ThumbnailCache()
        v = QtWidgets.QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("True IoU against"))
        self.against_combo = QtWidgets.QComboBox()
        for key, name in AGAINST_NAMES.items():
            self.against_combo.addItem(name, key)
        self.against_combo.setToolTip(
            "The mask the true IoU column is measured against (ignore region excluded). "
            "The imported ground truth is kept unchanged beside the reviewed mask."
        )
        self.against_combo.currentIndexChanged.connect(lambda _i: self._fill_iou())
        row.addWidget(self.against_combo, 1)
        v.addLayout(row)
        self.rank_note = QtWidgets.QLabel()
        self.rank_note.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.rank_note.setWordWrap(True)
        v.addWidget(self.rank_note)
        self.table = CandidateTable(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(
            [c.replace(" ", "\n", 1) if c.endswith("score") else c for c in COLUMNS]
        )
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        self.table.setMouseTracking(True)
        header = self.table.horizontalHeader()
        fm = self.fontMetrics()
        # widths from the font, set once: sizing columns to their contents on every sample is slow
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(
            COLUMNS.index("origin"), fm.horizontalAdvance("multimask") + fm.height()
        )
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(RANK_COLUMN, QtCore.Qt.SortOrder.AscendingOrder)  # best first
        self.table.itemSelectionChanged.connect(
            lambda: self.candidate_selected.emit(self.selected_candidate())
        )
        self.table.cellEntered.connect(lambda r, _c: self.show_preview(r))
        self.table.left_table.connect(self.hide_preview)
        v.addWidget(self.table, 1)
        self.preview = HoverPreview(self)
        self._apply_sizes()
        self._set_header()  # names its reference from the start

    # -- sizes ------------------------------------------------------------------------------
    @property
    def thumb(self) -> int:
        return thumb_side(self)

    def _apply_sizes(self) -> None:
        side = self.thumb
        fm = self.fontMetrics()
        self.table.setIconSize(QtCore.QSize(side, side))
        self.table.setColumnWidth(0, side + fm.height())
        for col, title in enumerate(COLUMNS):
            if col not in (0, COLUMNS.index("origin")):
                lines = ("true IoU", "vs reviewed") if col == IOU_COLUMN else title.split(" ")
                width = max(fm.horizontalAdvance(t) for t in (*lines, "0.000"))
                self.table.setColumnWidth(col, width + fm.height())
        self.table.verticalHeader().setDefaultSectionSize(side + self.fontMetrics().height() // 2)

    # -- data -------------------------------------------------------------------------------
    @property
    def against(self) -> Against:
        return self.against_combo.currentData()

    def set_against(self, against: Against) -> None:
        self.against_combo.setCurrentIndex(self.against_combo.findData(against))

    def set_candidates(
        self,
        trace: PipelineTrace | None,
        image: np.ndarray | None,
        gt: np.ndarray | None,
        reviewed: np.ndarray | None,
        ignore: np.ndarray | None,
    ) -> None:
        """Show ``trace``'s candidates over ``image`` (uint8 RGB); ``reviewed`` is the sample's
        edited mask (``None`` when not reviewed), ``gt`` the imported ground truth."""
        self.trace, self.image, self.ignore = trace, image, ignore
        self.refs = {"gt": gt, "reviewed": reviewed}
        # the reviewed mask is offered when there is one, and then the default
        item = self.against_combo.model().item(self.against_combo.findData("reviewed"))
        item.setEnabled(reviewed is not None)
        self.against_combo.blockSignals(True)
        self.set_against("reviewed" if reviewed is not None else "gt")
        self.against_combo.blockSignals(False)
        self.hide_preview()
        self._fill()

    def _fill(self) -> None:
        t, tb = self.trace, self.table
        tb.setSortingEnabled(False)
        tb.clearSelection()
        tb.setRowCount(0 if t is None else len(t.candidates))
        self.rank_note.setText(rank_note(t))
        if t is not None:
            ev = t.evaluator
            order = list(ev.ranking) if ev is not None and ev.ranking else []
            order += [c.id for c in t.candidates if c.id not in order]  # else stage-1 order
            ranks = {cid: i + 1 for i, cid in enumerate(order)}
            chosen = answer_id(t)
            for r, c in enumerate(t.candidates):
                it = QtWidgets.QTableWidgetItem()
                if self.image is not None:
                    it.setIcon(QtGui.QIcon(self._thumbs.pixmap(self, self.image, c.mask)))
                it.setData(QtCore.Qt.ItemDataRole.UserRole, c.id)
                tb.setItem(r, 0, it)
                vals = {
                    "id": c.id,
                    "origin": ORIGIN_NAMES.get(c.origin, c.origin),
                    "true IoU": self._iou(c),
                    "rank": ranks.get(c.id),
                    "answer": ANSWER_MARK if c.id == chosen else "",
                    "evaluator score": ev.final_scores.get(c.id) if ev else None,
                    "SAM score": c.sam_score,
                    "stability": c.stability,
                }
                for name, v in vals.items():
                    tb.setItem(r, COLUMNS.index(name), self._cell(v))
                tb.item(r, COLUMNS.index("origin")).setToolTip(
                    ORIGIN_DESCRIPTIONS.get(c.origin, "")
                )
        self._set_header()
        tb.setSortingEnabled(True)

    def answer_row(self) -> int | None:
        """The row of the candidate chosen as the answer (``None``: the answer is M, or no trace)."""
        for r in range(self.table.rowCount()):
            item = self.table.item(r, ANSWER_COLUMN)
            if item is not None and item.text() == ANSWER_MARK:
                return r
        return None

    @staticmethod
    def _cell(v) -> QtWidgets.QTableWidgetItem:
        item = QtWidgets.QTableWidgetItem()
        item.setData(
            QtCore.Qt.ItemDataRole.DisplayRole,
            round(v, 3) if isinstance(v, float) else ("—" if v is None else v),
        )
        return item

    def reference(self) -> np.ndarray | None:
        """The mask the true IoU is measured against (the picker's choice)."""
        return self.refs.get(self.against)

    def _iou(self, c: Candidate) -> float | None:
        ref = self.reference()
        if ref is None or ref.shape != c.mask.shape:
            return None
        ign = self.ignore if self.ignore is not None and self.ignore.shape == ref.shape else None
        return sample_iou(*intersection_union(c.mask, ref, ign))

    def _set_header(self) -> None:
        name = AGAINST_NAMES[self.against]
        item = QtWidgets.QTableWidgetItem(
            f"true IoU\nvs {'GT' if self.against == 'gt' else 'reviewed'}"
        )
        item.setToolTip(
            f"IoU with the {name}, ignore region excluded (the metrics view's definition)"
        )
        self.table.setHorizontalHeaderItem(IOU_COLUMN, item)

    def _fill_iou(self) -> None:
        if self.trace is None:
            self._set_header()
            return
        self.table.setSortingEnabled(False)
        for r in range(self.table.rowCount()):
            c = self.trace.candidate(
                int(self.table.item(r, 0).data(QtCore.Qt.ItemDataRole.UserRole))
            )
            self.table.setItem(r, IOU_COLUMN, self._cell(self._iou(c)))
        self._set_header()
        self.table.setSortingEnabled(True)

    def header_text(self) -> str:
        """The true IoU column's header on one line, e.g. ``true IoU vs GT``."""
        return self.table.horizontalHeaderItem(IOU_COLUMN).text().replace("\n", " ")

    def candidate_at(self, row: int) -> Candidate | None:
        item = self.table.item(row, 0)
        if item is None or self.trace is None:
            return None
        return self.trace.candidate(int(item.data(QtCore.Qt.ItemDataRole.UserRole)))

    def selected_candidate(self) -> Candidate | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.candidate_at(min(rows)) if rows else None

    # -- hover preview ----------------------------------------------------------------------
    def show_preview(self, row: int) -> None:
        """A larger picture of the candidate under the pointer, beside the pointer."""
        c = self.candidate_at(row)
        if c is None or self.image is None:
            self.hide_preview()
            return
        self.preview.show_mask(
            self.image, c.mask, f"candidate {c.id}: {ORIGIN_NAMES.get(c.origin, c.origin)}"
        )

    def hide_preview(self) -> None:
        self.preview.hide()

    def closeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self.preview.hide()
        super().closeEvent(ev)


def rank_note(t: PipelineTrace | None) -> str:
    """What the rank column means for this trace, and which mask is the answer."""
    if t is None:
        return ""
    ev = t.evaluator
    if not t.candidates:
        return "No candidates: the answer is the initial mask M (L > 0)."
    if ev is None:
        return (
            "No stage 2 in this run: rank is stage-1 order; the answer (★) is the first candidate."
        )
    if ev.fell_back_to_initial:
        return (
            "NO READABLE SCORE: the evaluator's answers could not be read, so the answer is the "
            "initial mask M (L > 0), not a candidate; ranks are stage-1 order and mean nothing."
        )
    unread = sum(v is None for v in ev.final_scores.values())
    return "Rank: the evaluator's ranking, 1 = best; ★ marks the answer." + (
        f" {unread} candidate(s) got no readable score and rank last." if unread else ""
    )
