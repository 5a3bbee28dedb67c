"""Ask: one image and one question, answered by the method, with progress per stage.

The same code serves ``rea2seg ask`` and the app's Ask bar::

    segmenter = ModelCache().segmenter("tiny-random")
    trace = ask(image_rgb, "the cup nearest the laptop", segmenter,
                progress=lambda stage, fraction, trace: ...)
    sample_id, run_id = save_answer(store, trace, image_path)   # only when asked to keep it

:func:`ask` runs stage 1 (§4.2) and, with an evaluator, stage 2 (§4.3) group by group, as
:func:`core.pipeline.engine.process_sample` does for a run, and reports each step as it starts
(see :data:`ASK_STEPS`). Nothing is saved: the trace is a scratch result until
:func:`save_answer` makes it an ordinary sample (dataset ``ask``) with a run and its trace.

With ``stage1_cache=keep`` an ask computes stage 1 as :func:`core.pipeline.tune.prepare_stage1`
then :func:`core.pipeline.tune.retune` (the same trace and partial results as
:func:`core.pipeline.stage1.run_stage1`) and hands ``keep`` the
:class:`~core.pipeline.tune.Stage1Cache`, from which the What-if tools re-tune without a new
MLLM forward or SAM embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.pipeline.settings import Stage1Settings, Stage2Settings, run_defaults
from core.pipeline.stage1 import STEPS

if TYPE_CHECKING:
    from core.pipeline.cache import Segmenter
    from core.pipeline.tune import Stage1Cache
    from core.trace import PipelineTrace

ASK_STEPS = (*STEPS, "evaluator", "done")
"""The stages :func:`ask` reports, in order: stage 1's steps, ``"evaluator"`` (stage 2, once per
group) and ``"done"``."""

AskProgress = Callable[[str, float, "PipelineTrace | None"], None]
"""``progress(stage, fraction, trace)``: ``stage`` one of :data:`ASK_STEPS`; ``fraction`` of the
whole ask done, in [0, 1]; ``trace`` the stage-1 trace once it exists (from the first
``"evaluator"`` call on, with ``trace.evaluator`` set at ``"done"``), else ``None``."""

ASK_DATASET = "ask"
"""The dataset of samples saved from an ask."""

# share of the progress bar for stage 1 when stage 2 follows (the evaluator dominates)
_STAGE1_SHARE = 0.5

KeepCache = Callable[["Stage1Cache"], None]
"""``keep(cache)``: receives the ask's :class:`~core.pipeline.tune.Stage1Cache` once stage 1 is
done (before stage 2), on the thread doing the work."""


def ask(
    image_rgb: np.ndarray,
    question: str,
    segmenter: Segmenter,
    settings: Stage1Settings | None = None,
    *,
    evaluator: Any = None,
    stage2: Stage2Settings | None = None,
    progress: AskProgress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    partial: Callable[[object], None] | None = None,
    load_evaluator: Callable[[], Any] | None = None,
    stage1_cache: KeepCache | None = None,
) -> PipelineTrace:
    """Answer ``question`` on ``image_rgb`` (uint8 (H, W, 3) RGB); returns the trace, unsaved.

    ``segmenter``: a loaded :class:`core.pipeline.cache.Segmenter`; ``settings``: ``None`` →
    :func:`run_defaults` for its SAM kind and randomness with its preset's own stage-1
    defaults (what a new run would use);
    ``evaluator``: a loaded :class:`core.evaluator.base.MaskEvaluator`, or ``None`` for stage 1
    only (the answer is then the first candidate). Stage 2 scores group by group so that
    ``should_cancel`` can stop between groups; it raises :class:`core.cancel.Cancelled`.
    An empty question is a ``ValueError``.

    ``partial(item)``: each partial result as it exists (:mod:`core.pipeline.partial`: the
    heatmap, initial mask, seeds, k-core and candidates of stage 1, then
    :class:`~core.pipeline.partial.Stage1Done`, then stage 2's groups and streamed text).
    ``load_evaluator()``: loads the evaluator only once stage 1 is done (when the segmenter and
    the evaluator do not both fit in memory, the caller frees the segmenter in it first); used
    when ``evaluator`` is ``None``.
    ``stage1_cache(cache)``: when given, stage 1 runs as
    :func:`core.pipeline.tune.prepare_stage1` + :func:`core.pipeline.tune.retune` (the same
    trace, timings but ``retune``, and partial results as ``run_stage1``; the attention of
    every decoder layer is kept when the model says how many it has) and ``stage1_cache`` gets
    the cache before stage 2. The cache holds the segmenter's SAM backend: a caller whose
    ``load_evaluator`` frees the segmenter should not keep it. Without it ``run_stage1`` runs.
    """
    from core.evaluator.stage2 import run_stage2
    from core.pipeline.stage1 import run_stage1

    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    if settings is None:  # the preset's own stage-1 defaults (e.g. mini-geometric's layers)
        from core.models.config import preset_stage1

        settings = run_defaults(
            str(segmenter.sam.kind),
            bool(segmenter.is_random),
            **preset_stage1(getattr(segmenter, "preset", "")),
        )
    s = settings
    staged = evaluator is not None or load_evaluator is not None
    share = _STAGE1_SHARE if staged else 1.0

    def stage1_progress(step: str, fraction: float) -> None:
        if progress is not None and step != "done":
            progress(step, fraction * share, None)

    t0 = time.perf_counter()
    if stage1_cache is not None:
        trace = _stage1_via_cache(
            segmenter, image_rgb, question, s, stage1_progress, should_cancel, partial, stage1_cache
        )
    else:
        trace = run_stage1(
            segmenter.prompt_model,
            segmenter.sam,
            image_rgb,
            question,
            s,
            preset=segmenter.preset,
            progress=stage1_progress,
            should_cancel=should_cancel,
            partial=partial,
        )
    if partial is not None:
        from core.pipeline.partial import Stage1Done

        partial(Stage1Done(trace))
    if evaluator is None and load_evaluator is not None:
        if should_cancel is not None and should_cancel():
            from core.cancel import Cancelled

            raise Cancelled("cancelled before stage 2")
        evaluator = load_evaluator()
    if evaluator is not None:
        st2 = stage2 or Stage2Settings(str(evaluator.name))

        def stage2_progress(step: str, fraction: float) -> None:
            if progress is not None:
                progress("evaluator", share + fraction * (1.0 - share), trace)

        run_stage2(
            trace,
            image_rgb,
            evaluator,
            group_size=st2.group_size,
            shuffle_seed=0,
            cot=st2.cot,
            pad_last=st2.pad_last,
            batch=False,  # group by group: each shows as it is scored, cancel between groups
            progress=stage2_progress,
            should_cancel=should_cancel,
            partial=partial,
        )
    trace.timings["ask_total"] = time.perf_counter() - t0
    if progress is not None:
        progress("done", 1.0, trace)
    return trace


def _stage1_via_cache(
    segmenter: Segmenter,
    image_rgb: np.ndarray,
    question: str,
    s: Stage1Settings,
    progress: Callable[[str, float], None],
    should_cancel: Callable[[], bool] | None,
    partial: Callable[[object], None] | None,
    keep: KeepCache,
) -> PipelineTrace:
    """Stage 1 as prepare + retune, reporting progress on ``run_stage1``'s scale (step
    ``i`` of :data:`STEPS` at ``i / 7``); hands the cache to ``keep``."""
    from core.pipeline.tune import prepare_stage1, retune

    def on_step(step: str, _fraction: float) -> None:
        if step in STEPS:  # not prepare's "ready" nor retune's "done"
            progress(step, STEPS.index(step) / len(STEPS))

    cache = prepare_stage1(
        segmenter.prompt_model,
        segmenter.sam,
        image_rgb,
        question,
        s,
        preset=segmenter.preset,
        progress=on_step,
        should_cancel=should_cancel,
        partial=partial,
    )
    trace = retune(cache, s, progress=on_step, should_cancel=should_cancel, partial=partial)
    trace.timings.pop("retune", None)  # the same steps as run_stage1's
    keep(cache)
    return trace


def answer_id(trace: PipelineTrace) -> int | None:
    """The id of the answer candidate (:func:`core.evaluator.stage2.answer_mask`'s choice);
    ``None`` when the answer is the initial mask M (stage 2 fell back, or no candidate)."""
    ev = trace.evaluator
    if (ev is not None and ev.fell_back_to_initial) or not trace.candidates:
        return None
    return ev.ranking[0] if ev is not None and ev.ranking else trace.candidates[0].id


def ranked_candidates(trace: PipelineTrace) -> list[dict[str, Any]]:
    """The candidates best first (stage 2's ranking, else stage-1 order), each as
    ``{"rank", "id", "origin", "sam_score", "stability", "score", "area"}``; ``score`` is the
    evaluator's (``None`` without stage 2 or when unreadable). No IoU: an ask has no ground truth."""
    ev = trace.evaluator
    order = list(ev.ranking) if ev is not None and ev.ranking else [c.id for c in trace.candidates]
    out = []
    for rank, cid in enumerate(order, 1):
        c = trace.candidate(cid)
        score = ev.final_scores.get(cid) if ev is not None else None
        out.append(
            {
                "rank": rank,
                "id": int(c.id),
                "origin": str(c.origin),
                "sam_score": round(float(c.sam_score), 4),
                "stability": None if c.stability is None else round(float(c.stability), 4),
                "score": None if score is None else round(float(score), 4),
                "area": int(np.count_nonzero(c.mask)),
            }
        )
    return out


def summary(trace: PipelineTrace) -> dict[str, Any]:
    """What ``rea2seg ask --json`` prints: question, image size, preset, evaluator, randomness,
    the answer candidate id (``None`` = the initial mask M), whether stage 2 fell back, the
    ranked candidates and the timings in seconds."""
    ev = trace.evaluator
    return {
        "question": trace.question,
        "image_hw": [int(v) for v in trace.image_hw],
        "preset": trace.preset,
        "evaluator": None if ev is None else ev.model_id,
        "is_random": bool(trace.is_random or (ev is not None and ev.is_random)),
        "answer": answer_id(trace),
        "fell_back_to_initial": bool(ev is not None and ev.fell_back_to_initial),
        "candidates": ranked_candidates(trace),
        "timings": {k: round(float(v), 4) for k, v in trace.timings.items()},
    }


def save_answer(
    store: Any,
    trace: PipelineTrace,
    image_path: str | Path,
    *,
    stage2: Stage2Settings | None = None,
    external_id: str | None = None,
) -> tuple[int, int]:
    """Keep an ask: a sample in dataset ``ask`` (image ``image_path``, the trace's question,
    category ``other``, no ground truth), a run holding the trace's settings and models, and the
    trace itself, in one transaction. Returns ``(sample_id, run_id)``. ``image_path`` must be
    the image the trace was made from (its size is checked)."""
    from core.images import image_info
    from core.importers.common import insert_sample
    from core.store import repo

    sha, h, w = image_info(image_path)
    if (h, w) != tuple(trace.image_hw):
        raise ValueError(f"image {image_path} is {w}x{h}, the trace was made on another image")
    ev = trace.evaluator
    st2 = stage2 or Stage2Settings(
        None if ev is None else ev.model_id,
        cot=True if ev is None else ev.cot,
        group_size=5 if ev is None else ev.group_size,
        pad_last=True if ev is None else ev.pad_last,
    )
    ext = external_id or f"ask-{time.strftime('%Y%m%d-%H%M%S')}-{sha[:8]}"

    def write(s: Any) -> tuple[int, int]:
        ds = repo.get_or_create_dataset(s, ASK_DATASET)
        img = repo.get_or_create_image(s, ds, Path(image_path), sha, (h, w))
        sample = insert_sample(
            s,
            ds,
            img,
            external_id=ext,
            question=trace.question,
            category="other",
            source="ask",
            status="pending",
            mask=None,
            ignore=None,
        )
        run_id = repo.create_run(
            s,
            name=f"ask {ext}",
            preset=trace.preset,
            config={
                "stage1": dict(trace.settings),
                "stage2": st2.to_dict(),
                "engines": [{"engine": "ask", "workers": 1}],
            },
            model_ids={**trace.model_ids, "evaluator": None if ev is None else ev.model_id},
            is_random=bool(trace.is_random or (ev is not None and ev.is_random)),
        )
        repo.save_trace(s, run_id, sample.id, trace)
        return sample.id, run_id

    return store.run(write)
