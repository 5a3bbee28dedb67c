"""The review loop: which sample is shown, what A / R / F / undo / question edits and mask edits
do to the store, and drawing the result into the panels.

Every review action and every finished mask edit is one store transaction, committed at once;
undo and redo go through the store's history. The controller reads through the
:class:`~rea2seg_gui.controllers.loading.SampleLoader` and writes through ``core.store.review``;
panels only draw what it gives them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.benchmark.checks import latest_checks
from core.benchmark.provenance import (
    filter_by_verdict,
    latest_generation,
    question_edited_by_hand,
)
from core.evaldata.provenance import annotations_of, filter_by_reasoning
from core.store import Store, repo, review
from core.store.listing import SampleListing
from core.trace import PipelineTrace, question_is_stale
from rea2seg_gui.controllers.editing import EditController
from rea2seg_gui.controllers.history import history_rows
from rea2seg_gui.controllers.loading import SampleLoader
from rea2seg_gui.controllers.state import SampleState
from rea2seg_gui.models import trained_label
from rea2seg_gui.overlays import logits_loader
from rea2seg_gui.panels.candidates import CandidatesPanel
from rea2seg_gui.panels.edit import EditPanel
from rea2seg_gui.panels.evaluator import EvaluatorPanel
from rea2seg_gui.panels.layers import LayersPanel
from rea2seg_gui.panels.questions import QuestionsPanel
from rea2seg_gui.panels.reasoning import PREFIX as REASONING_PREFIX
from rea2seg_gui.panels.reasoning import ReasoningPanel
from rea2seg_gui.panels.review import ReviewPanel
from rea2seg_gui.panels.samples import SamplesPanel
from rea2seg_gui.panels.viewer import ViewerPanel


@dataclass
class Panels:
    samples: SamplesPanel
    review: ReviewPanel
    viewer: ViewerPanel
    layers: LayersPanel
    candidates: CandidatesPanel
    evaluator: EvaluatorPanel
    edit: EditPanel
    questions: QuestionsPanel
    tabs: QtWidgets.QTabWidget
    reasoning: ReasoningPanel | None = None


class ReviewController(QtCore.QObject):
    """``sample_shown(id)``, ``trace_shown(id)`` (also when a slow trace arrives later),
    ``mask_saved(id)``, ``status(text)`` for the status bar, ``refused(text)`` for a message box."""

    sample_shown = QtCore.Signal(int)
    trace_shown = QtCore.Signal(int)
    mask_saved = QtCore.Signal(int)
    status = QtCore.Signal(str)
    refused = QtCore.Signal(str)

    def __init__(
        self,
        store: Store,
        user: str,
        state: SampleState,
        loader: SampleLoader,
        panels: Panels,
        ask_text: Callable[[str, str], tuple[str, bool]],
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store, self.user, self.state, self.loader, self.p = store, user, state, loader, panels
        self.canvas = panels.viewer.canvas
        self._ask_text = ask_text
        self.editing: EditController | None = None
        self.ask_reject_reason = True  # preferences.ASK_REJECT_REASON
        # sample ids of the changes made in this window, newest last: Ctrl+Z walks back through
        # them across samples (a decision moved on to the next sample; undo returns to it)
        self._undo_log: list[int] = []
        self._redo_log: list[int] = []
        self._stale: set[str] = set()
        self._question: str | None = None  # the shown sample's current question
        self._shown_question: str | None = None
        self._waiting: tuple[int, int | None, Any] | None = None
        # every sample's list row, re-read only where it changed; the filters it was shown with
        self.listing = SampleListing()
        self._listed_filters: dict[str, str | None] | None = None
        p = panels
        p.samples.filters_changed.connect(self.refresh_samples)
        p.samples.sample_chosen.connect(self.show_sample)
        p.review.decision_requested.connect(self.decide)
        p.review.question_submitted.connect(self.save_question)
        p.review.undo_requested.connect(self.undo)
        p.review.redo_requested.connect(self.redo)
        p.candidates.run_changed.connect(lambda _: self.load_trace())
        p.candidates.candidate_selected.connect(self.show_candidate)
        # the panel's own trace: a store sample's, or an ask's (no sample then)
        p.evaluator.candidate_chosen.connect(
            lambda cid: self.show_candidate(self.p.evaluator.candidate(cid))
        )
        p.tabs.currentChanged.connect(self.refresh_visible_panel)
        p.questions.accept_requested.connect(
            lambda sid: sid == self.state.sample_id and self.decide("accept")
        )
        p.questions.reject_requested.connect(
            lambda sid: sid == self.state.sample_id and self.decide("reject")
        )
        p.questions.edit_requested.connect(self.edit_question)
        # the dock's check box and the Layers tab's toggle are one setting
        p.questions.prompt_boxes_check.toggled.connect(
            lambda on: p.layers.set_visible("prompt", on)
        )
        p.layers.checks["prompt"].toggled.connect(p.questions.prompt_boxes_check.setChecked)
        if p.reasoning is not None:
            p.reasoning.accept_requested.connect(lambda sid: self.decide_reasoning(sid, "accept"))
            p.reasoning.reject_requested.connect(lambda sid: self.decide_reasoning(sid, "reject"))
            p.reasoning.edit_requested.connect(self.edit_reasoning)
        loader.trace_arrived.connect(
            self._on_trace_arrived, QtCore.Qt.ConnectionType.QueuedConnection
        )

    def set_store(self, store: Store) -> None:
        self.store = store
        self.loader.set_store(store)
        self.state.sample_id, self.state.trace, self._waiting = None, None, None
        self.p.samples.forget_current()
        self.p.samples.forget_analytics()  # ids and doubts of the old store mean nothing here
        self.listing = SampleListing()
        self._listed_filters = None

    # ------------------------------------------------------------------------------ samples
    def _verdict_filter(self, ids: list[int], verdict: str) -> list[int]:
        """The ids of ``ids`` that pass the verdict box's choice: a generated question's verdict,
        or (``reasoning: …``) the state of a training sample's reasoning."""
        if verdict.startswith(REASONING_PREFIX):
            return filter_by_reasoning(self.store, ids, verdict[len(REASONING_PREFIX) :])
        return filter_by_verdict(self.store, ids, verdict)

    def refresh_samples(self, scroll: bool = True) -> None:
        """Bring the sample list and counts up to date with the store and the panel's filters;
        the selection is kept.

        Only the samples that changed since the last call are read and redrawn; a change of
        filters (or a store whose samples were deleted) filters every sample's row again."""
        f = self.p.samples.filters()
        keep = self.state.sample_id
        was_row = self.p.samples.row_of(keep)
        changes = self.listing.refresh(self.store)
        counts = self.listing.counts_by_status()
        only = self.p.samples.only_ids()  # e.g. a failure class's samples, from the metrics tab
        if changes.reloaded or f != self._listed_filters:
            ids = list(self.listing.rows)
            allowed = self._verdict_filter(ids, f["verdict"]) if f["verdict"] else None
            if only is not None:
                allowed = [i for i in (ids if allowed is None else allowed) if i in only]
            self.p.samples.show_listing(self.listing.rows, counts, allowed)
            self._listed_filters = f
        else:
            allowed_now = None
            if (f["verdict"] or only is not None) and changes.changed:
                ok = set(changes.changed)
                if f["verdict"]:
                    ok = set(self._verdict_filter(list(changes.changed), f["verdict"]))
                allowed_now = {
                    sid: sid in ok and (only is None or sid in only) for sid in changes.changed
                }
            self.p.samples.apply_changes(changes.changed, changes.removed, counts, allowed_now)
        n = self.p.samples.row_count()
        if keep is not None and self.p.samples.row_of(keep) is not None:
            self.p.samples.select(keep, scroll=scroll)
        elif keep is not None and was_row is not None:
            # the shown sample left the list (a filter, a re-generation, another reviewer): what
            # is highlighted is what is shown and acted on — its neighbour, or nothing
            if n:
                self.p.samples.select_row(min(was_row, n - 1))
            else:
                self.show_nothing("no sample passes the filters")
        elif keep is not None and self.p.samples.current_id() != keep:
            self.p.samples.table.clearSelection()  # shown apart from the list (undo): no row
        elif n and keep is None:
            self.p.samples.select_row(0)
        elif not n and keep is None:
            self.p.samples.table.clearSelection()

    def show_nothing(self, why: str) -> None:
        """No sample is shown (the list is empty): nothing can be accepted by mistake."""
        if self.editing is not None:
            self.editing.reset()
        st = self.state
        st.sample_id = st.image = st.image_error = st.image_path = None
        st.gt = st.ignore = st.edit_mask = st.trace = st.run_id = None
        self._waiting = None
        self.p.samples.forget_current()
        self.p.samples.table.clearSelection()
        self.canvas.clear()
        self.p.viewer.show_question(f"({why})")
        self.p.review.show_sample("", "—", "—", "—")
        self.p.review.show_history([])
        self.p.questions.show_sample(None)
        if self.p.reasoning is not None:
            self.p.reasoning.show_sample(None)
        self.p.candidates.show_runs([])
        self.show_trace(None)
        self.status.emit(f"no sample shown: {why}")

    @property
    def undo_log(self) -> list[int]:
        """Sample ids of the changes made here, newest last (read-only use)."""
        return self._undo_log

    def next_pending(self) -> None:
        """Show the next ``pending`` sample below the current row of the list, wrapping to the top."""
        nxt = self.p.samples.next_with_status(self.state.sample_id, "pending")
        if nxt is None:
            self.status.emit(
                "no other pending sample in the list (the filters decide what it holds)"
            )
        else:
            self.p.samples.select(nxt)

    def step(self, delta: int) -> None:
        nxt = self.p.samples.neighbour(self.state.sample_id, delta)
        if nxt is not None:
            self.p.samples.select(nxt)

    def show_sample(self, sample_id: int) -> None:
        """Show the sample (image, masks, its newest run's trace) and read the next one ahead.

        The texts, history and run list are drawn while the image decodes in the pool."""
        st, p = self.state, self.p
        pending = self.loader.begin(sample_id)
        if p.samples.current_id() != sample_id and not p.samples.select(sample_id, emit=False):
            p.samples.forget_current()  # shown apart from the list (undo): no row highlighted
            p.samples.table.clearSelection()
        if self.editing is not None:
            self.editing.reset()
        smp = pending.sample
        self._show_texts(smp)
        p.candidates.show_runs(
            [
                (r.id, f"#{r.id} {r.name}" + (" [random]" if r.is_random else ""))
                for r in reversed(pending.runs)
            ]
        )
        p.review.show_history(history_rows(self.store, sample_id))
        if (
            not pending.image_ready()
        ):  # paint the side panels now, while this thread would only wait
            for w in (p.viewer.question_label, p.samples, p.review, p.questions, p.candidates):
                w.repaint()
        loaded = self.loader.finish(pending)
        st.sample_id, st.image, st.image_error = sample_id, loaded.image, loaded.image_error
        st.image_path = str(smp.image.path)
        st.gt, st.ignore, st.edit_mask = loaded.gt, loaded.ignore, loaded.edited
        self._waiting = (
            None if loaded.trace_ready else (sample_id, loaded.run_id, loaded.trace_future)
        )
        self.canvas.set_image(loaded.image)
        self.canvas.set_mask("gt", loaded.gt)
        self.canvas.set_mask("ignore", loaded.ignore)
        self._draw_prompt_boxes()
        p.viewer.show_image_error(loaded.image_error)
        p.review.set_accept_enabled(
            loaded.image_error is None, "The image cannot be read: it cannot be accepted"
        )
        self._show_masks()
        self.show_trace(loaded.trace, loading=not loaded.trace_ready)
        msg = f"sample {sample_id} · {smp.image.width}×{smp.image.height} · {smp.image.path}"
        self.status.emit(f"{loaded.image_error} — {msg}" if loaded.image_error else msg)
        nxt = p.samples.neighbour(sample_id, 1)
        if nxt != sample_id:  # the last row has no next one
            self.loader.read_ahead(nxt, keep=sample_id)
        self.sample_shown.emit(sample_id)

    def _show_texts(self, smp, keep_edits: bool = False) -> None:
        """The sample's texts; ``keep_edits`` leaves a question the user is editing alone."""
        self._question = smp.question
        self._show_stale()
        self.p.viewer.show_question(smp.question)
        self.p.review.show_sample(
            smp.question, smp.status, smp.category, smp.external_id, keep_edit=keep_edits
        )
        q = self.p.questions
        if not (
            keep_edits
            and q.sample_id == smp.id
            and q.question != (self._shown_question or "").strip()
        ):
            gen = latest_generation(self.store, smp.id)
            edited = gen is not None and question_edited_by_hand(self.store, smp.id)
            q.show_sample(smp.id, smp.question, smp.status, gen, hand_edited=edited)
            q.show_checks(latest_checks(self.store, smp.id))
            self._shown_question = smp.question
        r = self.p.reasoning
        if r is not None and not (
            keep_edits and r.sample_id == smp.id and r.reasoning != (smp.reasoning or "").strip()
        ):
            r.show_sample(
                smp.id,
                smp.reasoning,
                smp.reasoning_status,
                smp.reasoning_source,
                annotations_of(self.store, smp.id),
            )

    def _draw_prompt_boxes(self) -> None:
        """The red / blue boxes the shown generated question's generator and verifier saw."""
        g = self.p.questions.generation
        if g is None or g.sample_id != self.state.sample_id:
            self.canvas.set_prompt_boxes(None)
        else:
            self.canvas.set_prompt_boxes(g.target_box_xyxy, list(g.other_boxes_xyxy))

    def _show_masks(self) -> None:
        m = self.state.edit_mask
        self.canvas.set_mask("edited", m)
        self.p.edit.show_state(
            "edited mask saved"
            if m is not None
            else "no edited mask yet (painting starts from the ground truth)"
        )

    # ------------------------------------------------------------------------------- trace
    @QtCore.Slot(int, object)
    def _on_trace_arrived(self, sample_id: int, run_id: int | None) -> None:
        """A trace loaded in the pool after the sample was shown: draw it if still wanted."""
        waiting = self._waiting
        if (
            waiting is None
            or waiting[:2] != (sample_id, run_id)
            or self.state.sample_id != sample_id
        ):
            return
        self._waiting = None
        if self.p.candidates.run_id() != run_id:
            return
        try:
            trace = waiting[2].result()
        except Exception:  # noqa: BLE001 - loaded again here, where an error is raised to the user
            trace = self.loader.load_trace(run_id, sample_id)
        self.show_trace(trace)

    def load_trace(self) -> None:
        """Load and draw the trace of the run chosen in the candidates panel."""
        run_id, sid = self.p.candidates.run_id(), self.state.sample_id
        self._waiting = None
        self.show_trace(
            None if run_id is None or sid is None else self.loader.load_trace(run_id, sid)
        )

    def show_trace(self, trace: PipelineTrace | None, loading: bool = False) -> None:
        self.state.trace = trace
        self.canvas.set_trace(trace)
        run_id, sid = self.p.candidates.run_id(), self.state.sample_id
        if trace is not None and run_id is not None and sid is not None:
            self.canvas.set_logits_loader(
                logits_loader(self.store, run_id, sid)
            )  # L for the hover read-out
        self.canvas.set_mask("candidate", None)
        trace_random = bool(trace and trace.is_random)
        eval_random = bool(trace and trace.evaluator and trace.evaluator.is_random)
        what = (
            "models"
            if trace_random and eval_random
            else ("stage-1 models" if trace_random else "evaluator")
        )
        self.p.viewer.show_banner(
            f"RANDOM WEIGHTS — not a result  ·  this trace comes from random-init {what}"
            if trace_random or eval_random
            else None
        )
        label = None if trace is None or trace_random else trained_label(trace.preset)
        self.p.viewer.show_model_note(
            f"{trace.preset}: {label} — not the paper's models; see its model card"
            if trace is not None and label
            else None
        )
        self.p.layers.show_legend(self.canvas.attention_range, loading)
        self._show_stale()
        # thumbnails and texts are built when their tab is shown: switching samples stays fast
        self._stale = {"candidates", "evaluator"}
        self.refresh_visible_panel()
        if not loading:
            self.trace_shown.emit(-1 if self.state.sample_id is None else self.state.sample_id)

    def _show_stale(self) -> None:
        """Mark the trace on screen stale when the question was edited after its run."""
        t = self.state.trace
        asked = (
            t.question
            if t is not None and question_is_stale(t.question, self._question or "")
            else None
        )
        self.p.candidates.set_stale(asked)
        self.p.evaluator.set_stale(asked)

    def refresh_visible_panel(self, _index: int = -1) -> None:
        current, st, loading = self.p.tabs.currentWidget(), self.state, self._waiting is not None
        if current is self.p.candidates and "candidates" in self._stale:
            self._stale.discard("candidates")
            self.p.candidates.show_trace(
                st.trace, st.image, st.gt, st.edit_mask, st.ignore, loading
            )
        elif current is self.p.evaluator and "evaluator" in self._stale:
            self._stale.discard("evaluator")
            self.p.evaluator.show_trace(st.trace, st.image, loading)

    def forget_sample(self) -> None:
        """No store sample is shown (the canvas shows an ask): tab changes redraw nothing of
        the last sample over what the Candidates and Evaluator tabs now show."""
        self._stale.clear()
        self._waiting = None

    def show_candidate(self, c) -> None:
        self.canvas.set_mask("candidate", None if c is None else c.mask)
        if c is not None:
            self.p.layers.set_visible("candidate", True)

    # ------------------------------------------------------------------------------ review
    def _guard(self, fn, *args, **kwargs) -> bool:
        """Run a review action; a refused action is shown to the user and changes nothing."""
        try:
            fn(*args, **kwargs)
        except (ValueError, LookupError) as exc:
            self.status.emit(str(exc))
            self.refused.emit(str(exc))
            return False
        return True

    def decide(self, decision: str) -> None:
        """Accept / reject / flag the current sample (with the note) and move to the next one."""
        sid = self.state.sample_id
        if sid is None:
            return
        if decision == "accept" and self.state.image_error:
            self.status.emit(
                f"sample {sid}: not accepted — the image cannot be read ({self.state.image_error})"
            )
            return
        from_note = self.p.review.note_has_focus()
        note = self.p.review.note()
        if (
            decision in ("flag", "reject")
            and not note
            and (decision == "flag" or self.ask_reject_reason)
        ):
            what = "flagged" if decision == "flag" else "rejected"
            note, ok = self._ask_text(
                f"{decision.capitalize()} sample", f"Why is sample {sid} {what}?"
            )
            if not ok:
                return
            note = note.strip()
        if not self._guard(review.decide, self.store, sid, decision, user=self.user, note=note):
            return
        self._logged(sid)
        self.p.review.clear_note()
        if from_note:  # the next A / R / F is a shortcut again, never a letter in the note
            self.p.samples.table.setFocus()
        self.status.emit(f"sample {sid}: {decision}")
        row = self.p.samples.row_of(sid)
        self.refresh_samples()
        n = self.p.samples.row_count()
        if n:
            now = self.p.samples.row_of(sid)
            target = (now + 1) if now is not None else min(row or 0, n - 1)
            self.p.samples.select_row(min(target, n - 1))
        self.after_change(sid)

    def after_change(self, sid: int) -> None:
        """Re-read what a change of sample ``sid`` touches (texts, history, edited mask) if shown."""
        if self.state.sample_id == sid:
            smp, edited = self.store.run(
                lambda s: (repo.get_sample(s, sid), repo.edited_mask(s, sid)), write=False
            )
            self._show_texts(smp)
            self._draw_prompt_boxes()  # a re-generation may have another target
            self.p.review.show_history(history_rows(self.store, sid))
            self.state.edit_mask = edited
            self._show_masks()
            self._stale.add("candidates")  # true IoU follows the current mask
            self.refresh_visible_panel()

    def commit_mask(self, mask: np.ndarray | None, provenance: dict[str, Any]) -> bool:
        """Save ``mask`` as the sample's edited mask (one store transaction) with its provenance."""
        sid = self.state.sample_id
        if sid is None:
            return False
        was = self.listing.rows.get(sid)
        ok = self._guard(
            review.replace_mask,
            self.store,
            sid,
            mask,
            user=self.user,
            provenance=provenance,
            reopen_verified=True,
        )
        self.after_change(sid)
        if not ok:
            return False
        self._logged(sid)
        tool = provenance.get("tool", "edit")
        self.p.edit.show_state(
            f"saved: {tool}" + (" — RANDOM WEIGHTS" if provenance.get("is_random") else "")
        )
        reopened = was is not None and was.status == "verified"
        if reopened:
            self.refresh_samples(scroll=False)
        self.status.emit(
            f"sample {sid}: mask saved ({tool})"
            + (" — it was verified: back to pending, accept it again (A)" if reopened else "")
        )
        self.mask_saved.emit(sid)
        return True

    def save_question(self, text: str) -> None:
        sid = self.state.sample_id
        if sid is not None:
            self.edit_question(sid, text)

    def edit_question(self, sid: int, question: str) -> None:
        if self._guard(review.edit_question, self.store, sid, question, user=self.user):
            self._logged(sid)
            self.refresh_samples()
        self.after_change(sid)

    def decide_reasoning(self, sid: int, decision: str) -> None:
        """Accept / reject the sample's reasoning text (training data, §4.4); the sample stays."""
        if self._guard(review.decide_reasoning, self.store, sid, decision, user=self.user):
            self._logged(sid)
            self.status.emit(f"sample {sid}: reasoning {decision}")
            self.refresh_samples()
        self.after_change(sid)

    def edit_reasoning(self, sid: int, text: str) -> None:
        if self._guard(review.edit_reasoning, self.store, sid, text, user=self.user):
            self._logged(sid)
            self.status.emit(f"sample {sid}: reasoning edited")
        self.after_change(sid)

    def _logged(self, sid: int) -> None:
        self._undo_log.append(sid)
        self._redo_log.clear()

    def undo(self) -> None:
        """Undo the newest change made here (returning to its sample), else the shown sample's last."""
        self._undo_redo(review.undo, self._undo_log, self._redo_log, "undone", "nothing to undo")

    def redo(self) -> None:
        self._undo_redo(review.redo, self._redo_log, self._undo_log, "redone", "nothing to redo")

    def _undo_redo(self, fn, log: list[int], other: list[int], done: str, nothing: str) -> None:
        sid = log[-1] if log else self.state.sample_id
        if sid is None:
            return
        if self.editing is not None:
            self.editing.reset()
        ok = fn(self.store, sid, user=self.user)
        if log and ok:
            other.append(log.pop())
        elif log:  # nothing left to reverse there (e.g. undone elsewhere): forget it
            log.pop()
        self.refresh_samples()
        if self.state.sample_id != sid and not self.p.samples.select(sid):
            self.show_sample(sid)  # filtered out of the list: shown all the same
        self.after_change(sid)
        self.status.emit(f"sample {sid}: {done if ok else nothing}")

    # ------------------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        """Re-read the list, the counts and the shown sample's status, history, question and mask,
        for changes other processes made to a shared store. The selection stays; a stroke, polygon
        or SAM session in progress and a question being edited are left alone."""
        self.refresh_samples(scroll=False)
        sid = self.state.sample_id
        if sid is None:
            return
        try:
            smp, edited, runs = self.store.run(
                lambda s: (
                    repo.get_sample(s, sid),
                    repo.edited_mask(s, sid),
                    repo.runs_for_sample(s, sid),
                ),
                write=False,
            )
        except LookupError:  # deleted by someone else
            return
        self._show_texts(smp, keep_edits=True)
        self.p.review.show_history(history_rows(self.store, sid))
        if not (self.editing is not None and self.editing.busy) and not _same(
            edited, self.state.edit_mask
        ):
            self.state.edit_mask = edited
            self._show_masks()
        titles = [
            (r.id, f"#{r.id} {r.name}" + (" [random]" if r.is_random else ""))
            for r in reversed(runs)
        ]
        if [r[0] for r in titles] != self.p.candidates.run_ids():
            keep = self.p.candidates.run_id()
            self.p.candidates.show_runs(titles)
            if not self.p.candidates.select_run(keep):
                self.load_trace()


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)
    )
