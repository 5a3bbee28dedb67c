"""Peak memory of the lean attention-row capture vs eager ``output_attentions=True``.

For growing sequence lengths (image tokens + a short text), each configuration runs in a fresh
process and reports its peak resident memory (CPU) or peak CUDA allocation (GPU), minus the
same model's plain SDPA forward. Prints the extra memory of each method and eager/lean ratios.

    .venv/bin/python bench/attention_memory.py [--tokens 256 576 1024 2304] [--layers 8] [--hidden 512]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, torch
sys.path.insert(0, sys.argv[1])
from transformers import LlamaConfig, LlamaForCausalLM
from core.models.attention import AttentionRowCapture
mode, T, layers, hidden = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=1000, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                  num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=T + 8)
model = LlamaForCausalLM._from_config(cfg, attn_implementation="eager" if mode == "eager" else "sdpa").to(dev).eval()
ids = torch.randint(0, 1000, (1, T), device=dev)
if dev == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.inference_mode():
    if mode == "eager":
        out = model(input_ids=ids, output_attentions=True)
        rows = torch.stack([a[0, :, T - 1] for a in out.attentions])
    elif mode == "lean":
        with AttentionRowCapture(model.model.layers, list(range(layers)), T - 1) as cap:
            model(input_ids=ids)
        rows = cap.rows()
    else:
        model(input_ids=ids)
peak = torch.cuda.max_memory_allocated() if dev == "cuda" else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(json.dumps({"peak": peak, "device": dev}))
"""


def measure(mode: str, tokens: int, layers: int, hidden: int) -> tuple[float, str]:
    r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode, str(tokens), str(layers), str(hidden)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-1500:])
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return float(d["peak"]), d["device"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[256, 576, 1024, 2304])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    args = ap.parse_args()
    print(f"{'tokens':>8}{'sdpa MiB':>12}{'lean +MiB':>12}{'eager +MiB':>12}{'eager/lean':>12}")
    for t in args.tokens:
        base, dev = measure("plain", t, args.layers, args.hidden)
        lean, _ = measure("lean", t, args.layers, args.hidden)
        eager, _ = measure("eager", t, args.layers, args.hidden)
        mib = 1024 * 1024
        extra_lean = max(lean - base, 1.0)
        extra_eager = max(eager - base, 1.0)
        print(f"{t:>8}{base / mib:>12.1f}{extra_lean / mib:>12.1f}{extra_eager / mib:>12.1f}{extra_eager / extra_lean:>12.1f}   ({dev})")
    print("extra = peak memory above the same model's plain SDPA forward; eager/lean > 1 means the lean capture saves memory")


if __name__ == "__main__":
    main()
