from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics import MetricAccumulator, intersection_union, sample_iou


def _histc_reference(pred: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    """Independent oracle: the 2-class histogram formulation over a {0, 1, 255} label map."""
    out = torch.from_numpy(pred.astype(np.int64)).reshape(-1).float()
    tgt = torch.from_numpy(label.astype(np.int64)).reshape(-1).float()
    out[tgt == 255] = 255
    inter = out[out == tgt]
    ai = torch.histc(inter, bins=2, min=0, max=1)
    ao = torch.histc(out, bins=2, min=0, max=1)
    at = torch.histc(tgt, bins=2, min=0, max=1)
    return float(ai[1]), float((ao + at - ai)[1])


def test_known_answer_by_hand():
    gt = np.zeros((4, 4), bool)
    gt[0:2, 0:2] = True  # 4 px
    pred = np.zeros((4, 4), bool)
    pred[0:2, 1:3] = True  # 4 px, 2 overlap
    assert intersection_union(pred, gt) == (2, 6)
    ign = np.zeros((4, 4), bool)
    ign[:, 2] = True  # removes 2 predicted pixels
    assert intersection_union(pred, gt, ign) == (2, 4)
    assert intersection_union(pred, gt, ign, "background") == (2, 6)
    # per-sample IoU with LISA's epsilon, empty/empty counts 1.0
    assert sample_iou(2, 4) == pytest.approx(2 / (4 + 1e-5), abs=0)
    assert sample_iou(0, 0) == 1.0
    empty = np.zeros((4, 4), bool)
    assert sample_iou(*intersection_union(empty, gt)) == 0.0
    assert sample_iou(*intersection_union(pred, empty)) == 0.0


def test_giou_ciou_by_hand():
    gt1 = np.zeros((10, 10), bool)
    gt1[:5] = True  # 50
    p1 = np.zeros((10, 10), bool)
    p1[:, :5] = True  # 50, inter 25, union 75
    gt2 = np.zeros((10, 10), bool)
    gt2[0, 0] = True
    p2 = gt2.copy()  # inter 1 union 1
    acc = MetricAccumulator()
    acc.add(p1, gt1)
    acc.add(p2, gt2)
    r = acc.result()["overall"]
    g, c = r["giou"], r["ciou"]
    assert g == pytest.approx((25 / (75 + 1e-5) + 1 / (1 + 1e-5)) / 2, abs=1e-12)
    assert c == pytest.approx(26 / (76 + 1e-10), abs=1e-12)


def test_against_histogram_oracle_random():
    rng = np.random.default_rng(0)
    acc = MetricAccumulator()
    total_i = total_u = 0.0
    ious = []
    for _ in range(25):
        gt = rng.random((17, 23)) < rng.random()
        pred = rng.random((17, 23)) < rng.random()
        ign = rng.random((17, 23)) < 0.1
        label = gt.astype(np.uint8)
        label[ign] = 255
        i_ref, u_ref = _histc_reference(pred, label)
        assert intersection_union(pred, gt, ign) == (i_ref, u_ref)
        iou = acc.add(pred, gt, ign, "geometric" if len(ious) % 2 else "spatial")
        ref = i_ref / (u_ref + 1e-5) + (1.0 if u_ref == 0 else 0.0)
        assert iou == pytest.approx(ref, abs=1e-12)
        ious.append(ref)
        total_i += i_ref
        total_u += u_ref
    res = acc.result()
    assert res["overall"]["n"] == 25
    assert res["overall"]["giou"] == pytest.approx(np.mean(ious), abs=1e-12)
    assert res["overall"]["ciou"] == pytest.approx(total_i / (total_u + 1e-10), abs=1e-12)
    assert set(res["per_category"]) == {"geometric", "spatial"}
    assert res["per_category"]["spatial"]["n"] == 13


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        intersection_union(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_giou_lisa_average_divides_by_count_plus_eps():
    """LISA's AverageMeter.all_reduce: avg = sum / (count + 1e-5)."""
    from core.metrics import MetricAccumulator

    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[:1] = True
    for mode in ("mean", "lisa"):
        acc = MetricAccumulator(giou_average=mode)
        acc.add(a, a)
        acc.add(b, a)
        ious = [8 / (8 + 1e-5), 4 / (8 + 1e-5)]
        want = sum(ious) / (2 + 1e-5) if mode == "lisa" else sum(ious) / 2
        assert acc.result()["overall"]["giou"] == pytest.approx(want, rel=1e-12, abs=0)
    assert MetricAccumulator(giou_average="lisa").result()["overall"]["giou"] is None
