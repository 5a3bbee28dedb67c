"""What an ask that keeps its stage-1 cache costs, and what the What-if tab's Prepare saves by
adopting it: seconds and ratios measured in one run per preset (median of ``--repeats``).

- ``ask``: stage 1 by ``run_stage1`` (an ask that keeps nothing);
- ``ask+cache``: stage 1 as ``prepare_stage1`` + ``retune`` with ``stage1_cache=`` (the app's
  Ask bar when the segmenter stays loaded; the attention of every layer is kept);
- ``prepare``: the What-if Prepare without an ask's cache (``prepare_stage1`` + ``retune``);
- ``adopt``: Prepare after the ask (``retune`` on the ask's cache: no MLLM forward, no SAM
  embedding).

The models are loaded before the clock starts; no evaluator (stage 1 only); CPU.

    .venv/bin/python bench/ask_whatif_reuse.py [--preset P] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "resources" / "demo" / "images" / "scene00005.png"
QUESTION = "Which cylinder is the furthest from the camera?"
PRESETS = ("tiny-random-lisa", "mini-geometric")


def one(seg, image, settings) -> dict[str, float]:
    from core.pipeline.ask import ask
    from core.pipeline.tune import prepare_stage1, retune

    out: dict[str, float] = {}
    t = time.perf_counter()
    ask(image, QUESTION, seg, settings)
    out["ask"] = time.perf_counter() - t
    kept: list = []
    t = time.perf_counter()
    ask(image, QUESTION, seg, settings, stage1_cache=kept.append)
    out["ask+cache"] = time.perf_counter() - t
    t = time.perf_counter()
    cache = prepare_stage1(seg.prompt_model, seg.sam, image, QUESTION, settings, preset=seg.preset)
    retune(cache, settings)
    out["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    retune(kept[0], settings)
    out["adopt"] = time.perf_counter() - t
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PIL import Image

    from core.models.config import preset_stage1
    from core.pipeline.cache import ModelCache
    from core.pipeline.settings import run_defaults

    image = np.asarray(Image.open(SCENE).convert("RGB").resize((777, 583)))
    models = ModelCache(device="cpu")
    keys = ("ask", "ask+cache", "prepare", "adopt")
    print(f"{'preset':<20}" + "".join(f"{k:>11}" for k in keys) + "   cache/ask  adopt/prepare")
    for preset in [args.preset] if args.preset else PRESETS:
        seg = models.segmenter(preset)
        s = run_defaults(str(seg.sam.kind), bool(seg.is_random), **preset_stage1(seg.preset))
        one(seg, image, s)  # warm-up: first-call costs
        runs = [one(seg, image, s) for _ in range(args.repeats)]
        med = {k: float(np.median([r[k] for r in runs])) for k in keys}
        print(
            f"{preset:<20}"
            + "".join(f"{med[k]:>11.3f}" for k in keys)
            + f"{med['ask+cache'] / med['ask']:>12.2f}{med['adopt'] / med['prepare']:>15.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
