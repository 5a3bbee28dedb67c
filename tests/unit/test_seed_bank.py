"""The what-if seed bank (core.pipeline.tune_amg.SeedBank, core.pipeline.tune_prefill): each
seed's AMG decode kept once, so that a change of k1, k2, layers or heads decodes only new seeds,
and none after the bank is filled with every token's centre seed (§4.2)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.cancel import Cancelled
from core.pipeline.seeds import sample_seed_points, select_tokens
from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import run_stage1
from core.pipeline.tune import prepare_stage1, retune
from core.pipeline.tune_amg import SeedBank, decode_all
from core.pipeline.tune_prefill import bank_progress, centre_seeds, prefill_seed_bank
from tests.unit.test_pipeline_stage1 import HW, HandPromptModel, red_image, tiny_backend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sam", "sam2"])
def backend(request):
    return tiny_backend(request.param)


@pytest.fixture(scope="module")
def image():
    return red_image()


SEEDS = np.array(
    [[10, 10], [30, 25], [31, 26], [60, 40], [70, 50], [5, 55], [44, 12], [22, 47]], np.float32
)


def _settings(kind: str, **kw) -> Stage1Settings:
    base = {
        "layers": None,
        "k1": 10,
        "k2": 6,
        "seed_policy": "one_per_token",
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 0.9,
    }
    return Stage1Settings.for_backbone(kind, **{**base, **kw})


def _count_decodes(monkeypatch) -> dict[str, int]:
    import core.pipeline.tune_amg as tune_amg

    calls = {"passes": 0, "seeds": 0}
    real = tune_amg._batches

    def batches(sam, seeds, *a, **k):
        calls["passes"] += 1
        calls["seeds"] += len(seeds)
        return real(sam, seeds, *a, **k)

    monkeypatch.setattr(tune_amg, "_batches", batches)
    return calls


def close_traces(a, b) -> None:
    """Same seeds, graph and candidates (ids, origins, seed indices); masks and SAM scores equal
    up to the decoder's float rounding between batch sizes."""
    assert np.array_equal(a.seeds.seeds_xy, b.seeds.seeds_xy)
    assert a.graph.core_members == b.graph.core_members
    assert [(c.id, c.origin, c.origin_rank, c.seed_index) for c in a.candidates] == [
        (c.id, c.origin, c.origin_rank, c.seed_index) for c in b.candidates
    ]
    for x, y in zip(a.candidates, b.candidates, strict=True):
        assert abs(x.sam_score - y.sam_score) < 1e-5
        assert np.count_nonzero(x.mask != y.mask) <= 0.001 * x.mask.size


def test_a_set_decoded_in_one_go_equals_decode_all_exactly(backend, image):
    backend.set_image(image)
    bank = SeedBank(HW)
    assert bank.decode(backend, SEEDS, 1.0, 64) == len(SEEDS)
    held = bank.assemble(SEEDS, 1.0)
    masks, boxes = decode_all(backend, SEEDS, 1.0, 64)
    assert held is not None and len(held.iou) == len(masks) == 3 * len(SEEDS)
    assert held.iou.tolist() == [m.predicted_iou for m in masks]
    assert held.stability.tolist() == [m.stability for m in masks]
    assert held.seed_index.tolist() == [m.seed_index for m in masks]
    assert np.array_equal(held.boxes, boxes)
    assert all(np.array_equal(held.mask(i), m.mask) for i, m in enumerate(masks))
    assert bank.decode(backend, SEEDS[::-1], 1.0, 64) == 0  # nothing new
    assert bank.assemble(SEEDS, 2.0) is None  # another stability offset is another decode


def test_a_set_assembled_from_other_batches_differs_only_by_rounding(backend, image):
    backend.set_image(image)
    bank = SeedBank(HW)
    bank.decode(backend, SEEDS[[5, 1, 7]], 1.0, 2)  # other batches, other order
    bank.decode(backend, SEEDS, 1.0, 64)
    assert bank.decoded == len(SEEDS)  # each seed once
    held = bank.assemble(SEEDS, 1.0)
    masks, boxes = decode_all(backend, SEEDS, 1.0, 64)
    assert held.seed_index.tolist() == [m.seed_index for m in masks]
    assert np.allclose(held.iou, [m.predicted_iou for m in masks], atol=1e-6)
    assert np.allclose(held.stability, [m.stability for m in masks], atol=1e-3)
    diff = sum(np.count_nonzero(held.mask(i) != m.mask) for i, m in enumerate(masks))
    assert diff <= 0.001 * HW[0] * HW[1] * len(masks)


def test_centre_seeds_are_each_tokens_first_seed_most_attended_first(backend, image):
    s = _settings(backend.kind)
    cache = prepare_stage1(HandPromptModel(), backend, image, "q", s)
    seeds = centre_seeds(cache, s)
    tokens, _ = select_tokens(
        retune(cache, s).attention.token_map, cache.output.token_boxes_xyxy, cache.logits, 20, 20
    )
    # the patch centres of all 20 tokens (the last row's centres lie in its visible part),
    # strongest attention (token 7) first
    want, _ = sample_seed_points(
        tokens, np.ones(len(tokens), np.int64), HW, np.random.default_rng(1)
    )
    assert len(seeds) == 20 and np.array_equal(seeds, want[: len(seeds)])
    assert tuple(seeds[0]) == (7 + 2 * 16, 7 + 16)  # token 7 is row 1, col 2


