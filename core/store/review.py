"""The review API: every function is one user action in one short transaction.

Every change writes a :class:`~core.store.models.Revision` row (who, when, field, before,
after); undo and redo are changes too and are recorded the same way, so the history is
complete and nothing is ever overwritten without a trace. Undo reverts the sample's most
recent edit that is still in effect; redo re-applies the most recently undone edit as long as
no new edit came after it (the usual editor semantics).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store import repo
from core.store.db import Store
from core.store.models import Review, Revision, Sample, utcnow

_DECISIONS = {"accept": "verified", "reject": "rejected", "flag": "flagged", "reopen": "pending"}
REOPENED_NOTE = "mask edited after it was verified"
_FIELDS = ("question", "status", "edited_mask", "category", "reasoning", "reasoning_status")
# the reasoning text of evaluator training data (§4.4) is reviewed on its own: accept / reject
_REASONING_DECISIONS = {"accept": "verified", "reject": "rejected", "reopen": "pending"}


class ReviewError(ValueError):
    """A review action that cannot be applied (empty question, unknown status, …)."""


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: dt.datetime
    user: str
    field: str
    before: Any
    after: Any
    note: str
    action: str
    undone: bool


def _get_field(sample: Sample, field: str) -> Any:
    return sample.edited_mask_id if field == "edited_mask" else getattr(sample, field)


def _set_field(sample: Sample, field: str, value: Any) -> None:
    if field == "edited_mask":
        sample.edited_mask_id = value
    else:
        setattr(sample, field, value)
    sample.updated_at = utcnow()


def record_change(
    s: Session, sample: Sample, field: str, after: Any, user: str, note: str = ""
) -> Revision | None:
    """Set one field of ``sample`` inside the caller's session and record the :class:`Revision`
    (``None`` when the value does not change)."""
    if field not in _FIELDS:
        raise ReviewError(f"unknown field {field!r}")
    before = _get_field(sample, field)
    if before == after:
        return None
    _set_field(sample, field, after)
    rev = Revision(
        sample_id=sample.id, user=user, field=field, before=before, after=after, note=note
    )
    s.add(rev)
    s.flush()
    return rev


def _check_user(user: str) -> str:
    user = (user or "").strip()
    if not user:
        raise ReviewError("a user name is required for every change")
    return user


def decide(store: Store, sample_id: int, decision: str, *, user: str, note: str = "") -> str:
    """accept / reject / flag / reopen a sample; returns the new status."""
    if decision not in _DECISIONS:
        raise ReviewError(f"unknown decision {decision!r}; use one of {sorted(_DECISIONS)}")
    user = _check_user(user)
    status = _DECISIONS[decision]

    def action(s: Session) -> str:
        sample = repo.get_sample(s, sample_id, for_update=True)
        s.add(Review(sample_id=sample_id, user=user, decision=decision, note=note))
        record_change(s, sample, "status", status, user, note)
        return status

    return store.run(action)


def edit_question(
    store: Store, sample_id: int, question: str, *, user: str, note: str = ""
) -> None:
    question = question.strip()
    if not question:
        raise ReviewError("the question cannot be empty")
    user = _check_user(user)
    store.run(
        lambda s: record_change(
            s, repo.get_sample(s, sample_id, for_update=True), "question", question, user, note
        )
    )


def edit_reasoning(
    store: Store, sample_id: int, reasoning: str, *, user: str, note: str = ""
) -> None:
    """Replace the sample's reasoning text (evaluator training, §4.4); recorded like any edit."""
    reasoning = reasoning.strip()
    if not reasoning:
        raise ReviewError("the reasoning cannot be empty; reject it instead")
    user = _check_user(user)
    store.run(
        lambda s: record_change(
            s, repo.get_sample(s, sample_id, for_update=True), "reasoning", reasoning, user, note
        )
    )


def decide_reasoning(
    store: Store, sample_id: int, decision: str, *, user: str, note: str = ""
) -> str:
    """accept / reject / reopen the sample's reasoning text; returns its new status
    (``verified`` / ``rejected`` / ``pending``). A rejected reasoning is not exported."""
    if decision not in _REASONING_DECISIONS:
        raise ReviewError(
            f"unknown reasoning decision {decision!r}; use one of {sorted(_REASONING_DECISIONS)}"
        )
    user = _check_user(user)
    status = _REASONING_DECISIONS[decision]

    def action(s: Session) -> str:
        sample = repo.get_sample(s, sample_id, for_update=True)
        if sample.reasoning is None:
            raise ReviewError(f"sample {sample_id} has no reasoning text to review")
        record_change(s, sample, "reasoning_status", status, user, note)
        return status

    return store.run(action)


