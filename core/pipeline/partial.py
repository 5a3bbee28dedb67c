"""Partial results of an ask, in the order they are found, and the trace they add up to.

Stage 1 (:func:`core.pipeline.stage1.run_stage1`, argument ``partial``) hands out, in order:
:class:`HeatmapReady` right after the MLLM forward (§4.2: the attention map over image tokens),
:class:`InitialMaskReady` once SAM has decoded L, one :class:`CandidateReady` per multimask
candidate (they keep ids 0, 1, 2 whatever follows), :class:`SeedsReady` (top-k1/k2 tokens and
the seed points), :class:`CoreReady` (the densest k-core of the feature graph and the negative
point) and one :class:`CandidateReady` per remaining candidate of the final list. Stage 2
(:func:`core.evaluator.stage2.run_stage2`) then hands out
:class:`~core.evaluator.progress.GroupStarted`, any number of
:class:`~core.evaluator.progress.ReasoningDelta` (when the backend streams) and
:class:`~core.evaluator.progress.GroupScored` per group.

:class:`LiveTrace` applies them one by one and gives, at any point, the
:class:`~core.trace.PipelineTrace` known so far, which a view draws as it draws a finished one;
it recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.evaluator.progress import GroupScored, GroupStarted, ReasoningDelta
from core.trace import (
    AttentionTrace,
    Candidate,
    EvaluatorGroup,
    EvaluatorTrace,
    FeatureGraphTrace,
    PipelineTrace,
    SeedTrace,
)

__all__ = [
    "CandidateReady",
    "CoreReady",
    "GroupScored",
    "GroupStarted",
    "HeatmapReady",
    "InitialMaskReady",
    "LiveTrace",
    "PartialFn",
    "ReasoningDelta",
    "SeedsReady",
    "Stage1Done",
    "partial_kind",
]


@dataclass(frozen=True)
class HeatmapReady:
    """After the MLLM forward: the attention over image tokens, averaged over the chosen layers
    and heads (``attention.token_map``, float (gh, gw)) with each token's box in image pixels."""

    attention: AttentionTrace


@dataclass(frozen=True)
class InitialMaskReady:
    """After SAM decodes the prompt embedding: L, float32 (H, W) logits at the image's size."""

    logits: np.ndarray


@dataclass(frozen=True)
class SeedsReady:
    """Top-k1 / top-k2 tokens and the seed points (pixels, ``(x, y)``)."""

    seeds: SeedTrace


@dataclass(frozen=True)
class CoreReady:
    """The cosine feature graph, its densest k-core (seed indices) and the negative point."""

    graph: FeatureGraphTrace


@dataclass(frozen=True)
class CandidateReady:
    """Candidate ``index`` (0-based) of ``total`` in the final stage-1 list. The multimask
    candidates come right after :class:`InitialMaskReady`, before the final count is known
    (``total`` is ``None``); their ids never change (the merge takes them first). The others
    follow :class:`CoreReady` with ``total`` set. Each candidate is handed out once."""

    candidate: Candidate
    index: int
    total: int | None


@dataclass(frozen=True)
class Stage1Done:
    """Stage 1 is complete; ``trace`` is its full trace (stage 2, if any, follows)."""

    trace: PipelineTrace


PartialFn = Callable[[object], None]
"""``partial(item)``: receives each partial result (the classes of this module and of
:mod:`core.evaluator.progress`) on the thread doing the work."""

_KINDS = {
    HeatmapReady: "heatmap",
    InitialMaskReady: "initial",
    SeedsReady: "seeds",
    CoreReady: "core",
    CandidateReady: "candidate",
    Stage1Done: "stage1",
    GroupStarted: "group_started",
    ReasoningDelta: "reasoning",
    GroupScored: "group",
}


def partial_kind(item: object) -> str:
    """A short name for a partial result: ``heatmap``, ``initial``, ``seeds``, ``core``,
    ``candidate``, ``stage1``, ``group_started``, ``reasoning`` or ``group``."""
    try:
        return _KINDS[type(item)]
    except KeyError:
        raise TypeError(f"not a partial result: {type(item).__name__}") from None


@dataclass
class LiveTrace:
    """The trace of an ask as far as it has got: :meth:`apply` each partial result in the order
    received, :meth:`trace` for what to draw. ``reasoning[i]``: the text streamed so far for
    evaluator group ``i``; ``scoring``: the index of the group being scored, or ``None``;
    ``pending``: its :class:`~core.evaluator.progress.GroupStarted` (its candidates), or
    ``None``."""

    question: str
    image_hw: tuple[int, int]
    preset: str = ""
    is_random: bool = False
    attention: AttentionTrace | None = None
    initial_logits: np.ndarray | None = None
    seeds: SeedTrace | None = None
    graph: FeatureGraphTrace | None = None
    candidates: list[Candidate] = field(default_factory=list)
    full: PipelineTrace | None = None
    groups: list[EvaluatorGroup] = field(default_factory=list)
    n_groups: int = 0
    reasoning: dict[int, str] = field(default_factory=dict)
    scoring: int | None = None
    pending: GroupStarted | None = None
    evaluator: dict[str, Any] = field(default_factory=dict)

    def apply(self, item: object) -> str:
        """Take one partial result in; returns its :func:`partial_kind`."""
        kind = partial_kind(item)
        if isinstance(item, HeatmapReady):
            self.attention = item.attention
        elif isinstance(item, InitialMaskReady):
            self.initial_logits = np.asarray(item.logits, dtype=np.float32)
        elif isinstance(item, SeedsReady):
            self.seeds = item.seeds
        elif isinstance(item, CoreReady):
            self.graph = item.graph
        elif isinstance(item, CandidateReady):
            self.candidates.append(item.candidate)
        elif isinstance(item, Stage1Done):
            self.full = item.trace
            self.candidates = list(item.trace.candidates)
        elif isinstance(item, GroupStarted):
            self.scoring, self.n_groups, self.pending = item.index, item.total, item
            self.reasoning[item.index] = ""
            self.evaluator.update(item.evaluator)
        elif isinstance(item, ReasoningDelta):
            self.reasoning[item.index] = self.reasoning.get(item.index, "") + item.text
        elif isinstance(item, GroupScored):
            self.groups.append(item.group)
            self.n_groups = item.total
            self.scoring = self.pending = None
        return kind

    def trace(self) -> PipelineTrace:
        """What is known, as a :class:`PipelineTrace`: stage 1's full trace once it is done
        (with the groups scored so far as an unranked :class:`EvaluatorTrace`), else the parts
        received (``candidates`` may be a prefix of the final list)."""
        if self.full is not None:
            t = self.full
            if self.groups and t.evaluator is None:
                t = replace(t, evaluator=self._partial_evaluator())
            return t
        L = self.initial_logits
        return PipelineTrace(
            question=self.question,
            image_hw=self.image_hw,
            preset=self.preset,
            model_ids={},
            is_random=self.is_random,
            settings={},
            initial_logits=L,
            initial_mask=None if L is None else L > 0,
            attention=self.attention,
            seeds=self.seeds,
            graph=self.graph if self.seeds is not None else None,
            candidates=list(self.candidates),
        )

    def _partial_evaluator(self) -> EvaluatorTrace:
        e = self.evaluator
        return EvaluatorTrace(
            backend=str(e.get("backend", "")),
            model_id=str(e.get("model_id", "")),
            is_random=bool(e.get("is_random", False)),
            group_size=int(e.get("group_size", 0)),
            shuffle_seed=int(e.get("shuffle_seed", 0)),
            cot=bool(e.get("cot", True)),
            groups=list(self.groups),
            final_scores={},
            ranking=[],
        )
