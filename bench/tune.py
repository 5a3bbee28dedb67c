"""Stage-1 what-if speed: a re-tune from the cache vs a full stage 1 on the same sample, and the
time to the first heatmap vs a full stage 1 (tiny models, CPU by default).

On one image and question, in one process, alternating so that load drifts hit every row alike:

- ``full``: :func:`core.pipeline.stage1.run_stage1` with the SAM embedding forgotten first (MLLM
  forward, SAM encoder, every step). ``heatmap``: within the same call, the time until the MLLM
  forward has returned (the prompt token's attention, what the heatmap draws, is known then).
- ``retune, all steps``: :func:`core.pipeline.tune.retune` with its step memo cleared — what any
  change of k1, k2, the seed policy or the layers costs (seeds, AMG, k-core, merge);
- ``retune, tau``: only τ changed (the semantic decode and the merge);
- ``retune, AMG filter``: only the predicted-IoU threshold changed (the AMG and the merge);
- ``retune, N``: only N changed (the merge).

Prints the median seconds of each (with min–max) and its ratio to the median full stage 1.
Targets: every re-tune ≤ 0.1 of a full stage 1. Settings are what a run of the preset uses
(:func:`core.pipeline.settings.run_defaults`); ``--paper`` uses the paper's k1 = 50, k2 = 30 with
open AMG filters instead (more seeds: a longer AMG).

    OMP_NUM_THREADS=1 .venv/bin/python bench/tune.py [--preset tiny-random-lisa] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scene(h: int = 480, w: int = 640) -> np.ndarray:
    """A synthetic photo-sized image: noise with three flat shapes."""
    img = (np.random.default_rng(0).random((h, w, 3)) * 80).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    img[(yy - 200) ** 2 + (xx - 200) ** 2 < 90**2] = (220, 40, 40)
    img[300:420, 380:600] = (40, 200, 60)
    img[60:160, 420:520] = (30, 60, 210)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny-random-lisa")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--paper", action="store_true", help="k1 = 50, k2 = 30, open AMG filters")
    args = ap.parse_args(argv)

    import torch

    from core.models.config import preset_stage1
    from core.pipeline.cache import ModelCache
    from core.pipeline.settings import run_defaults
    from core.pipeline.stage1 import run_stage1
    from core.pipeline.tune import prepare_stage1, retune

    torch.manual_seed(0)
    seg = ModelCache(device=args.device).segmenter(args.preset)
    pm, sam = seg.prompt_model, seg.sam
    s = run_defaults(str(sam.kind), bool(seg.is_random), **preset_stage1(seg.preset))
    if args.paper:
        s = replace(s, k1=50, k2=30, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    image, question = scene(), "the red round thing on the left"

    def full() -> tuple[float, float]:
        sam.reset_image()
        marks: dict[str, float] = {}
        t0 = time.perf_counter()
        run_stage1(
            pm,
            sam,
            image,
            question,
            s,
            progress=lambda step, _f: marks.setdefault(step, time.perf_counter()),
        )
        return time.perf_counter() - t0, marks["sam_embed"] - t0

    sam.reset_image()
    cache = prepare_stage1(pm, sam, image, question, s, preset=seg.preset)
    retune(cache, s)  # warm
    full()  # warm

    def timed(settings, clear: bool) -> float:
        if clear:
            cache.memo.clear()
        else:
            retune(cache, s)  # the memo holds the base settings' steps
        t0 = time.perf_counter()
        retune(cache, settings)
        return time.perf_counter() - t0

    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "full",
            "heatmap",
            "retune, all steps",
            "retune, tau",
            "retune, AMG filter",
            "retune, N",
        )
    }
    for _ in range(args.repeats):
        f, hm = full()
        rows["full"].append(f)
        rows["heatmap"].append(hm)
        rows["retune, all steps"].append(timed(s, True))
        rows["retune, tau"].append(timed(replace(s, tau=s.tau - 0.15), False))
        rows["retune, AMG filter"].append(
            timed(replace(s, pred_iou_thresh=min(1.0, s.pred_iou_thresh + 0.1)), False)
        )
        rows["retune, N"].append(timed(replace(s, top_n=max(0, s.top_n - 3)), False))

    base = statistics.median(rows["full"])
    print(
        f"preset {seg.preset} on {args.device}, image {image.shape[1]}x{image.shape[0]}, "
        f"k1={s.k1} k2={s.k2} seeds={'k2' if s.seed_policy == 'one_per_token' else s.seeds_total}"
        f", {args.repeats} repeats; torch threads {torch.get_num_threads()}"
    )
    print(f"{'row':<22}{'median s':>10}{'min':>9}{'max':>9}{'/ full':>9}{'target':>8}")
    for name, vals in rows.items():
        med = statistics.median(vals)
        target = "≤ 0.1" if name.startswith("retune") else ""
        print(
            f"{name:<22}{med:>10.4f}{min(vals):>9.4f}{max(vals):>9.4f}{med / base:>9.3f}{target:>8}"
        )
    ok = all(statistics.median(v) / base <= 0.1 for k, v in rows.items() if k.startswith("retune"))
    print("all re-tunes within 0.1 of a full stage 1" if ok else "a re-tune is over 0.1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