def replace_mask(
    store: Store,
    sample_id: int,
    mask: np.ndarray | None,
    *,
    user: str,
    provenance: dict[str, Any] | None = None,
    note: str = "",
    reopen_verified: bool = False,
) -> int | None:
    """Set the sample's edited mask (bool (H, W) at image size; ``None`` clears it).

    Returns the new mask id. ``provenance`` records how the mask was made (tool, prompts,
    source candidate) and is stored with the mask. ``reopen_verified``: a ``verified`` sample
    goes back to ``pending`` in the same transaction (what was verified is not what is there
    now); its own revision, so undo restores it first.
    """
    user = _check_user(user)

    def action(s: Session) -> int | None:
        sample = repo.get_sample(s, sample_id, for_update=True)
        new_id = None
        if mask is not None:
            new_id = repo.add_mask(s, sample, mask, "edited", provenance).id
        record_change(s, sample, "edited_mask", new_id, user, note)
        if reopen_verified and sample.status == "verified":
            record_change(s, sample, "status", "pending", user, REOPENED_NOTE)
        return new_id

    return store.run(action)


def _undo_stack(s: Session, sample_id: int) -> tuple[list[Revision], list[Revision]]:
    """(edits in effect, oldest first; undone edits that can be redone, most recent undo last)."""
    rows = list(
        s.scalars(select(Revision).where(Revision.sample_id == sample_id).order_by(Revision.id))
    )
    by_id = {r.id: r for r in rows}
    last_edit = max((r.id for r in rows if r.action == "edit"), default=0)
    active = [r for r in rows if r.action == "edit" and not r.undone]
    redoable: list[Revision] = []
    for r in rows:
        if r.action == "undo" and r.id > last_edit and r.ref_id in by_id and by_id[r.ref_id].undone:
            redoable = [x for x in redoable if x.id != r.ref_id] + [by_id[r.ref_id]]
        elif r.action == "redo":
            redoable = [x for x in redoable if x.id != r.ref_id]
    return active, redoable


def _step(store: Store, sample_id: int, user: str, kind: str) -> bool:
    """Apply one undo (``kind="undo"``) or redo step; False when there is nothing to do."""
    user = _check_user(user)

    def action(s: Session) -> bool:
        sample = repo.get_sample(s, sample_id, for_update=True)
        active, redoable = _undo_stack(s, sample_id)
        stack = active if kind == "undo" else redoable
        if not stack:
            return False
        edit = stack[-1]
        value = edit.before if kind == "undo" else edit.after
        current = _get_field(sample, edit.field)
        _set_field(sample, edit.field, value)
        edit.undone = kind == "undo"
        s.add(
            Revision(
                sample_id=sample_id,
                user=user,
                field=edit.field,
                before=current,
                after=value,
                action=kind,
                ref_id=edit.id,
                note=f"{kind} of change {edit.id}",
            )
        )
        return True

    return store.run(action)


def undo(store: Store, sample_id: int, *, user: str) -> bool:
    """Revert the sample's latest edit still in effect. False if there is nothing to undo."""
    return _step(store, sample_id, user, "undo")


def redo(store: Store, sample_id: int, *, user: str) -> bool:
    """Re-apply the most recently undone edit. False if there is nothing to redo."""
    return _step(store, sample_id, user, "redo")


def history(store: Store, sample_id: int) -> list[HistoryEntry]:
    """Every change of the sample, oldest first."""

    def action(s: Session) -> list[HistoryEntry]:
        repo.get_sample(s, sample_id)
        rows = s.scalars(
            select(Revision).where(Revision.sample_id == sample_id).order_by(Revision.id)
        )
        return [
            HistoryEntry(r.id, r.at, r.user, r.field, r.before, r.after, r.note, r.action, r.undone)
            for r in rows
        ]

    return store.run(action, write=False)


def counts(store: Store) -> dict[tuple[str, str], int]:
    return store.run(repo.counts, write=False)
