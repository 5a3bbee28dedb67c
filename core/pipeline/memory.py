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
    gib,
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


DTYPES = ("bfloat16", "float16", "float32", "4bit")
"""The dtypes a model can be loaded in (``4bit``: bitsandbytes NF4, evaluator only)."""


def device_choices() -> list[tuple[str, str | None]]:
    """``(device, why not)`` for ``cpu``, each visible CUDA device (``cuda`` = the first) and
    ``mps``; ``why not`` is ``None`` for a usable device, else one plain sentence."""
    out: list[tuple[str, str | None]] = [("cpu", None)]
    try:
        import torch
    except ImportError:
        return [*out, ("cuda", "torch is not installed"), ("mps", "torch is not installed")]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n:
        out += [("cuda", None), *[(f"cuda:{i}", None) for i in range(1, n)]]
    else:
        out.append(("cuda", "no CUDA device is visible (torch.cuda.is_available() is False)"))
    mps = getattr(torch.backends, "mps", None)
    ok = mps is not None and mps.is_available()
    out.append(("mps", None if ok else "no Apple GPU (torch.backends.mps.is_available() is False)"))
    return out


def dtype_problem(dtype: str, device: str, *, evaluator: bool) -> str | None:
    """Why ``dtype`` cannot be chosen for a model on ``device`` (``None`` when it can):
    bfloat16 on a GPU without it; 4-bit for a segmenter, or without bitsandbytes or CUDA."""
    if dtype not in DTYPES:
        return f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}"
    if dtype == "4bit":
        if not evaluator:
            return "4-bit loading is offered for the InternVL evaluator only"
        from core.evaluator.local_internvl import bitsandbytes_problem

        return bitsandbytes_problem(device)
    if dtype == "bfloat16" and str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return "this GPU has no bfloat16 support (torch.cuda.is_bf16_supported() is False)"
    return None


def model_problems(
    table: str,
    name: str,
    config: dict[str, Any],
    devices: list[tuple[str, str | None]] | None = None,
) -> list[str]:
    """What stops a model of the registry from loading with ``config``, in the loaders' own
    words, without loading it: ``table`` ``"presets"`` (a segmenter,
    :func:`core.models.config.preset_problems`) or ``"evaluator"``
    (:func:`core.models.config.evaluator_problems`, and for a local InternVL the checkpoint
    check of :func:`core.evaluator.local_internvl.load_internvl`); then its device (against
    ``devices``, default :func:`device_choices`) and dtype."""
    from core.models.config import evaluator_problems, preset_problems

    section = dict((config.get(table) or {}).get(name) or {})
    if table == "presets":
        problems = preset_problems(name, config)
    else:
        problems = evaluator_problems(name, config)
        raw = str(section.get("model_path") or "").strip()
        if raw and evaluator_spec(name).backend == "local" and Path(raw).expanduser().exists():
            from core.evaluator.local_internvl import checkpoint_problem

            p = checkpoint_problem(raw, f"evaluator.{name}.model_path")
            problems += [f"{name}: {p}"] if p else []
    device = str(section.get("device") or "cpu")
    choices = device_choices() if devices is None else devices
    why = dict(choices).get(device, f"unknown device {device!r} here")
    if why:
        problems.append(f"{name}: device {device}: {why} (setting {table}.{name}.device)")
    dtype = str(section.get("dtype") or "")
    if dtype:
        why = dtype_problem(dtype, device, evaluator=table == "evaluator")
        if why:
            problems.append(f"{name}: dtype {dtype}: {why} (setting {table}.{name}.dtype)")
    return problems


def footprint_text(table: str, name: str, config: dict[str, Any]) -> str:
    """One line on a model's size: its parameters, the memory they take in the chosen dtype
    on the chosen device, and that device's free memory; ``""`` when unknown."""
    try:
        if table == "presets":
            params, dev, dtype = segmenter_footprint(name, config)
        else:
            params, dev, dtype = evaluator_footprint(name, config)
    except (ModelLoadError, ValueError, OSError, KeyError):
        return ""
    if params == 0:
        return "no local weights"
    try:
        free = gib(free_memory(dev))
    except (RuntimeError, ValueError):
        free = "?"
    return (
        f"about {params / 1e6:,.1f} M parameters: {gib(model_bytes(params, dtype))} in {dtype} "
        f"on {dev} ({free} free)"
    )
