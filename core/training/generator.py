"""``rea2seg train generator``: the candidate generator's MLLM trained by LISA's recipe (App. B).

What trains (paper §5.1, App. B): LoRA on the LLaVA language model and the connection module
(``text_hidden_fcs``: two linear layers with ReLU and dropout); SAM stays frozen (the paper
freezes the SAM decoder, unlike LISA). Losses: mask BCE 2.0 + mask Dice 0.5 + text 1.0
(:mod:`core.training.losses`). AdamW, learning rate 3e-4, a linear warm-up of 100 steps then a
linear decay to zero (DeepSpeed's WarmupDecayLR, as LISA configures it), batch size 16 with
gradient accumulation 6, 14 epochs. The dataset mix 8 : 36 : 3 : 1 (semantic / referring /
reasoning / VQA) is a setting; the data come from a geometric training split
(:mod:`core.training.generator_data`).

Not from the paper, LISA's own defaults where the paper is silent: LoRA r 8, α 16, dropout 0.05 on
the language model's ``q_proj``/``v_proj``; the token embeddings and LM head trained in full
(LISA does so because it adds ``[SEG]``); an "epoch" of 500 steps; Adam β₂ 0.95; dropout 0.0 in
the connection module; gradient clipping 1.0.

Stages: ``lisa`` (the recipe above) and ``grounding`` (text targets only, every LLaVA weight
trained: LLaVA's alignment / instruction order for a model made from scratch, see
:mod:`core.training.generator_data`). A fresh small LLaVA of the real classes is written by
:func:`build_scratch_llava`.

Training runs on transformers' ``Trainer``: checkpoints (``checkpoint-N``, the trainable weights
only), ``--resume``, gradient accumulation, bf16 and multi-GPU through ``torchrun`` /
``accelerate launch``. The result is written to ``<out>/model`` in exactly the layout
:func:`core.models.lisa.load_lisa` reads (LLaVA directory with the LoRA merged, processor,
``text_hidden_fcs.pt``, ``sam.pth``, ``rea2seg.json``), plus ``training.json``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.training.common import LossCurveCallback, resume_checkpoint
from core.training.generator_data import SceneBank, make_sample
from core.training.generator_settings import GeneratorLossWeights, GeneratorSettings
from core.training.hf import parts_trainer_class, time_budget_callback
from core.training.losses import generator_loss
from core.training.splits import read_training_split

MODEL_SUBDIR = "model"
TRAINING_FILE = "training.json"
IGNORE_INDEX = -100


# -- data -----------------------------------------------------------------------------------


class GeneratorDataset(torch.utils.data.Dataset):
    """Samples of :func:`core.training.generator_data.make_sample`, encoded for the LLaVA model
    (prompt as :class:`core.models.lisa.LisaPromptModel` builds it, answer supervised) and for
    SAM (the longest-side resize to ``sam_img_size``, zero-padded to a square)."""

    def __init__(
        self,
        bank: SceneBank,
        processor: Any,
        options: Any,
        mix: dict[str, float],
        seed: int,
        length: int,
        sam_img_size: int | None,
    ) -> None:
        from core.models.lisa import default_prompt

        self.bank, self.processor, self.options = bank, processor, options
        self.mix, self.seed, self.length = mix, int(seed), int(length)
        self.sam_img_size = sam_img_size
        tok = processor.tokenizer
        self.template = options.prompt_template or default_prompt(tok)
        self.eos = tok.eos_token_id

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = make_sample(self.bank, i, self.mix, self.seed, self.options.answer_template)
        return self.encode(s.image, s.question, s.answer, s.mask)

    def encode(
        self, image: np.ndarray, question: str, answer: str, mask: np.ndarray | None
    ) -> dict[str, Any]:
        from core.models.lisa import expand_to_square, llava_pad_colour

        ip = self.processor.image_processor
        model_image = image
        if self.options.image_aspect_ratio == "pad":
            model_image = expand_to_square(image, llava_pad_colour(ip.image_mean))[0]
        prompt = self.template.replace("{image}", self.processor.image_token).replace(
            "{question}", question
        )
        inputs = self.processor(images=model_image, text=prompt, return_tensors="pt")
        tok = self.processor.tokenizer
        ans = tok(" " + answer, add_special_tokens=False)["input_ids"]
        if self.eos is not None:
            ans = [*ans, self.eos]
        prompt_ids = inputs["input_ids"][0]
        item: dict[str, Any] = {
            "input_ids": torch.cat([prompt_ids, torch.tensor(ans, dtype=torch.long)]),
            "labels": torch.tensor([IGNORE_INDEX] * len(prompt_ids) + ans, dtype=torch.long),
            "pixel_values": inputs["pixel_values"][0],
            "has_mask": mask is not None,
        }
        if mask is not None:
            if self.sam_img_size is None:
                raise ValueError("a segmentation sample needs SAM (no SAM was given)")
            item.update(sam_inputs(image, self.sam_img_size))
            item["gt_mask"] = torch.from_numpy(np.ascontiguousarray(mask)).float()
        return item


def sam_inputs(image: np.ndarray, img_size: int) -> dict[str, torch.Tensor]:
    """SAM's input for uint8 (H, W, 3): the longest side resized to ``img_size`` as
    ``SamPredictor.set_image`` does, uint8 (3, img_size, img_size) zero-padded bottom/right, and
    the resized (h, w)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    resized = ResizeLongestSide(img_size).apply_image(image)
    h, w = resized.shape[:2]
    canvas = np.zeros((img_size, img_size, 3), np.uint8)
    canvas[:h, :w] = resized
    return {
        "sam_image": torch.from_numpy(canvas).permute(2, 0, 1).contiguous(),
        "sam_input_hw": torch.tensor([h, w], dtype=torch.long),
    }


