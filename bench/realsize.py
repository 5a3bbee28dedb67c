"""Real-size random-init models through the real pipeline: per-stage time, peak memory, and the
ratio of candidate discovery to the segmenter's own forward.

    python bench/realsize.py              # GPU: LLaVA-7B geometry (LISA) + SAM ViT-H, InternVL3-8B evaluator
    python bench/realsize.py --cpu-small  # the same code path with small models on CPU (minutes)

Models are the real classes at the real sizes (LLaVA-1.5-7B: CLIP ViT-L/14-336 + a 32-layer,
4096-wide Llama; SAM ViT-H; InternVL3-8B: InternViT-300M + a 28-layer, 3584-wide Qwen2) with
random weights, built directly on the device in bfloat16; the tokenizers and processors are the
tiny builds' (a small vocabulary, so the embedding and LM-head matrices are smaller than the
real ones: < 2 % of the parameters). Images are 1024 × 1024 random noise. Every number is labelled
as random-weight timing: the amount of work is real, the masks are noise.

LENS: Qwen2.5-VL-3B geometry (36 layers, 2048 wide; 32-block vision tower) with 64 query tokens
and a random query head, SAM2.1 Hiera-L; its pixel budget is capped at 1024² (≈ 1,300 image
tokens), the real LENS budget may differ.

Prints, per model pair: each stage-1 step's seconds (mean over images after one warm-up),
peak device memory, and ``discovery / forward`` = (seeds + amg + semantic + candidates) /
(mllm + sam_embed + initial). Then the evaluator's seconds per sample and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FORWARD = ("mllm", "sam_embed", "initial")
DISCOVERY = ("seeds", "amg", "semantic", "candidates")


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )  # process max RSS (Linux: KiB)


def build_lisa(small: bool, device: str, dtype: torch.dtype, tmp: Path):
    """A LISA-style prompt model: LLaVA-1.5-7B geometry (or small), the tiny build's processor."""
    from transformers import (
        AutoProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from core.models.lisa import LisaPromptModel, make_text_hidden_fcs
    from core.models.tiny_mllm import build_tiny_lisa

    image_size = 56 if small else 336
    d = build_tiny_lisa(
        tmp / "lisa", image_size=image_size, image_aspect_ratio="crop", max_new_tokens=0
    )
    proc = AutoProcessor.from_pretrained(d, local_files_only=True)
    tok = proc.tokenizer
    if small:
        vision = CLIPVisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=14,
        )
        text = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=32,
            num_attention_heads=4,
            num_key_value_heads=4,
        )
    else:
        vision = CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        )
        text = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
        )
    text.bos_token_id, text.eos_token_id, text.pad_token_id = (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    with torch.device(device):
        model = LlavaForConditionalGeneration(cfg).to(dtype).eval()
    fcs = make_text_hidden_fcs(text.hidden_size)
    return LisaPromptModel(
        model,
        proc,
        fcs,
        "random LLaVA-7B geometry" if not small else "random small LLaVA",
        True,
        device,
    )


def build_sam_h(small: bool, device: str):
    from segment_anything import sam_model_registry

    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    sam = build_tiny_sam() if small else sam_model_registry["vit_h"](checkpoint=None)
    return SamV1Backend(
        sam,
        device=device,
        name="random SAM ViT-H" if not small else "random tiny SAM",
        is_random=True,
    )


def build_lens(small: bool, device: str, dtype: torch.dtype, tmp: Path):
    """A LENS-style prompt model: Qwen2.5-VL-3B geometry (or small) with 64 query tokens; the tiny
    build's processor, its pixel budget opened to Qwen2.5-VL's default for the real size."""
    from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from core.models.lens import LensPromptModel, QueryConnector, QueryHead
    from core.models.tiny_mllm import build_tiny_lens

    d = build_tiny_lens(tmp / "lens", max_new_tokens=0)
    proc = AutoProcessor.from_pretrained(d, local_files_only=True)
    base = Qwen2_5_VLConfig.from_pretrained(d, local_files_only=True)
    tok = proc.tokenizer
    if small:
        text = dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=36,
            num_attention_heads=4,
            num_key_value_heads=2,
            mrope=[2, 3, 3],
        )
        vision = dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=4,
            window_size=56,
            fullatt_block_indexes=[1],
        )
        n_queries = 8
    else:
        text = dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            mrope=[16, 24, 24],
        )
        vision = dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
        )
        n_queries = 64
        proc.image_processor.min_pixels, proc.image_processor.max_pixels = 56 * 56, 1024 * 1024
    mrope = text.pop("mrope")
    cfg = Qwen2_5_VLConfig(
        text_config={
            **text,
            "vocab_size": len(tok),
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": mrope,
            },
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": None,
        },
        vision_config={
            **vision,
            "out_hidden_size": text["hidden_size"],
            "patch_size": 14,
            "spatial_merge_size": 2,
        },
        image_token_id=base.image_token_id,
        video_token_id=base.video_token_id,
        vision_start_token_id=base.vision_start_token_id,
    )
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(cfg).to(dtype).eval()
    hidden = text["hidden_size"]
    connector = QueryConnector(hidden, n_queries, depth=2, num_heads=16, mlp_ratio=4)
    head = QueryHead(hidden, n_queries, connector=connector)
    queries = torch.randn(n_queries, hidden) * 0.02
    return LensPromptModel(
        model,
        proc,
        queries,
        head,
        "random Qwen2.5-VL-3B geometry" if not small else "random small Qwen2.5-VL",
        True,
        device,
        0,
    )


