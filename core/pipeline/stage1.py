"""Stage 1: attention-guided candidate discovery (§4.2, App. B) → :class:`PipelineTrace`.

Order of work; the SAM image embedding is computed once (step ``sam_embed``) and every later
step reuses it:

1. ``mllm``: the prompt model encodes (image, question) → prompt embedding + attention rows;
2. ``sam_embed``: SAM embeds the image;
3. ``initial``: the prompt embedding is decoded in single-mask mode → L and M = L > 0, and in
   multimask mode → the 3 *multimask* candidates;
4. ``seeds``: attention averaged over layers/heads → top-k1 tokens → rerank by mean L in each
   token's patch → top-k2 → seed points (one per token by default; ``seed_policy``);
5. ``amg``: seed-point AMG (one point per prompt, IoU/stability filters, box NMS), best first;
6. ``semantic``: features of the distinct seed tokens (bilinear on the SAM embedding) → cosine
   graph (τ) → densest k-core P* → negative point p⁻ = argmax{L | L < δ}; SAM with P*, p⁻ and L
   as mask prompt in multimask mode → 3 *semantic* candidates;
7. ``candidates``: multimask, semantic and amg merged in that order (de-duplicated only when
   ``dedupe_iou`` is set), then the AMG top-N cut: 3 + 3 + up to 9. The multimask masks are
   merged first, so they are the list's first candidates (ids 0, 1, 2) whatever the later steps
   give (:func:`multimask_candidates`); the partial results hand them out right after the
   initial decode. With the setting
   ``concept_origin`` (NOT from the paper, off by default) SAM 3's instances of a phrase and
   their union follow as origin ``concept`` (:mod:`core.pipeline.concept`; timed as
   ``concept``, recorded in ``trace.concept``).
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np

from core.cancel import Cancelled
from core.models.base import CancelFn, ProgressFn, PromptModel, PromptModelOutput, SamBackend
from core.pipeline.amg import seed_amg
from core.pipeline.candidates import build_candidates, stability_score
from core.pipeline.concept import (
    ConceptSegmenter,
    concept_items,
    concept_phrase,
    load_concept_segmenter,
)
from core.pipeline.partial import (
    CandidateReady,
    CoreReady,
    HeatmapReady,
    InitialMaskReady,
    PartialFn,
    SeedsReady,
)
from core.pipeline.seeds import (
    aggregate_attention,
    allocate_seeds,
    sample_seed_points,
    select_tokens,
)
from core.pipeline.semantic import (
    cosine_graph,
    densest_core,
    graph_nodes,
    negative_point,
    sample_features,
    semantic_prompt,
)
from core.pipeline.settings import Stage1Settings
from core.trace import AttentionTrace, Candidate, FeatureGraphTrace, PipelineTrace, SeedTrace

STEPS = ("mllm", "sam_embed", "initial", "seeds", "amg", "semantic", "candidates")


def _check_output(out: PromptModelOutput) -> tuple[int, int]:
    gh, gw = int(out.grid_hw[0]), int(out.grid_hw[1])
    att = np.asarray(out.attention)
    if att.ndim != 3 or att.shape[2] != gh * gw:
        raise ValueError(
            f"prompt model attention has shape {att.shape}, expected (layers, heads, {gh * gw})"
        )
    if att.shape[0] != len(out.layers):
        raise ValueError(
            f"prompt model returned {att.shape[0]} attention layers but names {len(out.layers)}"
        )
    if np.asarray(out.token_boxes_xyxy).shape != (gh * gw, 4):
        raise ValueError(
            f"prompt model token boxes have shape {np.asarray(out.token_boxes_xyxy).shape}, "
            f"expected ({gh * gw}, 4)"
        )
    return gh, gw


def run_stage1(
    prompt_model: PromptModel,
    sam_backend: SamBackend,
    image_rgb: np.ndarray,
    question: str,
    settings: Stage1Settings | None = None,
    *,
    preset: str = "",
    is_sentence: bool | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    partial: PartialFn | None = None,
    concept: ConceptSegmenter | None = None,
) -> PipelineTrace:
    """Run candidate discovery on one image and return the full trace.

    image_rgb: uint8 (H, W, 3) RGB. settings: ``None`` → the paper defaults for the backend's
    kind (:meth:`Stage1Settings.for_backbone`). progress(step, fraction) is called before each
    step of :data:`STEPS` (fraction = steps done / 7) and with ``("done", 1.0)`` at the end.
    should_cancel() is polled before each step; when it returns True, :class:`Cancelled` is raised.
    Timings are seconds per step. ``sample_id`` and ``evaluator`` are left for the caller.
    ``is_sentence``: the sample's ReasonSeg flag, passed to prompt models that word the query by
    it (LISA: ``False`` → "What is {X} in this image? …").
    ``partial(item)``: called with each partial result as soon as it exists, in the order of
    :mod:`core.pipeline.partial` (heatmap, initial mask, seeds, k-core, then the candidates one
    by one); ``None`` computes nothing extra.
    ``concept``: the SAM 3 segmenter of the concept origin (default: the one at
    ``settings.concept_model``, loaded once); used only when ``settings.concept_origin`` is on.
    """
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(
            f"image must be uint8 (H, W, 3) RGB, got {image_rgb.dtype} {image_rgb.shape}"
        )
    s = settings or Stage1Settings.for_backbone(sam_backend.kind)
    h, w = image_rgb.shape[:2]
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def step(name: str) -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled before step {name!r}")
        if progress is not None:
            progress(name, STEPS.index(name) / len(STEPS))
        clock[0] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = time.perf_counter() - clock[0]

    step("mllm")
    layers = s.model_layers()  # 0-based block indices
    if (
        is_sentence is not None
        and "is_sentence" in inspect.signature(prompt_model.encode).parameters
    ):
        out = prompt_model.encode(
            image_rgb, question, layers, is_sentence=is_sentence
        )  # LISA's query wording
    else:
        out = prompt_model.encode(image_rgb, question, layers)
    gh, gw = _check_output(out)
    done("mllm")
    if partial is not None:
        partial(HeatmapReady(_attention_trace(out, s, gh, gw)))

    step("sam_embed")
    sam_backend.set_image(image_rgb)
    done("sam_embed")

    step("initial")
    single, _, low = sam_backend.decode_prompt_embedding(out.prompt_embedding, multimask=False)
    L = np.asarray(single[0], dtype=np.float32)
    L_prompt = low[0:1] if s.mask_prompt == "decoder_lowres" else L
    multi, multi_iou, _ = sam_backend.decode_prompt_embedding(out.prompt_embedding, multimask=True)
    multimask = multimask_items(multi, multi_iou, s.stability_score_offset)
    done("initial")
    early: list[Candidate] = []
    if partial is not None:
        partial(InitialMaskReady(L))
        early = multimask_candidates(multimask, s)
        emit_candidates(partial, early, final=False)

    step("seeds")
    heads = None if s.heads is None else list(s.heads)
    token_map = aggregate_attention(
        out.attention, (gh, gw), None, heads, renormalise=s.attention_renorm
    )
    top1, top2 = select_tokens(token_map, out.token_boxes_xyxy, L, s.k1, s.k2)
    counts = allocate_seeds(np.array([t.attention for t in top2]), s.seeds_total, s.seed_policy)
    seeds_xy, seed_token = sample_seed_points(top2, counts, (h, w), np.random.default_rng(s.seed))
    seed_att = (
        token_map.ravel()[np.asarray(seed_token, dtype=np.int64)] if seed_token else np.zeros(0)
    )
    done("seeds")
    seed_trace = SeedTrace(s.k1, s.k2, top1, top2, seeds_xy, [int(i) for i in seed_token])
    if partial is not None:
        partial(SeedsReady(seed_trace))

    step("amg")
    amg = seed_amg(
        sam_backend, seeds_xy, top_n=None, **s.amg()
    )  # cut to top_n after de-duplication
    amg_items = [
        {
            "mask": m.mask,
            "score": m.predicted_iou,
            "stability": m.stability,
            "seed_index": m.seed_index,
        }
        for m in amg
    ]
    done("amg")

    step("semantic")
    nodes = graph_nodes(seed_token)  # one node per distinct token: its first seed
    idx = np.asarray(nodes, dtype=np.int64)
    feats = sample_features(
        sam_backend.image_features(), seeds_xy[idx], sam_backend.embedding_xy_scale()
    )
    node_edges = cosine_graph(feats, s.tau)
    k, node_core = densest_core(len(nodes), node_edges, np.asarray(seed_att)[idx])
    edges = [(nodes[i], nodes[j], c) for i, j, c in node_edges]  # as seed indices, for the trace
    core = [nodes[i] for i in node_core]
    neg_xy, neg_logit, fallback = negative_point(L, s.delta)
    pts, labels = semantic_prompt(seeds_xy, core, neg_xy)
    sem_logits, sem_iou = sam_backend.predict_points(pts, labels, L_prompt, multimask=True)
    sem_stab = stability_score(sem_logits, s.stability_score_offset)
    semantic = [
        {"mask": sem_logits[i] > 0, "score": float(sem_iou[i]), "stability": float(sem_stab[i])}
        for i in range(sem_logits.shape[0])
    ]
    done("semantic")
    graph = FeatureGraphTrace(s.tau, s.delta, edges, k, core, neg_xy, neg_logit, fallback)
    if partial is not None:
        partial(CoreReady(graph))

    step("candidates")
    groups = [("multimask", multimask), ("semantic", semantic), ("amg", amg_items)]
    concept_record = None
    if s.concept_origin and "concept" not in s.disabled_origins:
        t0 = time.perf_counter()
        concept_candidates, concept_record = _concept(s, concept, image_rgb, question, out)
        groups.append(("concept", concept_candidates))
        timings["concept"] = time.perf_counter() - t0
    candidates = merge_candidates(groups, s)
    done("candidates")
    if partial is not None:
        emit_candidates(partial, candidates, start=len(early))
    if progress is not None:
        progress("done", 1.0)

    att = np.asarray(out.attention, dtype=np.float32)
    if heads is not None:
        att = att[:, heads]
    return PipelineTrace(
        question=question,
        image_hw=(h, w),
        preset=preset,
        model_ids={
            "mllm": str(getattr(prompt_model, "name", "?")),
            "sam": str(getattr(sam_backend, "name", "?")),
        },
        is_random=bool(
            getattr(prompt_model, "is_random", True) or getattr(sam_backend, "is_random", True)
        ),
        settings=s.to_dict(),
        initial_logits=L,
        initial_mask=L > 0,
        attention=AttentionTrace(
            grid_hw=(gh, gw),
            token_map=token_map,
            token_boxes_xyxy=np.asarray(out.token_boxes_xyxy, dtype=np.float32),
            layers=[int(v) for v in out.layers],
            heads=heads,
            per_layer=att.mean(axis=1).reshape(len(out.layers), gh, gw),
            prompt_token=out.prompt_token,
        ),
        seeds=seed_trace,
        graph=graph,
        candidates=candidates,
        timings=timings,
        generated_text=out.generated_text,
        concept=concept_record,
    )


def multimask_items(
    logits: np.ndarray, iou: np.ndarray, stability_score_offset: float
) -> list[dict[str, Any]]:
    """The multimask decode as :func:`build_candidates` items: logits float (3, H, W), SAM's
    predicted IoUs (3,); the stability score at ``stability_score_offset``."""
    stab = stability_score(logits, stability_score_offset)
    return [
        {"mask": logits[i] > 0, "score": float(iou[i]), "stability": float(stab[i])}
        for i in range(logits.shape[0])
    ]


def multimask_candidates(multimask: list[dict[str, Any]], s: Stage1Settings) -> list[Candidate]:
    """The multimask candidates exactly as the final candidate list begins with them.

    :func:`build_candidates` merges the ``multimask`` group first; what it drops there (an
    empty mask, and with ``dedupe_iou`` a duplicate of an earlier multimask mask) is decided
    among these masks alone, and only AMG is capped. So these candidates keep their ids
    (0, 1, …) and fields whatever AMG, the semantic step and the concept origin give later:
    they can be shown as soon as the initial decode is done. Empty when ``multimask`` is in
    ``disabled_origins``."""
    return merge_candidates([("multimask", multimask)], s)


def merge_candidates(
    groups: list[tuple[str, list[dict[str, Any]]]], s: Stage1Settings
) -> list[Candidate]:
    """Step 7: the origins' items merged in the order given, those in ``s.disabled_origins``
    left out, de-duplicated at ``s.dedupe_iou`` (when set), AMG cut to ``s.top_n``."""
    return build_candidates(
        [(o, items) for o, items in groups if o not in s.disabled_origins],
        s.dedupe_iou,
        caps={"amg": s.top_n},
    )


def emit_candidates(
    partial: PartialFn, candidates: list[Candidate], *, start: int = 0, final: bool = True
) -> None:
    """``partial(CandidateReady(c, index, total))`` for each of ``candidates[start:]``.
    ``final``: ``candidates`` is the final list (``total`` its length); else the multimask
    candidates handed out early, whose ``total`` is ``None`` (not known yet)."""
    total = len(candidates) if final else None
    for i in range(start, len(candidates)):
        partial(CandidateReady(candidates[i], i, total))


def _concept(
    s: Stage1Settings,
    segmenter: ConceptSegmenter | None,
    image_rgb: np.ndarray,
    question: str,
    out: PromptModelOutput,
) -> tuple[list[dict], dict]:
    """The concept origin's items and trace record (:mod:`core.pipeline.concept`)."""
    if segmenter is None:
        if not s.concept_model.strip():
            raise ValueError(
                "concept_origin needs concept_model, a SAM 3 checkpoint directory "
                "(the concept origin is not from the paper)"
            )
        segmenter = load_concept_segmenter(s.concept_model, s.concept_threshold)
    phrase, source = concept_phrase(s.concept_phrase, out.generated_text or "", question)
    items, record = concept_items(segmenter, image_rgb, phrase, s.concept_max)
    return items, {**record, "source": source}


def _attention_trace(out: PromptModelOutput, s: Stage1Settings, gh: int, gw: int) -> AttentionTrace:
    """The heatmap handed out right after the MLLM forward: the token map as the seeds step
    computes it (same layers, heads and renormalisation)."""
    heads = None if s.heads is None else list(s.heads)
    token_map = aggregate_attention(
        out.attention, (gh, gw), None, heads, renormalise=s.attention_renorm
    )
    return AttentionTrace(
        grid_hw=(gh, gw),
        token_map=token_map,
        token_boxes_xyxy=np.asarray(out.token_boxes_xyxy, dtype=np.float32),
        layers=[int(v) for v in out.layers],
        heads=heads,
        prompt_token=out.prompt_token,
    )
