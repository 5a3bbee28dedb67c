"""Evaluator presets, from the same user config file as the segmenters (core.models.presets)::

    [evaluator.openai]
    base_url = "http://127.0.0.1:8000/v1"    # e.g. vLLM serving the evaluator
    model = "internvl3-8b-rea2seg"
    concurrency = 4
    timeout_s = 120
    # the API key is read from REA2SEG_EVAL_API_KEY (or api_key here)

    [evaluator.internvl3-8b]
    model_path = "/models/InternVL3-8B-hf"
    lora_path = "/models/rea2seg-evaluator-lora"   # optional PEFT adapter
    device = "cuda"

Presets: ``tiny-random`` (a tiny random-init InternVL built on the fly; labelled random),
``internvl3-8b`` (local path), ``openai`` (endpoint).
"""

from __future__ import annotations

from typing import Any

from core.models.base import ModelLoadError
from core.models.presets import config_path, load_config

EVALUATOR_PRESETS = ("tiny-random", "internvl3-8b", "openai")


def load_evaluator(preset: str, config: dict[str, Any] | None = None):
    cfg = load_config() if config is None else config
    section = cfg.get("evaluator", {}).get(preset, {})
    where = f"evaluator.{preset}.%s in {config_path()}"
    if preset == "openai":
        from core.evaluator.openai_compat import OpenAICompatEvaluator

        if not section.get("base_url") or not section.get("model"):
            raise ModelLoadError(f"the openai evaluator needs base_url and model (settings {where % 'base_url'}, {where % 'model'})")
        keys = ("api_key", "timeout_s", "max_retries", "concurrency", "max_tokens")
        return OpenAICompatEvaluator(section["base_url"], section["model"], **{k: section[k] for k in keys if k in section})
    if preset == "tiny-random":
        from core.demo import data_dir
        from core.evaluator.local_internvl import load_internvl
        from core.evaluator.tiny import build_tiny_internvl

        d = data_dir() / "tiny-random" / "internvl"
        if not (d / "config.json").is_file():
            build_tiny_internvl(d)
        return load_internvl(d, is_random=True, max_new_tokens=24)
    if preset == "internvl3-8b":
        from core.evaluator.local_internvl import load_internvl

        return load_internvl(section.get("model_path", ""), lora_path=section.get("lora_path"),
                             device=section.get("device", "cpu"), setting=where % "model_path")
    raise ModelLoadError(f"unknown evaluator preset {preset!r}; available: {', '.join(EVALUATOR_PRESETS)}")