class GeneratorCollator:
    """Right-pads ``input_ids`` (pad id) and ``labels`` (-100); images stack; masks stay a list
    (images may differ in size)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = int(pad_id)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        n = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), n), IGNORE_INDEX, dtype=torch.long)
        att = torch.zeros((len(items), n), dtype=torch.long)
        for r, it in enumerate(items):
            k = len(it["input_ids"])
            ids[r, :k], labels[r, :k], att[r, :k] = it["input_ids"], it["labels"], 1
        seg = [it for it in items if it["has_mask"]]
        batch: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": att,
            "labels": labels,
            "pixel_values": torch.stack([it["pixel_values"] for it in items]),
            "has_mask": torch.tensor([bool(it["has_mask"]) for it in items]),
        }
        if seg:
            batch["sam_images"] = torch.stack([it["sam_image"] for it in seg])
            batch["sam_input_hw"] = torch.stack([it["sam_input_hw"] for it in seg])
            batch["gt_masks"] = [it["gt_mask"] for it in seg]
        return batch


# -- model ----------------------------------------------------------------------------------


class LisaGenerator(nn.Module):
    """LLaVA (LoRA-wrapped or not) + ``text_hidden_fcs`` + a frozen SAM, with LISA's forward:
    the hidden state of the position *predicting* ``[SEG]`` (LISA's one-token shift, as
    :func:`core.models.lisa.seg_query_position`) → ``text_hidden_fcs`` → one sparse prompt token
    → SAM's mask decoder in single-mask mode → logits at the image's resolution."""

    def __init__(
        self,
        llava: nn.Module,
        fcs: nn.Module,
        sam: nn.Module | None,
        seg_id: int,
        weights: GeneratorLossWeights,
    ) -> None:
        super().__init__()
        self.llava, self.fcs, self.seg_id, self.weights = llava, fcs, int(seg_id), weights
        self.sam = sam
        if sam is not None:
            for p in sam.parameters():
                p.requires_grad_(False)
            sam.eval()

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs=None, every_n_layers: int = 1, offload: bool = False
    ) -> None:
        """Activation checkpointing of the LLaVA layers (what transformers' Trainer calls)."""
        inner = self.llava.get_base_model() if hasattr(self.llava, "get_base_model") else self.llava
        inner.activation_checkpointing_enable(
            activation_checkpointing_kwargs=activation_checkpointing_kwargs
            or {"use_reentrant": False},
            every_n_layers=every_n_layers,
            offload=offload,
        )

    def train(self, mode: bool = True) -> LisaGenerator:
        super().train(mode)
        if self.sam is not None:
            self.sam.eval()  # frozen: no dropout, fixed statistics
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors that change in training (what a checkpoint has to keep)."""
        keep = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if k in keep}

    def _sam_pixels(self, images: torch.Tensor, hw: torch.Tensor) -> torch.Tensor:
        sam = self.sam
        x = (images.float() - sam.pixel_mean) / sam.pixel_std
        for i, (h, w) in enumerate(hw.tolist()):  # SAM pads after normalising: zeros outside
            x[i, :, h:, :] = 0
            x[i, :, :, w:] = 0
        return x

    def _pixel_dtype(self) -> torch.dtype:
        for name, p in self.llava.named_parameters():
            if "vision_tower" in name:
                return p.dtype
        return torch.float32

    def seg_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """For each row, the index before its first ``[SEG]`` (rows without one: -1)."""
        hit = input_ids == self.seg_id
        first = hit.int().argmax(1)
        return torch.where(hit.any(1), first - 1, torch.full_like(first, -1))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        pixel_values: torch.Tensor,
        has_mask: torch.Tensor,
        sam_images: torch.Tensor | None = None,
        sam_input_hw: torch.Tensor | None = None,
        gt_masks: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        dtype = self._pixel_dtype()
        out = self.llava(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values.to(dtype),
            labels=labels,
            output_hidden_states=True,
            use_cache=False,
        )
        text_loss = out.loss if bool((labels[:, 1:] != IGNORE_INDEX).any()) else None
        logits_list: list[torch.Tensor] = []
        if gt_masks:
            rows = has_mask.nonzero().flatten()
            pos = self.seg_positions(input_ids[rows])
            if bool((pos < 0).any()):
                raise ValueError("a segmentation sample has no [SEG] token")
            hidden = out.hidden_states[-1][rows, pos]
            emb = self.fcs(hidden.float())  # (n, 256)
            sam = self.sam
            with torch.no_grad():
                feats = sam.image_encoder(self._sam_pixels(sam_images, sam_input_hw))
            sparse0, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
            pe = sam.prompt_encoder.get_dense_pe()
            for i, gt in enumerate(gt_masks):
                sparse = torch.cat([sparse0.to(emb.dtype), emb[i][None, None]], dim=1)
                low, _ = sam.mask_decoder(
                    image_embeddings=feats[i : i + 1],
                    image_pe=pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=False,
                )
                h, w = sam_input_hw[i].tolist()
                full = sam.postprocess_masks(low, (h, w), tuple(gt.shape))
                logits_list.append(full[0, 0])
        parts = generator_loss(
            text_loss,
            logits_list or None,
            list(gt_masks) if logits_list else None,
            self.weights,
        )
        if parts["loss"].device != input_ids.device:
            parts["loss"] = parts["loss"].to(input_ids.device)
        if not parts["loss"].requires_grad:  # nothing supervised: keep backward() valid
            parts["loss"] = parts["loss"] + 0 * sum(
                p.sum() for p in self.fcs.parameters() if p.requires_grad
            )
        return parts


# -- loading the parts ----------------------------------------------------------------------


def load_sam_module(
    sam_checkpoint: str | Path | None, base: Path, model_type: str = "vit_h"
) -> tuple[nn.Module | None, Path | None]:
    """(frozen SAM module, the file it came from or None) through the project's SAM loading path:
    ``sam_checkpoint`` when given, else the base directory's own SAM (``sam.pth`` or LISA's
    ``visual_model`` tensors); (None, None) when there is none."""
    from core.models.lisa import find_lisa_sam
    from core.models.sam_backend import load_sam_backend

    if sam_checkpoint:
        backend = load_sam_backend("sam", sam_checkpoint, model_type=model_type, setting="--sam")
        return backend.sam, Path(sam_checkpoint)
    src = find_lisa_sam(base)
    if src is None:
        return None, None
    if src.kind == "file":
        backend = load_sam_backend("sam", src.path, model_type=model_type, setting="--base")
        return backend.sam, src.path
    from core.models.config import SamSpec, build_sam_v1

    spec = SamSpec("sam", None, None, model_type, "--base", src.path, src.prefix)
    return build_sam_v1(spec), None


def load_base(base: str | Path, dtype: torch.dtype) -> tuple[Any, Any, Any, dict[str, Any] | None]:
    """(LLaVA model, processor, LisaOptions, ``text_hidden_fcs`` state or None) of a LLaVA or
    LISA-layout directory; the tokenizer gets ``[SEG]`` when it lacks it."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from core.models.base import ModelLoadError
    from core.models.lisa import SEG_TOKEN, quiet_transformers, read_options, read_text_hidden_fcs

    p = Path(base)
    with quiet_transformers():
        model = LlavaForConditionalGeneration.from_pretrained(
            p, local_files_only=True, dtype=dtype, attn_implementation="sdpa"
        )
        processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    tok = processor.tokenizer
    if tok.convert_tokens_to_ids(SEG_TOKEN) in (None, tok.unk_token_id):
        tok.add_tokens([SEG_TOKEN], special_tokens=True)
        model.resize_token_embeddings(len(tok))
    try:
        fcs_state = read_text_hidden_fcs(p, "--base")
    except ModelLoadError:
        fcs_state = None
    return model, processor, read_options(p, "--base"), fcs_state


