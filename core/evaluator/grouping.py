"""Grouping candidates for the evaluator and reranking by its scores (§4.3, App. B).

Grouping (App. B: "we randomly shuffle the candidate masks and divide them into groups of
five"): the candidate ids are shuffled with a recorded seed — so the position a mask takes in
the model's input carries no information about its origin (multimask, semantic, AMG) — and
split in order into groups of ``group_size`` (s = 5).

The last group, when short, is **padded** with candidates drawn (with the same seed) from the
earlier groups, up to ``group_size``. Why padded rather than smaller: the evaluator was trained
on, and is prompted with, the original image plus five masks; a last group of one or two masks
is outside what it saw in training and leaves it nothing to compare against, which is the
point of scoring masks jointly. Padding with real candidates (never blank or repeated masks)
keeps every group a genuine five-way comparison at the cost of at most s − 1 extra mask images.
Padding slots sit at the end of the group; their scores are recorded in the trace but **not**
used: every candidate is scored exactly once, by the group it was assigned to. With fewer than
``group_size`` candidates in total there is nothing to pad from and the single group is smaller.
``pad_last=False`` gives the plain smaller last group.

Reranking: the scores of all groups are pooled, one per candidate, and the candidates sorted by
score, highest first; ties go to the earlier candidate in stage-1 order (the order of
``PipelineTrace.candidates``: multimask, semantic, AMG), then the lower id. Candidates whose
score could not be read come **last**, in stage-1 order. An unreadable score is never read as 0:
it is unknown, and a made-up 0 would tie the mask with those the model judged worthless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GROUP_SIZE = 5
"""s, masks per evaluator group (App. B: "groups of five"); every ``group_size`` default is this."""


@dataclass(frozen=True)
class PlannedGroup:
    """One group: ``candidate_ids`` in the order the model sees them; the last ``padded`` are
    padding slots (candidates scored in another group)."""

    candidate_ids: list[int]
    padded: int = 0

    @property
    def own_ids(self) -> list[int]:
        """The candidates this group scores (without the padding slots)."""
        return self.candidate_ids[: len(self.candidate_ids) - self.padded]


def make_groups(
    candidate_ids: Sequence[int],
    group_size: int = GROUP_SIZE,
    seed: int | Sequence[int] = 0,
    *,
    pad_last: bool = True,
) -> list[PlannedGroup]:
    """Shuffle ``candidate_ids`` with ``seed`` and split them into groups of ``group_size`` (s, §4.3).

    ``seed`` is an int or a sequence of ints (e.g. ``[seed, sample_id]``), fed to
    ``numpy.random.default_rng``. Deterministic for given (ids, group_size, seed, pad_last).
    See the module docstring for the padding of the last group.
    """
    if int(group_size) < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    ids = [int(c) for c in candidate_ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"candidate ids must be unique, got {ids}")
    rng = np.random.default_rng(seed)
    shuffled = [ids[i] for i in rng.permutation(len(ids))]
    chunks = [shuffled[i : i + group_size] for i in range(0, len(shuffled), group_size)]
    groups = [PlannedGroup(c) for c in chunks]
    if pad_last and len(chunks) > 1 and len(chunks[-1]) < group_size:
        pool = [c for chunk in chunks[:-1] for c in chunk]
        need = group_size - len(chunks[-1])
        pad = [pool[i] for i in rng.choice(len(pool), size=need, replace=False)]
        groups[-1] = PlannedGroup(chunks[-1] + pad, padded=need)
    return groups


def aggregate_scores(
    groups: Sequence[PlannedGroup], group_scores: Sequence[Sequence[float | None]]
) -> dict[int, float | None]:
    """One score per candidate from its own group's slot (padding slots are ignored)."""
    if len(groups) != len(group_scores):
        raise ValueError(f"{len(group_scores)} score lists for {len(groups)} groups")
    out: dict[int, float | None] = {}
    for g, scores in zip(groups, group_scores, strict=True):
        if len(scores) != len(g.candidate_ids):
            raise ValueError(f"{len(scores)} scores for a group of {len(g.candidate_ids)} masks")
        for cid, s in zip(g.own_ids, scores, strict=False):
            out[cid] = None if s is None else float(s)
    return out


def rerank(scores: dict[int, float | None], order: Sequence[int] | None = None) -> list[int]:
    """Candidate ids, best first (rules in the module docstring).

    ``order`` is the stage-1 candidate order used to break ties (default: ascending id);
    ids not in ``order`` come after those in it, by id.
    """
    pos = {cid: i for i, cid in enumerate(order)} if order is not None else {}
    big = len(pos)

    def tie(c: int) -> tuple[int, int]:
        return (pos.get(c, big), c)

    scored = sorted(
        (c for c, v in scores.items() if v is not None), key=lambda c: (-float(scores[c]), *tie(c))
    )
    unscored = sorted((c for c, v in scores.items() if v is None), key=tie)
    return scored + unscored


def top_k(ranking: Sequence[int], k: int) -> list[int]:
    """The first ``k`` ids of ``ranking`` (K = 1: the answer; K = 3: the best-of-top-3 pool)."""
    return list(ranking[: max(int(k), 0)])


def best_of_top_k(ranking: Sequence[int], true_iou: dict[int, float], k: int = 3) -> int | None:
    """The id among the top ``k`` with the highest true IoU (ties: the better-ranked one)."""
    pool = top_k(ranking, k)
    if not pool:
        return None
    return max(pool, key=lambda c: (true_iou[c], -pool.index(c)))
