"""User config and presets: path validation messages, SAM specs, tiny presets built on the fly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.base import ModelLoadError

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _config_file(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("REA2SEG_CONFIG", str(path))
    return path


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from core.models.tiny_mllm import build_tiny_lens, build_tiny_lisa

    root = tmp_path_factory.mktemp("presets")
    sam2 = root / "sam2.1_hiera_tiny.pt"
    sam2.write_bytes(b"not read by resolve_paths")
    return {
        "lisa": build_tiny_lisa(root / "lisa"),
        "lisa-weights": build_tiny_lisa(root / "lw", layout="lisa"),
        "lens": build_tiny_lens(root / "lens"),
        "sam2": sam2,
    }


def test_missing_paths_give_one_error_naming_file_and_setting(_config_file, tmp_path):
    from core.models.config import load_prompt_model, preset_problems, resolve_paths

    cfg = {"presets": {"lisa-7b": {"mllm_path": "/x/y"}}}
    want = f"lisa-7b: mllm_path '/x/y' does not exist (setting presets.lisa-7b.mllm_path in {_config_file})"
    with pytest.raises(ModelLoadError) as err:
        resolve_paths("lisa-7b", cfg)
    assert str(err.value) == want
    with pytest.raises(ModelLoadError, match="mllm_path '/x/y' does not exist"):
        load_prompt_model("lisa-7b", cfg)  # checked before anything loads
    cfg = {
        "presets": {
            "lens-3b": {"mllm_path": str(tmp_path / "no-model"), "sam2_checkpoint": "/m/sam2.pt"}
        }
    }
    with pytest.raises(ModelLoadError) as err:
        resolve_paths("lens-3b", cfg)
    msg = str(err.value)
    assert "no-model' does not exist (setting presets.lens-3b.mllm_path" in msg
    assert "'/m/sam2.pt' does not exist (setting presets.lens-3b.sam2_checkpoint" in msg
    assert preset_problems("lens-3b", {}) == [
        f"lens-3b: mllm_path is not set (setting presets.lens-3b.mllm_path in {_config_file})",
        f"lens-3b: sam2_checkpoint is not set (setting presets.lens-3b.sam2_checkpoint in {_config_file})",
    ]
    with pytest.raises(ModelLoadError, match="unknown preset 'gpt-9'; available: lisa-7b, lens-3b"):
        resolve_paths("gpt-9", {})


def test_lisa_sam_comes_from_the_setting_the_directory_or_its_weights(tiny_dirs, tmp_path):
    from core.models.config import preset_sam_spec, resolve_paths
    from core.models.tiny_sam import build_tiny_sam

    spec = preset_sam_spec(
        "lisa-7b", {"presets": {"lisa-7b": {"mllm_path": str(tiny_dirs["lisa"])}}}
    )
    assert (
        spec.kind == "sam"
        and spec.checkpoint == tiny_dirs["lisa"] / "sam.pth"
        and spec.model_type == "vit_h"
    )
    spec = preset_sam_spec(
        "lisa-7b",
        {
            "presets": {
                "lisa-7b": {"mllm_path": str(tiny_dirs["lisa-weights"]), "sam_model_type": "vit_b"}
            }
        },
    )
    assert (
        spec.checkpoint is None
        and spec.weights_prefix == "model.visual_model."
        and spec.model_type == "vit_b"
    )
    sam = build_tiny_sam()
    sam.load_state_dict(spec.load_state_dict(), strict=True)
    own = tmp_path / "sam_vit_h.pth"
    own.write_bytes(b"x")
    spec = preset_sam_spec(
        "lisa-7b",
        {"presets": {"lisa-7b": {"mllm_path": str(tiny_dirs["lisa"]), "sam_checkpoint": str(own)}}},
    )
    assert spec.checkpoint == own and "presets.lisa-7b.sam_checkpoint" in spec.setting
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(ModelLoadError, match="no SAM weights.*presets.lisa-7b.sam_checkpoint"):
        resolve_paths("lisa-7b", {"presets": {"lisa-7b": {"mllm_path": str(bare)}}})


def test_lens_sam2_spec_and_config_guess(tiny_dirs):
    from core.models.config import guess_sam2_config, preset_sam_spec

    cfg = {
        "presets": {
            "lens-3b": {
                "mllm_path": str(tiny_dirs["lens"]),
                "sam2_checkpoint": str(tiny_dirs["sam2"]),
            }
        }
    }
    spec = preset_sam_spec("lens-3b", cfg)
    assert spec.kind == "sam2" and spec.checkpoint == tiny_dirs["sam2"]
    assert spec.model_cfg == "configs/sam2.1/sam2.1_hiera_t.yaml"
    cfg["presets"]["lens-3b"]["sam2_config"] = "configs/sam2/sam2_hiera_l.yaml"
    assert preset_sam_spec("lens-3b", cfg).model_cfg == "configs/sam2/sam2_hiera_l.yaml"
    assert guess_sam2_config("sam2_hiera_large.pt") == "configs/sam2/sam2_hiera_l.yaml"
    assert (
        guess_sam2_config("/m/sam2.1_hiera_base_plus.pt") == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    )
    assert guess_sam2_config("weights.pt") == "configs/sam2.1/sam2.1_hiera_l.yaml"


def test_real_presets_load_through_the_real_loaders(tiny_dirs):
    from core.models.config import load_prompt_model
    from core.models.lens import LensPromptModel
    from core.models.lisa import LisaPromptModel

    cfg = {
        "presets": {
            "lisa-7b": {
                "mllm_path": str(tiny_dirs["lisa"]),
                "max_new_tokens": 2,
                "dtype": "float32",
            },
            "lens-3b": {
                "mllm_path": str(tiny_dirs["lens"]),
                "sam2_checkpoint": str(tiny_dirs["sam2"]),
            },
        }
    }
    m = load_prompt_model("lisa-7b", cfg)
    assert (
        isinstance(m, LisaPromptModel)
        and m.max_new_tokens == 2
        and not m.is_random
        and m.name == "lisa-7b"
    )
    assert m.model.dtype == torch.float32
    assert isinstance(load_prompt_model("lens-3b", cfg), LensPromptModel)
    cfg["presets"]["lisa-7b"]["dtype"] = "int3"
    with pytest.raises(ModelLoadError, match="unknown dtype 'int3'"):
        load_prompt_model("lisa-7b", cfg)


def _random_presets() -> list[str]:
    from core.models.config import ALIASES, PRESET_SPECS

    return [s.name for s in PRESET_SPECS if s.is_random] + [
        a for a, p in ALIASES.items() if "random" in p
    ]


def test_every_adapter_has_a_tiny_random_preset():
    from core.models.config import ADAPTERS, PRESET_SPECS

    assert {s.family for s in PRESET_SPECS if s.is_random} == set(ADAPTERS)
    assert {"tiny-random-lisa", "tiny-random-lens", "tiny-random"} <= set(_random_presets())


@pytest.mark.parametrize("preset", _random_presets())
def test_tiny_presets_are_built_once_and_labelled_random(preset):
    from core.models.config import (
        ADAPTERS,
        ensure_tiny,
        load_preset_sam,
        load_prompt_model,
        preset_sam_spec,
        resolve_paths,
    )

    r = resolve_paths(preset, {})
    assert r.is_random and (r.mllm_path / "READY").is_file()
    stamp = (r.mllm_path / "READY").stat().st_mtime_ns
    assert (
        ensure_tiny(r.preset) == r.mllm_path and (r.mllm_path / "READY").stat().st_mtime_ns == stamp
    )
    m = load_prompt_model(preset, {})
    assert m.is_random and m.name.endswith("-random")
    spec = preset_sam_spec(preset, {})
    kind = {"tiny-random-lisa": "sam", "tiny-random-lens": "sam2"}.get(
        r.preset, ADAPTERS[r.family].sam_kind
    )
    assert spec.is_random and spec.checkpoint.is_file() and spec.kind == kind
    sam = load_preset_sam(preset, {})
    assert sam.is_random and sam.kind == spec.kind
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    out = m.encode(image, "which ball ?")
    assert out.attention.shape[2] == out.grid_hw[0] * out.grid_hw[1] == len(out.token_boxes_xyxy)


def test_config_file_round_trip_and_errors(_config_file):
    from core.models.config import config_path, load_config, save_config

    assert config_path() == _config_file and load_config() == {}
    cfg = {
        "presets": {
            "lisa-7b": {"mllm_path": '/m/"quoted" dir', "device": "cuda", "max_new_tokens": 8}
        }
    }
    assert save_config(cfg) == _config_file and load_config() == cfg
    _config_file.write_text("[presets.lisa-7b\nmllm_path = 1")
    with pytest.raises(ModelLoadError, match=f"{_config_file}: not valid TOML"):
        load_config()


def test_paper_layer_defaults_on_full_depth_models(tmp_path):
    from core.models.lens import load_lens
    from core.models.lisa import load_lisa
    from core.models.tiny_mllm import build_tiny_lens, build_tiny_lisa

    image = (np.random.default_rng(2).random((50, 70, 3)) * 255).astype(np.uint8)
    lisa = load_lisa(
        build_tiny_lisa(tmp_path / "lisa32", layers=32), is_random=True, max_new_tokens=0
    )
    out = lisa.encode(image, "which ball ?")
    assert out.layers == list(range(14, 31)) and out.attention.shape == (17, 4, 16)  # App. B: 14–30
    lens = load_lens(
        build_tiny_lens(tmp_path / "lens36", layers=36), is_random=True, max_new_tokens=0
    )
    out = lens.encode(image, "which ball ?")
    assert out.layers == [33] and out.attention.shape[:2] == (1, 4)  # App. B: layer 33 of 36
