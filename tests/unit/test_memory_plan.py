"""Memory estimates from checkpoint files, the plan for loading a segmenter and an evaluator,
the status-bar line, and 4-bit loading's guard (bitsandbytes is optional)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from core.models.memory import (
    OVERHEAD,
    checkpoint_parameters,
    memory_in_use,
    model_bytes,
    plan_loading,
    safetensors_parameters,
)


def test_safetensors_header_gives_the_exact_parameter_count(tmp_path):
    from safetensors.numpy import save_file

    save_file(
        {"a": np.zeros((3, 4), np.float32), "b": np.zeros(7, np.float16)},
        str(tmp_path / "model.safetensors"),
    )
    assert safetensors_parameters(tmp_path / "model.safetensors") == 19
    (tmp_path / "sam.pth").write_bytes(b"\0" * 400)  # pickled: taken as float32, size / 4
    (tmp_path / "notes.txt").write_text("not weights")
    assert checkpoint_parameters([tmp_path]) == 119
    assert checkpoint_parameters([tmp_path / "sam.pth"]) == 100
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError, match="not a safetensors file"):
        safetensors_parameters(tmp_path / "bad.safetensors")


def test_bytes_per_dtype_and_unknown_dtype():
    assert model_bytes(1000, "float32") == int(4000 * OVERHEAD)
    assert model_bytes(1000, "bfloat16") == model_bytes(1000, "float16") == int(2000 * OVERHEAD)
    assert model_bytes(1000, "4bit") == int(500 * OVERHEAD)
    with pytest.raises(ValueError, match="unknown dtype"):
        model_bytes(1, "int3")


def test_plan_together_only_when_both_fit():
    fits = plan_loading(4 * 2**30, 5 * 2**30, 10 * 2**30)
    assert fits.together and "fit in 10.0 GiB free" in fits.message
    tight = plan_loading(6 * 2**30, 5 * 2**30, 10 * 2**30)
    assert not tight.together and "one after the other" in tight.message
    assert "6.0 GiB" in tight.message and "5.0 GiB" in tight.message
    assert plan_loading(None, 5 * 2**30, 1).together  # nothing says they do not fit


def test_memory_line_names_the_process_memory():
    assert "RAM" in memory_in_use()


@pytest.mark.slow  # builds the tiny random models
def test_plan_for_the_tiny_presets_from_their_files():
    from core.pipeline.memory import evaluator_footprint, plan_ask, segmenter_footprint

    seg, dev, dtype = segmenter_footprint("tiny-random-lisa", {})
    ev, _, _ = evaluator_footprint("tiny-random", {})
    assert seg > 100_000 and ev > 10_000 and (dev, dtype) == ("cpu", "float32")
    need = model_bytes(seg, "float32") + model_bytes(ev, "float32")
    assert plan_ask("tiny-random-lisa", "tiny-random", {}, free=need).together
    assert not plan_ask("tiny-random-lisa", "tiny-random", {}, free=need - 1).together
    # a remote evaluator takes no local memory; another device does not compete
    assert evaluator_footprint("openai", {})[0] == 0
    cfg = {"evaluator": {"tiny-random": {"device": "cuda:1"}}}
    assert plan_ask("tiny-random-lisa", "tiny-random", cfg, free=1).together


@pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed"
)
def test_4bit_without_bitsandbytes_is_a_plain_load_error():
    from core.evaluator.local_internvl import bitsandbytes_problem, quantization
    from core.models.base import ModelLoadError

    assert "bitsandbytes" in bitsandbytes_problem("cuda")
    assert quantization("bfloat16", "cpu") == {}
    with pytest.raises(ModelLoadError, match="bitsandbytes .* not installed.*evaluator.x.dtype"):
        quantization("4bit", "cuda", setting="evaluator.x.dtype")


def test_4bit_needs_a_cuda_device(monkeypatch):
    from core.evaluator import local_internvl

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert "CUDA" in local_internvl.bitsandbytes_problem("cpu")
    assert local_internvl.bitsandbytes_problem("cuda:0") is None


def test_sizes_read_in_mib_under_a_gib():
    from core.models.memory import gib

    assert gib(None) == "?" and gib(3 * 2**29) == "1.5 GiB" and gib(17 * 2**20) == "17.0 MiB"
