"""The GUI's one door to model presets and the user config: which presets there are, which can
be used (and why not), loading a segmenter or only its SAM.

Everything is delegated to core: :mod:`core.models.config` (presets, path checks, SAM-only
loading); segmenters load through :func:`core.pipeline.cache.load_segmenter`. A preset whose checkpoint is not configured
is shown disabled with the reason as its tooltip (the Settings dialog fixes it). Nothing here
runs a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.models import config


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    return config.load_config(path)


def save_config(cfg: dict[str, Any], path: str | Path | None = None) -> Path:
    return config.save_config(cfg, path)


def config_path() -> Path:
    return config.config_path()


def segmenter_presets() -> tuple[str, ...]:
    """Stage-1 presets, the random tiny ones first (they always load)."""
    return tuple(sorted(config.PRESETS, key=lambda n: not is_random_preset(n)))


def is_random_preset(preset: str) -> bool:
    return config.preset_spec(preset).is_random


def trained_label(preset: str | None) -> str | None:
    """What a non-random preset's models are, when they are not the paper's (e.g.
    ``mini-geometric``: "small models trained on the synthetic geometric split"), else ``None``."""
    try:
        spec = config.preset_spec(preset or "")
    except config.ModelLoadError:
        return None
    return spec.label or None if not spec.is_random else None


def tiny_lisa_preset() -> str:
    """The tiny random LLaVA + SAM preset."""
    return "tiny-random-lisa"


def segmenter_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the stage-1 preset cannot be loaded (``None`` when its paths are set and exist)."""
    problems = config.preset_problems(preset, cfg)
    return "; ".join(problems) if problems else None


def sam_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the preset's SAM cannot be loaded for click refinement (``None`` when it can)."""
    return segmenter_problem(preset, cfg)  # the SAM may live inside the MLLM directory


def evaluator_presets() -> tuple[str, ...]:
    """Stage-2 presets, from the same registry as the segmenters."""
    return config.EVALUATOR_PRESETS


def evaluator_problem(preset: str, cfg: dict[str, Any]) -> str | None:
    """Why the stage-2 evaluator preset cannot be loaded (``None`` when it can)."""
    problems = config.evaluator_problems(preset, cfg)
    return "; ".join(problems) if problems else None


def load_segmenter(preset: str, cfg: dict[str, Any]) -> Any:
    """The preset's segmenter (prompt model + SAM backend) through core's loader."""
    from core.pipeline.cache import load_segmenter as load

    return load(preset, config=cfg)


def load_sam(preset: str, cfg: dict[str, Any], loaded_segmenter: Any = None) -> tuple[Any, bool]:
    """The preset's SAM backend only (no MLLM for the real presets) and whether it is random.

    ``loaded_segmenter``: a segmenter of that preset already in memory, whose SAM is reused (one
    image-embedding cache for runs and clicks).
    """
    if loaded_segmenter is not None:
        return loaded_segmenter.sam, bool(loaded_segmenter.is_random)
    sam = config.load_preset_sam(preset, cfg)
    return sam, bool(sam.is_random or is_random_preset(preset))


def path_problems(cfg: dict[str, Any]) -> list[str]:
    """Problems with configured paths of the presets and evaluators that have any setting."""
    problems: list[str] = []
    for name, section in (cfg.get("presets") or {}).items():
        if (
            isinstance(section, dict)
            and any(str(v).strip() for v in section.values())
            and name in config.PRESETS
        ):
            problems += config.preset_problems(name, cfg)
    return problems + _evaluator_path_problems(cfg)


def _evaluator_path_problems(cfg: dict[str, Any]) -> list[str]:
    return [
        p
        for name in config.EVALUATOR_PRESETS
        for p in config.evaluator_problems(name, cfg, missing=False)
    ]