def build_scratch_llava(
    out_dir: str | Path,
    words: list[str],
    *,
    hidden: int = 128,
    layers: int = 4,
    heads: int = 4,
    vision_hidden: int = 128,
    vision_layers: int = 3,
    image_size: int = 112,
    patch_size: int = 14,
    seed: int = 0,
) -> Path:
    """A fresh LLaVA of the real classes (CLIP ViT + Llama, random weights) with a word-level
    tokenizer over ``words`` (``Whitespace`` pre-tokenizer: punctuation splits off) knowing
    ``<image>`` and ``[SEG]``, and a ``rea2seg.json`` (pad mode, no generation). What the
    grounding stage starts from when no pretrained LLaVA can be had."""
    import transformers as tf
    from tokenizers import Tokenizer, models, pre_tokenizers

    from core.models.base import OPTIONS_FILE

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "[SEG]"]
    vocab = {t: i for i, t in enumerate(specials)}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = tf.PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<image>", "[SEG]"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cfg = tf.LlavaConfig(
            vision_config=tf.CLIPVisionConfig(
                hidden_size=vision_hidden,
                intermediate_size=4 * vision_hidden,
                num_hidden_layers=vision_layers,
                num_attention_heads=max(vision_hidden // 32, 1),
                image_size=image_size,
                patch_size=patch_size,
                projection_dim=vision_hidden,
            ),
            text_config=tf.LlamaConfig(
                vocab_size=len(tok),
                hidden_size=hidden,
                intermediate_size=4 * hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                num_key_value_heads=heads,
                max_position_embeddings=1024,
                bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            ),
            image_token_id=tok.convert_tokens_to_ids("<image>"),
            vision_feature_select_strategy="default",
            vision_feature_layer=-2,
        )
        model = tf.LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    ip = tf.CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    tf.LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    ).save_pretrained(out)
    (out / OPTIONS_FILE).write_text(
        json.dumps({"image_aspect_ratio": "pad", "max_new_tokens": 0}, indent=1)
    )
    return out


