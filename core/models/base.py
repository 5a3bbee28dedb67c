"""Interfaces between the segmentation MLLM, the SAM backend and the pipeline (§4.1–4.2).

A *segmenter* is a pair: a :class:`PromptModel` (LLaVA+[SEG] for LISA-style models,
Qwen2.5-VL+queries for LENS) that turns (image, question) into a prompt embedding for SAM
plus the prompt token's attention row over the image tokens, and a :class:`SamBackend`
(segment-anything SAM or SAM2) that owns the image embedding, decodes prompts and runs the
seed-point automatic mask generator. The pipeline in :mod:`core.pipeline.stage1` only talks
to these two protocols.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np

SamKind = Literal["sam", "sam2"]
ProgressFn = Callable[[str, float], None]  # (step name, fraction 0..1)
CancelFn = Callable[[], bool]


class ModelLoadError(RuntimeError):
    """A checkpoint could not be loaded. The message names the file and the setting."""


T = TypeVar("T")
OPTIONS_FILE = "rea2seg.json"
"""The model directory's own options (prompt template, token counts); absent = defaults."""


def read_options_file(path: Path, cls: type[T], setting: str) -> T:
    """The options dataclass ``cls`` from ``path/rea2seg.json`` (defaults when absent; unknown
    keys ignored). A malformed file is a :class:`ModelLoadError` naming it and ``setting``."""
    f = path / OPTIONS_FILE
    if not f.is_file():
        return cls()
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))
        known = {x.name for x in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in raw.items() if k in known})
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(
            f"'{f}' is not a valid model options file: {exc} (setting {setting})"
        ) from exc


@dataclass
class PromptModelOutput:
    """What the MLLM gives the pipeline for one (image, question).

    prompt_embedding: float32 (n_prompt, C_sam) sparse prompt tokens, already projected for
        the SAM/SAM2 mask decoder (LISA: ``text_hidden_fcs`` of the hidden state that predicts
        ``[SEG]``; LENS: connector output of the query tokens).
    attention: float32 (n_layers, n_heads, n_image_tokens): softmax attention from the prompt
        token (``[SEG]`` / first query token) to each image token at ``layers``.
    grid_hw: the image-token grid (gh, gw); ``gh * gw == n_image_tokens``.
    token_boxes_xyxy: float32 (n_image_tokens, 4): each token's region in original-image pixels
        (the model's resize/pad undone).
    """

    prompt_embedding: np.ndarray
    attention: np.ndarray
    layers: list[int]
    grid_hw: tuple[int, int]
    token_boxes_xyxy: np.ndarray
    generated_text: str = ""
    prompt_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class PromptModel(Protocol):
    name: str
    is_random: bool
    default_layers: list[int]

    def encode(
        self, image_rgb: np.ndarray, question: str, layers: list[int] | None = None
    ) -> PromptModelOutput:
        """image_rgb: uint8 (H, W, 3). Returns the prompt embedding and attention rows."""
        ...


@dataclass
class AmgMask:
    mask: np.ndarray  # bool (H, W)
    predicted_iou: float
    stability: float
    seed_index: int


@runtime_checkable
class SamBackend(Protocol):
    kind: SamKind
    name: str
    is_random: bool

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Compute and cache the image embedding (once per image)."""
        ...

    def image_features(self) -> np.ndarray:
        """float32 (C, H', W') image embedding of the current image."""
        ...

    def embedding_xy_scale(self) -> tuple[float, float]:
        """(sx, sy) that map original-image pixels to embedding-grid coordinates."""
        ...

    def decode_prompt_embedding(
        self, prompt_embedding: np.ndarray, multimask: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits float32 (M, H, W) at image resolution, predicted IoU float32 (M,) and the
        decoder's low-resolution logits float32 (M, s, s) (SAM's mask-prompt size), as
        ``SamPredictor.predict`` returns them."""
        ...

    def predict_points(
        self,
        points_xy: np.ndarray,
        labels: np.ndarray,
        mask_logits: np.ndarray | None,
        multimask: bool,
        *,
        box_xyxy: np.ndarray | tuple[float, float, float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Point and/or box ``(x0, y0, x1, y1)`` (image pixels) prompt, plus an optional (H, W)
        logit mask → logits (M, H, W), predicted IoU (M,)."""
        ...

    def amg_from_seeds(self, seeds_xy: np.ndarray, settings: dict[str, Any]) -> list[AmgMask]:
        """Seed-point AMG: one point per prompt, IoU/stability filter, NMS; best first."""
        ...
