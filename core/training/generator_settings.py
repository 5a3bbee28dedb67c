"""Every setting of ``rea2seg train generator`` in one place, importing nothing heavy (the
command line reads its defaults here). The recipe and where each default comes from:
:mod:`core.training.generator`; the data kinds and the mix: :mod:`core.training.generator_data`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.training.splits import DEFAULT_TRAINING_SEED

STAGES = ("lisa", "grounding")
KINDS = ("semantic", "referring", "reasoning", "vqa")
PAPER_MIX = "8:36:3:1"  # App. B: semantic : referring : reasoning : VQA
GROUNDING_KINDS = ("caption", "what_at", "where_is", "attribute", "count")
GROUNDING_MIX = "1:2:2:2:1"  # not from the paper


def parse_mix(text: str | Sequence[float], kinds: Sequence[str] = KINDS) -> dict[str, float]:
    """``"8:36:3:1"`` (or numbers) → ``{kind: probability}`` over ``kinds``, in that order.
    Weights must be ≥ 0 with a positive sum; a zero weight drops the kind."""
    vals = [float(v) for v in (text.split(":") if isinstance(text, str) else text)]
    if len(vals) != len(kinds):
        raise ValueError(f"the mix needs {len(kinds)} weights ({':'.join(kinds)}), got {text!r}")
    if any(v < 0 for v in vals) or sum(vals) <= 0:
        raise ValueError(f"mix weights must be ≥ 0 with a positive sum, got {text!r}")
    total = sum(vals)
    return {k: v / total for k, v in zip(kinds, vals, strict=True)}


@dataclass(frozen=True)
class GeneratorLossWeights:
    """Weights of the generator's loss parts (App. B, following LISA): mask BCE ``bce`` 2.0,
    mask Dice ``dice`` 0.5, text cross-entropy ``text`` 1.0."""

    bce: float = 2.0
    dice: float = 0.5
    text: float = 1.0

    def __post_init__(self) -> None:
        for name in ("bce", "dice", "text"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"loss weight {name} must be ≥ 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class GeneratorSettings:
    """Every setting of ``train generator``, with the paper's (App. B) or LISA's defaults
    (:mod:`core.training.generator` says which). ``max_steps`` (when > 0) overrides ``epochs × steps_per_epoch``;
    ``mix`` is ``semantic:referring:reasoning:vqa`` for stage ``lisa`` and
    ``caption:what_at:where_is:attribute:count`` for stage ``grounding`` (``""`` = the stage's
    default)."""

    stage: str = "lisa"
    lr: float = 3e-4
    warmup_steps: int = 100
    batch_size: int = 16
    grad_accum: int = 6
    epochs: int = 14
    steps_per_epoch: int = 500
    max_steps: int = 0
    max_minutes: float = 0.0  # > 0: stop (with a checkpoint) after this much wall-clock time
    mix: str = ""
    loss: GeneratorLossWeights = field(default_factory=GeneratorLossWeights)
    train: str = ""  # "lora" | "full"; "" = lora for stage lisa, full for grounding
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    train_embeddings: bool = True
    fcs_dropout: float = 0.0
    adam_beta2: float = 0.95
    max_grad_norm: float = 1.0
    seed: int = DEFAULT_TRAINING_SEED
    save_steps: int = 500
    save_total_limit: int = 2
    logging_steps: int = 10
    workers: int = 0
    bf16: bool | None = None  # None: on when CUDA is available
    activation_checkpointing: bool = False  # LISA turns it on for the 7B model

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.train not in ("", "lora", "full"):
            raise ValueError(f"train must be 'lora' or 'full', got {self.train!r}")
        for name in ("batch_size", "grad_accum", "epochs", "steps_per_epoch", "save_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.max_steps < 0:
            raise ValueError("lr must be > 0; warmup_steps and max_steps ≥ 0")
        if self.lora_r < 1 and self.train_mode == "lora":
            raise ValueError(f"lora_r must be ≥ 1, got {self.lora_r}")
        self.mix_probabilities()  # validates the mix

    @property
    def train_mode(self) -> str:
        return self.train or ("lora" if self.stage == "lisa" else "full")

    @property
    def total_steps(self) -> int:
        return int(self.max_steps) or int(self.epochs) * int(self.steps_per_epoch)

    def mix_probabilities(self) -> dict[str, float]:
        if self.stage == "grounding":
            return parse_mix(self.mix or GROUNDING_MIX, GROUNDING_KINDS)
        return parse_mix(self.mix or PAPER_MIX, KINDS)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d