def build_sam2_l(small: bool, device: str):
    from core.models.sam_backend import Sam2Backend
    from core.models.tiny_sam import build_tiny_sam2

    if small:
        model = build_tiny_sam2()
    else:
        from sam2.build_sam import build_sam2

        model = build_sam2("configs/sam2.1/sam2.1_hiera_l.yaml", None, device=device)
    return Sam2Backend(
        model,
        device=device,
        name="random SAM2-L" if not small else "random tiny SAM2",
        is_random=True,
    )


def run_pair(label: str, pm, sam, kind: str, images, device: str) -> list:
    """Stage 1 over ``images`` (the first is a warm-up); prints the per-step table; returns traces."""
    from core.pipeline.settings import Stage1Settings
    from core.pipeline.stage1 import run_stage1

    # App. B layers (LLaVA 14–30, LENS 33); filters opened so random masks still give the full AMG workload
    s = Stage1Settings.for_backbone(kind, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    _peak_reset(device)
    traces, rows = [], []
    for i, img in enumerate(images):
        tr = run_stage1(pm, sam, img, "the object that a person would sit on", s, is_sentence=True)
        if i:
            rows.append(tr.timings)
            traces.append(tr)
    peak = _peak_gib(device)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print(f"[{label}]")
    for k, v in mean.items():
        print(f"  {k:<11}{v:8.3f} s")
    fwd, disc = sum(mean[k] for k in FORWARD), sum(mean[k] for k in DISCOVERY)
    print(f"  forward {fwd:.3f} s, discovery {disc:.3f} s, discovery / forward = {disc / fwd:.2f}")
    print(
        f"  candidates per image {[len(t.candidates) for t in traces]}; peak "
        f"{'GPU' if device != 'cpu' else 'RSS'} memory {peak:.2f} GiB"
    )
    return traces


def build_evaluator(small: bool, device: str, dtype: torch.dtype, tmp: Path):
    """InternVL3-8B geometry (or the tiny build) with the tiny build's processor at 448² tiles."""
    from transformers import AutoProcessor, InternVLConfig, InternVLForConditionalGeneration

    from core.evaluator.local_internvl import InternVLEvaluator
    from core.evaluator.tiny import build_tiny_internvl

    d = build_tiny_internvl(tmp / "internvl")
    proc = AutoProcessor.from_pretrained(d, local_files_only=True)
    if small:
        model = InternVLForConditionalGeneration.from_pretrained(d, local_files_only=True)
        return InternVLEvaluator(
            model, proc, "random tiny InternVL", True, device, max_new_tokens=16, max_patches=4
        )
    tok = proc.tokenizer
    base = InternVLConfig.from_pretrained(d, local_files_only=True)
    cfg = InternVLConfig(
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=[448, 448],
            patch_size=[14, 14],
        ),
        text_config=dict(
            model_type="qwen2",
            vocab_size=len(tok),
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            max_position_embeddings=32768,
        ),
        image_token_id=base.image_token_id,
        image_seq_length=256,
        downsample_ratio=0.5,
    )
    with torch.device(device):
        model = InternVLForConditionalGeneration(cfg).to(dtype).eval()
    model.generation_config = InternVLForConditionalGeneration.from_pretrained(
        d, local_files_only=True
    ).generation_config
    proc.image_processor.size = {"height": 448, "width": 448}
    proc.image_seq_length = 256
    return InternVLEvaluator(
        model, proc, "random InternVL3-8B geometry", True, device, max_new_tokens=64, max_patches=12
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cpu-small", action="store_true", help="small models on CPU (the same code path)"
    )
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--no-evaluator", action="store_true")
    args = ap.parse_args(argv)
    small = args.cpu_small
    device = "cpu" if small else "cuda"
    if not small and not torch.cuda.is_available():
        print("no CUDA device: run with --cpu-small", file=sys.stderr)
        return 2
    dtype = torch.float32 if small else torch.bfloat16
    size = min(args.size, 256) if small else args.size
    rng = np.random.default_rng(0)
    images = [(rng.random((size, size, 3)) * 255).astype(np.uint8) for _ in range(args.images + 1)]
    t_start = time.perf_counter()
    print("RANDOM WEIGHTS: timings and memory of real-size work; the masks are noise")
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        t = time.perf_counter()
        pm, sam = build_lisa(small, device, dtype, tmp), build_sam_h(small, device)
        print(f"LISA-7B + SAM ViT-H built in {time.perf_counter() - t:.1f} s on {device}")
        traces = run_pair("LISA-7B + SAM ViT-H", pm, sam, "sam", images, device)
        del pm, sam
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        t = time.perf_counter()
        pm, sam = build_lens(small, device, dtype, tmp), build_sam2_l(small, device)
        print(f"LENS Qwen2.5-VL-3B + SAM2-L built in {time.perf_counter() - t:.1f} s on {device}")
        run_pair("LENS Qwen2.5-VL-3B + SAM2-L", pm, sam, "sam2", images, device)
        del pm, sam
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        if not args.no_evaluator:
            from core.evaluator.stage2 import run_stage2

            t = time.perf_counter()
            ev = build_evaluator(small, device, dtype, tmp)
            print(f"[InternVL3-8B evaluator] built in {time.perf_counter() - t:.1f} s")
            _peak_reset(device)
            secs = []
            for tr, img in zip(traces, images[1:], strict=True):
                t = time.perf_counter()
                run_stage2(tr, img, ev, group_size=5, cot=False)
                secs.append(time.perf_counter() - t)
            print(
                f"  {np.mean(secs):.2f} s per sample ({[len(tr.evaluator.groups) for tr in traces]} groups, "
                f"tiling {ev.image_tiling}); peak memory {_peak_gib(device):.2f} GiB"
            )
    print(
        f"total {time.perf_counter() - t_start:.1f} s (target on one H100: 480 s; ratio "
        f"{(time.perf_counter() - t_start) / 480:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
