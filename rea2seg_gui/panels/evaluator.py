"""The evaluator panel: the masks as the evaluator saw them, per group, and its text (plain).

Each mask is a thumbnail of the candidate gallery's size (at least ``THUMB_MIN`` = 128 logical
pixels, a ``PREVIEW_FACTOR`` times larger preview on hover: :mod:`rea2seg_gui.gallery`) with,
under it, its group and slot, the candidate id, the IoU the evaluator predicted for it (its score
s_{j,k}, paper §4.3) and the candidate's final rank."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import EvaluatorTrace, PipelineTrace
from rea2seg_gui.gallery import MASK_TINT, HoverPreview, ThumbnailCache, thumb_side
from rea2seg_gui.panels.stale import show_stale, stale_label

PAD_TINT = (150, 150, 150)  # a padding slot: shown, but its score is not used
CID_ROLE = QtCore.Qt.ItemDataRole.UserRole
PAD_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1


def slot_label(ev: EvaluatorTrace, group_index: int, slot: int) -> str:
    """The three lines under one mask of a group: ``G0 · mask 1``, ``#3 · pred. IoU 0.90``,
    ``rank 2 of 7`` (a padding slot: ``(pad)`` after the first line and the group that scored
    the candidate on the third)."""
    g = next(x for x in ev.groups if x.index == group_index)
    cid = g.candidate_ids[slot]
    score = g.scores[slot] if slot < len(g.scores) else None
    pad = slot >= len(g.candidate_ids) - g.padded
    ranks = {c: i + 1 for i, c in enumerate(ev.ranking)}
    first = f"G{g.index} · mask {slot + 1}" + (" (pad)" if pad else "")
    second = f"#{cid} · pred. IoU {'—' if score is None else f'{score:.2f}'}"
    if pad:
        own = next(
            (
                x.index
                for x in ev.groups
                if cid in x.candidate_ids[: len(x.candidate_ids) - x.padded]
            ),
            None,
        )
        third = "not used" if own is None else f"scored in G{own}"
    else:
        third = f"rank {ranks[cid]} of {len(ranks)}" if cid in ranks else "not ranked"
    return "\n".join((first, second, third))


class EvaluatorPanel(QtWidgets.QWidget):
    """Draws the trace's stage 2; ``candidate_chosen(candidate id)`` when a mask is clicked (the
    window shows that candidate on the canvas, as a selection in the candidates panel does)."""

    candidate_chosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        self.stale_label = stale_label()
        v.addWidget(self.stale_label)
        g = self.groups = QtWidgets.QListWidget()
        g.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        g.setWrapping(True)
        g.setMovement(QtWidgets.QListView.Movement.Static)
        g.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        g.setUniformItemSizes(True)  # one grid cell for all: no per-item layout pass
        g.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        g.itemSelectionChanged.connect(self._on_item)
        g.itemClicked.connect(self._on_click)
        self._selected_by_press = False
        self.text = QtWidgets.QPlainTextEdit()  # model text is plain text, never HTML
        self.text.setReadOnly(True)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(g)
        split.addWidget(self.text)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        v.addWidget(split, 1)
        self.preview = HoverPreview(self)
        self.preview.follow(g, lambda index: self.show_preview(index.row()))
        self._thumbs = ThumbnailCache()
        self._image: np.ndarray | None = None
        self._trace: PipelineTrace | None = None
        self._known: set[int] = set()
        self._described = ""
        self._size_grid([])

    @property
    def thumb(self) -> int:
        """Thumbnail side in logical pixels (:func:`rea2seg_gui.gallery.thumb_side`)."""
        return thumb_side(self)

    def _size_grid(self, labels: list[str]) -> None:
        """Icon and grid cell sizes from the font: the thumbnail and every label line in full."""
        side, fm = self.thumb, self.fontMetrics()
        widest = max(
            (fm.horizontalAdvance(line) for t in labels for line in t.split("\n")), default=0
        )
        lines = max((t.count("\n") + 1 for t in labels), default=3)
        self.groups.setIconSize(QtCore.QSize(side, side))
        self.groups.setGridSize(
            QtCore.QSize(max(side, widest) + fm.height(), side + (lines + 1) * fm.lineSpacing())
        )
        self.groups.setMinimumHeight(side + (lines + 2) * fm.lineSpacing())

    def set_stale(self, asked: str | None) -> None:
        """Mark the trace stale (``asked``: the question the run was given) or clear the mark (``None``)."""
        show_stale(self.stale_label, asked)

    def stale_text(self) -> str:
        return self.stale_label.text() if not self.stale_label.isHidden() else ""

    def show_trace(
        self, t: PipelineTrace | None, image: np.ndarray | None, loading: bool = False
    ) -> None:
        """One thumbnail per slot of every evaluator group (padding slots greyed), ``image``
        uint8 RGB (H, W, 3) at the trace's resolution; the evaluator's text below."""
        self.preview.hide()
        self.groups.clear()
        self._trace, self._image = t, image
        self._known = set() if t is None else {c.id for c in t.candidates}
        self._described = ""
        if t is None and loading:
            self.text.setPlainText("Loading the trace…")
            return
        if t is None or t.evaluator is None:
            self.text.setPlainText(
                "No evaluator output for this sample in this run (stage 2 was not run)."
            )
            return
        ev = t.evaluator
        labels = []
        for g in ev.groups:
            own = len(g.candidate_ids) - g.padded
            for slot, cid in enumerate(g.candidate_ids):
                pad = slot >= own
                label = slot_label(ev, g.index, slot)
                labels.append(label)
                item = QtWidgets.QListWidgetItem(self._icon(cid, pad), label)
                item.setData(CID_ROLE, cid)
                item.setData(PAD_ROLE, pad)
                item.setTextAlignment(
                    QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop
                )
                item.setToolTip(
                    f"group {g.index}, mask {slot + 1}: candidate {cid}; the score is the IoU the "
                    "evaluator predicts for it"
                    + (
                        " — padding slot: its score is not used (the "
                        "candidate is scored in its own group)"
                        if pad
                        else ""
                    )
                )
                if g.parse_error:
                    item.setForeground(QtGui.QColor(200, 40, 30))
                self.groups.addItem(item)
        self._size_grid(labels)
        self._described = describe_evaluator(t)
        self.text.setPlainText(self._described)

    def show_pending(self, index: int, candidate_ids: list[int], padded: int = 0) -> None:
        """Group ``index``'s masks while the evaluator scores them, after the groups shown
        (``candidate_ids`` in slot order, the last ``padded`` padding)."""
        own = len(candidate_ids) - padded
        labels = self.item_labels()
        for slot, cid in enumerate(candidate_ids):
            pad = slot >= own
            label = f"G{index} · mask {slot + 1}" + (" (pad)" if pad else "")
            label += f"\n#{cid} · scoring…\n"
            item = QtWidgets.QListWidgetItem(self._icon(cid, pad), label)
            item.setData(CID_ROLE, cid)
            item.setData(PAD_ROLE, pad)
            item.setTextAlignment(
                QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop
            )
            item.setToolTip(f"group {index}, mask {slot + 1}: candidate {cid}, being scored")
            self.groups.addItem(item)
            labels.append(label)
        self._size_grid(labels)

    def show_streaming(self, index: int, total: int, text: str) -> None:
        """Group ``index``'s answer as far as the evaluator has written it, below the groups
        already scored (plain text; the final text replaces it once the group is scored)."""
        head = f"{self._described}\n\n" if self._described else ""
        self.text.setPlainText(f"{head}── Group {index} ({index + 1} of {total}): scoring…\n{text}")
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())

    def candidate(self, cid: int):
        """The candidate ``cid`` of the trace shown (``None`` when it has none)."""
        t = self._trace
        return None if t is None or cid not in self._known else t.candidate(cid)

    def _icon(self, cid: int, pad: bool) -> QtGui.QIcon:
        img = self._image
        if cid not in self._known or img is None or self._trace is None:
            return QtGui.QIcon()
        mask = self._trace.candidate(cid).mask
        if img.shape[:2] != mask.shape:
            return QtGui.QIcon()
        return QtGui.QIcon(self._thumbs.pixmap(self, img, mask, PAD_TINT if pad else MASK_TINT))

    def item_count(self) -> int:
        return self.groups.count()

    def item_labels(self) -> list[str]:
        return [self.groups.item(i).text() for i in range(self.groups.count())]

    def select_item(self, i: int) -> None:
        self.groups.item(i).setSelected(True)

    def plain_text(self) -> str:
        return self.text.toPlainText()

    # -- hover preview ----------------------------------------------------------------------
    def show_preview(self, row: int) -> None:
        """A larger picture of the mask under the pointer, beside the pointer."""
        item = self.groups.item(row)
        cid = None if item is None else item.data(CID_ROLE)
        img, t = self._image, self._trace
        if (
            cid not in self._known
            or img is None
            or t is None
            or img.shape[:2] != t.candidate(cid).mask.shape
        ):
            self.preview.hide()
            return
        pad = bool(item.data(PAD_ROLE))
        self.preview.show_mask(
            img,
            t.candidate(cid).mask,
            item.text().replace("\n", " · "),
            PAD_TINT if pad else MASK_TINT,
        )

    def hideEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self.preview.hide()
        super().hideEvent(ev)

    def _on_item(self) -> None:
        items = self.groups.selectedItems()
        # a press that selects is followed by a click: announced once, here
        self._selected_by_press = (
            QtWidgets.QApplication.mouseButtons() != QtCore.Qt.MouseButton.NoButton
        )
        if items:
            self._choose(items[0])

    def _on_click(self, item: QtWidgets.QListWidgetItem) -> None:
        """A click on the mask already selected shows it again (the canvas may show another)."""
        if not self._selected_by_press:
            self._choose(item)
        self._selected_by_press = False

    def _choose(self, item: QtWidgets.QListWidgetItem) -> None:
        cid = item.data(CID_ROLE)
        if cid in self._known:
            self.candidate_chosen.emit(int(cid))


def describe_evaluator(t: PipelineTrace) -> str:
    ev = t.evaluator
    out = [
        f"Question: {t.question}",
        f"Evaluator: {ev.backend} {ev.model_id}"
        + ("  (RANDOM WEIGHTS — not a result)" if ev.is_random else ""),
        f"Group size s = {ev.group_size}, shuffle seed {ev.shuffle_seed}, chain of thought {'on' if ev.cot else 'off'}",
        f"Last group {'padded' if ev.pad_last else 'smaller'}; prompt format {ev.prompt_format or '?'}; "
        f"image tiling {ev.image_tiling or '?'}",
        *(
            ["NO READABLE SCORE: the answer falls back to the initial mask M"]
            if ev.fell_back_to_initial
            else []
        ),
        "",
    ]
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
    scores = ", ".join(
        f"#{c}: {'—' if ev.final_scores.get(c) is None else f'{ev.final_scores[c]:.3f}'}"
        for c in ev.ranking
    )
    out.append(f"Final ranking (best first): {scores}")
    return "\n".join(out)
