"""Grouping candidates for the evaluator and reranking by its scores (§4.3, App. B).

Candidates are shuffled with a recorded seed (so the order the model sees carries no origin
bias) and split into groups of ``group_size`` (s = 5). The last group is *smaller* rather than
padded: padding would show the model a mask twice or a blank mask that it must also score,
both of which change the comparison it makes. Scores from all groups are pooled and the
candidates reranked: by score, highest first; ties by candidate id (lower first); candidates
whose score could not be parsed come last, in id order — never treated as 0.
"""

from __future__ import annotations

import numpy as np


def make_groups(candidate_ids: list[int], group_size: int = 5, seed: int = 0) -> list[list[int]]:
    """Shuffle ids with ``seed`` and split into groups of ``group_size`` (the last may be smaller)."""
    if group_size < 1:
        raise ValueError("group_size must be at least 1")
    ids = list(candidate_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    return [shuffled[i : i + group_size] for i in range(0, len(shuffled), group_size)]


def rerank(scores: dict[int, float | None]) -> list[int]:
    """Candidate ids best first (rules in the module docstring)."""
    scored = sorted((cid for cid, v in scores.items() if v is not None), key=lambda c: (-scores[c], c))
    unscored = sorted(cid for cid, v in scores.items() if v is None)
    return scored + unscored


def top_k(ranking: list[int], k: int) -> list[int]:
    return ranking[: max(k, 0)]
