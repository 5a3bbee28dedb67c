"""The GUI's one door to model presets and the user config: which presets there are, which can
be used (and why not), loading a segmenter or only its SAM.

Everything is delegated to core: :mod:`core.models.config` when it is there (presets, path
checks, SAM-only loading), else the older :mod:`core.models.presets`; segmenters load through
``core.cli.run.load_segmenter`` when it exists. A preset whose checkpoint is not configured
is shown disabled with the reason as its tooltip (the Settings dialog fixes it). Nothing here
runs a model.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any


def config_module() -> ModuleType | None:
    """:mod:`core.models.config`, or ``None`` where this version of core does not have it."""
    try:
        from core.models import config
    except ModuleNotFoundError as exc:
        if exc.name != "core.models.config":
            raise
        return None
    return config


def _legacy() -> ModuleType:
    from core.models import presets

    return presets


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    mod = config_module() or _legacy()
    return mod.load_config(path)


def save_config(cfg: dict[str, Any], path: str | Path | None = None) -> Path:
    mod = config_module() or _legacy()
    return mod.save_config(cfg, path)


def config_path() -> Path:
    mod = config_module() or _legacy()
    return mod.config_path()


def segmenter_presets() -> tuple[str, ...]:
    """Stage-1 presets, the random tiny ones first (they always load)."""
    mod = config_module() or _legacy()
    names = tuple(mod.PRESETS)
    return tuple(sorted(names, key=lambda n: not is_random_preset(n)))


def is_random_preset(preset: str) -> bool:
    return preset.startswith("tiny-random")


def tiny_lisa_preset() -> str:
    """The tiny random LLaVA + SAM preset (named ``tiny-random-lisa`` or, in older core, ``tiny-random``)."""
    return next(p for p in segmenter_presets() if p in ("tiny-random-lisa", "tiny-random"))


def backbone(preset: str) -> str:
    """``"sam"`` or ``"sam2"``: which SAM the preset uses (for showing its default parameters)."""
    mod = config_module()
    family = getattr(mod, "PRESET_FAMILY", {}).get(preset) if mod else None
    if family is None:
        family = "lens" if "lens" in preset else "lisa"
    return "sam2" if family == "lens" else "sam"


# settings the older presets module needs for each real preset
_LEGACY_NEEDS: dict[str, tuple[str, ...]] = {"lisa-7b": ("mllm_path", "sam_checkpoint"), "lens-3b": ("mllm_path", "sam2_checkpoint")}
_LEGACY_SAM = {"lisa-7b": ("sam", "sam_checkpoint"), "lens-3b": ("sam2", "sam2_checkpoint")}


def _missing(cfg: dict[str, Any], table: str, name: str, keys: tuple[str, ...]) -> str | None:
    section = cfg.get(table, {}).get(name, {})
    for k in keys:
        v = str(section.get(k) or "").strip()
        if not v:
            return f"{name}: set {table}.{name}.{k} in File → Settings"
        if not Path(v).expanduser().exists():
            return f"{name}: {table}.{name}.{k} '{v}' does not exist (File → Settings)"
    return None


def segmenter_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the stage-1 preset cannot be loaded (``None`` when its paths are set and exist)."""
    mod = config_module()
    if mod is not None:
        problems = mod.preset_problems(preset, cfg)
        return "; ".join(problems) if problems else None
    keys = _LEGACY_NEEDS.get(preset)
    return None if keys is None else _missing(cfg, "presets", preset, keys)


def sam_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the preset's SAM cannot be loaded for click refinement (``None`` when it can)."""
    if config_module() is not None:
        return segmenter_problem(preset, cfg)  # the SAM may live inside the MLLM directory
    if preset not in _LEGACY_SAM:
        return None
    return _missing(cfg, "presets", preset, (_LEGACY_SAM[preset][1],))


def evaluator_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the stage-2 evaluator preset cannot be loaded (``None`` when it can)."""
    if preset == "openai":
        section = cfg.get("evaluator", {}).get("openai", {})
        if not (section.get("base_url") or os.environ.get("REA2SEG_EVAL_BASE_URL")):
            return "openai: set evaluator.openai.base_url in File → Settings (or $REA2SEG_EVAL_BASE_URL)"
        return None
    if preset == "internvl3-8b":
        return _missing(cfg, "evaluator", preset, ("model_path",))
    return None


def load_segmenter(preset: str, cfg: dict[str, Any]) -> Any:
    """The preset's segmenter (prompt model + SAM backend) through core's loader."""
    from core.pipeline.runner import load_segmenter as load

    return load(preset)


def load_sam(preset: str, cfg: dict[str, Any], loaded_segmenter: Any = None) -> tuple[Any, bool]:
    """The preset's SAM backend only (no MLLM for the real presets) and whether it is random.

    ``loaded_segmenter``: a segmenter of that preset already in memory, whose SAM is reused (one
    image-embedding cache for runs and clicks).
    """
    if loaded_segmenter is not None:
        return loaded_segmenter.sam, bool(loaded_segmenter.is_random)
    mod = config_module()
    if mod is not None:
        sam = mod.load_preset_sam(preset, cfg)
        return sam, bool(getattr(sam, "is_random", False) or is_random_preset(preset))
    if preset in _LEGACY_SAM:
        from core.models.sam_backend import load_sam_backend

        kind, key = _LEGACY_SAM[preset]
        section = cfg.get("presets", {}).get(preset, {})
        sam = load_sam_backend(kind, section.get(key), model_type=section.get("sam_model_type", "vit_h"),
                               model_cfg=section.get("sam2_config"), device=section.get("device", "cpu"),
                               setting=f"presets.{preset}.{key} in {config_path()}")
        return sam, False
    seg = _legacy().load_segmenter(preset, cfg)  # the tiny presets: built on first use, small
    return seg.sam, bool(seg.is_random)


def path_problems(cfg: dict[str, Any]) -> list[str]:
    """Problems with configured paths of the presets and evaluators that have any setting."""
    mod = config_module()
    problems: list[str] = []
    if mod is not None:
        for name, section in (cfg.get("presets") or {}).items():
            if isinstance(section, dict) and any(str(v).strip() for v in section.values()) and name in mod.PRESETS:
                problems += mod.preset_problems(name, cfg)
        try:
            legacy_check = _legacy().check_paths
        except (ModuleNotFoundError, AttributeError):
            return problems + _evaluator_path_problems(cfg)
        return problems + legacy_check({"evaluator": cfg.get("evaluator", {})})
    return _legacy().check_paths(cfg)


def _evaluator_path_problems(cfg: dict[str, Any]) -> list[str]:
    section = (cfg.get("evaluator") or {}).get("internvl3-8b") or {}
    return [f"evaluator.internvl3-8b.{k}: '{section[k]}' does not exist" for k in ("model_path", "lora_path")
            if str(section.get(k) or "").strip() and not Path(str(section[k])).expanduser().exists()]