def test_after_prefill_seed_moving_changes_decode_nothing_and_match_a_full_stage1(
    backend, image, monkeypatch
):
    pm = HandPromptModel()
    s = _settings(backend.kind)
    cache = prepare_stage1(pm, backend, image, "which part is red ?", s, preset="hand")
    done: list[tuple[int, int]] = []
    n = prefill_seed_bank(cache, s, chunk=5, progress=lambda a, b: done.append((a, b)))
    assert n == 20 and done == [(5, 20), (10, 20), (15, 20), (20, 20)]
    assert bank_progress(cache, s) == (20, 20)
    calls = _count_decodes(monkeypatch)
    changes = [{}, {"k2": 3}, {"k1": 5, "k2": 5}, {"k1": 16, "k2": 12}, {"heads": (1,)}]
    tuned = [retune(cache, replace(s, **ch)) for ch in changes]
    assert calls == {"passes": 0, "seeds": 0}  # every AMG mask came from the bank
    assert pm.calls == 1
    monkeypatch.undo()
    for ch, tr in zip(changes, tuned, strict=True):
        full = run_stage1(
            HandPromptModel(), backend, image, "which part is red ?", replace(s, **ch)
        )
        close_traces(tr, full)
    assert len(tuned[3].seeds.seeds_xy) == 12 != len(tuned[0].seeds.seeds_xy)


def test_prefill_stops_when_cancelled_and_keeps_what_it_decoded(backend, image):
    s = _settings(backend.kind)
    cache = prepare_stage1(HandPromptModel(), backend, image, "q", s)
    polls = iter([False, True])
    with pytest.raises(Cancelled, match="after 4 seeds"):
        prefill_seed_bank(cache, s, chunk=4, should_cancel=lambda: next(polls))
    assert bank_progress(cache, s) == (4, 20)
    held = cache.bank.missing(centre_seeds(cache, s), s.stability_score_offset)
    assert held == list(range(4, 20))  # the 4 most attended tokens were decoded first
    assert prefill_seed_bank(cache, s, max_seeds=2) == 2
    assert bank_progress(cache, s) == (6, 20)


def test_a_full_bank_evicts_the_oldest_and_retune_still_equals_stage1(backend, image):
    s = _settings(backend.kind, seed_policy="proportional", seeds_total=12)
    cache = prepare_stage1(HandPromptModel(), backend, image, "q", s)
    cache.bank = SeedBank(cache.hw, max_bytes=1)  # room for one seed only
    for ch in ({}, {"k2": 4}):
        tr = retune(cache, replace(s, **ch))
        full = run_stage1(HandPromptModel(), backend, image, "q", replace(s, **ch))
        close_traces(tr, full)
        assert len(cache.bank) == 1 and cache.bank.nbytes > cache.bank.max_bytes
    assert prefill_seed_bank(cache, s) <= 1  # stops at once: the bank is full


def test_a_cache_without_bank_decodes_every_seed_set_whole(backend, image, monkeypatch):
    s = _settings(backend.kind)
    cache = prepare_stage1(HandPromptModel(), backend, image, "q", s)
    cache.use_seed_bank = False
    assert cache.seed_bank() is None and prefill_seed_bank(cache, s) == 0
    retune(cache, s)
    calls = _count_decodes(monkeypatch)
    retune(cache, replace(s, k2=3))
    assert calls == {"passes": 1, "seeds": 3}


@pytest.mark.parametrize("lib", ["segment_anything", "sam2"])
def test_stability_scores_and_boxes_equal_the_libraries_own(lib):
    import importlib

    import torch

    from core.pipeline.tune_amg import mask_boxes, stability_scores

    amg = importlib.import_module(f"{lib}.utils.amg")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 33, 47, generator=g) * 3
    logits[1] = -5.0  # empty at every threshold: 0 / 0
    logits[2] = 5.0  # full
    logits[3, 10:12, 40:47] = 9.0  # one small blob on a low background
    logits[3][logits[3] < 9] = -9.0
    for threshold, offset in ((0.0, 1.0), (0.0, 0.0), (0.5, 2.5), (-1.0, 0.25)):
        want = amg.calculate_stability_score(logits, threshold, offset).numpy()
        got = stability_scores(logits, threshold, offset)
        assert got.dtype == np.float32 and np.array_equal(got, want, equal_nan=True)
        binary = logits > threshold
        want_box = amg.batched_mask_to_box(binary).float().numpy()
        assert np.array_equal(mask_boxes(binary.numpy()), want_box)
    assert np.array_equal(mask_boxes(np.zeros((0, 4, 5), bool)), np.zeros((0, 4), np.float32))


def test_with_the_bank_every_change_equals_a_full_stage1_up_to_rounding(backend, image):
    """The what-if changes of the exact test in test_pipeline_tune, one after the other on one
    cache with its bank on (the app's way): seeds come from earlier decodes."""
    from tests.unit.test_pipeline_tune import CHANGES
    from tests.unit.test_pipeline_tune import _settings as tune_settings

    s = tune_settings(backend.kind)
    cache = prepare_stage1(HandPromptModel(), backend, image, "which part is red ?", s)
    for ch in CHANGES:
        tr = retune(cache, replace(s, **ch))
        full = run_stage1(
            HandPromptModel(), backend, image, "which part is red ?", replace(s, **ch)
        )
        close_traces(tr, full)
    assert cache.bank.decoded < sum(
        len(retune(cache, replace(s, **ch)).seeds.seeds_xy) for ch in CHANGES
    )
