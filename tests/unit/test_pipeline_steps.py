"""Known-answer tests for each stage-1 step on hand-made arrays (§4.2, App. B)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.models.base import AmgMask
from core.pipeline.amg import amg_settings, apply_budget, seed_amg
from core.pipeline.candidates import build_candidates, is_duplicate, stability_score
from core.pipeline.seeds import (
    aggregate_attention,
    allocate_seeds,
    patch_mean_logit,
    patch_pixels,
    sample_seed_points,
    select_tokens,
)
from core.pipeline.semantic import (
    cosine_graph,
    densest_core,
    negative_point,
    sample_features,
    semantic_prompt,
)
from core.pipeline.settings import Stage1Settings
from core.trace import TokenScore


def _boxes(gh, gw, cell, dy=0.0):
    ys, xs = np.mgrid[0:gh, 0:gw]
    x0, y0 = xs.ravel() * cell, ys.ravel() * cell + dy
    return np.stack([x0, y0, x0 + cell, y0 + cell], 1).astype(np.float32)


# -- attention and tokens ----------------------------------------------------------------------


def test_aggregate_attention_means_layers_and_heads():
    att = np.zeros((2, 2, 4))
    att[0, 0] = [1, 0, 0, 0]
    att[1, 1] = [0, 0, 0, 4]
    assert np.allclose(aggregate_attention(att, (2, 2)), [[0.25, 0], [0, 1.0]])
    assert np.allclose(aggregate_attention(att, (2, 2), [1], [1]), [[0, 0], [0, 4]])
    assert aggregate_attention(att, (1, 4)).shape == (1, 4)
    with pytest.raises(ValueError, match="grid"):
        aggregate_attention(att, (3, 3))
    with pytest.raises(ValueError, match="heads"):
        aggregate_attention(att, (2, 2), None, [5])


def test_patch_pixels_by_pixel_centres():
    assert patch_pixels((0, 0, 10, 10), (20, 30)) == (0, 0, 10, 10)
    assert patch_pixels((0, -10, 20, 10), (60, 80)) == (0, 0, 20, 10)  # clipped to the image
    assert patch_pixels((0, -20, 20, 0), (60, 80)) is None  # all padding
    # a box over x in [26.67, 53.33): pixels 27..52 (centres 27.5..52.5)
    assert patch_pixels((80 / 3, 0, 160 / 3, 30), (60, 80)) == (27, 0, 53, 30)
    assert patch_pixels((4.6, 4.6, 4.9, 4.9), (10, 10)) == (4, 4, 5, 5)  # thinner than a pixel
    L = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert patch_mean_logit(L, (1, 1, 3, 3)) == pytest.approx((5 + 6 + 9 + 10) / 4)
    assert patch_mean_logit(L, (0, 5, 4, 9)) is None


def test_topk1_then_logit_rerank_order_and_ties():
    tm = np.array([[0.9, 0.1, 0.8], [0.7, 0.85, 0.2]], np.float32)  # 2x3 tokens of 10 px
    L = np.full((20, 30), -5.0, np.float32)
    L[10:20, 0:10] = 3.0  # token 3 (row 1, col 0)
    L[0:10, 20:30] = 1.0  # token 2
    L[10:20, 10:20] = -1.0  # token 4
    top1, top2 = select_tokens(tm, _boxes(2, 3, 10), L, k1=4, k2=2)
    assert [t.index for t in top1] == [0, 4, 2, 3]  # attention order
    assert [t.mean_logit for t in top1] == [-5.0, -1.0, 1.0, 3.0]
    assert [t.index for t in top2] == [3, 2]  # logit order
    assert (top2[0].row, top2[0].col, top2[0].attention) == (1, 0, pytest.approx(0.7))
    # equal attention: lower index first; equal mean L: the higher-attention token first
    t1, t2 = select_tokens(
        np.array([[1.0, 1.0, 2.0]], np.float32), _boxes(1, 3, 10), np.zeros((10, 30)), k1=3, k2=2
    )
    assert [t.index for t in t1] == [2, 0, 1] and [t.index for t in t2] == [2, 0]


def test_padding_tokens_never_reach_top_k2():
    # 2x2 grid over a 20x20 image padded by 20 px on top: the top row of tokens is all padding
    tm = np.array([[0.9, 0.8], [0.1, 0.2]], np.float32)
    top1, top2 = select_tokens(tm, _boxes(2, 2, 20, dy=-20), np.zeros((20, 40)), k1=4, k2=3)
    assert [t.index for t in top1] == [0, 1, 3, 2] and top1[0].mean_logit is None
    assert [t.index for t in top2] == [3, 2]  # shorter than k2


def test_seed_allocation_proportional_with_minimum_one():
    assert allocate_seeds(np.array([0.6, 0.3, 0.1]), 3).tolist() == [1, 1, 1]
    c = allocate_seeds(np.array([0.6, 0.3, 0.1]), 13)  # 10 extra: 6, 3, 1
    assert c.tolist() == [7, 4, 2] and c.sum() == 13
    c = allocate_seeds(np.array([0.5, 0.25, 0.25]), 5)  # 2 extra: 1, .5, .5 → tie to the earlier
    assert c.tolist() == [2, 2, 1]
    c = allocate_seeds(np.array([0.2, 0.5, 0.3]), 4)  # 1 extra: fractions .2/.5/.3 → the 0.5 token
    assert c.tolist() == [1, 2, 1]
    assert allocate_seeds(np.array([0.0, 0.0]), 4).tolist() == [2, 2]
    assert allocate_seeds(np.array([0.6, 0.3]), 10, "one_per_token").tolist() == [1, 1]
    assert allocate_seeds(np.zeros(0), 5).tolist() == []
    with pytest.raises(ValueError, match="seed policy"):
        allocate_seeds(np.ones(2), 4, "random")


def test_seed_points_are_distinct_pixels_inside_their_patches():
    tm = np.arange(12, dtype=np.float32).reshape(3, 4)
    boxes = _boxes(3, 4, 8)
    _, top2 = select_tokens(tm, boxes, np.zeros((24, 32), np.float32), k1=5, k2=3)
    assert [t.index for t in top2] == [11, 10, 9]  # equal logits: attention order kept
    counts = allocate_seeds(np.array([t.attention for t in top2]), 12)
    pts, owner = sample_seed_points(top2, counts, (24, 32), np.random.default_rng(0))
    assert len(pts) == 12 and owner == [11] * counts[0] + [10] * counts[1] + [9] * counts[2]
    assert np.array_equal(pts, np.round(pts))  # pixel indices
    for (x, y), tok in zip(pts, owner, strict=True):
        x0, y0, x1, y1 = boxes[tok]
        assert x0 <= x < x1 and y0 <= y < y1
    assert len({tuple(p) for p in pts}) == 12
    assert tuple(pts[0]) == (27.0, 19.0)  # token 11 = [24, 32) x [16, 24): its centre pixel first
    again, _ = sample_seed_points(top2, counts, (24, 32), np.random.default_rng(0))
    assert np.array_equal(pts, again)  # seeded
    # more seeds than pixels: capped at the patch's pixel count
    tiny = [TokenScore(0, 0, 0, 1.0, (0.0, 0.0, 2.0, 1.0))]
    p, _ = sample_seed_points(tiny, np.array([5]), (4, 4), np.random.default_rng(0))
    assert sorted(map(tuple, p.tolist())) == [(0.0, 0.0), (1.0, 0.0)]


# -- features, graph, k-core, negative point ---------------------------------------------------


def test_bilinear_feature_sampling_by_hand():
    f = np.zeros((1, 2, 2), np.float32)
    f[0] = [[0.0, 1.0], [2.0, 3.0]]  # cell centres at (0.5, 0.5), (1.5, 0.5), ...
    # 0.5 cell per pixel: pixel (1, 1) has its centre at (1.5, 1.5) px = (0.75, 0.75) cells,
    # a quarter of the way from cell (0, 0)'s centre towards the others: 0.25*1 + 0.25*2 = 0.75
    pts = np.array([[1, 1], [1.5, 1.5], [0, 0], [2.5, 0.5], [100, 100]], np.float32)
    got = sample_features(f, pts, (0.5, 0.5))
    assert got[:, 0] == pytest.approx([0.75, 1.5, 0.0, 1.0, 3.0])


def test_bilinear_feature_sampling_matches_grid_sample():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((5, 6, 7)).astype(np.float32)
    pts = rng.uniform(-3, 40, (20, 2)).astype(np.float32)
    sx, sy = 7 / 37, 6 / 29
    u, v = (pts[:, 0] + 0.5) * sx, (pts[:, 1] + 0.5) * sy
    grid = torch.tensor(np.stack([2 * u / 7 - 1, 2 * v / 6 - 1], -1), dtype=torch.float64)[
        None, :, None
    ]
    ref = F.grid_sample(
        torch.tensor(f, dtype=torch.float64)[None], grid, align_corners=False, padding_mode="border"
    )
    assert np.allclose(sample_features(f, pts, (sx, sy)), ref[0, :, :, 0].T.numpy(), atol=1e-5)


def test_cosine_graph_threshold_is_strict_and_normalised():
    feats = np.array([[2, 0], [1, 1], [0, 3], [0, 0]], np.float32)  # cos(0,1) = cos(1,2) = 0.7071
    edges = cosine_graph(feats, 0.7)
    assert [(i, j) for i, j, _ in edges] == [(0, 1), (1, 2)] and edges[0][2] == pytest.approx(
        np.sqrt(0.5)
    )
    assert cosine_graph(feats, float(np.sqrt(0.5))) == []  # needs f_i·f_j > tau


def test_kcore_against_networkx_on_a_hand_graph():
    # a 4-clique {0,1,2,3}, a triangle {4,5,6} hanging off node 3, and an isolated node 7
    edges = [(i, j, 1.0) for i in range(4) for j in range(i + 1, 4)] + [
        (4, 5, 1.0),
        (5, 6, 1.0),
        (4, 6, 1.0),
        (3, 4, 1.0),
    ]
    k, core = densest_core(8, edges)
    g = nx.Graph()
    g.add_nodes_from(range(8))
    g.add_edges_from((i, j) for i, j, _ in edges)
    assert (
        (k, core)
        == (3, [0, 1, 2, 3])
        == (max(nx.core_number(g).values()), sorted(nx.k_core(g).nodes))
    )
    # two separate triangles: both are the densest core and both are kept
    tri = [
        (0, 1, 1.0),
        (1, 2, 1.0),
        (0, 2, 1.0),
        (3, 4, 1.0),
        (4, 5, 1.0),
        (3, 5, 1.0),
        (5, 6, 1.0),
    ]
    assert densest_core(7, tri) == (2, [0, 1, 2, 3, 4, 5])
    # no edges: the seed with the highest attention alone, ties to the lower index
    assert densest_core(3, [], np.array([0.1, 0.9, 0.9])) == (0, [1])
    assert densest_core(3, []) == (0, [0]) and densest_core(0, []) == (0, [])


def test_negative_point_rule_and_fallback():
    L = np.array([[-20.0, -16.0, 5.0], [-15.5, 0.0, -30.0]], np.float32)
    assert negative_point(L, -15.0) == ((0.0, 1.0), -15.5, False)  # the largest logit below delta
    assert negative_point(L, -15.5) == ((1.0, 0.0), -16.0, False)  # strictly below delta
    assert negative_point(np.array([[1.0, -2.0], [0.0, 3.0]]), -15.0) == (
        (1.0, 0.0),
        -2.0,
        True,
    )  # argmin L
    assert negative_point(np.array([[-20.0, -20.0]]), -10.0) == (
        (0.0, 0.0),
        -20.0,
        False,
    )  # row-major tie
    pts, labels = semantic_prompt(np.array([[1, 2], [3, 4], [5, 6]]), [0, 2], (9.0, 8.0))
    assert pts.tolist() == [[1, 2], [5, 6], [9, 8]] and labels.tolist() == [1, 1, 0]


# -- AMG budget, stability, candidates ---------------------------------------------------------


def _amg(score, fill, hw=(6, 6)):
    m = np.zeros(hw, bool)
    m.flat[:fill] = True
    return AmgMask(m, score, 0.95, int(fill))


def test_amg_budget_keeps_the_first_non_empty_masks():
    masks = [_amg(0.9 - i / 100, i) for i in range(12)]  # the first is empty
    kept = apply_budget(masks, 9)
    assert [m.seed_index for m in kept] == list(range(1, 10))
    assert apply_budget(masks, 0) == [] and len(apply_budget(masks[:3], 9)) == 2
    with pytest.raises(ValueError):
        apply_budget(masks, -1)

    class Fake:
        def amg_from_seeds(self, seeds, settings):
            self.got = (seeds, settings)
            return masks

    fake = Fake()
    out = seed_amg(
        fake, np.array([[1, 2]]), pred_iou_thresh=0.8, stability_score_thresh=0.88, top_n=3
    )
    assert [m.seed_index for m in out] == [1, 2, 3]
    assert fake.got[1] == amg_settings(0.8, 0.88, 1.0, 0.7, 64) and fake.got[0].dtype == np.float32


def test_stability_score_matches_segment_anything():
    from segment_anything.utils.amg import calculate_stability_score

    L = np.random.default_rng(2).standard_normal((3, 16, 16)).astype(np.float32) * 3
    ref = calculate_stability_score(torch.from_numpy(L), 0.0, 1.0).numpy()
    assert np.allclose(stability_score(L, 1.0), ref)
    assert stability_score(np.full((4, 4), -5.0), 1.0) == 1.0  # both masks empty


def test_candidates_dedupe_order_and_empty():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    a2 = a.copy()
    a2[5, 0] = True  # IoU 50/51 ≈ 0.98 with a
    b = np.zeros((10, 10), bool)
    b[:, :3] = True
    c = build_candidates(
        [
            (
                "multimask",
                [{"mask": a, "score": 0.9}, {"mask": np.zeros((10, 10), bool), "score": 0.1}],
            ),
            (
                "semantic",
                [{"mask": a2, "score": 0.8, "stability": 0.5}, {"mask": b.copy(), "score": 0.6}],
            ),
            (
                "amg",
                [
                    {"mask": b, "score": 0.7, "stability": 0.95, "seed_index": 4},
                    {"mask": ~b, "score": 0.2},
                ],
            ),
        ],
        dedupe_iou=0.95,
    )
    assert [(x.id, x.origin, x.origin_rank) for x in c] == [
        (0, "multimask", 0),
        (1, "semantic", 1),
        (2, "amg", 1),
    ]
    assert c[1].area == 30 and c[1].box_xyxy == (0, 0, 3, 10) and c[1].stability is None
    assert c[2].seed_index is None and c[2].sam_score == pytest.approx(0.2)
    # a lower threshold merges a2 into a, an exact copy is always a duplicate
    assert (
        is_duplicate(a2, [a], 0.95)
        and not is_duplicate(a2, [a], 0.99)
        and is_duplicate(a, [a], 1.0)
    )
    with pytest.raises(ValueError, match="origin"):
        build_candidates([("initial", [{"mask": a, "score": 1.0}])])


# -- settings ----------------------------------------------------------------------------------


def test_settings_defaults_round_trip_and_validation():
    s = Stage1Settings.for_backbone("sam")
    assert (s.k1, s.k2, s.tau, s.delta, s.top_n) == (50, 30, 0.8, -15.0, 9)
    assert (
        s.pred_iou_thresh,
        s.stability_score_thresh,
        s.stability_score_offset,
        s.box_nms_thresh,
    ) == (0.88, 0.9, 1.0, 0.7)
    assert s.layers == tuple(range(14, 31)) and s.heads is None and s.seed_policy == "one_per_token"
    assert s.dedupe_iou is None  # the paper has no de-duplication
    s2 = Stage1Settings.for_backbone("sam2")
    assert (s2.tau, s2.delta, s2.pred_iou_thresh, s2.stability_score_thresh, s2.layers) == (
        0.7,
        -10.0,
        0.8,
        0.88,
        (33,),
    )
    assert Stage1Settings() == s
    assert Stage1Settings.from_dict(s2.to_dict()) == s2
    assert Stage1Settings.for_backbone("sam", layers=[1, 2], heads=[0]).to_dict()["layers"] == [
        1,
        2,
    ]
    assert s.amg() == amg_settings(0.88, 0.9, 1.0, 0.7, 64)
    for bad in (
        {"k1": 5, "k2": 10},
        {"tau": 1.5},
        {"seed_policy": "x"},
        {"pred_iou_thresh": 2.0},
        {"top_n": -1},
        {"seeds_total": 3, "seed_policy": "proportional"},
        {"dedupe_iou": 0.0},
    ):
        with pytest.raises(ValueError):
            Stage1Settings(**bad)
    with pytest.raises(ValueError, match="unknown"):
        Stage1Settings.from_dict({"kappa": 1})
    with pytest.raises(ValueError, match="unknown"):
        Stage1Settings.for_backbone("sam", kappa=1)
    with pytest.raises(ValueError, match="backbone"):
        Stage1Settings.for_backbone("sam3")


def test_clip_token_geometry_pad_and_crop():
    from core.models.lisa import crop_grid_boxes, square_grid_boxes

    # pad: 80x60 centred on an 80x80 square (10 px top), 4x4 grid of 20 px cells
    pad = square_grid_boxes((60, 80), 4, (0, 10))
    assert pad[0].tolist() == [0, -10, 20, 10] and pad[15].tolist() == [60, 50, 80, 70]
    # crop: the central 60x60 square of an 80x60 image, 4x4 grid of 15 px cells starting at x = 10
    crop = crop_grid_boxes((60, 80), 4)
    assert crop[0].tolist() == [10, 0, 25, 15] and crop[15].tolist() == [55, 45, 70, 60]


def test_candidates_default_keeps_duplicates_and_dedupe_refills_amg_to_top_n():
    """3 + 3 + 9 (§5.1): without de-duplication (the paper's default) every mask stays; with it,
    duplicates go BEFORE the AMG cut and the AMG list is refilled up to top_n."""
    hw = (20, 20)

    def rect(i):
        m = np.zeros(hw, bool)
        m[i, :] = True
        return m

    multi = [{"mask": rect(i), "score": 0.9} for i in range(3)]
    sem = [{"mask": rect(i), "score": 0.8} for i in range(3)]  # the same three masks again
    amg = [
        {"mask": rect(i), "score": 0.7, "seed_index": i} for i in range(14)
    ]  # the first 3 duplicate
    groups = [("multimask", multi), ("semantic", sem), ("amg", amg)]
    plain = build_candidates(groups, caps={"amg": 9})
    assert [sum(c.origin == o for c in plain) for o in ("multimask", "semantic", "amg")] == [
        3,
        3,
        9,
    ]
    deduped = build_candidates(groups, dedupe_iou=0.95, caps={"amg": 9})
    assert [sum(c.origin == o for c in deduped) for o in ("multimask", "semantic", "amg")] == [
        3,
        0,
        9,
    ]
    assert [c.origin_rank for c in deduped if c.origin == "amg"] == list(range(3, 12))


def test_graph_nodes_are_distinct_tokens():
    from core.pipeline.semantic import graph_nodes

    assert graph_nodes([5, 5, 5, 7, 7, 9, 5]) == [0, 3, 5]
    assert graph_nodes([]) == []


def test_attention_renormalisation_and_layer_numbering_are_settings():
    from core.pipeline.seeds import aggregate_attention

    att = np.zeros((1, 2, 4))
    att[0, 0] = [0.4, 0.0, 0.0, 0.0]  # a head that looks mostly at text: 0.4 on the image
    att[0, 1] = [0.0, 0.1, 0.1, 0.0]
    raw = aggregate_attention(att, (2, 2))
    assert raw.ravel().tolist() == pytest.approx(
        [0.2, 0.05, 0.05, 0.0]
    )  # default: the weights as computed
    ren = aggregate_attention(att, (2, 2), renormalise=True)
    assert ren.ravel().tolist() == pytest.approx([0.5, 0.25, 0.25, 0.0])
    s = Stage1Settings.for_backbone("sam")
    assert not s.attention_renorm and s.layer_base == 0 and s.model_layers() == list(range(14, 31))
    assert Stage1Settings.for_backbone("sam", layer_base=1).model_layers() == list(range(13, 30))
    with pytest.raises(ValueError):
        Stage1Settings(layer_base=2)
    with pytest.raises(ValueError):
        Stage1Settings(layer_base=1, layers=(0, 1))
