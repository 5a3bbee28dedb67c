"""Stage 1: attention-guided candidate discovery (§4.2, App. B) → :class:`PipelineTrace`.

Order of work (the SAM image embedding is computed once, in step 2, and reused after):

1. the MLLM encodes (image, question): prompt embedding + attention rows (``PromptModel``);
2. SAM embeds the image; the prompt embedding is decoded in single-mask mode → L and M = L > 0,
   and in multimask mode → the 3 *multimask* candidates;
3. attention is averaged over the chosen layers/heads; top-k1 tokens → rerank by mean L in each
   token's patch → top-k2 → seed points (more seeds where attention is higher);
4. seed-point AMG (one point per prompt, IoU/stability filters, NMS) → top-N *amg* candidates;
5. seed features (bilinear on the SAM embedding) → cosine graph (τ) → densest k-core →
   foreground points; negative point argmax{L | L < δ}; SAM with those points and L as mask
   prompt in multimask mode → 3 *semantic* candidates;
6. candidates merged (multimask, semantic, amg) and de-duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core.models.base import PromptModel, SamBackend
from core.pipeline.candidates import build_candidates
from core.pipeline.seeds import (
    aggregate_attention,
    allocate_seeds,
    sample_seed_points,
    select_tokens,
)
from core.pipeline.semantic import cosine_graph, densest_core, negative_point, sample_features
from core.pipeline.settings import Stage1Settings
from core.pipeline.trace import AttentionTrace, FeatureGraphTrace, PipelineTrace, SeedTrace

STEPS = ("mllm", "sam_embed", "initial", "seeds", "amg", "semantic", "candidates")


class Cancelled(RuntimeError):
    """The run was cancelled through ``should_cancel``."""


def run_stage1(
    prompt_model: PromptModel,
    sam: SamBackend,
    image_rgb: np.ndarray,
    question: str,
    settings: Stage1Settings | None = None,
    *,
    preset: str = "",
    progress: Callable[[str, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> PipelineTrace:
    """Run candidate discovery on one uint8 (H, W, 3) RGB image and return the full trace."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image_rgb.dtype} {image_rgb.shape}")
    s = settings or Stage1Settings.for_backbone(sam.kind)
    h, w = image_rgb.shape[:2]
    timings: dict[str, float] = {}
    rng = np.random.default_rng(s.seed)

    def step(name: str, i: int) -> float:
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled")
        if progress is not None:
            progress(name, i / len(STEPS))
        return time.perf_counter()

    t = step("mllm", 0)
    layers = list(s.layers) if s.layers is not None else None
    out = prompt_model.encode(image_rgb, question, layers)
    timings["mllm"] = time.perf_counter() - t

    t = step("sam_embed", 1)
    sam.set_image(image_rgb)
    timings["sam_embed"] = time.perf_counter() - t

    t = step("initial", 2)
    single, _ = sam.decode_prompt_embedding(out.prompt_embedding, multimask=False)
    L = single[0].astype(np.float32)
    multi, multi_iou = sam.decode_prompt_embedding(out.prompt_embedding, multimask=True)
    multimask = [{"mask": multi[i] > 0, "score": float(multi_iou[i])} for i in range(multi.shape[0])]
    timings["initial"] = time.perf_counter() - t

    t = step("seeds", 3)
    token_map = aggregate_attention(out.attention, out.grid_hw, None, list(s.heads) if s.heads else None)
    top1, top2 = select_tokens(token_map, out.token_boxes_xyxy, L, s.k1, s.k2)
    counts = allocate_seeds(np.array([tk.attention for tk in top2]), s.seeds_total)
    seeds_xy, seed_token = sample_seed_points(top2, counts, (h, w), rng)
    seed_att = np.array([token_map.ravel()[i] for i in seed_token], dtype=np.float64)
    timings["seeds"] = time.perf_counter() - t

    t = step("amg", 4)
    amg = sam.amg_from_seeds(seeds_xy, s.to_dict())[: s.top_n]
    amg_items = [{"mask": m.mask, "score": m.predicted_iou, "stability": m.stability, "seed_index": m.seed_index} for m in amg]
    timings["amg"] = time.perf_counter() - t

    t = step("semantic", 5)
    feats = sample_features(sam.image_features(), seeds_xy, sam.embedding_xy_scale())
    edges = cosine_graph(feats, s.tau)
    k, core = densest_core(len(seeds_xy), edges, seed_att)
    neg_xy, neg_logit, fallback = negative_point(L, s.delta)
    pts = np.concatenate([seeds_xy[core], np.array([neg_xy], dtype=np.float32)], axis=0)
    labels = np.array([1] * len(core) + [0], dtype=np.int32)
    sem_logits, sem_iou = sam.predict_points(pts, labels, L, multimask=True)
    semantic = [{"mask": sem_logits[i] > 0, "score": float(sem_iou[i])} for i in range(sem_logits.shape[0])]
    timings["semantic"] = time.perf_counter() - t

    t = step("candidates", 6)
    candidates = build_candidates([("multimask", multimask), ("semantic", semantic), ("amg", amg_items)], s.dedupe_iou)
    timings["candidates"] = time.perf_counter() - t
    if progress is not None:
        progress("done", 1.0)

    return PipelineTrace(
        question=question,
        image_hw=(h, w),
        preset=preset,
        model_ids={"mllm": getattr(prompt_model, "name", "?"), "sam": sam.name},
        is_random=bool(getattr(prompt_model, "is_random", False) or sam.is_random),
        settings=s.to_dict(),
        initial_logits=L,
        initial_mask=L > 0,
        attention=AttentionTrace(
            grid_hw=tuple(out.grid_hw),
            token_map=token_map,
            token_boxes_xyxy=np.asarray(out.token_boxes_xyxy, dtype=np.float32),
            layers=list(out.layers),
            heads=list(s.heads) if s.heads else None,
            per_layer=np.asarray(out.attention, dtype=np.float32).mean(axis=1).reshape(len(out.layers), *out.grid_hw),
            prompt_token=out.prompt_token,
        ),
        seeds=SeedTrace(s.k1, s.k2, top1, top2, seeds_xy, [int(i) for i in seed_token]),
        graph=FeatureGraphTrace(s.tau, s.delta, edges, k, core, neg_xy, neg_logit, fallback),
        candidates=candidates,
        timings=timings,
        generated_text=out.generated_text,
    )
