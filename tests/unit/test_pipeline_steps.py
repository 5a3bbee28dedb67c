"""Known-answer tests for each stage-1 step on hand-made arrays (§4.2)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from core.pipeline.candidates import build_candidates
from core.pipeline.seeds import (
    aggregate_attention,
    allocate_seeds,
    sample_seed_points,
    select_tokens,
)
from core.pipeline.semantic import cosine_graph, densest_core, negative_point, sample_features
from core.pipeline.settings import Stage1Settings


def _boxes(gh, gw, cell):
    ys, xs = np.mgrid[0:gh, 0:gw]
    x0, y0 = xs.ravel() * cell, ys.ravel() * cell
    return np.stack([x0, y0, x0 + cell, y0 + cell], 1).astype(np.float32)


def test_aggregate_attention_means_layers_and_heads():
    att = np.zeros((2, 2, 4))
    att[0, 0] = [1, 0, 0, 0]
    att[1, 1] = [0, 0, 0, 4]
    assert np.allclose(aggregate_attention(att, (2, 2)), [[0.25, 0], [0, 1.0]])
    assert np.allclose(aggregate_attention(att, (2, 2), [1], [1]), [[0, 0], [0, 4]])
    with pytest.raises(ValueError, match="grid"):
        aggregate_attention(att, (3, 3))


def test_topk1_then_logit_rerank_order():
    tm = np.array([[0.9, 0.1, 0.8], [0.7, 0.85, 0.2]], np.float32)  # 2x3 tokens of 10 px
    L = np.full((20, 30), -5.0, np.float32)
    L[10:20, 0:10] = 3.0  # token 3 (row 1, col 0)
    L[0:10, 20:30] = 1.0  # token 2
    L[10:20, 10:20] = -1.0  # token 4
    top1, top2 = select_tokens(tm, _boxes(2, 3, 10), L, k1=4, k2=2)
    assert [t.index for t in top1] == [0, 4, 2, 3]  # attention order
    assert [t.index for t in top2] == [3, 2]  # logit order
    assert top2[0].mean_logit == 3.0 and (top2[0].row, top2[0].col) == (1, 0)
    # ties: equal attention keeps the lower index first
    t1, _ = select_tokens(np.ones((1, 3), np.float32), _boxes(1, 3, 10), L[:10], k1=3, k2=1)
    assert [t.index for t in t1] == [0, 1, 2]


def test_seed_allocation_proportional_with_minimum_one():
    assert allocate_seeds(np.array([0.6, 0.3, 0.1]), 3).tolist() == [1, 1, 1]
    c = allocate_seeds(np.array([0.6, 0.3, 0.1]), 13)  # 10 extra: 6, 3, 1
    assert c.tolist() == [7, 4, 2] and c.sum() == 13
    c = allocate_seeds(np.array([0.5, 0.25, 0.25]), 5)  # 2 extra: 1, .5, .5 → tie to the earlier
    assert c.tolist() == [2, 2, 1]
    c = allocate_seeds(np.array([0.0, 0.0]), 4)
    assert c.tolist() == [2, 2]


def test_seed_points_lie_inside_their_patches():
    tm = np.arange(12, dtype=np.float32).reshape(3, 4)
    _, top2 = select_tokens(tm, _boxes(3, 4, 8), np.zeros((24, 32), np.float32), k1=5, k2=3)
    counts = allocate_seeds(np.array([t.attention for t in top2]), 12)
    pts, owner = sample_seed_points(top2, counts, (24, 32), np.random.default_rng(0))
    assert len(pts) == 12 and len(owner) == 12
    boxes = _boxes(3, 4, 8)
    for (x, y), tok in zip(pts, owner, strict=True):
        x0, y0, x1, y1 = boxes[tok]
        assert x0 <= x <= x1 and y0 <= y <= y1
    # equal logits: the rerank keeps the lower token indices (7, 8, 9); the first seed of each
    # token is its patch centre (token 7 = row 1, col 3)
    assert [t.index for t in top2] == [7, 8, 9]
    assert tuple(pts[0]) == (28.0, 12.0)


def test_bilinear_feature_sampling_by_hand():
    f = np.zeros((1, 2, 2), np.float32)
    f[0] = [[0.0, 1.0], [2.0, 3.0]]  # cell centres at (0.5, 0.5), (1.5, 0.5), ...
    # scale 0.5 cell/px: pixel (2, 2) -> (1, 1) in cells, halfway between all four centres
    got = sample_features(f, np.array([[2.0, 2.0], [1.0, 1.0], [3.0, 1.0], [100, 100]]), (0.5, 0.5))
    assert got[:, 0] == pytest.approx([1.5, 0.0, 1.0, 3.0])


def test_cosine_graph_and_kcore_against_networkx():
    feats = np.array([[1, 0], [0.99, 0.1], [0.98, -0.1], [0.97, 0.05], [0, 1], [0.1, 0.99]], np.float32)
    edges = cosine_graph(feats, 0.9)
    assert (0, 1) in [(i, j) for i, j, _ in edges] and (4, 5) in [(i, j) for i, j, _ in edges]
    assert all(i < j and s > 0.9 for i, j, s in edges)
    k, core = densest_core(6, edges)
    g = nx.Graph()
    g.add_nodes_from(range(6))
    g.add_edges_from((i, j) for i, j, _ in edges)
    ref = nx.k_core(g)  # networkx's own densest core
    assert core == sorted(ref.nodes) == [0, 1, 2, 3] and k == 3
    # no edges: the seed with the highest attention alone
    assert densest_core(3, [], np.array([0.1, 0.9, 0.3])) == (0, [1])


def test_negative_point_rule_and_fallback():
    L = np.array([[-20.0, -16.0, 5.0], [-15.5, 0.0, -30.0]], np.float32)
    (x, y), val, fb = negative_point(L, -15.0)
    assert (x, y, val, fb) == (0.5, 1.5, -15.5, False)  # the largest logit below delta
    (x, y), val, fb = negative_point(np.array([[1.0, -2.0], [0.0, 3.0]]), -15.0)
    assert (x, y, val, fb) == (1.5, 0.5, -2.0, True)  # none below delta: argmin L


def test_candidates_dedupe_order_and_empty():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    a2 = a.copy()
    a2[5, 0] = True  # IoU 50/51 ≈ 0.98 with a
    b = np.zeros((10, 10), bool)
    b[:, :3] = True
    c = build_candidates(
        [("multimask", [{"mask": a, "score": 0.9}, {"mask": np.zeros((10, 10), bool), "score": 0.1}]),
         ("semantic", [{"mask": a2, "score": 0.8}]),
         ("amg", [{"mask": b, "score": 0.7, "stability": 0.95, "seed_index": 4}])],
        dedupe_iou=0.95,
    )
    assert [(x.id, x.origin, x.origin_rank) for x in c] == [(0, "multimask", 0), (1, "amg", 0)]
    assert c[1].seed_index == 4 and c[1].area == 30 and c[1].box_xyxy == (0, 0, 3, 10)


def test_settings_defaults_and_validation():
    s = Stage1Settings.for_backbone("sam")
    assert (s.k1, s.k2, s.tau, s.delta, s.pred_iou_thresh, s.stability_score_thresh, s.top_n) == (50, 30, 0.8, -15.0, 0.88, 0.9, 9)
    assert s.layers == tuple(range(14, 31))
    s2 = Stage1Settings.for_backbone("sam2")
    assert (s2.tau, s2.delta, s2.pred_iou_thresh, s2.stability_score_thresh, s2.layers) == (0.7, -10.0, 0.8, 0.88, (33,))
    assert Stage1Settings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        Stage1Settings(k1=5, k2=10)
    with pytest.raises(ValueError, match="unknown"):
        Stage1Settings.from_dict({"kappa": 1})


def test_clip_token_geometry_pad_and_crop():
    from core.models.lisa import crop_grid_boxes, square_grid_boxes

    # pad: 80x60 centred on an 80x80 square (10 px top), 4x4 grid of 20 px cells
    pad = square_grid_boxes((60, 80), 4, (0, 10))
    assert pad[0].tolist() == [0, -10, 20, 10] and pad[15].tolist() == [60, 50, 80, 70]
    # crop: the central 60x60 square of an 80x60 image, 4x4 grid of 15 px cells starting at x = 10
    crop = crop_grid_boxes((60, 80), 4)
    assert crop[0].tolist() == [10, 0, 25, 15] and crop[15].tolist() == [55, 45, 70, 60]
