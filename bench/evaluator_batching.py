"""All evaluator groups of a sample in one batched ``generate`` vs one call per group.

Uses the tiny random-init InternVL on CPU (and, when CUDA is present, the same tiny model on
the GPU). Prints the time per sample of each way and the ratio (per-group / batched).

    .venv/bin/python bench/evaluator_batching.py [--groups 3] [--new-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.evaluator.local_internvl import load_internvl  # noqa: E402
from core.evaluator.tiny import build_tiny_internvl  # noqa: E402


def run(device: str, groups: int, new_tokens: int, repeats: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        build_tiny_internvl(Path(d) / "ivl")
        ev = load_internvl(Path(d) / "ivl", device=device, is_random=True, max_new_tokens=new_tokens)
    # force exactly new_tokens of generation so both ways do the same work
    ev.model.generation_config.eos_token_id = None
    img = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    masks = [[np.random.default_rng(i * 10 + j).random((480, 640)) > 0.5 for j in range(5)] for i in range(groups)]
    times = {}
    for batched in (True, False):
        ev.batch_groups = batched
        ev.score_groups(img, "which object ?", masks, cot=False)  # warm-up
        t = time.perf_counter()
        for _ in range(repeats):
            ev.score_groups(img, "which object ?", masks, cot=False)
        if device == "cuda":
            torch.cuda.synchronize()
        times[batched] = (time.perf_counter() - t) / repeats
    return times[True], times[False]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=3, help="groups per sample (15 candidates / 5 = 3)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        b, p = run(dev, args.groups, args.new_tokens, args.repeats)
        print(f"{dev}: batched {b * 1000:.0f} ms/sample, per group {p * 1000:.0f} ms/sample, per-group/batched ratio {p / b:.2f}")


if __name__ == "__main__":
    main()
