"""The generated-question panel: the question beside the generator's and the verifier's
answers, with accept / edit / reject / re-generate.

A widget that only shows what it is given (:meth:`QuestionsPanel.show_sample`) and emits
signals; the window does the store actions and re-generation (in a worker).
"""

from __future__ import annotations

import json

from PySide6 import QtCore, QtWidgets

from core.benchmark.checks import CheckView
from core.benchmark.provenance import VERDICT_FILTERS, GenerationView

__all__ = ["VERDICT_FILTERS", "QuestionsPanel"]

_VERDICT_STYLE = {
    "accepted": "background:#1b5e20;color:white;",
    "rejected": "background:#b3261e;color:white;",
    "fixed": "background:#455a64;color:white;",
}


def _pretty(raw: str) -> str:
    """JSON answers indented; anything else as the model wrote it."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return raw


_CHECK_TITLES = {"blind": "blind check", "unique": "uniqueness check"}
_CHECK_BAD = {"shortcut", "ambiguous", "wrong", "none", "error"}


def check_line(c: CheckView) -> str:
    """One check as one line: its verdict and what the model named, e.g.
    ``blind check: shortcut (named cup)`` or ``uniqueness check: ambiguous (boxes 1, 2; target 1)``."""
    d = c.details
    if c.verdict == "error":
        what = (c.error or "")[:120]
    elif c.check == "blind":
        what = f"named {d.get('named') or 'NA'}" if "named" in d else "one category only"
    else:
        picked = ", ".join(str(b) for b in d.get("picked", [])) or "none"
        what = f"boxes {picked}; target {d.get('target')}"
    stale = "" if c.current else " — checked an earlier wording"
    return f"{_CHECK_TITLES.get(c.check, c.check)}: {c.verdict} ({what}){stale}"


def _tokens(usage: dict) -> str:
    parts = []
    for role in ("generator", "verifier"):
        u = usage.get(role) or {}
        if "total_tokens" in u:
            parts.append(f"{role} {u['total_tokens']} tokens")
        if "seconds" in u:
            parts.append(f"{u['seconds']:.1f} s")
    return " · ".join(parts)


class QuestionsPanel(QtWidgets.QWidget):
    """``show_sample(sample_id, question, status, generation)``; ``generation`` is ``None`` for a
    sample that was not generated (re-generation is then disabled)."""

    accept_requested = QtCore.Signal(int)
    reject_requested = QtCore.Signal(int)
    edit_requested = QtCore.Signal(int, str)
    regenerate_requested = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample_id: int | None = None
        self.generation: GenerationView | None = None
        self.hand_edited = False
        self._stored = ""  # the question as stored
        v = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        self.verdict_label = QtWidgets.QLabel("—")
        self.verdict_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.verdict_label.setStyleSheet("padding:2px 6px;font-weight:bold;")
        top.addWidget(self.verdict_label)
        self.info_label = QtWidgets.QLabel()
        self.info_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.info_label.setWordWrap(True)
        top.addWidget(self.info_label, 1)
        v.addLayout(top)
        self.prompt_boxes_check = QtWidgets.QCheckBox(
            "Show the prompt boxes on the image  [Q]  (red: the target, blue: the other instances)"
        )
        self.prompt_boxes_check.setToolTip(
            "The boxes drawn on the image the generator and the verifier were shown (App. C)"
        )
        self.prompt_boxes_check.setChecked(True)
        v.addWidget(self.prompt_boxes_check)

        self.question_edit = QtWidgets.QPlainTextEdit()
        self.question_edit.setPlaceholderText("The question")
        self.question_edit.setMaximumHeight(70)
        v.addWidget(QtWidgets.QLabel("Question"))
        v.addWidget(self.question_edit)

        answers = QtWidgets.QHBoxLayout()
        self.generator_box = QtWidgets.QGroupBox("Generator")
        gl = QtWidgets.QVBoxLayout(self.generator_box)
        self.generator_text = QtWidgets.QPlainTextEdit()
        self.generator_text.setReadOnly(True)
        gl.addWidget(self.generator_text)
        self.verifier_box = QtWidgets.QGroupBox("Verifier")
        vl = QtWidgets.QVBoxLayout(self.verifier_box)
        self.reasons_label = QtWidgets.QLabel()
        self.reasons_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.reasons_label.setWordWrap(True)
        vl.addWidget(self.reasons_label)
        self.verifier_text = QtWidgets.QPlainTextEdit()
        self.verifier_text.setReadOnly(True)
        vl.addWidget(self.verifier_text)
        answers.addWidget(self.generator_box)
        answers.addWidget(self.verifier_box)
        v.addLayout(answers, 1)

        self.checks_label = QtWidgets.QLabel()
        self.checks_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.checks_label.setWordWrap(True)
        self.checks_label.setToolTip(
            "Question checks (not from the paper): rea2seg questions check. Blind: the model "
            "saw the question and the category list, no image; uniqueness: the image with "
            "every instance in a numbered box"
        )
        v.addWidget(self.checks_label)

        buttons = QtWidgets.QHBoxLayout()
        self.accept_button = QtWidgets.QPushButton("Accept")
        self.edit_button = QtWidgets.QPushButton("Save edit")
        self.reject_button = QtWidgets.QPushButton("Reject")
        self.regenerate_button = QtWidgets.QPushButton("Re-generate")
        self.regenerate_button.setToolTip(
            "Ask the sample's generator and verifier again (same endpoint and models)"
        )
        for b in (self.accept_button, self.edit_button, self.reject_button, self.regenerate_button):
            buttons.addWidget(b)
        v.addLayout(buttons)
        self.accept_button.clicked.connect(lambda: self._emit(self.accept_requested))
        self.reject_button.clicked.connect(lambda: self._emit(self.reject_requested))
        self.regenerate_button.clicked.connect(self._ask_regenerate)
        self.edit_button.clicked.connect(self._emit_edit)
        self.show_sample(None)

    def _emit(self, signal) -> None:
        if self.sample_id is not None:
            signal.emit(self.sample_id)

    def _ask_regenerate(self) -> None:
        """Re-generate; a question a person edited (or an unsaved edit here) is replaced only
        after Yes to "replace it?"."""
        if self.sample_id is None:
            return
        unsaved = self.question != self._stored.strip()
        if self.hand_edited or unsaved:
            what = "has unsaved edits here" if unsaved else "was edited by hand"
            box = QtWidgets.QMessageBox.question(
                self,
                "Replace the question?",
                f"The question of sample {self.sample_id} {what}. Re-generating replaces it with "
                "the generator's new question (Ctrl+Z undoes it). Re-generate anyway?",
                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                QtWidgets.QMessageBox.StandardButton.No,
            )
            if box != QtWidgets.QMessageBox.StandardButton.Yes:
                return
        self.regenerate_requested.emit(self.sample_id)

    def _emit_edit(self) -> None:
        if self.sample_id is not None:
            self.edit_requested.emit(self.sample_id, self.question_edit.toPlainText().strip())

    @property
    def question(self) -> str:
        return self.question_edit.toPlainText().strip()

    def set_busy(self, busy: bool) -> None:
        """While a re-generation runs: no second one, no decisions on a question about to change."""
        for b in (self.accept_button, self.edit_button, self.reject_button):
            b.setEnabled(not busy and self.sample_id is not None)
        self.regenerate_button.setEnabled(not busy and self._can_regenerate())

    def _can_regenerate(self) -> bool:
        return self.sample_id is not None and self.generation is not None

    def show_sample(
        self,
        sample_id: int | None,
        question: str = "",
        status: str = "",
        generation: GenerationView | None = None,
        hand_edited: bool = False,
    ) -> None:
        """``hand_edited``: the question was last changed by a person (re-generating asks first)."""
        self.sample_id, self.generation = sample_id, generation
        self.hand_edited, self._stored = hand_edited, question
        self.question_edit.setPlainText(question)
        g = generation
        if sample_id is None:
            self.verdict_label.setText("—")
            self.verdict_label.setStyleSheet("padding:2px 6px;")
            self.info_label.setText("No sample selected")
        elif g is None:
            self.verdict_label.setText("not generated")
            self.verdict_label.setStyleSheet("padding:2px 6px;")
            self.info_label.setText(f"sample {sample_id} · {status} · imported, not generated")
        else:
            self.verdict_label.setText(f"verifier: {g.verdict}")
            self.verdict_label.setStyleSheet(
                "padding:2px 6px;font-weight:bold;" + _VERDICT_STYLE.get(g.verdict, "")
            )
            prompts = ", ".join(g.prompt_versions.values())
            extra = " · ".join(
                x for x in (_tokens(g.usage), f"by {g.requested_by}" if g.requested_by else "") if x
            )
            self.info_label.setText(
                f"sample {sample_id} · {g.split} · {status} · generation {g.count} of "
                f"{g.created_at:%Y-%m-%d %H:%M} UTC"
                + (f" · {extra}" if extra else "")
                + f"\nprompts: {prompts}"
            )
        self.generator_box.setTitle(
            f"Generator — {g.generator_model}" if g and g.generator_model else "Generator"
        )
        self.verifier_box.setTitle(
            f"Verifier — {g.verifier_model}" if g and g.verifier_model else "Verifier"
        )
        self.generator_text.setPlainText(_pretty(g.generator_raw) if g else "")
        self.verifier_text.setPlainText(_pretty(g.verifier_raw) if g else "")
        self.reasons_label.setText(
            f"{g.verdict}: {g.reasons}" if g and g.reasons else (g.verdict if g else "")
        )
        self.show_checks({})
        self.set_busy(False)

    def show_checks(self, checks: dict[str, CheckView]) -> None:
        """The sample's latest question checks (:func:`core.benchmark.checks.latest_checks`);
        a flagged one (text shortcut, not unique, error) is shown in red."""
        self.checks = dict(checks)
        if not checks:
            self.checks_label.setText("question checks: none" if self.sample_id else "")
            self.checks_label.setStyleSheet("")
            return
        ordered = [checks[k] for k in ("blind", "unique") if k in checks]
        lines = [check_line(c) for c in ordered]
        tips = [
            f"{_CHECK_TITLES.get(c.check, c.check)}: {c.model} @ {c.endpoint} · "
            f"{', '.join(c.prompt_versions.values())} · {c.created_at:%Y-%m-%d %H:%M} UTC\n"
            f"{c.raw[:400]}"
            for c in ordered
        ]
        self.checks_label.setText("\n".join(lines))
        self.checks_label.setToolTip("\n\n".join(tips))
        flagged = any(c.verdict in _CHECK_BAD for c in ordered)
        self.checks_label.setStyleSheet("color:#b3261e;font-weight:bold;" if flagged else "")
