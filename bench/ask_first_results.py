"""How soon an ask shows something: the time from the start of an ask to each partial result
(:mod:`core.pipeline.partial`) as a fraction of the whole ask, measured in one run per preset.

The models are loaded before the clock starts (an ask in the app reuses them). The image is a
demo scene re-saved at 777×583; the question is not one of the demo's. Default presets:
``tiny-random-lisa`` + ``tiny-random`` (random weights) and ``mini-geometric`` for both (the
miniature's trained models); CPU.

    .venv/bin/python bench/ask_first_results.py [--preset P --evaluator E] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "resources" / "demo" / "images" / "scene00005.png"
QUESTION = "Which cylinder is the furthest from the camera?"
PAIRS = (("tiny-random-lisa", "tiny-random"), ("mini-geometric", "mini-geometric"))


def one(models, image, preset: str, evaluator: str) -> dict[str, float]:
    """Seconds from the start to the first result of each kind, and to the end."""
    from core.pipeline.ask import ask
    from core.pipeline.partial import partial_kind
    from core.pipeline.settings import Stage2Settings

    seg, ev = models.segmenter(preset), models.evaluator(evaluator)
    first: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_partial(item: object) -> None:
        first.setdefault(partial_kind(item), time.perf_counter() - t0)

    cot = evaluator != "mini-geometric"  # the miniature's evaluator is trained without it
    ask(
        image,
        QUESTION,
        seg,
        evaluator=ev,
        stage2=Stage2Settings(evaluator, cot=cot),
        partial=on_partial,
    )
    first["done"] = time.perf_counter() - t0
    return first


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset")
    ap.add_argument("--evaluator")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PIL import Image

    from core.pipeline.cache import ModelCache

    image = np.asarray(Image.open(SCENE).convert("RGB").resize((777, 583)))
    pairs = [(args.preset, args.evaluator)] if args.preset else PAIRS
    models = ModelCache(device="cpu")
    kinds = ("heatmap", "seeds", "core", "candidate", "stage1", "reasoning", "group", "done")
    print(
        f"{'presets':<34}" + "".join(f"{k:>10}" for k in kinds) + "   (median s; fraction of done)"
    )
    for preset, evaluator in pairs:
        one(models, image, preset, evaluator)  # warm-up: loads, first-call costs
        runs = [one(models, image, preset, evaluator) for _ in range(args.repeats)]
        med = {k: float(np.median([r.get(k, np.nan) for r in runs])) for k in kinds}
        label = f"{preset} + {evaluator}"
        print(f"{label:<34}" + "".join(f"{med[k]:>10.3f}" for k in kinds))
        print(f"{'':<34}" + "".join(f"{med[k] / med['done']:>10.2f}" for k in kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
