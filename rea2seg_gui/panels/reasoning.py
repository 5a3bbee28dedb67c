"""The reasoning panel (evaluator training data, §4.4 / App. D): a sample's chain-of-thought
reasoning beside the model answers it came from, with accept / edit / reject.

A widget that only shows what it is given (:meth:`ReasoningPanel.show_sample`) and emits
signals; the review controller does the store actions.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.evaldata.provenance import REASONING_FILTERS, AnnotationView

__all__ = ["REASONING_FILTERS", "ReasoningPanel", "reasoning_filter_items"]

_STYLE = {
    "accepted": "background:#1b5e20;color:white;",
    "rejected": "background:#b3261e;color:white;",
    "verified": "background:#1b5e20;color:white;",
}
PREFIX = "reasoning: "


def reasoning_filter_items() -> list[str]:
    """The sample queue's reasoning filters, as its verdict box lists them."""
    return [PREFIX + f for f in REASONING_FILTERS]


def _calls_text(a: AnnotationView) -> str:
    parts = []
    for c in a.calls:
        head = f"── {c.get('role', '?')} · {c.get('model', '')} · {c.get('system', '')}"
        body = c.get("raw") if c.get("raw") is not None else f"(failed: {c.get('error', '')})"
        parts.append(f"{head}\n{c.get('user', '')}\n→\n{body}")
    if a.error:
        parts.append(f"── error: {a.error}")
    return "\n\n".join(parts)


class ReasoningPanel(QtWidgets.QWidget):
    """``show_sample(sample_id, reasoning, status, source, annotations)``; ``annotations`` the
    sample's reasoning annotations, oldest first (empty: none)."""

    accept_requested = QtCore.Signal(int)
    reject_requested = QtCore.Signal(int)
    edit_requested = QtCore.Signal(int, str)
    reannotate_requested = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample_id: int | None = None
        v = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        self.status_label = QtWidgets.QLabel("—")
        self.status_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        top.addWidget(self.status_label)
        self.info_label = QtWidgets.QLabel()
        self.info_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.info_label.setWordWrap(True)
        top.addWidget(self.info_label, 1)
        v.addLayout(top)
        split = QtWidgets.QHBoxLayout()
        left = QtWidgets.QVBoxLayout()
        left.addWidget(QtWidgets.QLabel("Reasoning (trained on before the scores)"))
        self.reasoning_edit = QtWidgets.QPlainTextEdit()
        self.reasoning_edit.setPlaceholderText("No reasoning text")
        left.addWidget(self.reasoning_edit, 1)
        split.addLayout(left, 1)
        self.calls_box = QtWidgets.QGroupBox("Model answers")
        cl = QtWidgets.QVBoxLayout(self.calls_box)
        self.reasons_label = QtWidgets.QLabel()
        self.reasons_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.reasons_label.setWordWrap(True)
        cl.addWidget(self.reasons_label)
        self.calls_text = QtWidgets.QPlainTextEdit()
        self.calls_text.setReadOnly(True)
        cl.addWidget(self.calls_text)
        split.addWidget(self.calls_box, 1)
        v.addLayout(split, 1)
        buttons = QtWidgets.QHBoxLayout()
        self.accept_button = QtWidgets.QPushButton("Accept reasoning")
        self.edit_button = QtWidgets.QPushButton("Save edit")
        self.reject_button = QtWidgets.QPushButton("Reject reasoning")
        self.reannotate_button = QtWidgets.QPushButton("Re-annotate")
        self.reannotate_button.setToolTip(
            "Ask the sample's annotator again (same endpoint and model; GQA: on the current mask)"
        )
        for b in (self.accept_button, self.edit_button, self.reject_button, self.reannotate_button):
            buttons.addWidget(b)
        v.addLayout(buttons)
        self.accept_button.clicked.connect(lambda: self._emit(self.accept_requested))
        self.reject_button.clicked.connect(lambda: self._emit(self.reject_requested))
        self.edit_button.clicked.connect(self._emit_edit)
        self.reannotate_button.clicked.connect(lambda: self._emit(self.reannotate_requested))
        self._annotated = False
        self.show_sample(None)

    def _emit(self, signal) -> None:
        if self.sample_id is not None:
            signal.emit(self.sample_id)

    def _emit_edit(self) -> None:
        if self.sample_id is not None:
            self.edit_requested.emit(self.sample_id, self.reasoning_edit.toPlainText().strip())

    @property
    def reasoning(self) -> str:
        return self.reasoning_edit.toPlainText().strip()

    def show_sample(
        self,
        sample_id: int | None,
        reasoning: str | None = None,
        status: str | None = None,
        source: str | None = None,
        annotations: list[AnnotationView] | tuple = (),
    ) -> None:
        self.sample_id = sample_id
        self.reasoning_edit.setPlainText(reasoning or "")
        a = annotations[-1] if annotations else None
        if sample_id is None:
            self.status_label.setText("—")
            self.info_label.setText("No sample selected")
        else:
            shown = status or ("no reasoning" if reasoning is None else "pending")
            self.status_label.setText(f"reasoning: {shown}")
            self.status_label.setStyleSheet(
                "padding:2px 6px;font-weight:bold;" + _STYLE.get(shown, "")
            )
            if a is None:
                self.info_label.setText(
                    f"sample {sample_id} · not annotated" + (f" · {source}" if source else "")
                )
            else:
                tokens = sum(int(u.get("total_tokens", 0)) for u in a.usage.values())
                self.info_label.setText(
                    f"sample {sample_id} · {a.builder} · annotation {len(annotations)} of "
                    f"{a.created_at:%Y-%m-%d %H:%M} UTC · {', '.join(a.models)}"
                    + (f" · {tokens} tokens" if tokens else "")
                    + f" · {a.seconds:.1f} s\nprompts: {', '.join(a.prompt_versions.values())}"
                )
        self.reasons_label.setText(
            f"{a.verdict}{' at ' + a.stage if a.stage else ''}: {a.reasons}" if a else ""
        )
        self.calls_text.setPlainText(_calls_text(a) if a else "")
        self._has_reasoning = sample_id is not None and reasoning is not None
        self._annotated = a is not None
        self.set_busy(False)

    def set_busy(self, busy: bool) -> None:
        """While a re-annotation runs: no second one, no decisions on a text about to change."""
        for b in (self.accept_button, self.reject_button):
            b.setEnabled(not busy and self._has_reasoning)
        self.edit_button.setEnabled(not busy and self.sample_id is not None)
        self.reannotate_button.setEnabled(not busy and self._annotated)
