"""Stage-1 what-if speed: a re-tune from the cache vs a full stage 1 on the same sample, and the
time to the first heatmap vs a full stage 1 (tiny models, CPU by default).

On one image and question, in one process, alternating so that load drifts hit every row alike:

- ``full``: :func:`core.pipeline.stage1.run_stage1` with the SAM embedding forgotten first (MLLM
  forward, SAM encoder, every step). ``heatmap``: within the same call, the time until the MLLM
  forward has returned (the prompt token's attention, what the heatmap draws, is known then).
- ``cold re-tune``: :func:`core.pipeline.tune.retune` with its step memo and seed bank emptied
  (a seed set of which nothing is decoded yet: the first re-tune after Prepare).
- ``prefill``: :func:`core.pipeline.tune_prefill.prefill_seed_bank` into an empty bank (every
  token's centre seed decoded; the app does it in the background after Prepare).
- ``retune, <setting>``: one setting changed from the run's settings, with the seed bank full
  and the step memo holding only the base settings' steps (so the changed steps really run):
  k2 and k1 (new top-k tokens, seeds from the bank), layers (another cached layer: new
  attention, new tokens), τ (the semantic decode), an AMG filter (re-filter), N (the merge).

Prints the median seconds of each (with min–max) and its ratio to the median full stage 1.
Targets: every ``retune, …`` row ≤ 0.1 of a full stage 1. Settings are what a run of the preset
uses (:func:`core.pipeline.settings.run_defaults`); ``--paper`` uses the paper's k1 = 50, k2 = 30
with open AMG filters instead (more seeds: a longer AMG).

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
    from core.pipeline.tune_prefill import centre_seeds, prefill_seed_bank

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
    other_layers = (
        tuple(cache.cached_layers[:1])
        if cache.cached_layers[:1] != list(s.layers or cache.default_layers)
        else tuple(cache.cached_layers[-1:])
    )

    def cold() -> float:
        """Nothing decoded: the step memo and the seed bank emptied, then the base settings."""
        cache.forget()
        t0 = time.perf_counter()
        retune(cache, s)
        return time.perf_counter() - t0

    def prefill() -> float:
        """Every token's centre seed decoded into an empty bank."""
        cache.forget()
        t0 = time.perf_counter()
        prefill_seed_bank(cache, s)
        return time.perf_counter() - t0

    def timed(settings) -> float:
        """One change from the base settings, its steps not memoised (the bank stays full)."""
        cache.memo.clear()
        retune(cache, s)  # the memo holds the base settings' steps only
        t0 = time.perf_counter()
        retune(cache, settings)
        return time.perf_counter() - t0

    changes = {
        "retune, k2": replace(s, k2=max(1, s.k2 - 2)),
        "retune, k1": replace(s, k1=max(s.k2, s.k1 - 3)),
        "retune, layers": replace(s, layers=other_layers),
        "retune, tau": replace(s, tau=s.tau - 0.15),
        "retune, AMG filter": replace(s, pred_iou_thresh=min(1.0, s.pred_iou_thresh + 0.1)),
        "retune, N": replace(s, top_n=max(0, s.top_n - 3)),
    }
    rows: dict[str, list[float]] = {
        k: [] for k in ("full", "heatmap", "cold re-tune", "prefill", *changes)
    }
    for _ in range(args.repeats):
        f, hm = full()
        rows["full"].append(f)
        rows["heatmap"].append(hm)
        rows["cold re-tune"].append(cold())
        rows["prefill"].append(prefill())
        for name, changed in changes.items():
            rows[name].append(timed(changed))

    base = statistics.median(rows["full"])
    print(
        f"preset {seg.preset} on {args.device}, image {image.shape[1]}x{image.shape[0]}, "
        f"k1={s.k1} k2={s.k2} seeds={'k2' if s.seed_policy == 'one_per_token' else s.seeds_total}"
        f", {args.repeats} repeats; torch threads {torch.get_num_threads()}"
    )
    bank = cache.seed_bank()
    print(
        f"seed bank: {len(centre_seeds(cache, s))} token centre seeds, "
        f"{(bank.nbytes if bank is not None else 0) / 2**20:.1f} MiB when full"
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
