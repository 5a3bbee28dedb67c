"""The stored-candidate ablation of the oracle equals re-running stage 1 with that origin
disabled (``Stage1Settings.disabled_origins``), on tiny SAM / SAM2 with a hand-made prompt model."""

from __future__ import annotations

import numpy as np
import pytest

from core.analytics import failures
from core.analytics.records import sample_record
from core.models.base import PromptModelOutput
from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import run_stage1

pytestmark = pytest.mark.slow

HW, GRID = (60, 80), (4, 5)


class PeakedPromptModel:
    """Fixed attention peaked on a few tokens, a fixed prompt embedding."""

    name = "hand"
    is_random = True

    def encode(self, image_rgb, question, layers=None) -> PromptModelOutput:
        gh, gw = GRID
        ys, xs = np.mgrid[0:gh, 0:gw]
        boxes = np.stack(
            [xs.ravel() * 16, ys.ravel() * 16, xs.ravel() * 16 + 16, ys.ravel() * 16 + 16], 1
        ).astype(np.float32)
        base = np.linspace(0.01, 0.02, gh * gw)
        base[[7, 12, 2, 13]] = [0.5, 0.3, 0.2, 0.1]
        att = np.stack([np.stack([base] * 2)] * 2).astype(np.float32)
        emb = np.random.default_rng(11).standard_normal((1, 256)).astype(np.float32)
        return PromptModelOutput(emb, att, [0, 1], GRID, boxes, "[SEG]", "[SEG]")


@pytest.fixture(scope="module", params=["sam", "sam2"])
def backend(request):
    from core.models.sam_backend import Sam2Backend, SamV1Backend
    from core.models.tiny_sam import build_tiny_sam, build_tiny_sam2

    if request.param == "sam":
        return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)
    return Sam2Backend(build_tiny_sam2(), name="sam2-tiny", is_random=True)


def test_disabled_origin_is_left_out_and_validated():
    assert Stage1Settings.from_dict({"disabled_origins": ["amg"]}).disabled_origins == ("amg",)
    with pytest.raises(ValueError, match="unknown origin"):
        Stage1Settings(disabled_origins=("concepts",))


def test_stored_ablation_oracle_equals_a_rerun_without_the_origin(backend):
    image = (np.random.default_rng(0).random((*HW, 3)) * 255).astype(np.uint8)
    image[20:40, 25:60] = (240, 30, 30)
    gt = np.zeros(HW, dtype=bool)
    gt[20:40, 25:60] = True
    base = Stage1Settings.for_backbone(
        backend.kind,
        layers=None,
        k1=8,
        k2=4,
        seeds_total=10,
        seed_policy="proportional",
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        box_nms_thresh=0.9,
    )
    model = PeakedPromptModel()
    full = sample_record(run_stage1(model, backend, image, "q", base), gt, None, "other")
    assert {c.origin for c in full.candidates} == set(failures.ORIGINS)  # every origin present
    for origin in failures.ORIGINS:
        s = Stage1Settings.from_dict({**base.to_dict(), "disabled_origins": [origin]})
        tr = run_stage1(model, backend, image, "q", s)
        assert origin not in {c.origin for c in tr.candidates}
        rerun = sample_record(tr, gt, None, "other")
        stored = failures.without_origin(full, origin)
        assert stored["oracle"] == rerun.counts["oracle"], origin
        # without stage 2 the ranking is stage-1 order, so top-1 agrees too
        assert stored["top1"] == rerun.counts["top1"], origin
