"""How much memory models need and how much a device has, without loading anything.

Parameter counts come from checkpoint files: a ``.safetensors`` file's header lists every tensor's
shape (exact, read in a few KiB); a pickled ``.pth`` / ``.pt`` / ``.bin`` file is taken as float32,
its size / 4 (not exact; not from the paper). The bytes a model takes are its parameters times
the bytes of the chosen dtype (:data:`DTYPE_BYTES`) times :data:`OVERHEAD` for activations and
buffers (not from the paper). Free memory: ``torch.cuda.mem_get_info`` for CUDA devices, the
system's available memory otherwise.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DTYPE_BYTES: dict[str, float] = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "4bit": 0.5}
"""Bytes per parameter for each dtype a model can be loaded in (``4bit``: bitsandbytes NF4)."""

OVERHEAD = 1.2
"""Weights × this = the memory a loaded model is taken to need (activations, buffers, the
allocator's slack). Not from the paper: a rule of thumb for inference with one image."""

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_SAFETENSORS_ITEM = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1}


def safetensors_parameters(path: str | Path) -> int:
    """The number of values in a ``.safetensors`` file, from its header (no tensor is read).
    ``ValueError`` when the file is not a safetensors file."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > 100 * 1024 * 1024:
            raise ValueError(f"{path}: not a safetensors file (header of {n} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a safetensors file ({exc})") from None
    total = 0
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        count = 1
        for d in info.get("shape", []):
            count *= int(d)
        total += count
    return total


def checkpoint_parameters(paths: Iterable[str | Path]) -> int:
    """Parameters in the weight files among ``paths`` (files, or folders whose top-level weight
    files count): exact for safetensors, size / 4 for pickled files. 0 when there are none."""
    total = 0
    for p in paths:
        p = Path(p)
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        for f in files:
            if not f.is_file() or f.suffix not in _WEIGHT_SUFFIXES:
                continue
            if f.suffix == ".safetensors":
                total += safetensors_parameters(f)
            else:
                total += f.stat().st_size // 4
    return total


def model_bytes(parameters: int, dtype: str) -> int:
    """Memory a model of ``parameters`` takes when loaded in ``dtype`` (with :data:`OVERHEAD`)."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_BYTES)}")
    return int(parameters * DTYPE_BYTES[dtype] * OVERHEAD)


def _torch_cuda():
    """torch.cuda when torch is already imported and sees a GPU (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_available() else None
    except RuntimeError:
        return None


def system_available() -> int:
    """Available system memory in bytes (``MemAvailable``; psutil when present)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def free_memory(device: str) -> int:
    """Free bytes on ``device``: the GPU's free memory for ``cuda`` / ``cuda:N`` (importing
    torch), the system's available memory for anything else."""
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            index = torch.device(device).index
            free, _total = torch.cuda.mem_get_info(index if index is not None else 0)
            return int(free)
    return system_available()


def memory_in_use() -> str:
    """A short line for the status bar: GPU memory this process holds (when torch is loaded and
    sees a GPU) and the process's resident memory. Never imports torch."""
    parts = []
    cuda = _torch_cuda()
    if cuda is not None:
        used = cuda.memory_allocated()
        _free, total = cuda.mem_get_info()
        parts.append(f"GPU {used / 2**30:.1f} / {total / 2**30:.0f} GiB")
    try:
        import psutil

        rss = psutil.Process().memory_info().rss
        parts.append(f"RAM {rss / 2**30:.2f} GiB")
    except ImportError:
        pass
    return " · ".join(parts)


@dataclass(frozen=True)
class LoadPlan:
    """Whether the segmenter and the evaluator are loaded together, and why (``message``).
    Byte counts are estimates (:func:`model_bytes`); ``None`` where unknown."""

    together: bool
    segmenter_bytes: int | None
    evaluator_bytes: int | None
    free_bytes: int
    message: str


def gib(n: int | None) -> str:
    """Bytes as ``12.3 GiB`` (``17.0 MiB`` under 1 GiB; ``?`` when unknown)."""
    if n is None:
        return "?"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def plan_loading(
    segmenter_bytes: int | None, evaluator_bytes: int | None, free_bytes: int
) -> LoadPlan:
    """Together when both estimates fit in ``free_bytes`` (or one is unknown: then nothing
    says they do not); else one after the other: the segmenter for stage 1, then freed, then
    the evaluator for stage 2."""
    if segmenter_bytes is None or evaluator_bytes is None:
        return LoadPlan(True, segmenter_bytes, evaluator_bytes, free_bytes, "")
    need = segmenter_bytes + evaluator_bytes
    if need <= free_bytes:
        return LoadPlan(
            True,
            segmenter_bytes,
            evaluator_bytes,
            free_bytes,
            f"segmenter {gib(segmenter_bytes)} + evaluator {gib(evaluator_bytes)} fit in "
            f"{gib(free_bytes)} free",
        )
    return LoadPlan(
        False,
        segmenter_bytes,
        evaluator_bytes,
        free_bytes,
        f"segmenter {gib(segmenter_bytes)} + evaluator {gib(evaluator_bytes)} do not both fit "
        f"in {gib(free_bytes)} free: loading them one after the other",
    )
