"""A trained evaluator adapter directory (``rea2seg train evaluator --out DIR``).

``DIR`` holds PEFT's ``adapter_config.json`` + ``adapter_model.safetensors`` and
``rea2seg_adapter.json``, which says what the adapter needs at inference::

    {"prompt_format": "rea2seg-v2-cot-tiles12",       # checked by both backends (core.evaluator.adapter)
     "system": "…", "max_patches": 12, "cot": true,    # what the format id says, for people
     "kind": "rea2seg-evaluator-adapter", "version": 1,
     "base": "/models/InternVL3-8B-hf" | "tiny-random" | "internvl3-8b" | "base",  # as given to --base
     "prompt_formats": ["rea2seg-v2-cot-tiles12", "rea2seg-v2-nocot-tiles12"],  # trained on both
     "max_new_tokens": 512, "group_size": 5, "stage": 2, "parent_adapter": null | "/…/stage1"}

It is written by :func:`core.evaluator.adapter.write_adapter_declaration` (the declaration both
backends read) with the keys from ``kind`` on added. A run trained on both formats (``--cot-ratio``
between 0 and 1) declares its chain-of-thought format, so it is run with chain of thought.

:func:`resolve_base` turns ``base`` into a checkpoint directory (a relative path is taken
relative to ``DIR``, so a folder holding its base, as ``rea2seg train miniature`` writes
``models/evaluator/base``, can be moved and shipped); ``rea2seg run --evaluator DIR``
and the app load ``DIR`` as that base plus the adapter (:func:`core.evaluator.presets.load_evaluator`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.models.base import ModelLoadError

ADAPTER_INFO = "rea2seg_adapter.json"
KIND = "rea2seg-evaluator-adapter"


def is_adapter_dir(path: str | Path) -> bool:
    """True when ``path`` is a trained evaluator adapter directory (module docstring)."""
    p = Path(path).expanduser()
    return (p / ADAPTER_INFO).is_file() and (p / "adapter_config.json").is_file()


def read_adapter_info(path: str | Path) -> dict[str, Any]:
    """The parsed ``rea2seg_adapter.json`` of adapter directory ``path``."""
    f = Path(path).expanduser() / ADAPTER_INFO
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {f} ({exc})") from exc
    if info.get("kind") != KIND or "base" not in info:
        raise ModelLoadError(f"{f} is not a {KIND} declaration")
    return info


def resolve_base(
    base: str | Path,
    config: dict[str, Any] | None = None,
    *,
    adapter_dir: str | Path | None = None,
) -> Path:
    """The InternVL ``-hf`` checkpoint directory ``base`` names: a directory, the ``tiny-random``
    preset (built on first use), or a local preset of the config (its ``model_path``). A relative
    path is resolved against ``adapter_dir`` (the adapter directory whose declaration names it)
    when given."""
    from core.models.config import EVALUATOR_PRESETS, config_path, load_config

    name = str(base)
    if adapter_dir is not None and name not in EVALUATOR_PRESETS:
        rel = Path(name).expanduser()
        if not rel.is_absolute():
            local = Path(adapter_dir).expanduser() / rel
            if not (local / "config.json").is_file():
                raise ModelLoadError(
                    f"the base '{name}' of adapter '{adapter_dir}' is not a checkpoint directory "
                    f"there ('{local}')"
                )
            return local.resolve()
    if name == "tiny-random":
        from core.evaluator.presets import tiny_internvl_dir

        return tiny_internvl_dir()
    if name in EVALUATOR_PRESETS and not Path(name).expanduser().is_dir():
        cfg = load_config() if config is None else config
        path = (cfg.get("evaluator", {}).get(name, {}) or {}).get("model_path")
        if not path:
            raise ModelLoadError(
                f"the {name} preset names no checkpoint: set evaluator.{name}.model_path in {config_path()}"
            )
        return Path(path).expanduser()
    p = Path(name).expanduser()
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"base '{p}' is neither a preset nor a checkpoint directory")
    return p
