"""Settings of ``rea2seg train sam`` (:mod:`core.training.sam`), importing nothing heavy (the
command line reads its defaults here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.training.splits import DEFAULT_TRAINING_SEED


@dataclass(frozen=True)
class SamTrainSettings:
    """Settings of ``train sam`` (module docstring); defaults are the sizes measured to work on
    2 CPU cores (FEASIBILITY: ViT width 128, 4 blocks, image 256 → held-out mIoU ≈ 0.84 from
    one point after ~13 minutes), not from the paper."""

    img_size: int = 256
    arch: dict[str, Any] = field(
        default_factory=lambda: {
            "embed_dim": 128,
            "depth": 4,
            "num_heads": 4,
            "window_size": 8,
            "global_attn_indexes": [3],
            "prompt_dim": 128,
            "decoder_depth": 2,
            "decoder_mlp_dim": 256,
            "decoder_heads": 8,
            "iou_head_hidden_dim": 128,
        }
    )
    batch_size: int = 8
    prompts_per_image: int = 4
    box_fraction: float = 0.5
    lr: float = 1e-3
    warmup_steps: int = 50
    max_steps: int = 3000
    max_minutes: float = 0.0  # > 0: stop (with a checkpoint) after this much wall-clock time
    weight_decay: float = 0.01
    seed: int = DEFAULT_TRAINING_SEED
    save_steps: int = 500
    save_total_limit: int = 2
    logging_steps: int = 20
    workers: int = 0

    def __post_init__(self) -> None:
        if self.img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16, got {self.img_size}")
        if not 0.0 <= self.box_fraction <= 1.0:
            raise ValueError(f"box_fraction must be in [0, 1], got {self.box_fraction}")
        for name in ("batch_size", "prompts_per_image", "max_steps", "save_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
