"""Evaluator presets, read from the same user config file as the segmenters
(:func:`core.models.config.config_path`: ``$REA2SEG_CONFIG`` or
``~/.config/rea2seg/config.toml``)::

    [evaluator.internvl3-8b]
    model_path = "/models/InternVL3-8B-hf"          # transformers -hf checkpoint directory
    lora_path = "/models/rea2seg-evaluator-lora"     # optional PEFT adapter directory
    prompt_format = "rea2seg-v2-cot-tiles12"         # only when the adapter has no rea2seg_adapter.json
    device = "cuda"                                  # default "cpu"
    dtype = "bfloat16"                               # default: bfloat16 on CUDA, float32 on CPU
    max_new_tokens = 512
    max_patches = 12                                 # tiles a group's images share (12 // images each)
    max_batch = 3                                    # groups per generate call (default: all)

    [evaluator.openai]
    base_url = "http://127.0.0.1:8000/v1"            # or $REA2SEG_EVAL_BASE_URL
    model = "internvl3-8b-rea2seg"                   # or $REA2SEG_EVAL_MODEL
    concurrency = 4
    timeout_s = 120
    max_retries = 4
    adapter_path = "/models/rea2seg-evaluator-lora"  # optional: the served adapter's rea2seg_adapter.json
    prompt_format = "rea2seg-v2-cot-tiles12"         # optional: the served adapter's format
    max_patches = 12                                 # the server's max_dynamic_patch (not checkable)
    # the API key is read from $REA2SEG_EVAL_API_KEY (an api_key entry here works but is discouraged)

Presets (the registry's :data:`core.models.config.EVALUATOR_SPECS`, beside the segmenters):
``tiny-random`` (a tiny random-init InternVL of the real classes, built once into the per-user
data folder and loaded through the same loader; labelled random), ``internvl3-8b`` (local
checkpoint), ``openai`` (endpoint); each names its backend's loader in :data:`LOADERS`. Instead of a preset name :func:`load_evaluator` also
takes a checkpoint directory or a spec dict (``{"backend": "local", "model_path": …}`` or
``{"backend": "openai", "base_url": …, "model": …}``). A directory written by ``rea2seg train
evaluator`` (``rea2seg_adapter.json`` + a PEFT adapter) loads as its base plus the adapter.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from core.models.base import ModelLoadError
from core.models.config import (
    EVALUATOR_PRESETS,
    EvaluatorSpec,
    config_path,
    evaluator_spec,
    load_config,
)
from core.paths import resource_path, tiny_models_dir

TINY_DIR = "internvl-v2"  # bump when the tiny build changes, so stale caches are not reused

_LOCAL_KEYS = (
    "device",
    "dtype",
    "max_new_tokens",
    "max_patches",
    "max_batch",
    "batch_groups",
    "prompt_format",
)


def tiny_internvl_dir() -> Path:
    """The tiny random InternVL checkpoint, built on first use into the per-user data folder."""
    from core.evaluator.tiny import build_tiny_internvl

    d = tiny_models_dir() / TINY_DIR
    if not (d / "config.json").is_file() or not (d / "processor_config.json").is_file():
        tmp = d.with_name(f"{d.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        build_tiny_internvl(tmp)
        try:
            os.replace(tmp, d)  # atomic: a concurrent builder never sees half a checkpoint
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return d


def _local(
    section: dict[str, Any],
    where: str,
    source: str = "",
    *,
    is_random: bool = False,
    cot: bool | None = None,
):
    from core.evaluator.adapter_dir import is_adapter_dir, read_adapter_info
    from core.evaluator.local_internvl import load_internvl

    kw = {k: section[k] for k in _LOCAL_KEYS if k in section}
    if section.get("lora_path") and is_adapter_dir(section["lora_path"]):
        # a trained adapter says how it was trained; the section's own settings win
        info = read_adapter_info(section["lora_path"])
        for key in ("prompt_format", "max_patches", "max_new_tokens"):
            if info.get(key) is not None:
                kw.setdefault(key, info[key])
    return load_internvl(
        section.get("model_path"),
        cot=cot,
        lora_path=section.get("lora_path") or None,
        is_random=is_random,
        setting=f"{where}.model_path{source}",
        lora_setting=f"{where}.lora_path{source}",
        **kw,
    )


def _load_tiny(spec: EvaluatorSpec, section: dict[str, Any], cot: bool | None):
    from core.evaluator.local_internvl import load_internvl

    kw = {k: section[k] for k in _LOCAL_KEYS if k in section}
    kw.setdefault("max_new_tokens", 24)
    return load_internvl(
        tiny_internvl_dir(), is_random=True, setting=f"{spec.name} preset", cot=cot, **kw
    )


def _load_local(spec: EvaluatorSpec, section: dict[str, Any], cot: bool | None):
    where = f"evaluator.{spec.name}"
    if not section.get("model_path"):
        raise ModelLoadError(
            f"the {spec.name} evaluator needs a checkpoint: set {where}.model_path in {config_path()} "
            "to an InternVL3 -hf directory"
        )
    return _local(section, where, f" in {config_path()}", is_random=spec.is_random, cot=cot)


def _load_openai(spec: EvaluatorSpec, section: dict[str, Any], cot: bool | None):
    from core.evaluator.openai_compat import OpenAICompatEvaluator

    return OpenAICompatEvaluator.from_config(
        section, where=f"evaluator.{spec.name} in {config_path()}", cot=cot
    )


def bundled_evaluator_dir(spec: EvaluatorSpec, section: dict[str, Any]) -> Path:
    """The trained evaluator folder of a preset with ``bundled`` files (``mini-geometric``):
    ``lora_path`` when set, else the bundled folder; :class:`ModelLoadError` naming the command
    that makes it when it is not there."""
    from core.evaluator.adapter_dir import is_adapter_dir

    setting = str(section.get("lora_path") or "").strip()
    path = Path(setting).expanduser() if setting else resource_path(*spec.bundled)
    if not is_adapter_dir(path):
        key = f"evaluator.{spec.name}.lora_path"
        where = f"{key} in {config_path()}" if setting else "the bundled resources"
        raise ModelLoadError(
            f"{spec.name}: no trained evaluator in '{path}' ({where}); make it with "
            f"`{spec.make}` and copy DIR/models to '{path.parent}', or set {key} in "
            f"{config_path()} to DIR/models/evaluator"
        )
    return path


def _load_mini(spec: EvaluatorSpec, section: dict[str, Any], cot: bool | None):
    return _trained_adapter(str(bundled_evaluator_dir(spec, section)), None, cot)


# One loader per backend named in the registry (core.models.config.EVALUATOR_SPECS).
LOADERS = {"tiny": _load_tiny, "local": _load_local, "openai": _load_openai, "mini": _load_mini}


def _trained_adapter(adapter: str, config: dict[str, Any] | None, cot: bool | None):
    """A ``rea2seg train evaluator`` output: its base plus the adapter, with the prompt format
    and tiling it was trained on (:mod:`core.evaluator.adapter_dir`)."""
    from core.evaluator.adapter_dir import read_adapter_info, resolve_base

    info = read_adapter_info(adapter)
    base = resolve_base(info["base"], config, adapter_dir=adapter)
    section = {"model_path": str(base), "lora_path": adapter}
    return _local(section, "evaluator", f" from {adapter}", cot=cot)


def load_evaluator(
    preset_or_spec: str | Path | dict[str, Any],
    config: dict[str, Any] | None = None,
    *,
    cot: bool | None = None,
):
    """Load a :class:`core.evaluator.base.MaskEvaluator` (lazily imports its backend).

    ``preset_or_spec``: a preset name of the registry (:data:`core.models.config.EVALUATOR_SPECS`),
    a local checkpoint directory, or a spec dict. ``config``: the parsed config (default: the user config file).
    ``cot``: the chain-of-thought choice stage 2 will use; given, an adapter trained on the
    other format is refused here (:class:`core.evaluator.adapter.PromptFormatError`, a
    :class:`ModelLoadError`), before a run is created.
    Raises :class:`ModelLoadError` (missing checkpoint, unknown preset) or ``ValueError`` (missing
    endpoint settings), with a message naming the file and the setting.
    """
    if isinstance(preset_or_spec, dict):
        spec = dict(preset_or_spec)
        backend = str(spec.pop("backend", "local"))
        if backend in ("openai", "openai-compatible"):
            from core.evaluator.openai_compat import OpenAICompatEvaluator

            return OpenAICompatEvaluator.from_config(spec, where="spec", cot=cot)
        if backend in ("local", "internvl", "local-internvl"):
            return _local(spec, "spec", is_random=bool(spec.get("is_random", False)), cot=cot)
        raise ModelLoadError(
            f"unknown evaluator backend {backend!r} in spec; use 'local' or 'openai'"
        )
    name = str(preset_or_spec)
    if name not in EVALUATOR_PRESETS and (os.sep in name or Path(name).expanduser().is_dir()):
        from core.evaluator.adapter_dir import is_adapter_dir

        if is_adapter_dir(name):
            return _trained_adapter(name, config, cot)
        return _local({"model_path": name}, "evaluator", " given on the command line", cot=cot)
    preset = evaluator_spec(name)  # unknown: ModelLoadError listing the registry's presets
    cfg = load_config() if config is None else config
    section = dict(cfg.get("evaluator", {}).get(name, {}))
    return LOADERS[preset.backend](preset, section, cot)
