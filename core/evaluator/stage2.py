"""Stage 2: score every group of candidates with the evaluator and rerank (§4.3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.evaluator.base import MaskEvaluator
from core.evaluator.grouping import make_groups, rerank
from core.pipeline.trace import EvaluatorGroup, EvaluatorTrace, PipelineTrace


def run_stage2(
    trace: PipelineTrace,
    image_rgb: np.ndarray,
    evaluator: MaskEvaluator,
    *,
    group_size: int = 5,
    shuffle_seed: int = 0,
    cot: bool = True,
    top_k: int = 3,
    progress: Callable[[str, float], None] | None = None,
) -> EvaluatorTrace:
    """Score ``trace``'s candidates in shuffled groups; attaches and returns the evaluator trace."""
    ids = [c.id for c in trace.candidates]
    groups = make_groups(ids, group_size, shuffle_seed)
    masks = [[trace.candidate(cid).mask for cid in g] for g in groups]
    if progress:
        progress("evaluator", 0.0)
    results = evaluator.score_groups(image_rgb, trace.question, masks, cot) if groups else []
    if len(results) != len(groups):
        raise RuntimeError(f"evaluator returned {len(results)} results for {len(groups)} groups")
    scores: dict[int, float | None] = {}
    eg = []
    for gi, (g, r) in enumerate(zip(groups, results, strict=True)):
        for cid, s in zip(g, r.scores, strict=True):
            scores[cid] = s
        eg.append(EvaluatorGroup(gi, list(g), r.prompt, r.raw_text, r.cot, list(r.scores), r.parse_error, 0, r.seconds))
    ev = EvaluatorTrace(
        backend=evaluator.backend, model_id=evaluator.name, is_random=evaluator.is_random, group_size=group_size,
        shuffle_seed=shuffle_seed, cot=cot, groups=eg, final_scores=scores, ranking=rerank(scores), top_k=top_k,
    )
    trace.evaluator = ev
    if progress:
        progress("evaluator", 1.0)
    return ev
