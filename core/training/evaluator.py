"""Training the mask evaluator (§4.3, §4.4, App. B): InternVL + LoRA on the language model, on
transformers' ``Trainer`` (checkpoints, resume, gradient accumulation, bf16, DDP).

What the paper fixes (App. B): LoRA of rank 128 on InternVL3; two stages — stage 1 on general
data, stage 2 on the reasoning data with mixed chain-of-thought annotations, starting from stage
1's adapter; "for each question, we randomly shuffle the candidate masks and divide them into
groups of five"; the model reads the image and the five masks and writes their IoUs
autoregressively. Here:

- data: evaluator-training JSONL (``rea2seg export evaluator-train``), read back as whole
  questions (:func:`core.evaluator.trainset.load_question_sets`);
- every epoch each question's candidates are reshuffled into new groups of ``group_size``
  (:class:`RegroupedGroups`, seeds ``[seed, epoch, question]``, last group padded as at
  inference);
- each group is fed EXACTLY as inference builds it (:func:`build_group_prompt`), followed by
  the answer (:func:`core.evaluator.prompt.assistant_text`, as the export writes it) and the end-of-turn
  token; the loss is on those answer tokens only;
- a share ``cot_ratio`` of the groups gets the chain-of-thought prompt and answer (reasoning,
  ``Answer:``, scores); a group drawn for CoT whose question has no reasoning text is trained
  without CoT and counted (``cot_without_reasoning``).

Every choice the paper leaves open is a field of :class:`EvaluatorTrainSettings` whose comment
says "not from the paper".
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluator.adapter import write_adapter_declaration
from core.evaluator.adapter_dir import (
    KIND,
    is_adapter_dir,
    read_adapter_info,
    resolve_base,
)
from core.evaluator.grouping import GROUP_SIZE, make_groups
from core.evaluator.inputs import build_evaluator_input, chat_text
from core.evaluator.prompt import MAX_PATCHES, assistant_text, prompt_format
from core.evaluator.trainset import QuestionSet, load_question_sets
from core.models.config import EVALUATOR_PRESETS
from core.training.common import LOSS_CURVE_FILE, LossCurveCallback, resume_checkpoint
from core.training.evaluator_settings import EvaluatorTrainSettings

TRAIN_INFO = "rea2seg_train.json"


# -- the input the evaluator sees --------------------------------------------------------------
def build_group_prompt(
    processor,
    image_rgb: np.ndarray,
    masks: Sequence[np.ndarray],
    question: str,
    cot: bool,
    max_patches: int = MAX_PATCHES,
) -> tuple[str, list[np.ndarray], dict[str, Any]]:
    """The chat-templated prompt text, the images (original, then each mask as a white-on-black
    picture) and the processor's tiling arguments for one group: the inference input of
    :func:`core.evaluator.inputs.build_evaluator_input` (system turn, user turn, generation
    prompt), which the local backend sends for the same group."""
    item = build_evaluator_input(image_rgb, question, masks, cot=cot, max_patches=max_patches)
    return chat_text(processor, item), item.images, item.image_kwargs


def end_of_turn_id(tokenizer) -> int:
    """The token that ends the assistant turn (``<|im_end|>`` in InternVL's ChatML)."""
    tid = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if tid is None or tid == tokenizer.unk_token_id:
        tid = tokenizer.eos_token_id
    return int(tid)


# -- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupItem:
    """One training group: candidate indices of question ``question`` in model order."""

    question: int
    candidates: tuple[int, ...]
    cot: bool


@dataclass
class DataStats:
    questions: int = 0
    groups: int = 0
    cot: int = 0
    no_cot: int = 0
    cot_without_reasoning: int = 0


class RegroupedGroups:
    """A torch-style dataset of groups that regroups every epoch (:meth:`set_epoch`).

    Epoch ``e`` shuffles question ``q``'s candidates with seed ``[seed, e, q]`` into groups of
    ``group_size`` (:func:`core.evaluator.grouping.make_groups`; the number of groups per
    question does not change, so the length is the same every epoch) and draws, per group, CoT
    with probability ``cot_ratio`` (seed ``[seed, e, q, 1]``).
    """

    def __init__(
        self,
        questions: Sequence[QuestionSet],
        *,
        group_size: int = GROUP_SIZE,
        cot_ratio: float = 0.0,
        seed: int = 0,
        pad_last: bool = True,
    ) -> None:
        self.questions = list(questions)
        self.group_size = int(group_size)
        self.cot_ratio = float(cot_ratio)
        self.seed = int(seed)
        self.pad_last = bool(pad_last)
        self.epoch = -1
        self.items: list[GroupItem] = []
        self.stats = DataStats()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        epoch = int(epoch)
        if epoch == self.epoch:
            return
        items: list[GroupItem] = []
        st = DataStats(questions=len(self.questions))
        for q, qs in enumerate(self.questions):
            groups = make_groups(
                range(len(qs)), self.group_size, [self.seed, epoch, q], pad_last=self.pad_last
            )
            draws = np.random.default_rng([self.seed, epoch, q, 1]).random(len(groups))
            for g, d in zip(groups, draws, strict=True):
                want = bool(d < self.cot_ratio)
                cot = want and qs.reasoning is not None
                st.cot_without_reasoning += int(want and not cot)
                st.cot += int(cot)
                st.no_cot += int(not cot)
                items.append(GroupItem(q, tuple(g.candidate_ids), cot))
        st.groups = len(items)
        self.items, self.stats, self.epoch = items, st, epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        qs = self.questions[it.question]
        ious = [qs.ious[c] for c in it.candidates]
        return {
            "image": qs.load_image(),
            "masks": [qs.load_mask(c) for c in it.candidates],
            "question": qs.question,
            "cot": it.cot,
            "answer": assistant_text(ious, it.cot, qs.reasoning if it.cot else None),
        }


class GroupCollator:
    """Turns :class:`RegroupedGroups` items into model inputs: the inference prompt
    (:func:`build_group_prompt`) + answer + end of turn; ``labels`` are -100 except on the answer
    and end-of-turn tokens. Right-padded; ``pixel_values`` of all groups concatenated."""

    def __init__(self, processor, max_patches: int = 12) -> None:
        self.processor = processor
        self.tok = processor.tokenizer
        self.max_patches = int(max_patches)
        self.end_id = end_of_turn_id(self.tok)
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.end_id

    def encode(self, item: dict[str, Any]) -> dict[str, Any]:
        """One item: ``input_ids``/``labels`` (1-D long tensors) and its ``pixel_values``."""
        import torch

        text, images, tiling = build_group_prompt(
            self.processor,
            item["image"],
            item["masks"],
            item["question"],
            item["cot"],
            self.max_patches,
        )
        enc = self.processor(text=[text], images=images, return_tensors="pt", **tiling)
        prompt = enc["input_ids"][0]
        answer = self.tok(item["answer"], add_special_tokens=False)["input_ids"] + [self.end_id]
        answer = torch.tensor(answer, dtype=prompt.dtype)
        return {
            "input_ids": torch.cat([prompt, answer]),
            "labels": torch.cat([torch.full_like(prompt, -100), answer]),
            "pixel_values": enc["pixel_values"],
        }

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        encs = [self.encode(it) for it in items]
        n = max(len(e["input_ids"]) for e in encs)
        ids = torch.full((len(encs), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(encs), n), -100, dtype=torch.long)
        attn = torch.zeros((len(encs), n), dtype=torch.long)
        for i, e in enumerate(encs):
            k = len(e["input_ids"])
            ids[i, :k], labels[i, :k], attn[i, :k] = e["input_ids"], e["labels"], 1
        return {
            "input_ids": ids,
            "labels": labels,
            "attention_mask": attn,
            "pixel_values": torch.cat([e["pixel_values"] for e in encs]),
        }


# -- the trainer ---------------------------------------------------------------------------------
def _callbacks(
    dataset: RegroupedGroups, out: Path, batch_per_step: int, max_minutes: float | None = None
):
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    class Regroup(TrainerCallback):
        """New groups at every epoch start (also after a resume mid-epoch: the epoch counter
        comes from the checkpoint's state)."""

        def on_epoch_begin(self, args, state, control, **kwargs):
            dataset.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))

    class Progress(ProgressCallback):
        """The step bar with the last loss and samples per second."""

        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            self._t0, self._s0 = time.perf_counter(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if (
                not state.is_world_process_zero
                or self.training_bar is None
                or "loss" not in (logs or {})
            ):
                return
            dt = max(time.perf_counter() - self._t0, 1e-9)
            sps = (state.global_step - self._s0) * batch_per_step / dt
            post = {"loss": f"{logs['loss']:.4f}", "samples/s": f"{sps:.2f}"}
            self.training_bar.set_postfix(post, refresh=False)

    class TimeLimit(TrainerCallback):
        """Stops after ``max_minutes`` of training (the trainer then saves as at the end)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if max_minutes is not None and time.perf_counter() - self._t0 > 60 * max_minutes:
                control.should_training_stop = True
                control.should_save = True

    return [Regroup(), Progress(), LossCurveCallback(out), TimeLimit()]


def _device_setup():
    import torch

    cuda = torch.cuda.is_available()
    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    return cuda, bf16, (torch.bfloat16 if bf16 else torch.float32)


def _model(base_dir: Path, parent: Path | None, s: EvaluatorTrainSettings, dtype):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import InternVLForConditionalGeneration

    model = InternVLForConditionalGeneration.from_pretrained(
        base_dir, local_files_only=True, dtype=dtype
    )
    if s.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if parent is not None:  # stage 2 continues stage 1's adapter (App. B)
        return PeftModel.from_pretrained(model, parent, is_trainable=True)
    cfg = LoraConfig(
        r=s.lora_rank,
        lora_alpha=s.lora_alpha,
        lora_dropout=s.lora_dropout,
        target_modules=s.lora_targets,
        bias="none",
        modules_to_save=list(s.modules_to_save) or None,
    )
    return get_peft_model(model, cfg)


def trained_formats(
    cot_ratio: float, questions: Sequence[QuestionSet], max_patches: int = MAX_PATCHES
) -> list[str]:
    """The prompt formats a run with ``cot_ratio`` trains on: CoT only when every group is drawn
    for CoT and every question has reasoning; no-CoT only when none can be."""
    has = [qs.reasoning is not None for qs in questions]
    out = []
    if cot_ratio > 0 and any(has):
        out.append(prompt_format(True, max_patches))
    if cot_ratio < 1 or not all(has):
        out.append(prompt_format(False, max_patches))
    return out


@dataclass
class TrainResult:
    out: str
    steps: int
    seconds: float
    final_loss: float | None
    resumed_from: str | None
    data: dict[str, int] = field(default_factory=dict)


def train_evaluator(
    data: Sequence[str | Path],
    base: str | Path,
    out: str | Path,
    settings: EvaluatorTrainSettings | None = None,
    *,
    resume: bool = False,
) -> TrainResult:
    """Train one stage and write the adapter directory ``out`` (PEFT adapter +
    ``rea2seg_adapter.json``, :mod:`core.evaluator.adapter_dir`; checkpoints ``out/checkpoint-N``;
    ``out/loss_curve.jsonl``; ``out/rea2seg_train.json`` with the settings and data counts).

    ``base``: a preset (``tiny-random``, ``internvl3-8b``), an InternVL ``-hf`` checkpoint
    directory, or an adapter directory of an earlier stage (App. B: stage 2 starts from stage 1's
    adapter; the base is then that adapter's base). ``resume``: continue from the newest
    checkpoint under ``out`` (none: start afresh). Runs as one process or under ``torchrun`` /
    ``accelerate launch`` (DDP; gloo on CPU).
    """
    from transformers import AutoProcessor, Trainer, TrainingArguments
    from transformers.trainer_callback import ProgressCallback

    s = settings or EvaluatorTrainSettings()
    out = Path(out).expanduser().resolve()
    parent: Path | None = None
    base_ref = str(base)
    if is_adapter_dir(base):
        parent = Path(base).expanduser().resolve()
        base_ref = read_adapter_info(parent)["base"]
    base_dir = resolve_base(base_ref, adapter_dir=parent)
    if (
        parent is not None
        and base_ref not in EVALUATOR_PRESETS
        and not Path(base_ref).is_absolute()
    ):
        base_ref = str(base_dir)  # relative to the parent adapter: name it absolutely here
    elif not Path(base_ref).is_absolute() and Path(base_ref).expanduser().is_dir():
        base_ref = str(Path(base_ref).expanduser().resolve())
    questions = load_question_sets(list(data))
    if not questions:
        raise ValueError("no training questions in " + ", ".join(map(str, data)))
    cot_ratio = s.effective_cot_ratio
    dataset = RegroupedGroups(
        questions, group_size=s.group_size, cot_ratio=cot_ratio, seed=s.seed, pad_last=s.pad_last
    )
    cuda, bf16, dtype = _device_setup()
    processor = AutoProcessor.from_pretrained(base_dir, local_files_only=True)
    model = _model(base_dir, parent, s, dtype)
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        learning_rate=s.lr,
        lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup,
        weight_decay=s.weight_decay,
        logging_steps=1,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=s.save_total_limit,
        bf16=bf16,
        use_cpu=not cuda,
        # torchrun / accelerate launch set WORLD_SIZE; on CPU the processes talk over gloo
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        ddp_find_unused_parameters=False,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=s.seed,
        label_names=["labels"],
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=GroupCollator(processor, s.max_patches),
    )
    world = max(1, args.world_size)
    trainer.remove_callback(ProgressCallback)
    for cb in _callbacks(dataset, out, s.batch_size * s.grad_accum * world, s.max_minutes):
        trainer.add_callback(cb)
    ckpt = resume_checkpoint(out) if resume else None
    stats = asdict(dataset.stats)
    main = trainer.is_world_process_zero()
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if ckpt is None:  # a fresh run starts a fresh curve (a resumed one continues its own)
            (out / LOSS_CURVE_FILE).unlink(missing_ok=True)
        info = {
            "settings": asdict(replace(s, cot_ratio=cot_ratio)),
            "data": [str(Path(d).expanduser().resolve()) for d in data],
            "base": base_ref,
            "parent_adapter": str(parent) if parent else None,
            "epoch0": stats,
            "world_size": world,
        }
        (out / TRAIN_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=ckpt)
    seconds = time.perf_counter() - t0
    trainer.save_model(str(out))
    if main:
        formats = trained_formats(cot_ratio, questions, s.max_patches)
        write_adapter_declaration(
            out,
            formats[0],  # a run on both formats declares (and is checked as) its CoT one
            kind=KIND,
            version=1,
            base=base_ref,
            prompt_formats=formats,
            # a scores-only answer is a few tokens per mask; a CoT answer needs room to reason
            max_new_tokens=(
                512 if prompt_format(True, s.max_patches) in formats else 10 * s.group_size + 8
            ),
            group_size=s.group_size,
            stage=s.stage,
            parent_adapter=str(parent) if parent else None,
        )
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return TrainResult(
        str(out),
        int(result.global_step),
        seconds,
        float(losses[-1]) if losses else None,
        ckpt,
        stats,
    )