def scratch_base(
    split_dir: str | Path,
    out_dir: str | Path,
    *,
    hidden: int = 128,
    layers: int = 4,
    image_size: int = 112,
    seed: int = 0,
) -> Path:
    """:func:`build_scratch_llava` with the vocabulary of the split's samples
    (:func:`core.training.generator_data.split_vocabulary`), written to ``out_dir``; an existing
    build there is reused."""
    from core.training.generator_data import split_vocabulary

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    words = split_vocabulary(SceneBank(split_dir))
    return build_scratch_llava(
        out, words, hidden=hidden, layers=layers, image_size=image_size, seed=seed
    )


def _peft_wrap(model: Any, s: GeneratorSettings) -> Any:
    from peft import LoraConfig, get_peft_model

    names = "|".join(re.escape(t) for t in s.lora_targets)
    cfg = LoraConfig(
        r=s.lora_r,
        lora_alpha=s.lora_alpha,
        lora_dropout=s.lora_dropout,
        # the language model only: CLIP's attention has q_proj/v_proj too
        target_modules=rf".*language_model.*\.({names})$",
        modules_to_save=["embed_tokens", "lm_head"] if s.train_embeddings else None,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def build_generator(
    base: str | Path,
    settings: GeneratorSettings,
    sam_checkpoint: str | Path | None = None,
    sam_model_type: str = "vit_h",
    dtype: torch.dtype = torch.float32,
) -> tuple[LisaGenerator, Any, Any, Path | None]:
    """(model ready to train, processor, LisaOptions, SAM source file) from ``base``."""
    from core.models.lisa import SEG_TOKEN, make_text_hidden_fcs

    base = Path(base)
    llava, processor, options, fcs_state = load_base(base, dtype)
    sam, sam_file = load_sam_module(sam_checkpoint, base, sam_model_type)
    if settings.stage == "lisa" and sam is None:
        raise ValueError(f"stage lisa needs SAM: '{base}' has none; give --sam FILE")
    hidden = llava.config.text_config.hidden_size
    out_dim = int(sam.prompt_encoder.embed_dim) if sam is not None else 256
    fcs = make_text_hidden_fcs(hidden, out_dim)
    if fcs_state is not None and tuple(fcs_state["2.weight"].shape) == (out_dim, hidden):
        fcs.load_state_dict({k: v.float() for k, v in fcs_state.items()})
    fcs[3].p = float(settings.fcs_dropout)
    if settings.train_mode == "lora":
        for p in llava.parameters():
            p.requires_grad_(False)
        llava = _peft_wrap(llava, settings)
    else:
        for p in llava.parameters():
            p.requires_grad_(True)
    for p in fcs.parameters():
        p.requires_grad_(settings.stage == "lisa")
    seg_id = processor.tokenizer.convert_tokens_to_ids(SEG_TOKEN)
    return LisaGenerator(llava, fcs, sam, seg_id, settings.loss), processor, options, sam_file


# -- saving ---------------------------------------------------------------------------------


def export_lisa_dir(
    model: LisaGenerator,
    processor: Any,
    options: Any,
    sam_file: Path | None,
    out: str | Path,
    info: dict[str, Any],
) -> Path:
    """Write the trained model in :func:`core.models.lisa.load_lisa`'s layout (LoRA merged)."""
    from core.models.base import OPTIONS_FILE
    from core.models.lisa import FCS_FILE, SAM_FILE

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    llava = model.llava
    if hasattr(llava, "merge_and_unload"):
        llava = llava.merge_and_unload()
    llava.save_pretrained(out)
    processor.save_pretrained(out)
    torch.save(
        {k: v.detach().cpu().float() for k, v in model.fcs.state_dict().items()}, out / FCS_FILE
    )
    if sam_file is not None:
        shutil.copyfile(sam_file, out / SAM_FILE)
    elif model.sam is not None:
        torch.save(model.sam.state_dict(), out / SAM_FILE)
    opts = dataclasses.asdict(options)
    (out / OPTIONS_FILE).write_text(json.dumps(opts, indent=1))
    (out / TRAINING_FILE).write_text(json.dumps(info, indent=1, default=str))
    return out


# -- the trainer ----------------------------------------------------------------------------


def train_generator(
    base: str | Path,
    split_dir: str | Path,
    out_dir: str | Path,
    settings: GeneratorSettings | None = None,
    *,
    sam_checkpoint: str | Path | None = None,
    sam_model_type: str = "vit_h",
    resume: bool = False,
    device: str | None = None,
    progress_bar: bool = True,
) -> Path:
    """Train on a geometric training split and write ``<out_dir>/model`` (module docstring);
    returns that directory. ``resume``: continue from the newest ``checkpoint-N`` in
    ``out_dir``. ``device`` ``"cpu"`` forces the CPU; otherwise the Trainer's choice."""
    from transformers import TrainingArguments

    s = settings or GeneratorSettings()
    split = read_training_split(split_dir)
    out = Path(out_dir)
    cuda = torch.cuda.is_available() and device != "cpu"
    bf16 = cuda if s.bf16 is None else bool(s.bf16)
    # with LoRA under bf16 the frozen base is held in bf16 (as LISA holds it); what trains stays
    # in float32 for AdamW
    load_dtype = torch.bfloat16 if bf16 and s.train_mode == "lora" else torch.float32
    model, processor, options, sam_file = build_generator(
        base, s, sam_checkpoint, sam_model_type, dtype=load_dtype
    )
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    tok = processor.tokenizer
    bank = SceneBank(split_dir)
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.lr,
        warmup_steps=s.warmup_steps,
        lr_scheduler_type="linear",
        max_steps=s.total_steps,
        weight_decay=0.0,
        adam_beta2=s.adam_beta2,
        max_grad_norm=s.max_grad_norm,
        logging_steps=s.logging_steps,
        save_steps=s.save_steps,
        save_total_limit=s.save_total_limit,
        seed=s.seed % 2**31,
        bf16=bf16,
        activation_checkpointing=s.activation_checkpointing,
        use_cpu=not cuda,
        dataloader_num_workers=s.workers,
        remove_unused_columns=False,
        # text-only batches leave the connection module unused, point-only ones SAM's box
        # embeddings: DDP must allow that
        ddp_find_unused_parameters=True,
        label_names=["labels"],
        report_to=[],
        disable_tqdm=not progress_bar,
    )
    world = max(int(args.world_size), 1)
    length = s.total_steps * s.batch_size * s.grad_accum * world
    sam_size = int(model.sam.image_encoder.img_size) if model.sam is not None else None
    data = GeneratorDataset(
        bank, processor, options, s.mix_probabilities(), s.seed, length, sam_size
    )
    trainer = parts_trainer_class()(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=GeneratorCollator(tok.pad_token_id if tok.pad_token_id is not None else 0),
        callbacks=[LossCurveCallback(out)]
        + ([time_budget_callback(s.max_minutes)] if s.max_minutes > 0 else []),
    )
    ckpt = resume_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise ValueError(f"--resume: no checkpoint-N folder in '{out}'")
    trainer.train(resume_from_checkpoint=ckpt)
    info = {
        "stage": s.stage,
        "base": str(base),
        "split": split,
        "settings": s.to_dict(),
        "steps": int(trainer.state.global_step),
        "resumed_from": ckpt,
    }
    target = out / MODEL_SUBDIR
    if trainer.args.should_save:
        export_lisa_dir(model, processor, options, sam_file, target, info)
    return target
