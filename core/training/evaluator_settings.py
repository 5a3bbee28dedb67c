"""The evaluator trainer's settings (App. B), apart from the trainer so that the command line
and the miniature's config read them without importing torch or transformers."""

from __future__ import annotations

from dataclasses import dataclass

from core.evaluator.grouping import GROUP_SIZE
from core.evaluator.prompt import MAX_PATCHES

LM_LINEAR = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(frozen=True)
class EvaluatorTrainSettings:
    """Settings of one training stage (App. B); defaults as the paper where it says."""

    stage: int = 2  # App. B: 1 = general data, 2 = reasoning data with CoT, from stage 1's adapter
    lora_rank: int = 128  # App. B: "LoRA (rank 128)"
    group_size: int = GROUP_SIZE  # App. B: groups of five
    lora_alpha: int = 256  # not from the paper: 2 × rank, the usual LoRA scaling
    lora_dropout: float = 0.05  # not from the paper
    lora_targets: str = LM_LINEAR  # not from the paper: every linear layer of the language model
    epochs: float = 1.0  # not from the paper
    lr: float = 1e-4  # not from the paper (a common LoRA learning rate)
    batch_size: int = 1  # not from the paper: groups per device per step
    grad_accum: int = 1  # not from the paper
    max_steps: int = -1  # -1: run ``epochs`` epochs
    cot_ratio: float | None = (
        None  # not from the paper ("mixed CoT"): None = 0 in stage 1, 0.5 in stage 2
    )
    warmup: float = 0.03  # not from the paper: share of steps with linear warm-up
    lr_scheduler: str = "cosine"  # not from the paper: transformers' scheduler name after warm-up
    max_minutes: float | None = (
        None  # stop (and save) after this much training time; None: no limit
    )
    modules_to_save: tuple[str, ...] = ()  # not from the paper: modules trained fully besides LoRA
    weight_decay: float = 0.0  # not from the paper
    save_steps: int = 100  # not from the paper: checkpoint every N optimizer steps
    save_total_limit: int | None = 3  # not from the paper: checkpoints kept
    max_patches: int = MAX_PATCHES  # tiles a group's images share, as inference
    pad_last: bool = True  # as inference (core.evaluator.grouping)
    gradient_checkpointing: bool = False  # not from the paper: saves memory on large models
    seed: int = 0

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        if self.cot_ratio is not None and not 0.0 <= self.cot_ratio <= 1.0:
            raise ValueError(f"cot_ratio must be in [0, 1], got {self.cot_ratio}")
        for name in ("lora_rank", "group_size", "batch_size", "grad_accum", "save_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def effective_cot_ratio(self) -> float:
        if self.cot_ratio is not None:
            return float(self.cot_ratio)
        return 0.0 if self.stage == 1 else 0.5
