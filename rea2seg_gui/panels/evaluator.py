"""The evaluator panel: the masks as the evaluator saw them, per group, and its text (plain)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import PipelineTrace
from rea2seg_gui.panels.stale import show_stale, stale_label
from rea2seg_gui.panels.thumbs import Thumbnailer


class EvaluatorPanel(QtWidgets.QWidget):
    """Draws the trace's stage 2; ``candidate_chosen(candidate id)`` when a mask is picked."""

    candidate_chosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        self.stale_label = stale_label()
        v.addWidget(self.stale_label)
        g = self.groups = QtWidgets.QListWidget()
        g.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        g.setIconSize(QtCore.QSize(72, 54))
        g.setGridSize(QtCore.QSize(96, 100))
        g.setMaximumHeight(230)
        g.setWrapping(True)
        g.setMovement(QtWidgets.QListView.Movement.Static)
        g.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        g.itemSelectionChanged.connect(self._on_item)
        v.addWidget(g)
        self.text = QtWidgets.QPlainTextEdit()  # model text is plain text, never HTML
        self.text.setReadOnly(True)
        v.addWidget(self.text, 1)
        self.thumbs = Thumbnailer()
        self._known: set[int] = set()

    def set_stale(self, asked: str | None) -> None:
        """Mark the trace stale (``asked``: the question the run was given) or clear the mark (``None``)."""
        show_stale(self.stale_label, asked)

    def stale_text(self) -> str:
        return self.stale_label.text() if not self.stale_label.isHidden() else ""

    def show_trace(self, t: PipelineTrace | None, image: np.ndarray | None, loading: bool = False) -> None:
        self.groups.clear()
        self.thumbs.set_image(image)
        self._known = set() if t is None else {c.id for c in t.candidates}
        if t is None and loading:
            self.text.setPlainText("Loading the trace…")
            return
        if t is None or t.evaluator is None:
            self.text.setPlainText("No evaluator output for this sample in this run (stage 2 was not run).")
            return
        ev = t.evaluator
        for g in ev.groups:
            own = len(g.candidate_ids) - g.padded
            for slot, cid in enumerate(g.candidate_ids):
                score = g.scores[slot] if slot < len(g.scores) else None
                pad = slot >= own
                label = f"G{g.index} · mask {slot + 1}\n#{cid}: {'—' if score is None else f'{score:.2f}'}" + (" (pad)" if pad else "")
                icon = (self.thumbs.icon(t.candidate(cid).mask, (150, 150, 150) if pad else (60, 140, 255))
                        if cid in self._known else QtGui.QIcon())
                item = QtWidgets.QListWidgetItem(icon, label)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, cid)
                item.setToolTip(f"group {g.index}, mask {slot + 1}: candidate {cid}"
                                + (" — padding slot: its score is not used (the candidate is scored in its own group)" if pad else ""))
                if g.parse_error:
                    item.setForeground(QtGui.QColor(200, 40, 30))
                self.groups.addItem(item)
        self.text.setPlainText(describe_evaluator(t))

    def item_count(self) -> int:
        return self.groups.count()

    def item_labels(self) -> list[str]:
        return [self.groups.item(i).text() for i in range(self.groups.count())]

    def select_item(self, i: int) -> None:
        self.groups.item(i).setSelected(True)

    def plain_text(self) -> str:
        return self.text.toPlainText()

    def _on_item(self) -> None:
        items = self.groups.selectedItems()
        if items:
            cid = items[0].data(QtCore.Qt.ItemDataRole.UserRole)
            if cid in self._known:
                self.candidate_chosen.emit(int(cid))


def describe_evaluator(t: PipelineTrace) -> str:
    ev = t.evaluator
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
    return "\n".join(out)
