"""What-if on stage 1: the expensive part once, the parameter-dependent rest again and again.

Stage 1 (§4.2, :mod:`core.pipeline.stage1`) splits in two. The MLLM forward (prompt embedding,
the prompt token's attention rows), the SAM image embedding and the initial decode of the prompt
embedding (L and the 3 multimask masks) depend on no stage-1 parameter; they are computed once by
:func:`prepare_stage1` and kept in a :class:`Stage1Cache`. Everything else — top-k1 / top-k2
tokens and seed points, seed-point AMG with its filters, the k-core semantic masks with τ and δ,
de-duplication and the AMG budget N — is re-run by :func:`retune` from the cache::

    cache = prepare_stage1(segmenter.prompt_model, segmenter.sam, image_rgb, question, settings)
    trace = retune(cache, settings)                       # == run_stage1(...) with settings
    trace = retune(cache, replace(settings, k2=10))       # no MLLM or SAM-encoder call

A change re-runs only the steps that depend on it: each step's output is kept with the inputs
it was computed from (the last :data:`MEMO_SIZE` per step), so changing τ or δ re-runs only the
semantic decode, and changing an AMG filter (predicted IoU, stability, box NMS) only re-filters the
masks the AMG decoded for these seeds (:mod:`core.pipeline.tune_amg`); N and de-duplication only
re-merge.

Partial results: both take ``partial=`` (:mod:`core.pipeline.partial`) and hand out what
:func:`core.pipeline.stage1.run_stage1` does, in its order: :func:`prepare_stage1` the heatmap
(for its ``settings``' layers and heads) and the initial mask, :func:`retune` the multimask
candidates, the seeds, the k-core and the other candidates. :func:`core.pipeline.ask.ask` runs
stage 1 this way when its caller keeps the cache (``stage1_cache=``), so the What-if tab can
start from an ask without a new forward.

Layers: :func:`prepare_stage1` captures the attention of *every* decoder layer when the prompt
model says how many it has (``all_layers=True``, the default; LLaVA / Qwen models do), so a
change of ``layers`` or ``heads`` re-aggregates from the cache. Layers that were not captured
raise :class:`NeedsForward`: a new :func:`prepare_stage1` is needed.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.cancel import Cancelled
from core.models.base import CancelFn, ProgressFn, PromptModel, PromptModelOutput, SamBackend
from core.pipeline.candidates import stability_score
from core.pipeline.concept import ConceptSegmenter
from core.pipeline.partial import CoreReady, HeatmapReady, InitialMaskReady, PartialFn, SeedsReady
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
from core.pipeline.stage1 import (
    _attention_trace,
    _check_output,
    _concept,
    emit_candidates,
    merge_candidates,
    multimask_candidates,
    multimask_items,
)
from core.pipeline.tune_amg import DecodedMasks, SeedBank, decode_all
from core.trace import AttentionTrace, FeatureGraphTrace, PipelineTrace, SeedTrace

PREPARE_STEPS = ("mllm", "sam_embed", "initial")
"""The parameter-independent steps :func:`prepare_stage1` runs (the first three of
:data:`core.pipeline.stage1.STEPS`)."""

RETUNE_STEPS = ("seeds", "amg", "semantic", "candidates")
"""The steps :func:`retune` runs (the rest of :data:`core.pipeline.stage1.STEPS`)."""

MEMO_SIZE = 4
"""Outputs kept per re-tune step, keyed by their inputs (not from the paper; a few masks each)."""

# which settings each re-tune step reads (besides the earlier steps' outputs)
_SEED_KEYS = ("k1", "k2", "seed_policy", "seeds_total", "seed", "heads", "attention_renorm")
_SEMANTIC_KEYS = ("tau", "delta", "mask_prompt", "stability_score_offset")
_CONCEPT_KEYS = ("concept_model", "concept_phrase", "concept_max", "concept_threshold")


class NeedsForward(ValueError):
    """These settings need attention that the cache does not hold: run :func:`prepare_stage1`
    again (the message names the layers)."""


def layer_count(prompt_model: Any) -> int | None:
    """How many decoder layers ``prompt_model`` has (``num_layers``, else its transformers
    config's ``text_config.num_hidden_layers``); ``None`` when it does not say."""
    n = getattr(prompt_model, "num_layers", None)
    if n is None:
        cfg = getattr(getattr(prompt_model, "model", None), "config", None)
        n = getattr(getattr(cfg, "text_config", None), "num_hidden_layers", None)
    return int(n) if isinstance(n, int | np.integer) and n > 0 else None


@dataclass
class Stage1Cache:
    """The parameter-independent part of stage 1 for one (image, question) and one segmenter.

    ``image_rgb``: uint8 (H, W, 3); ``output``: the prompt model's output, its ``attention``
    float32 (n_layers, n_heads, gh*gw) at ``output.layers`` (every layer when the model said how
    many it has); ``default_layers``: the model's own layers (what ``layers=None`` means);
    ``logits``: L, float32 (H, W), and ``lowres``: the decoder's low-res logits (1, s, s) of the
    single-mask decode; ``multi_logits`` float32 (3, H, W) / ``multi_iou`` (3,): the multimask
    decode. ``sam``: the backend and ``embedding``: a snapshot of its embedding state (restored
    when the backend has since embedded another image; ``None`` for backends whose state is not
    known, which are then asked to ``set_image`` again, a no-op for the image they hold).
    ``timings``: seconds of the three steps; ``memo``: step outputs by their inputs.
    """

    image_rgb: np.ndarray
    question: str
    preset: str
    model_ids: dict[str, str]
    is_random: bool
    output: PromptModelOutput
    default_layers: list[int]
    logits: np.ndarray
    lowres: np.ndarray
    multi_logits: np.ndarray
    multi_iou: np.ndarray
    sam: Any
    embedding: dict[str, Any] | None
    timings: dict[str, float] = field(default_factory=dict)
    memo: dict[str, OrderedDict[Hashable, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    use_seed_bank: bool = True
    bank: SeedBank | None = field(default=None, repr=False)

    def seed_bank(self) -> SeedBank | None:
        """The per-seed AMG decodes of this image (:class:`SeedBank`), made on first use;
        ``None`` when switched off or the backend is not one the bank supports."""
        if self.bank is None and self.use_seed_bank and SeedBank.supported(self.sam):
            self.bank = SeedBank(self.hw)
        return self.bank if self.use_seed_bank else None

    def forget(self) -> None:
        """Drop every re-tune result (the step memo and the seed bank); the forward, the
        embedding and the initial decode stay."""
        self.memo.clear()
        if self.bank is not None:
            self.bank.clear()

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.image_rgb.shape[0]), int(self.image_rgb.shape[1])

    @property
    def cached_layers(self) -> list[int]:
        """The 0-based decoder layers whose attention is cached."""
        return [int(v) for v in self.output.layers]

    def layer_positions(self, settings: Stage1Settings) -> list[int]:
        """Positions in the cached attention of the layers ``settings`` asks for (``None`` = the
        model's default layers); :class:`NeedsForward` when some are not cached."""
        return _positions(self.cached_layers, self.default_layers, settings)

    def check(self, settings: Stage1Settings) -> None:
        """Raise :class:`NeedsForward` or ``ValueError`` (one line) when ``settings`` cannot be
        re-tuned from this cache; nothing is computed."""
        self.layer_positions(settings)
        n_heads = int(np.asarray(self.output.attention).shape[1])
        bad = [h for h in settings.heads or () if not 0 <= h < n_heads]
        if bad:
            raise ValueError(f"heads {bad} out of range: the model has {n_heads} heads")


def _positions(cached: list[int], default: list[int], settings: Stage1Settings) -> list[int]:
    """Positions in ``cached`` of the layers ``settings`` asks for (``None``: ``default``);
    :class:`NeedsForward` when some are not there."""
    wanted = settings.model_layers() or list(default)
    have = {v: i for i, v in enumerate(cached)}
    missing = [v for v in wanted if v not in have]
    if missing:
        raise NeedsForward(
            f"attention of layers {missing} is not cached (cached: {_ranges(cached)}); "
            "these layers need a new MLLM forward"
        )
    return [have[v] for v in wanted]


def format_indices(values: Iterable[int] | None) -> str:
    """Layer or head indices as a user types them: ``[0, 1, 2, 5]`` → ``"0-2, 5"``; ``None`` (the
    model's default) → ``""``. :func:`parse_indices` reads it back."""
    if values is None:
        return ""
    out: list[list[int]] = []
    for v in sorted(set(int(x) for x in values)):
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


def parse_indices(text: str, what: str = "layers") -> tuple[int, ...] | None:
    """``"14-30"``, ``"1, 3, 5"`` or ``"0-2, 7"`` → sorted distinct indices; blank → ``None``
    (the default). Anything else is a ``ValueError`` with a one-line message naming ``what``."""
    text = text.strip()
    if not text:
        return None
    out: set[int] = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"{what}: {part!r} is not a number or a range like 14-30") from None
        if a < 0 or b < a:
            raise ValueError(f"{what}: {part!r} is not a range of indices from 0 up")
        out.update(range(a, b + 1))
    return tuple(sorted(out))


def _ranges(values: list[int]) -> str:
    return format_indices(values) or "none"


def candidate_ious(
    trace: PipelineTrace, gt: np.ndarray, ignore: np.ndarray | None = None
) -> dict[int, float]:
    """Each candidate's true IoU against ``gt`` (bool (H, W)), LISA's per-sample IoU with the
    ignore region excluded (:mod:`core.metrics`)."""
    from core.metrics import intersection_union, sample_iou

    return {c.id: sample_iou(*intersection_union(c.mask, gt, ignore)) for c in trace.candidates}


def best_true_iou(
    trace: PipelineTrace, gt: np.ndarray, ignore: np.ndarray | None = None
) -> tuple[int, float] | None:
    """``(candidate id, IoU)`` of the candidate closest to ``gt`` (the first on ties; the oracle
    pick: what a perfect stage 2 could reach); ``None`` without candidates."""
    ious = candidate_ious(trace, gt, ignore)
    if not ious:
        return None
    cid = max(ious, key=lambda k: (ious[k], -k))
    return cid, ious[cid]


def _snapshot(sam: Any) -> dict[str, Any] | None:
    from core.pipeline.cache import _snapshot as snap

    return snap(sam)


def prepare_stage1(
    prompt_model: PromptModel,
    sam_backend: SamBackend,
    image_rgb: np.ndarray,
    question: str,
    settings: Stage1Settings | None = None,
    *,
    preset: str = "",
    is_sentence: bool | None = None,
    all_layers: bool = True,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    partial: PartialFn | None = None,
) -> Stage1Cache:
    """The MLLM forward, the SAM image embedding and the initial decode, as
    :func:`core.pipeline.stage1.run_stage1` computes them, kept for :func:`retune`.

    image_rgb: uint8 (H, W, 3) RGB. settings: which layers to capture when ``all_layers`` is off
    or the model does not say how many it has (``None``: the backend's paper defaults).
    progress(step, fraction) is called before each of :data:`PREPARE_STEPS` and with
    ``("ready", 1.0)``; should_cancel() is polled before each and raises :class:`Cancelled`.
    ``partial(item)``: :class:`~core.pipeline.partial.HeatmapReady` after the forward (the
    token map of ``settings``' layers and heads, as ``run_stage1`` hands it out) and
    :class:`~core.pipeline.partial.InitialMaskReady` after the initial decode; :func:`retune`
    hands out the rest.
    """
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(
            f"image must be uint8 (H, W, 3) RGB, got {image_rgb.dtype} {image_rgb.shape}"
        )
    s = settings or Stage1Settings.for_backbone(sam_backend.kind)
    timings: dict[str, float] = {}

    def step(name: str) -> float:
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled before step {name!r}")
        if progress is not None:
            progress(name, PREPARE_STEPS.index(name) / len(PREPARE_STEPS))
        return time.perf_counter()

    t = step("mllm")
    n = layer_count(prompt_model) if all_layers else None
    layers = list(range(n)) if n is not None else s.model_layers()
    if (
        is_sentence is not None
        and "is_sentence" in inspect.signature(prompt_model.encode).parameters
    ):
        out = prompt_model.encode(image_rgb, question, layers, is_sentence=is_sentence)
    else:
        out = prompt_model.encode(image_rgb, question, layers)
    gh, gw = _check_output(out)
    timings["mllm"] = time.perf_counter() - t
    default = getattr(prompt_model, "default_layers", None)
    default_layers = [int(v) for v in (default if default else out.layers)]
    if partial is not None:
        partial(HeatmapReady(_heatmap(out, default_layers, s, gh, gw)))

    t = step("sam_embed")
    sam_backend.set_image(image_rgb)
    timings["sam_embed"] = time.perf_counter() - t

    t = step("initial")
    single, _, low = sam_backend.decode_prompt_embedding(out.prompt_embedding, multimask=False)
    multi, multi_iou, _ = sam_backend.decode_prompt_embedding(out.prompt_embedding, multimask=True)
    timings["initial"] = time.perf_counter() - t
    logits = np.asarray(single[0], dtype=np.float32)
    if partial is not None:
        partial(InitialMaskReady(logits))
    if progress is not None:
        progress("ready", 1.0)
    return Stage1Cache(
        image_rgb=image_rgb.copy(),
        question=question,
        preset=preset,
        model_ids={
            "mllm": str(getattr(prompt_model, "name", "?")),
            "sam": str(getattr(sam_backend, "name", "?")),
        },
        is_random=bool(
            getattr(prompt_model, "is_random", True) or getattr(sam_backend, "is_random", True)
        ),
        output=out,
        default_layers=default_layers,
        logits=logits,
        lowres=np.asarray(low[0:1], dtype=np.float32),
        multi_logits=np.asarray(multi, dtype=np.float32),
        multi_iou=np.asarray(multi_iou, dtype=np.float32),
        sam=sam_backend,
        embedding=_snapshot(sam_backend),
        timings=timings,
    )


def _heatmap(
    out: PromptModelOutput, default: list[int], s: Stage1Settings, gh: int, gw: int
) -> AttentionTrace:
    """The heatmap of ``s``' layers and heads from an output that may hold more layers."""
    positions = _positions([int(v) for v in out.layers], default, s)
    picked = replace(
        out,
        attention=np.asarray(out.attention)[positions],
        layers=[int(out.layers[i]) for i in positions],
    )
    return _attention_trace(picked, s, gh, gw)


def _restore_embedding(cache: Stage1Cache) -> None:
    """Put the cached image embedding back into the backend if it has embedded another image
    since (no encoder pass); backends of unknown layout get ``set_image`` (a no-op for the image
    they already hold)."""
    sam = cache.sam
    if (
        cache.embedding is not None
        and getattr(sam, "_image", None) is not cache.embedding["_image"]
    ):
        from core.pipeline.cache import _restore

        _restore(sam, cache.embedding)
    sam.set_image(cache.image_rgb)


def _memo(cache: Stage1Cache, step: str, key: Hashable, compute: Callable[[], Any]) -> Any:
    table = cache.memo.setdefault(step, OrderedDict())
    if key in table:
        table.move_to_end(key)
        return table[key]
    value = compute()
    table[key] = value
    while len(table) > MEMO_SIZE:
        table.popitem(last=False)
    return value


def _key(s: Stage1Settings, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(s, n) for n in names)


def retune(
    cache: Stage1Cache,
    settings: Stage1Settings,
    *,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    partial: PartialFn | None = None,
    concept: ConceptSegmenter | None = None,
) -> PipelineTrace:
    """Stage 1's parameter-dependent steps (:data:`RETUNE_STEPS`) on ``cache`` with ``settings``;
    the same trace :func:`core.pipeline.stage1.run_stage1` returns for these settings (equal
    candidates, seeds, graph and attention), without an MLLM forward or a SAM encoder pass.

    ``trace.timings`` holds the cache's three steps as they were measured, this call's steps and
    ``retune`` (this call's total). Layers that are not cached raise :class:`NeedsForward`.
    ``partial(item)``: the multimask candidates, :class:`~core.pipeline.partial.SeedsReady`,
    :class:`~core.pipeline.partial.CoreReady` and the other candidates, as ``run_stage1``
    hands them out after the initial mask (:func:`prepare_stage1` hands out what comes before).
    With ``concept_origin`` (not from the paper) SAM 3's instances of the phrase join as origin
    ``concept`` as in ``run_stage1`` (``concept``: the segmenter, else loaded from
    ``concept_model``); they depend on no stage-1 parameter, so they are computed once per
    concept setting. ``disabled_origins`` leaves origins out as ``run_stage1`` does.
    Thread-safe per cache (one re-tune at a time); callers sharing the SAM backend with other
    work hold its lock (:meth:`core.pipeline.cache.ModelCache.sam_lock`).
    """
    with cache.lock:
        return _retune(cache, settings, progress, should_cancel, partial, concept)


def _retune(
    cache: Stage1Cache,
    s: Stage1Settings,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
    partial: PartialFn | None = None,
    concept: ConceptSegmenter | None = None,
) -> PipelineTrace:
    cache.check(s)
    out = cache.output
    gh, gw = int(out.grid_hw[0]), int(out.grid_hw[1])
    h, w = cache.hw
    L = cache.logits
    timings = dict(cache.timings)
    t_start = time.perf_counter()

    def step(name: str) -> float:
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled before step {name!r}")
        if progress is not None:
            progress(name, RETUNE_STEPS.index(name) / len(RETUNE_STEPS))
        return time.perf_counter()

    # merged first, so shown first (run_stage1 hands them out right after the initial mask)
    multimask = multimask_items(cache.multi_logits, cache.multi_iou, s.stability_score_offset)
    early = multimask_candidates(multimask, s) if partial is not None else []
    if partial is not None:
        emit_candidates(partial, early, final=False)

    t = step("seeds")
    positions = cache.layer_positions(s)
    heads = None if s.heads is None else list(s.heads)
    seeds_key = (tuple(positions), *_key(s, _SEED_KEYS))

    def seeds() -> tuple[Any, ...]:
        att = np.asarray(out.attention)[positions]
        token_map = aggregate_attention(att, (gh, gw), None, heads, renormalise=s.attention_renorm)
        top1, top2 = select_tokens(token_map, out.token_boxes_xyxy, L, s.k1, s.k2)
        counts = allocate_seeds(np.array([t.attention for t in top2]), s.seeds_total, s.seed_policy)
        seeds_xy, seed_token = sample_seed_points(
            top2, counts, (h, w), np.random.default_rng(s.seed)
        )
        return att, token_map, top1, top2, seeds_xy, seed_token

    att, token_map, top1, top2, seeds_xy, seed_token = _memo(cache, "seeds", seeds_key, seeds)
    seed_att = (
        token_map.ravel()[np.asarray(seed_token, dtype=np.int64)] if seed_token else np.zeros(0)
    )
    timings["seeds"] = time.perf_counter() - t
    seed_trace = SeedTrace(s.k1, s.k2, top1, top2, seeds_xy, [int(i) for i in seed_token])
    if partial is not None:
        partial(SeedsReady(seed_trace))

    seeds_id = (seeds_key, np.asarray(seeds_xy).tobytes())
    t = step("amg")
    need_sam = [False]

    def sam_ready() -> None:
        """The cached embedding back in the backend, once per re-tune and only when used."""
        if not need_sam[0]:
            _restore_embedding(cache)
            need_sam[0] = True

    def decoded() -> DecodedMasks:
        offset, bank = s.stability_score_offset, cache.seed_bank()
        if bank is not None:
            # only the seeds not held (none: no decoder pass); a set with none held is decoded
            # in the generator's batches, exactly as decode_all does
            if bank.missing(seeds_xy, offset):
                sam_ready()
                bank.decode(cache.sam, seeds_xy, offset, s.points_per_batch)
            held = bank.assemble(seeds_xy, offset)
            if held is not None:  # None: the bank is full and dropped some of them
                return held
        sam_ready()
        masks, boxes = decode_all(cache.sam, seeds_xy, offset, s.points_per_batch)
        return DecodedMasks.pack(masks, boxes, (h, w))

    # the decode once per seed (and offset), kept bit-packed in the cache's seed bank; the
    # filters and NMS on each change
    dec = _memo(cache, "amg", (seeds_id, s.stability_score_offset, s.points_per_batch), decoded)
    amg_items = [
        {
            "mask": m.mask,
            "score": m.predicted_iou,
            "stability": m.stability,
            "seed_index": m.seed_index,
        }
        for m in dec.refilter(s.pred_iou_thresh, s.stability_score_thresh, s.box_nms_thresh)
        if np.any(m.mask)  # as seed_amg's budget: empty masks are never candidates
    ]
    timings["amg"] = time.perf_counter() - t

    t = step("semantic")

    def semantic() -> tuple[Any, ...]:
        sam_ready()
        nodes = graph_nodes(seed_token)  # one node per distinct token: its first seed
        idx = np.asarray(nodes, dtype=np.int64)
        feats = sample_features(
            cache.sam.image_features(), seeds_xy[idx], cache.sam.embedding_xy_scale()
        )
        node_edges = cosine_graph(feats, s.tau)
        k, node_core = densest_core(len(nodes), node_edges, np.asarray(seed_att)[idx])
        edges = [(nodes[i], nodes[j], c) for i, j, c in node_edges]
        core = [nodes[i] for i in node_core]
        neg_xy, neg_logit, fallback = negative_point(L, s.delta)
        pts, labels = semantic_prompt(seeds_xy, core, neg_xy)
        L_prompt = cache.lowres if s.mask_prompt == "decoder_lowres" else L
        sem_logits, sem_iou = cache.sam.predict_points(pts, labels, L_prompt, multimask=True)
        sem_stab = stability_score(sem_logits, s.stability_score_offset)
        items = [
            {"mask": sem_logits[i] > 0, "score": float(sem_iou[i]), "stability": float(sem_stab[i])}
            for i in range(sem_logits.shape[0])
        ]
        graph = FeatureGraphTrace(s.tau, s.delta, edges, k, core, neg_xy, neg_logit, fallback)
        return graph, items

    graph, semantic_items = _memo(cache, "semantic", (seeds_id, *_key(s, _SEMANTIC_KEYS)), semantic)
    timings["semantic"] = time.perf_counter() - t
    if partial is not None:
        partial(CoreReady(graph))

    t = step("candidates")
    groups = [("multimask", multimask), ("semantic", semantic_items), ("amg", amg_items)]
    concept_record = None
    if s.concept_origin and "concept" not in s.disabled_origins:
        # SAM 3 on the image and a phrase: no stage-1 parameter changes it, so once per setting
        t_concept = time.perf_counter()
        concept_items, concept_record = _memo(
            cache,
            "concept",
            _key(s, _CONCEPT_KEYS),
            lambda: _concept(s, concept, cache.image_rgb, cache.question, out),
        )
        groups.append(("concept", concept_items))
        timings["concept"] = time.perf_counter() - t_concept
    candidates = merge_candidates(groups, s)
    timings["candidates"] = time.perf_counter() - t
    timings["retune"] = time.perf_counter() - t_start
    if partial is not None:
        emit_candidates(partial, candidates, start=len(early))
    if progress is not None:
        progress("done", 1.0)

    per_layer_att = np.asarray(att, dtype=np.float32)
    if heads is not None:
        per_layer_att = per_layer_att[:, heads]
    layers = [cache.cached_layers[i] for i in positions]
    return PipelineTrace(
        question=cache.question,
        image_hw=(h, w),
        preset=cache.preset,
        model_ids=dict(cache.model_ids),
        is_random=cache.is_random,
        settings=s.to_dict(),
        initial_logits=L,
        initial_mask=L > 0,
        attention=AttentionTrace(
            grid_hw=(gh, gw),
            token_map=token_map,
            token_boxes_xyxy=np.asarray(out.token_boxes_xyxy, dtype=np.float32),
            layers=layers,
            heads=heads,
            per_layer=per_layer_att.mean(axis=1).reshape(len(layers), gh, gw),
            prompt_token=out.prompt_token,
        ),
        seeds=seed_trace,
        graph=graph,
        candidates=candidates,
        timings=timings,
        generated_text=out.generated_text,
        concept=concept_record,
    )
