"""Which presets can be used from the GUI, and SAM-only loading for the click tool.

The GUI offers every preset from :mod:`core.models.presets` and :mod:`core.evaluator.presets`;
one whose checkpoint is not configured is shown disabled with the reason as its tooltip (the
Settings dialog fixes it). Nothing here runs a model: loading goes through the core loaders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# the settings each real preset needs, in the config file's tables (see core.models.presets)
NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("presets", "lisa-7b"): ("mllm_path", "sam_checkpoint"),
    ("presets", "lens-3b"): ("mllm_path", "sam2_checkpoint"),
    ("evaluator", "internvl3-8b"): ("model_path",),
}
SAM_KEY = {"lisa-7b": ("sam", "sam_checkpoint"), "lens-3b": ("sam2", "sam2_checkpoint")}


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
    keys = NEEDS.get(("presets", preset))
    return None if keys is None else _missing(cfg, "presets", preset, keys)


def sam_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the preset's SAM cannot be loaded for click refinement (``None`` when it can)."""
    if preset not in SAM_KEY:
        return None
    return _missing(cfg, "presets", preset, (SAM_KEY[preset][1],))


def evaluator_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the stage-2 evaluator preset cannot be loaded (``None`` when it can)."""
    if preset == "openai":
        section = cfg.get("evaluator", {}).get("openai", {})
        if not (section.get("base_url") or os.environ.get("REA2SEG_EVAL_BASE_URL")):
            return "openai: set evaluator.openai.base_url in File → Settings (or $REA2SEG_EVAL_BASE_URL)"
        return None
    keys = NEEDS.get(("evaluator", preset))
    return None if keys is None else _missing(cfg, "evaluator", preset, keys)


def load_sam(preset: str, cfg: dict[str, Any], loaded_segmenter: Any = None) -> tuple[Any, bool]:
    """The preset's SAM backend only (no MLLM for the real presets) and whether it is random.

    ``loaded_segmenter``: a segmenter of that preset already in memory, whose SAM is reused (one
    image-embedding cache for runs and clicks).
    """
    if loaded_segmenter is not None:
        return loaded_segmenter.sam, bool(loaded_segmenter.is_random)
    if preset in SAM_KEY:
        from core.models.presets import config_path
        from core.models.sam_backend import load_sam_backend

        kind, key = SAM_KEY[preset]
        section = cfg.get("presets", {}).get(preset, {})
        sam = load_sam_backend(kind, section.get(key), model_type=section.get("sam_model_type", "vit_h"),
                               model_cfg=section.get("sam2_config"), device=section.get("device", "cpu"),
                               setting=f"presets.{preset}.{key} in {config_path()}")
        return sam, False
    from core.models.presets import load_segmenter

    seg = load_segmenter(preset, cfg)  # the tiny presets: built on first use, small
    return seg.sam, bool(seg.is_random)
