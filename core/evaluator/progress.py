"""What stage 2 hands out while it scores (argument ``partial`` of
:func:`core.evaluator.stage2.run_stage2`): per group, :class:`GroupStarted`, then any number of
:class:`ReasoningDelta` when the backend streams its text, then :class:`GroupScored`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.trace import EvaluatorGroup

TextFn = Callable[[str], None]
"""``on_text(delta)``: the next piece of the evaluator's answer, as it is generated."""


@dataclass(frozen=True)
class GroupStarted:
    """Group ``index`` of ``total`` is being scored: its candidate ids (the last ``padded`` are
    padding). ``evaluator``: the evaluator's ``backend``, ``model_id``, ``is_random``,
    ``group_size``, ``shuffle_seed`` and ``cot``, for a view of the groups so far."""

    index: int
    total: int
    candidate_ids: list[int]
    padded: int = 0
    evaluator: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReasoningDelta:
    """The next piece of group ``index``'s answer text (chain of thought, then scores), as the
    backend streams it."""

    index: int
    text: str


@dataclass(frozen=True)
class GroupScored:
    """Group ``group.index`` of ``total`` is scored (as it will appear in the trace)."""

    group: EvaluatorGroup
    total: int
