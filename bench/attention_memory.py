"""Peak memory of the lean attention-row capture vs eager ``output_attentions=True`` (§4.1–4.2).

A small random Llama (or Qwen2) language model runs one forward pass over ``T = image tokens +
40 text tokens`` and we ask for the last position's attention row at every layer, three ways,
each in a fresh process:

- ``sdpa``:  the plain SDPA forward, no attention requested (the baseline);
- ``lean``:  the same SDPA forward inside :class:`core.models.attention.AttentionRowCapture`;
- ``eager``: ``attn_implementation="eager"`` + ``output_attentions=True`` (what one would
  otherwise do), keeping every layer's (heads × T × T) matrix.

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, else the growth of the process's
peak resident set (``ru_maxrss``) during the forward pass. The table gives each method's extra
peak over the baseline and eager/lean. Defaults run in well under 2 minutes on 2 CPU cores.

    .venv/bin/python bench/attention_memory.py [--tokens 64 256 576 1024 2304] [--layers 8]
        [--hidden 256] [--arch llama|qwen2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENS = 40

CHILD = r"""
import json, resource, sys, time, torch
sys.path.insert(0, sys.argv[1])
from core.models.attention import AttentionRowCapture, decoder_layers
mode, T, layers, hidden, arch = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
if arch == "qwen2":
    from transformers import Qwen2Config as Cfg, Qwen2ForCausalLM as Model
else:
    from transformers import LlamaConfig as Cfg, LlamaForCausalLM as Model
cfg = Cfg(vocab_size=1000, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
          num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=T + 8)
model = Model._from_config(cfg, attn_implementation="eager" if mode == "eager" else "sdpa").to(dev).eval()
ids = torch.randint(0, 1000, (1, T), device=dev)
body = model.model  # no lm_head: the adapters read hidden states, not logits
if dev == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
base = torch.cuda.max_memory_allocated() if dev == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
with torch.inference_mode():
    if mode == "eager":
        out = body(input_ids=ids, output_attentions=True)
        rows = torch.stack([a[0, :, T - 1] for a in out.attentions])
    elif mode == "lean":
        with AttentionRowCapture(decoder_layers(model), list(range(layers)), T - 1) as cap:
            body(input_ids=ids)
        rows = cap.rows()
    else:
        body(input_ids=ids)
if dev == "cuda":
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"extra": peak - base, "seconds": time.perf_counter() - t0, "device": dev}))
"""


def measure(mode: str, tokens: int, layers: int, hidden: int, arch: str) -> dict:
    """One forward pass in a fresh process; ``{"extra": bytes, "seconds": s, "device": str}``."""
    # large blocks straight from mmap and back on free, so peak RSS follows peak allocation
    env = {
        **os.environ,
        "MALLOC_MMAP_THRESHOLD_": "131072",
        "MALLOC_TRIM_THRESHOLD_": "131072",
        "MALLOC_ARENA_MAX": "2",
    }
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), mode, str(tokens), str(layers), str(hidden), arch],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-1500:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tokens", type=int, nargs="+", default=[64, 256, 576, 1024, 2304], help="image tokens"
    )
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--arch", choices=["llama", "qwen2"], default="llama")
    args = ap.parse_args()
    t_start = time.perf_counter()
    mib = 1024 * 1024
    print(
        f"{args.arch}: {args.layers} layers, hidden {args.hidden}, 8 heads (4 kv), rows of the last token at "
        f"all layers; T = image tokens + {TEXT_TOKENS}"
    )
    print(
        f"{'image tok':>10}{'T':>7}{'sdpa MiB':>11}{'lean +MiB':>11}{'eager +MiB':>12}{'eager/lean':>12}"
        f"{'T²·H·L MiB':>12}"
    )
    dev = "?"
    for n in args.tokens:
        t = n + TEXT_TOKENS
        base = measure("sdpa", t, args.layers, args.hidden, args.arch)
        lean = measure("lean", t, args.layers, args.hidden, args.arch)
        eager = measure("eager", t, args.layers, args.hidden, args.arch)
        dev = base["device"]
        extra_lean = max(lean["extra"] - base["extra"], 0)
        extra_eager = max(eager["extra"] - base["extra"], 0)
        ratio = extra_eager / max(extra_lean, mib / 8)  # an extra under 1/8 MiB counts as 1/8 MiB
        full = t * t * 8 * args.layers * 4 / mib  # float32 attention maps eager must keep
        print(
            f"{n:>10}{t:>7}{base['extra'] / mib:>11.1f}{extra_lean / mib:>11.1f}{extra_eager / mib:>12.1f}"
            f"{ratio:>12.1f}{full:>12.1f}"
        )
    print(
        f"device: {dev}; extra = peak above the plain SDPA forward ({'cuda max_memory_allocated' if dev == 'cuda' else 'peak RSS growth'}); "
        f"T²·H·L = the full attention maps eager returns; total {time.perf_counter() - t_start:.0f} s"
    )


if __name__ == "__main__":
    main()
