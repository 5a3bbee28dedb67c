"""Will a preset's segmenter and an evaluator both fit on their device? Estimated from their
checkpoint files' parameter counts (:mod:`core.models.memory`) against the device's free memory,
before either is loaded; when they do not fit, an ask loads them one after the other (§4.2's
stage 1 needs only the segmenter, §4.3's stage 2 only the evaluator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.models.base import ModelLoadError
from core.models.config import evaluator_spec, load_config, resolve_paths
from core.models.memory import (
    LoadPlan,
    checkpoint_parameters,
    free_memory,
    model_bytes,
    plan_loading,
)


def default_dtype(device: str) -> str:
    """What the loaders use when no dtype is set: bfloat16 on CUDA, float32 elsewhere."""
    return "bfloat16" if str(device).startswith("cuda") else "float32"


def segmenter_footprint(
    preset: str, config: dict[str, Any] | None = None, device: str | None = None
) -> tuple[int, str, str]:
    """``(parameters, device, dtype)`` of a segmenter preset (MLLM and SAM), from its files.
    Tiny presets are built on first use. :class:`ModelLoadError` as the loader would raise it."""
    cfg = load_config() if config is None else config
    r = resolve_paths(preset, cfg)
    paths: list[Path] = [r.mllm_path]
    if r.sam.checkpoint is not None and r.sam.checkpoint.parent != r.mllm_path:
        paths.append(r.sam.checkpoint)
    dev = device or r.device
    dtype = str(r.options.get("dtype") or default_dtype(dev))
    return checkpoint_parameters(paths), dev, dtype


def evaluator_footprint(name: str, config: dict[str, Any] | None = None) -> tuple[int, str, str]:
    """``(parameters, device, dtype)`` of an evaluator preset; an OpenAI-compatible endpoint
    takes no local memory (0 parameters)."""
    from core.evaluator.presets import bundled_evaluator_dir, tiny_internvl_dir

    cfg = load_config() if config is None else config
    spec = evaluator_spec(name)
    section = dict((cfg.get("evaluator") or {}).get(name) or {})
    dev = str(section.get("device") or "cpu")
    dtype = str(section.get("dtype") or default_dtype(dev))
    if spec.backend == "openai":
        return 0, dev, dtype
    if spec.backend == "tiny":
        paths = [tiny_internvl_dir()]
    elif spec.backend == "mini":
        folder = bundled_evaluator_dir(spec, section)
        paths = [folder, *[p for p in folder.rglob("*") if p.is_dir()]]
    else:
        paths = [
            Path(str(section[k])).expanduser()
            for k in ("model_path", "lora_path")
            if section.get(k)
        ]
        if not paths:
            raise ModelLoadError(f"the {name} evaluator has no model_path set")
    return checkpoint_parameters(p for p in paths if p.exists()), dev, dtype


def plan_ask(
    preset: str,
    evaluator: str,
    config: dict[str, Any] | None = None,
    *,
    device: str | None = None,
    free: int | None = None,
) -> LoadPlan:
    """Whether the segmenter ``preset`` and the ``evaluator`` preset are loaded together.
    Different devices (e.g. segmenter on the GPU, evaluator on the CPU) never compete.
    ``device`` overrides the segmenter's; ``free``: the free bytes to plan with (default: the
    segmenter device's, :func:`core.models.memory.free_memory`)."""
    cfg = load_config() if config is None else config
    seg_params, seg_dev, seg_dtype = segmenter_footprint(preset, cfg, device)
    ev_params, ev_dev, ev_dtype = evaluator_footprint(evaluator, cfg)
    seg_bytes = model_bytes(seg_params, seg_dtype)
    ev_bytes = model_bytes(ev_params, ev_dtype)
    avail = free_memory(seg_dev) if free is None else int(free)
    if _kind(seg_dev) != _kind(ev_dev):
        return LoadPlan(
            True, seg_bytes, ev_bytes, avail, f"segmenter on {seg_dev}, evaluator on {ev_dev}"
        )
    return plan_loading(seg_bytes, ev_bytes, avail)


def _kind(device: str) -> str:
    d = str(device)
    return "cuda:0" if d == "cuda" else d
