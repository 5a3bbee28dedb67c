"""``rea2seg train generator``: LISA's recipe (App. B) on a geometric training split.

Thin: parses the options (defaults from :class:`core.training.generator_settings.GeneratorSettings`,
imported without torch) and calls :func:`core.training.generator.train_generator`. Multi-GPU:
``torchrun --nproc_per_node N -m core.cli train generator …`` (or ``accelerate launch -m core.cli
…``); transformers' Trainer picks the processes up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import (
    add_checkpoint_options,
    add_split_options,
    positive_int,
    training_split,
)
from core.training.generator_settings import (
    GROUNDING_KINDS,
    KINDS,
    STAGES,
    GeneratorLossWeights,
    GeneratorSettings,
)

_D = GeneratorSettings()
_W = GeneratorLossWeights()


def settings_from_args(args: argparse.Namespace) -> GeneratorSettings:
    """The :class:`GeneratorSettings` the options describe (``ValueError`` for bad values)."""
    return GeneratorSettings(
        stage=args.stage,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        mix=args.mix,
        loss=GeneratorLossWeights(
            bce=args.bce_weight, dice=args.dice_weight, text=args.text_weight
        ),
        train=args.train,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        lora_targets=tuple(t for t in args.lora_targets.split(",") if t),
        train_embeddings=not args.no_train_embeddings,
        fcs_dropout=args.fcs_dropout,
        seed=args.seed,
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        logging_steps=args.logging_steps,
        workers=args.workers,
        bf16=args.bf16,
        activation_checkpointing=args.activation_checkpointing,
    )


def cmd_train_generator(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2
    from core.training.generator import scratch_base, train_generator

    out = Path(args.out)
    try:
        split = training_split(args, out)
        base = args.base
        if base == "scratch":
            base = scratch_base(
                split,
                out / "base",
                hidden=args.scratch_width,
                layers=args.scratch_layers,
                image_size=args.scratch_image_size,
            )
        model_dir = train_generator(
            base,
            split,
            out,
            settings,
            sam_checkpoint=args.sam,
            sam_model_type=args.sam_model_type,
            resume=args.resume,
            device=args.device,
        )
    except ValueError as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {model_dir} (load it as the mllm_path of a LISA preset)")
    return 0


def register(trainers: argparse._SubParsersAction) -> None:
    p = trainers.add_parser(
        "generator",
        help="train the candidate generator's MLLM by LISA's recipe (App. B) on a geometric "
        "training split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--base",
        required=True,
        metavar="DIR|scratch",
        help="the starting LLaVA: a LLaVA or LISA-layout directory (rea2seg convert lisa), or "
        "'scratch' for a fresh small LLaVA with the split's vocabulary (then train --stage "
        "grounding first)",
    )
    p.add_argument("--out", required=True, help="output folder: checkpoints, loss curve, model/")
    add_split_options(p)
    p.add_argument(
        "--sam",
        metavar="FILE",
        help="frozen SAM checkpoint (segment-anything, or one from rea2seg train sam); "
        "default: the base directory's own sam.pth",
    )
    p.add_argument(
        "--sam-model-type",
        default="vit_h",
        help="segment-anything registry key of a released SAM file (default vit_h)",
    )
    p.add_argument(
        "--stage",
        choices=STAGES,
        default=_D.stage,
        help="lisa: the LISA recipe with [SEG] masks (default); grounding: text targets from "
        "the scene graphs first, for a model trained from scratch",
    )
    p.add_argument("--lr", type=float, default=_D.lr, help=f"peak learning rate ({_D.lr})")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=_D.warmup_steps,
        help=f"linear warm-up steps before the linear decay ({_D.warmup_steps})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=_D.batch_size,
        help=f"samples per device and step ({_D.batch_size})",
    )
    p.add_argument(
        "--grad-accum",
        type=positive_int,
        default=_D.grad_accum,
        help=f"gradient accumulation steps ({_D.grad_accum})",
    )
    p.add_argument("--epochs", type=positive_int, default=_D.epochs, help=f"epochs ({_D.epochs})")
    p.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=_D.steps_per_epoch,
        help=f"optimizer steps per epoch (LISA's {_D.steps_per_epoch})",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="total optimizer steps; overrides epochs × steps per epoch when > 0",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="stop (with a checkpoint) after this much wall-clock time; 0: no limit",
    )
    p.add_argument(
        "--mix",
        default="",
        help=f"dataset mix, {':'.join(KINDS)} for --stage lisa (default the paper's "
        f"8:36:3:1) or {':'.join(GROUNDING_KINDS)} for --stage grounding",
    )
    p.add_argument("--bce-weight", type=float, default=_W.bce, help=f"mask BCE weight ({_W.bce})")
    p.add_argument(
        "--dice-weight", type=float, default=_W.dice, help=f"mask Dice weight ({_W.dice})"
    )
    p.add_argument(
        "--text-weight", type=float, default=_W.text, help=f"text loss weight ({_W.text})"
    )
    p.add_argument(
        "--train",
        choices=("lora", "full"),
        default="",
        help="what of LLaVA trains: LoRA adapters (default for --stage lisa) or every weight "
        "(default for --stage grounding)",
    )
    p.add_argument("--lora-r", type=int, default=_D.lora_r, help=f"LoRA rank ({_D.lora_r})")
    p.add_argument(
        "--lora-alpha", type=int, default=_D.lora_alpha, help=f"LoRA alpha ({_D.lora_alpha})"
    )
    p.add_argument(
        "--lora-dropout",
        type=float,
        default=_D.lora_dropout,
        help=f"LoRA dropout ({_D.lora_dropout})",
    )
    p.add_argument(
        "--lora-targets",
        default=",".join(_D.lora_targets),
        help="comma-separated language-model module names given LoRA "
        f"({','.join(_D.lora_targets)})",
    )
    p.add_argument(
        "--no-train-embeddings",
        action="store_true",
        help="keep the token embeddings and LM head frozen (LISA trains them)",
    )
    p.add_argument(
        "--fcs-dropout",
        type=float,
        default=_D.fcs_dropout,
        help=f"dropout of the connection module ({_D.fcs_dropout}, LISA's)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=_D.seed,
        help="seed of the sample draws and of torch",
    )
    add_checkpoint_options(p, _D)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 mixed precision (default: on with CUDA)",
    )
    p.add_argument(
        "--activation-checkpointing",
        action="store_true",
        help="recompute LLaVA's activations in the backward pass (less memory; LISA's 7B runs)",
    )
    p.add_argument(
        "--device", choices=("cpu",), default=None, help="cpu: train on the CPU even with a GPU"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in OUT"
    )
    p.add_argument(
        "--scratch-width", type=int, default=128, help="hidden size of --base scratch (128)"
    )
    p.add_argument(
        "--scratch-layers", type=int, default=4, help="language layers of --base scratch (4)"
    )
    p.add_argument(
        "--scratch-image-size",
        type=int,
        default=112,
        help="CLIP input size of --base scratch (112: an 8 × 8 token grid)",
    )
    p.set_defaults(func=cmd_train_generator)
