"""The whole of stage 1 on tiny SAM / SAM2 with a hand-made prompt model (§4.2)."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.base import PromptModelOutput
from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import STEPS, Cancelled, run_stage1
from core.trace import PipelineTrace

pytestmark = pytest.mark.slow

HW = (60, 80)
GRID = (4, 5)  # 16 px tokens over 80x60: the last row reaches 4 px into padding (y 48..64)


class HandPromptModel:
    """A prompt model with a fixed attention map: token 7 strongest, then 12, 2, 13, …"""

    name = "hand-made"
    is_random = True
    default_layers = [0, 1]

    def __init__(self, n_prompt: int = 1) -> None:
        self.n_prompt = n_prompt
        self.calls = 0

    def attention(self, n_layers: int = 2) -> np.ndarray:
        gh, gw = GRID
        base = np.linspace(0.01, 0.02, gh * gw)
        base[[7, 12, 2, 13]] = [0.5, 0.3, 0.2, 0.1]
        att = np.stack([base, base * 2, base * 3])  # 3 heads
        att = np.stack([att] * n_layers)
        return (att / att.sum(-1, keepdims=True)).astype(np.float32)

    def encode(self, image_rgb, question, layers=None) -> PromptModelOutput:
        self.calls += 1
        gh, gw = GRID
        ys, xs = np.mgrid[0:gh, 0:gw]
        boxes = np.stack(
            [xs.ravel() * 16, ys.ravel() * 16, xs.ravel() * 16 + 16, ys.ravel() * 16 + 16], 1
        )
        emb = np.random.default_rng(11).standard_normal((self.n_prompt, 256)).astype(np.float32)
        layers = self.default_layers if layers is None else list(layers)
        return PromptModelOutput(
            emb,
            self.attention(len(layers)),
            layers,
            GRID,
            boxes.astype(np.float32),
            "it is [SEG].",
            "[SEG]",
        )


def tiny_backend(kind: str):
    """A tiny random-init SAM (``"sam"``) or SAM2 (``"sam2"``) backend."""
    from core.models.sam_backend import Sam2Backend, SamV1Backend
    from core.models.tiny_sam import build_tiny_sam, build_tiny_sam2

    if kind == "sam":
        return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)
    return Sam2Backend(build_tiny_sam2(), name="sam2-tiny", is_random=True)


def red_image() -> np.ndarray:
    """Noise with a red block, uint8 (*HW, 3): the image the stage-1 and what-if tests use."""
    img = (np.random.default_rng(0).random((*HW, 3)) * 255).astype(np.uint8)
    img[20:40, 25:60] = (240, 30, 30)
    return img


@pytest.fixture(scope="module", params=["sam", "sam2"])
def backend(request):
    return tiny_backend(request.param)


@pytest.fixture(scope="module")
def image():
    return red_image()


def _settings(kind: str, **kw) -> Stage1Settings:
    base = {
        "layers": None,
        "k1": 8,
        "k2": 4,
        "seeds_total": 10,
        "seed_policy": "proportional",
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 0.9,
    }
    return Stage1Settings.for_backbone(kind, **{**base, **kw})


def _encoder(b):
    return b.sam.image_encoder if b.kind == "sam" else b.model.image_encoder


def test_full_trace_is_complete_and_round_trips(backend, image, monkeypatch):
    s = _settings(backend.kind)
    encoder_calls, steps, semantic_calls = [], [], []
    hook = _encoder(backend).register_forward_hook(lambda *a: encoder_calls.append(1))
    real_predict = backend.predict_points

    def spy(points_xy, labels, mask_logits, multimask):
        semantic_calls.append((np.array(points_xy), np.array(labels), mask_logits, multimask))
        return real_predict(points_xy, labels, mask_logits, multimask)

    monkeypatch.setattr(backend, "predict_points", spy)
    backend.reset_image()
    try:
        tr = run_stage1(
            HandPromptModel(),
            backend,
            image,
            "which part is red ?",
            s,
            preset="hand",
            progress=lambda name, f: steps.append((name, f)),
        )
    finally:
        hook.remove()
    assert len(encoder_calls) == 1  # one image embedding for every step

    assert [n for n, _ in steps] == [*STEPS, "done"] and [f for _, f in steps] == sorted(
        f for _, f in steps
    )
    assert set(tr.timings) == set(STEPS) and all(t >= 0 for t in tr.timings.values())
    assert (
        tr.is_random
        and tr.preset == "hand"
        and tr.model_ids == {"mllm": "hand-made", "sam": backend.name}
    )
    assert tr.settings == s.to_dict() and tr.generated_text == "it is [SEG]." and tr.image_hw == HW
    # initial prediction
    assert tr.initial_logits.shape == HW and tr.initial_logits.dtype == np.float32
    assert np.array_equal(tr.initial_mask, tr.initial_logits > 0)
    # attention and tokens
    a = tr.attention
    assert a.grid_hw == GRID and a.token_map.shape == GRID and a.per_layer.shape == (2, *GRID)
    assert a.layers == [0, 1] and a.prompt_token == "[SEG]" and a.token_boxes_xyxy.shape == (20, 4)
    assert np.allclose(a.token_map.ravel(), HandPromptModel().attention().mean(axis=(0, 1)))
    assert [t.index for t in tr.seeds.topk1][:4] == [7, 12, 2, 13] and len(tr.seeds.topk1) == 8
    top2 = tr.seeds.topk2
    assert len(top2) == 4 and {t.index for t in top2} <= {t.index for t in tr.seeds.topk1}
    assert [t.mean_logit for t in top2] == sorted((t.mean_logit for t in top2), reverse=True)
    # seeds: inside their tokens' patches, more for higher attention
    seeds = tr.seeds.seeds_xy
    assert seeds.shape == (10, 2) and len(tr.seeds.seed_token) == 10
    for (x, y), tok in zip(seeds, tr.seeds.seed_token, strict=True):
        x0, y0, x1, y1 = a.token_boxes_xyxy[tok]
        assert x0 <= x < x1 and y0 <= y < min(y1, HW[0])
    per_token = [tr.seeds.seed_token.count(t.index) for t in top2]
    att = [t.attention for t in top2]
    assert all(per_token[i] >= per_token[j] for i in range(4) for j in range(4) if att[i] > att[j])
    # graph and semantic prompt
    g = tr.graph
    assert g.tau == s.tau and g.delta == s.delta and g.core_members
    assert all(0 <= i < j < 10 and c > s.tau for i, j, c in g.edges)
    nx_, ny_ = g.negative_xy
    assert tr.initial_logits[int(ny_), int(nx_)] == pytest.approx(g.negative_logit)
    pts, labels, mask_logits, multimask = semantic_calls[-1]
    assert np.array_equal(pts[:-1], seeds[g.core_members]) and tuple(pts[-1]) == g.negative_xy
    assert labels.tolist() == [1] * len(g.core_members) + [0] and multimask
    assert (
        mask_logits.shape[0] == 1 and mask_logits.ndim == 3
    )  # the decoder's own low-res L (default)
    # candidates
    origins = [c.origin for c in tr.candidates]
    assert 1 <= len(origins) <= 15 and origins == sorted(
        origins, key=["multimask", "semantic", "amg"].index
    )
    assert [c.id for c in tr.candidates] == list(range(len(origins)))
    assert sum(o == "amg" for o in origins) <= s.top_n and sum(o != "amg" for o in origins) <= 6
    for c in tr.candidates:
        assert (
            c.mask.shape == HW
            and c.mask.any()
            and c.area == int(c.mask.sum())
            and c.stability is not None
        )
        assert (c.seed_index is not None) == (c.origin == "amg")
    # JSON round trip
    text = tr.to_json()
    back = PipelineTrace.from_json(text)
    assert back.to_json() == text
    assert all(
        np.array_equal(x.mask, y.mask) for x, y in zip(back.candidates, tr.candidates, strict=True)
    )


def test_multimask_candidates_are_the_decoders_masks(backend, image):
    tr = run_stage1(HandPromptModel(), backend, image, "q", _settings(backend.kind, top_n=0))
    backend.set_image(image)
    multi, iou, _ = backend.decode_prompt_embedding(
        HandPromptModel().encode(image, "q").prompt_embedding, True
    )
    first = tr.candidates[0]
    assert first.origin == "multimask" and first.origin_rank == 0
    assert np.array_equal(first.mask, multi[0] > 0) and first.sam_score == pytest.approx(
        float(iou[0])
    )
    assert not any(c.origin == "amg" for c in tr.candidates)  # top_n = 0


def test_settings_change_the_trace_deterministically(backend, image):
    s = _settings(backend.kind, heads=[1], seed=3, seed_policy="one_per_token")
    a = run_stage1(HandPromptModel(), backend, image, "q", s)
    b = run_stage1(HandPromptModel(), backend, image, "q", s)
    assert a.to_json() == b.to_json() or _same_but_timings(a, b)
    assert a.attention.heads == [1] and len(a.seeds.seeds_xy) == 4
    c = run_stage1(HandPromptModel(), backend, image, "q", _settings(backend.kind, seed=4))
    assert not np.array_equal(
        c.seeds.seeds_xy,
        run_stage1(
            HandPromptModel(), backend, image, "q", _settings(backend.kind, seed=5)
        ).seeds.seeds_xy,
    )


def _same_but_timings(a: PipelineTrace, b: PipelineTrace) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da.pop("timings")
    db.pop("timings")
    return da == db


def test_cancel_stops_before_the_next_step(backend, image):
    polls = []

    def should_cancel():
        polls.append(1)
        return len(polls) > 3

    pm = HandPromptModel()
    with pytest.raises(Cancelled, match="seeds"):
        run_stage1(pm, backend, image, "q", _settings(backend.kind), should_cancel=should_cancel)
    assert pm.calls == 1 and len(polls) == 4


def test_bad_inputs_are_refused_plainly(backend, image):
    with pytest.raises(ValueError, match="uint8"):
        run_stage1(
            HandPromptModel(), backend, image.astype(np.float32), "q", _settings(backend.kind)
        )

    class Broken(HandPromptModel):
        def encode(self, image_rgb, question, layers=None):
            out = super().encode(image_rgb, question, layers)
            out.token_boxes_xyxy = out.token_boxes_xyxy[:5]
            return out

    with pytest.raises(ValueError, match="token boxes"):
        run_stage1(Broken(), backend, image, "q", _settings(backend.kind))


def test_default_settings_follow_the_backbone(backend, image):
    tr = run_stage1(HandPromptModel(), backend, image, "q", None)
    assert tr.settings == Stage1Settings.for_backbone(backend.kind).to_dict()
    assert tr.seeds.k1 == 50 and len(tr.seeds.topk1) == 20  # only 20 tokens exist


def test_default_seeds_are_one_per_top_k2_token_and_graph_is_over_distinct_tokens(backend, image):
    """§4.2: the top-k2 tokens become the seed points (K = k2); with the optional proportional
    budget, several seeds of one patch still make one graph node."""
    s = Stage1Settings.for_backbone(
        backend.kind, layers=None, k1=8, k2=4, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    t = run_stage1(HandPromptModel(), backend, image, "q", s)
    assert len(t.seeds.seeds_xy) == len(t.seeds.topk2) == 4
    assert len(set(t.seeds.seed_token)) == 4
    p = run_stage1(
        HandPromptModel(),
        backend,
        image,
        "q",
        _settings(backend.kind, seed_policy="proportional", tau=-1.0),
    )
    assert len(p.seeds.seeds_xy) == 10  # duplicates of one patch exist ...
    owners = [p.seeds.seed_token[i] for i in p.graph.core_members]
    assert (
        len(owners) == len(set(owners)) == 4
    )  # ... but the complete graph (tau = -1) has one node per token
    nodes = {i for e in p.graph.edges for i in e[:2]}
    assert len(nodes) == 4


def test_mask_prompt_is_the_decoders_own_lowres_logits(backend, image, monkeypatch):
    """§4.2 feeds "the previous mask logits L" back as the mask prompt: by default the decoder's
    low-res output itself (as LISA/SAM do); ``rebuilt`` reconstructs it from full-res L, and the
    two agree where the image is (not exactly: a bilinear up- then down-sampling)."""
    from core.models.sam_backend import sam2_lowres_mask_prompt, sam_lowres_mask_prompt

    seen = []
    real = backend.predict_points
    monkeypatch.setattr(
        backend,
        "predict_points",
        lambda p, lab, m, multimask: (seen.append(m), real(p, lab, m, multimask))[1],
    )
    t = run_stage1(HandPromptModel(), backend, image, "q", _settings(backend.kind))
    _, _, low = backend.decode_prompt_embedding(
        HandPromptModel().encode(image, "q").prompt_embedding, multimask=False
    )
    s = low.shape[-1]
    assert seen[-1].shape == (1, s, s) and np.array_equal(seen[-1], low[0:1])
    run_stage1(
        HandPromptModel(), backend, image, "q", _settings(backend.kind, mask_prompt="rebuilt")
    )
    assert seen[-1].shape == image.shape[:2]
    # the two paths agree on a smooth low-res map: postprocess it as SAM does, rebuild, compare
    import torch

    yy, xx = np.mgrid[0:s, 0:s] / s
    smooth = (20 * np.exp(-((yy - 0.3) ** 2 + (xx - 0.4) ** 2) / 0.05) - 10).astype(np.float32)[
        None, None
    ]
    if backend.kind == "sam":
        p = backend.predictor
        full = backend.sam.postprocess_masks(
            torch.from_numpy(smooth), p.input_size, p.original_size
        )[0, 0].numpy()
        rebuilt = sam_lowres_mask_prompt(full, backend.img_size)
        h, w = (int(v) // 4 for v in p.input_size)  # the low-res cells inside the image
    else:
        full = backend.predictor._transforms.postprocess_masks(
            torch.from_numpy(smooth), image.shape[:2]
        )[0, 0].numpy()
        rebuilt = sam2_lowres_mask_prompt(full, backend.model.image_size)
        h, w = s, s
    assert t.initial_logits.shape == full.shape
    diff = np.abs(rebuilt[0, 1 : h - 1, 1 : w - 1] - smooth[0, 0, 1 : h - 1, 1 : w - 1])
    assert diff.max() < 0.5, diff.max()  # of a 20-logit range
    with pytest.raises(ValueError):
        Stage1Settings(mask_prompt="x")
