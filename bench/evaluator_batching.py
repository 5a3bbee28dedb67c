"""All evaluator groups of a sample in one batched ``generate`` vs one ``generate`` per group.

Two models, both through :class:`core.evaluator.local_internvl.InternVLEvaluator`:

- ``tiny`` — the tiny random-init InternVL (built and loaded back through ``load_internvl``), CPU;
- ``8b-shaped`` — a random-init model with InternVL3-8B's shapes (InternViT-300M at 448 px,
  Qwen2.5-7B: 28 layers, hidden 3584, 28 heads / 4 KV heads, vocab 151 674; 256 image tokens per
  image), bfloat16, only when CUDA is available (skipped otherwise). ``--check-8b`` builds it on
  the meta device and prints its parameter count, without memory or a GPU.

Each sample has ``--groups`` groups of five masks (15 candidates = 3 groups, §5.1), decoding is
greedy with end-of-text disabled so both ways generate exactly ``--new-tokens`` tokens. Prints the
median time per sample of each way with its range over the runs, which alternate between the
ways (A/B/A/B), and the ratio per-group / batched with its range over the A/B pairs (> 1:
batching is faster).

    .venv/bin/python bench/evaluator_batching.py [--groups 3] [--new-tokens 32] [--repeats 5] [--check-8b]
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

from core.evaluator.local_internvl import InternVLEvaluator, load_internvl  # noqa: E402
from core.evaluator.tiny import build_tiny_internvl  # noqa: E402


def internvl3_8b_config(vocab_size: int = 151674, image_token_id: int = 151667):
    """InternVL3-8B's architecture (random init; no weights are read)."""
    from core.evaluator.tiny import internvl_config

    return internvl_config(
        vision={
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "image_size": [448, 448],
            "patch_size": [14, 14],
            "attention_bias": True,
        },
        text={
            "vocab_size": vocab_size,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "tie_word_embeddings": False,
        },
        image_token_id=image_token_id,
        image_seq_length=256,
        tie_word_embeddings=False,  # InternVL3-8B has a separate lm_head (≈ 7.94 B parameters)
    )


def build_8b_shaped(device: str) -> InternVLEvaluator:
    """Random InternVL3-8B-shaped model in bfloat16 with the tiny word tokenizer (ids fit the vocab)."""
    from transformers import (
        InternVLForConditionalGeneration,
    )

    from core.evaluator.tiny import internvl_processor, tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = internvl3_8b_config(image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"))
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = InternVLForConditionalGeneration(cfg)
    finally:
        torch.set_default_dtype(old)
    proc = internvl_processor(tok, 448, 256)
    model.generation_config.pad_token_id = tok.pad_token_id
    return InternVLEvaluator(model, proc, "internvl3-8b-shaped (random)", True, device)


def check_8b() -> None:
    with torch.device("meta"):
        from transformers import InternVLForConditionalGeneration

        model = InternVLForConditionalGeneration(internvl3_8b_config())
    n = sum(p.numel() for p in model.parameters())
    print(
        f"InternVL3-8B-shaped config: {n / 1e9:.3f} B parameters (meta device, nothing allocated)"
    )


def time_ways(
    ev: InternVLEvaluator, groups: int, new_tokens: int, repeats: int, sync
) -> tuple[list[float], list[float]]:
    """Seconds per sample of each way (batched, per group), ``repeats`` runs each, alternating
    A/B/A/B after one warm-up of each, so that a drift in load or clocks falls on both."""
    ev.max_new_tokens = new_tokens
    ev.model.generation_config.eos_token_id = None  # exactly new_tokens tokens both ways
    ev.model.generation_config.suppress_tokens = None
    rng = np.random.default_rng(0)
    img = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    masks = [[rng.random((480, 640)) > 0.5 for _ in range(5)] for _ in range(groups)]
    times: dict[bool, list[float]] = {True: [], False: []}
    for batched in (True, False):
        ev.batch_groups = batched
        ev.score_groups(img, "which object is on the left ?", masks, cot=False)  # warm-up
    for _ in range(repeats):
        for batched in (True, False):
            ev.batch_groups = batched
            sync()
            t = time.perf_counter()
            ev.score_groups(img, "which object is on the left ?", masks, cot=False)
            sync()
            times[batched].append(time.perf_counter() - t)
    return times[True], times[False]


def report(label: str, b: list[float], p: list[float], groups: int) -> None:
    mb, mp = float(np.median(b)), float(np.median(p))

    def spread(xs: list[float]) -> str:
        return f"{min(xs) * 1000:.0f}–{max(xs) * 1000:.0f}"

    ratios = [pp / bb for bb, pp in zip(b, p, strict=True)]  # per A/B pair
    print(
        f"{label}: {groups} groups of 5 masks per sample, {len(b)} A/B pairs — "
        f"batched {mb * 1000:.0f} ms/sample (range {spread(b)}), "
        f"one call per group {mp * 1000:.0f} ms/sample (range {spread(p)}); "
        f"ratio per-group/batched {mp / mb:.2f} (pairs {min(ratios):.2f}–{max(ratios):.2f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--groups", type=int, default=3, help="groups per sample (15 candidates / 5 = 3)"
    )
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per way (median reported)")
    ap.add_argument(
        "--check-8b", action="store_true", help="only print the 8B-shaped parameter count"
    )
    args = ap.parse_args()
    if args.check_8b:
        check_8b()
        return
    with tempfile.TemporaryDirectory() as d:
        build_tiny_internvl(Path(d) / "ivl")
        tiny = load_internvl(Path(d) / "ivl", device="cpu", is_random=True)
        b, p = time_ways(tiny, args.groups, args.new_tokens, args.repeats, lambda: None)
    report("tiny InternVL, CPU", b, p, args.groups)
    if not torch.cuda.is_available():
        print("8B-shaped InternVL: skipped (no CUDA device)")
        return
    ev = build_8b_shaped("cuda")
    b, p = time_ways(ev, args.groups, args.new_tokens, args.repeats, torch.cuda.synchronize)
    report(f"InternVL3-8B-shaped bf16, {torch.cuda.get_device_name()}", b, p, args.groups)
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
