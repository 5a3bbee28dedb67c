"""Stage 2 (§4.3): score the candidates in shuffled groups with the evaluator, pool the scores,
rerank, and record everything in the trace's :class:`EvaluatorTrace`.

Grouping, padding and tie rules: :mod:`core.evaluator.grouping`. The prompt and answer format:
:mod:`core.evaluator.prompt`. Loading an evaluator: :func:`load_evaluator` (presets
``tiny-random``, ``internvl3-8b``, ``openai``; see :mod:`core.evaluator.presets`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core.cancel import Cancelled
from core.evaluator.adapter import PromptFormatError
from core.evaluator.adapter import check_prompt_format as check_declared
from core.evaluator.base import GroupResult, MaskEvaluator
from core.evaluator.grouping import GROUP_SIZE, aggregate_scores, make_groups, rerank
from core.evaluator.presets import EVALUATOR_PRESETS, load_evaluator
from core.evaluator.progress import GroupScored, GroupStarted, ReasoningDelta
from core.evaluator.prompt import MAX_PATCHES, prompt_format
from core.trace import EvaluatorGroup, EvaluatorTrace, PipelineTrace

__all__ = [
    "EVALUATOR_PRESETS",
    "Cancelled",
    "PromptFormatError",
    "answer_mask",
    "check_prompt_format",
    "load_evaluator",
    "run_stage2",
]


def run_stage2(
    trace: PipelineTrace,
    image_rgb: np.ndarray,
    evaluator: MaskEvaluator,
    *,
    group_size: int = GROUP_SIZE,
    shuffle_seed: int = 0,
    cot: bool = True,
    top_k: int = 3,
    pad_last: bool = True,
    batch: bool = True,
    progress: Callable[[str, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    partial: Callable[[object], None] | None = None,
) -> EvaluatorTrace:
    """Score ``trace.candidates`` and rerank them; sets ``trace.evaluator`` and returns it.

    ``image_rgb``: uint8 (H, W, 3), the image the trace was made from. ``group_size``: s (5,
    App. B). ``shuffle_seed``: the seed of the candidate shuffle, recorded in the trace.
    ``cot``: ask for chain of thought before the scores. ``top_k``: K recorded for the final
    output (K = 1 is the answer, K = 3 the best-of-top-3 pool of §5). ``batch``: all groups of
    the sample in one ``score_groups`` call (one batched generate locally, concurrent requests
    remotely); ``False`` scores group by group, which lets ``should_cancel`` stop between groups.
    ``progress(step, fraction)`` is called with ``"evaluator"``; ``should_cancel()`` returning
    True raises :class:`Cancelled` and leaves ``trace`` unchanged.
    ``partial(item)``: per group, :class:`~core.evaluator.progress.GroupStarted`, then (group by
    group only, from an evaluator with ``score_group_stream``) a
    :class:`~core.evaluator.progress.ReasoningDelta` per piece of text as it is generated, then
    :class:`~core.evaluator.progress.GroupScored`; with ``batch`` all groups are reported after
    the one call.

    ``pad_last``: pad a short last group with candidates of earlier groups (default, see
    :mod:`core.evaluator.grouping`; not from the paper, which is silent); recorded in the trace.

    Unreadable scores are recorded per group (``parse_error``) and rank last; they never stop
    the run. When NO candidate got a readable score the answer falls back to the initial mask
    M (``fell_back_to_initial`` in the trace; :func:`answer_mask`). An evaluator that declares
    the prompt format it was trained on (``prompt_format`` attribute, from its adapter's
    ``rea2seg_adapter.json``) is refused with :class:`PromptFormatError` (a ``ValueError`` and a
    :class:`~core.models.base.ModelLoadError`) when it would be sent another; the
    backends check this already when loaded with ``cot``. Out-of-memory and programming errors
    propagate.
    """
    max_patches = int(getattr(evaluator, "max_patches", MAX_PATCHES))
    fmt = prompt_format(cot, max_patches)
    check_prompt_format(evaluator.name, getattr(evaluator, "prompt_format", None), cot, max_patches)
    h, w = trace.image_hw
    if np.shape(image_rgb)[:2] != (h, w):
        raise ValueError(f"image is {np.shape(image_rgb)[:2]} but the trace was made on {(h, w)}")
    order = [c.id for c in trace.candidates]
    groups = make_groups(order, group_size, shuffle_seed, pad_last=pad_last)
    masks = [[trace.candidate(cid).mask for cid in g.candidate_ids] for g in groups]

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled("stage 2 cancelled")

    check_cancel()
    if progress is not None:
        progress("evaluator", 0.0)
    results: list[GroupResult] = []
    about = {
        "backend": evaluator.backend,
        "model_id": evaluator.name,
        "is_random": bool(evaluator.is_random),
        "group_size": group_size,
        "shuffle_seed": shuffle_seed,
        "cot": cot,
    }

    def started(i: int) -> None:
        if partial is not None:
            g = groups[i]
            partial(GroupStarted(i, len(groups), list(g.candidate_ids), g.padded, about))

    def scored(i: int, r: GroupResult) -> None:
        if partial is not None:
            partial(GroupScored(_group(i, groups[i], r), len(groups)))

    def streamed(i: int, text: str) -> None:
        check_cancel()  # cancel also stops a group while its answer is being generated
        partial(ReasoningDelta(i, text))  # type: ignore[misc]

    stream = getattr(evaluator, "score_group_stream", None) if partial is not None else None
    if groups and batch:
        for i in range(len(groups)):
            started(i)
        t0 = time.perf_counter()
        results = list(evaluator.score_groups(image_rgb, trace.question, masks, cot))
        trace.timings["evaluator"] = trace.timings.get("evaluator", 0.0) + time.perf_counter() - t0
        for i, r in enumerate(results[: len(groups)]):
            scored(i, r)
    else:
        for i, gm in enumerate(masks):
            check_cancel()
            started(i)
            t0 = time.perf_counter()
            if stream is not None:
                r = stream(
                    image_rgb,
                    trace.question,
                    gm,
                    cot,
                    lambda text, i=i: streamed(i, text),
                )
            else:
                r = evaluator.score_group(image_rgb, trace.question, gm, cot)
            results.append(r)
            trace.timings["evaluator"] = (
                trace.timings.get("evaluator", 0.0) + time.perf_counter() - t0
            )
            scored(i, r)
            if progress is not None:
                progress("evaluator", (i + 1) / len(masks))
    if len(results) != len(groups):
        raise RuntimeError(
            f"evaluator {evaluator.name} returned {len(results)} results for {len(groups)} groups"
        )
    for g, r in zip(groups, results, strict=True):
        if len(r.scores) != len(g.candidate_ids):
            raise RuntimeError(
                f"evaluator {evaluator.name} returned {len(r.scores)} scores for a group of {len(g.candidate_ids)}"
            )
    check_cancel()
    scores = aggregate_scores(groups, [r.scores for r in results])
    ev = EvaluatorTrace(
        backend=evaluator.backend,
        model_id=evaluator.name,
        is_random=bool(evaluator.is_random),
        group_size=group_size,
        shuffle_seed=shuffle_seed,
        cot=cot,
        groups=[_group(i, g, r) for i, (g, r) in enumerate(zip(groups, results, strict=True))],
        final_scores=scores,
        ranking=rerank(scores, order),
        top_k=top_k,
        fell_back_to_initial=all(v is None for v in scores.values()),
        pad_last=bool(pad_last),
        prompt_format=fmt,
        image_tiling=str(getattr(evaluator, "image_tiling", "") or ""),
    )
    trace.evaluator = ev
    if progress is not None:
        progress("evaluator", 1.0)
    return ev


def _group(i: int, g, r: GroupResult) -> EvaluatorGroup:
    """Group ``i`` as recorded in the trace: its candidates (``g``) and the evaluator's answer."""
    return EvaluatorGroup(
        index=i,
        candidate_ids=list(g.candidate_ids),
        prompt=r.prompt,
        raw_text=r.raw_text,
        cot=r.cot_text,
        scores=[None if s is None else float(s) for s in r.scores],
        parse_error=r.parse_error,
        padded=g.padded,
        seconds=float(r.seconds),
    )


def check_prompt_format(name: str, trained: str | None, cot: bool, max_patches: int) -> None:
    """:class:`PromptFormatError` when an evaluator trained on prompt format ``trained``
    (``None``: not declared) would be sent another: another prompt version, tile budget
    (``max_patches``) or chain-of-thought choice (``cot``); the rule of
    :func:`core.evaluator.adapter.check_prompt_format`. A run checks this before it is created
    (:func:`core.pipeline.plan.plan_run`), and stage 2 again before its first group."""
    check_declared(trained, max_patches, cot, who=f"evaluator {name}")


def answer_mask(trace: PipelineTrace) -> np.ndarray | None:
    """The final answer, bool (H, W): the evaluator's first-ranked candidate; the initial mask M
    when stage 2 fell back (no readable score) or no candidate exists; without stage 2, the first
    candidate in stage-1 order. ``None`` when there is nothing (no candidate and no M)."""
    ev = trace.evaluator
    if (ev is not None and ev.fell_back_to_initial) or not trace.candidates:
        return trace.initial_mask
    first = ev.ranking[0] if ev is not None and ev.ranking else trace.candidates[0].id
    return trace.candidate(first).mask
