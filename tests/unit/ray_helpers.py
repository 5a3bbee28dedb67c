"""A segmenter loader for the Ray engine tests, imported by the Ray workers by its import path
(``tests.unit.ray_helpers:load_faulty``): the tiny-random segmenter, except that a question
containing ``[crash]`` ends the worker process and one containing ``[oom]`` raises the device's
out-of-memory error, so the tests can break one sample without touching the others."""

from __future__ import annotations

import os


class FaultyPromptModel:
    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def encode(self, image_rgb, question, layers=None):
        import torch

        if "[crash]" in question:
            os._exit(3)  # the worker process dies as on a segfault or a node loss
        if "[oom]" in question:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self._inner.encode(image_rgb, question, layers=layers)


def load_faulty(preset: str, device: str | None = None):
    from core.pipeline.cache import Segmenter, load_segmenter

    seg = load_segmenter(preset, device=device)
    return Segmenter(FaultyPromptModel(seg.prompt_model), seg.sam, seg.preset, seg.is_random)
