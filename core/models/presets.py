"""Model presets and the user config file.

The config file is TOML, at ``$REA2SEG_CONFIG`` or ``~/.config/rea2seg/config.toml``::

    [presets.lisa-7b]
    mllm_path = "/models/lisa-7b"            # LISA-style directory (see core.models.lisa)
    sam_checkpoint = "/models/sam_vit_h_4b8939.pth"
    sam_model_type = "vit_h"
    device = "cuda"

    [presets.lens-3b]
    mllm_path = "/models/lens-3b"              # Qwen2.5-VL directory + lens_head.pt (core.models.lens)
    sam2_checkpoint = "/models/sam2.1_hiera_large.pt"
    sam2_config = "configs/sam2.1/sam2.1_hiera_l.yaml"

Presets: ``lisa-7b`` (LLaVA + SAM ViT-H) and ``lens-3b`` (Qwen2.5-VL + SAM2), paths from the
config; ``tiny-random`` / ``tiny-random-lens`` (tiny random-init versions of the same real
classes, built on the fly into the per-user cache and loaded back through the same loaders —
their output is noise and is labelled random).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.models.base import ModelLoadError

PRESETS = ("tiny-random", "tiny-random-lens", "lisa-7b", "lens-3b")


def config_path() -> Path:
    env = os.environ.get("REA2SEG_CONFIG")
    return Path(env) if env else Path.home() / ".config" / "rea2seg" / "config.toml"


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed config (``{}`` when the file does not exist); a malformed file is an error."""
    p = Path(path) if path else config_path()
    if not p.is_file():
        return {}
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{p}: not valid TOML ({exc})") from exc


@dataclass
class Segmenter:
    prompt_model: Any
    sam: Any
    preset: str
    is_random: bool


def _tiny(device: str) -> Segmenter:
    from core.demo import data_dir
    from core.models.lisa import load_lisa
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_mllm import build_tiny_lisa
    from core.models.tiny_sam import load_tiny_sam, save_tiny_sam

    cache = data_dir() / "tiny-random"
    lisa_dir = cache / "lisa"
    if not (lisa_dir / "text_hidden_fcs.pt").is_file():
        build_tiny_lisa(lisa_dir)
    sam_file = cache / "sam_tiny.pth"
    if not sam_file.is_file():
        save_tiny_sam(sam_file)
    pm = load_lisa(lisa_dir, device=device, is_random=True, max_new_tokens=4)
    sam = SamV1Backend(load_tiny_sam(sam_file), device, name="sam-tiny-random", is_random=True)
    return Segmenter(pm, sam, "tiny-random", True)


def _tiny_lens(device: str) -> Segmenter:
    from core.demo import data_dir
    from core.models.lens import load_lens
    from core.models.sam_backend import Sam2Backend
    from core.models.tiny_mllm import build_tiny_lens
    from core.models.tiny_sam import load_tiny_sam2, save_tiny_sam2

    cache = data_dir() / "tiny-random"
    lens_dir = cache / "lens-v2"  # v2: LENS head layout (conv_1d + proj_to_sam)
    if not (lens_dir / "lens_head.pt").is_file():
        build_tiny_lens(lens_dir)
    sam_file = cache / "sam2_tiny.pth"
    if not sam_file.is_file():
        save_tiny_sam2(sam_file)
    pm = load_lens(lens_dir, device=device, is_random=True, max_new_tokens=4)
    sam = Sam2Backend(load_tiny_sam2(sam_file), device, name="sam2-tiny-random", is_random=True)
    return Segmenter(pm, sam, "tiny-random-lens", True)


def load_segmenter(preset: str, config: dict[str, Any] | None = None, device: str | None = None) -> Segmenter:
    """Load the preset's MLLM and SAM backend (lazily, from local paths only)."""
    cfg = load_config() if config is None else config
    section = cfg.get("presets", {}).get(preset, {})
    dev = device or section.get("device", "cpu")
    if preset == "tiny-random":
        return _tiny(dev)
    if preset == "tiny-random-lens":
        return _tiny_lens(dev)
    if preset == "lens-3b":
        from core.models.lens import load_lens
        from core.models.sam_backend import load_sam_backend

        where = f"presets.{preset}.%s in {config_path()}"
        pm = load_lens(section.get("mllm_path", ""), device=dev, setting=where % "mllm_path")
        sam = load_sam_backend("sam2", section.get("sam2_checkpoint"), model_cfg=section.get("sam2_config"),
                               device=dev, setting=where % "sam2_checkpoint")
        return Segmenter(pm, sam, preset, False)
    if preset == "lisa-7b":
        from core.models.lisa import load_lisa
        from core.models.sam_backend import load_sam_backend

        where = f"presets.{preset}.%s in {config_path()}"
        pm = load_lisa(section.get("mllm_path", ""), device=dev, setting=where % "mllm_path")
        sam = load_sam_backend("sam", section.get("sam_checkpoint"), model_type=section.get("sam_model_type", "vit_h"),
                               device=dev, setting=where % "sam_checkpoint")
        return Segmenter(pm, sam, preset, False)
    raise ModelLoadError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def dumps_config(cfg: dict[str, Any]) -> str:
    """TOML text for ``{table: {name: {key: scalar}}}`` (the shape of this config)."""
    lines: list[str] = []
    for table, entries in cfg.items():
        for name, values in entries.items():
            lines.append(f'[{table}."{name}"]')
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v not in (None, "")]
            lines.append("")
    return "\n".join(lines)


def save_config(cfg: dict[str, Any], path: str | Path | None = None) -> Path:
    """Write the config atomically (a temp file renamed over the old one)."""
    p = Path(path) if path else config_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    text = dumps_config(cfg)
    tomllib.loads(text)  # never write a file this program cannot read back
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p


PATH_KEYS = {
    ("presets", "lisa-7b"): ("mllm_path", "sam_checkpoint"),
    ("presets", "lens-3b"): ("mllm_path", "sam2_checkpoint"),
    ("evaluator", "internvl3-8b"): ("model_path", "lora_path"),
}


def check_paths(cfg: dict[str, Any]) -> list[str]:
    """Plain-language problems with the configured paths (empty when all set paths exist)."""
    problems = []
    for (table, name), keys in PATH_KEYS.items():
        section = cfg.get(table, {}).get(name, {})
        for k in keys:
            v = section.get(k)
            if v and not Path(v).exists():
                problems.append(f"{table}.{name}.{k}: '{v}' does not exist")
    return problems
