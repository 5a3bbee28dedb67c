"""``rea2seg train evaluator``: LoRA fine-tuning of the mask evaluator (§4.4, App. B) on
``rea2seg export evaluator-train`` files (:func:`core.training.evaluator.train_evaluator`)."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import positive_int


def _ratio(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return v


def cmd_train_evaluator(args: argparse.Namespace) -> int:
    from core.training.common import end_distributed
    from core.training.evaluator import EvaluatorTrainSettings, train_evaluator

    s = EvaluatorTrainSettings(
        stage=args.stage,
        lora_rank=args.lora_rank,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_steps=args.max_steps,
        cot_ratio=args.cot_ratio,
        save_steps=args.save_steps,
        max_patches=args.max_patches,
        seed=args.seed,
    )
    from core.evaluator.adapter_dir import is_adapter_dir

    if args.stage == 2 and not is_adapter_dir(args.base):
        print(
            "note: stage 2 starts from a new adapter; App. B starts it from stage 1's "
            "(--base STAGE1_OUT)",
            file=sys.stderr,
        )
    res = train_evaluator(args.data, args.base, args.out, s, resume=args.resume)
    if args.resume and not res.resumed_from:
        print(f"--resume: no checkpoint in {args.out}, started afresh", file=sys.stderr)
    d = res.data
    print(
        f"stage {args.stage}: {res.steps} steps in {res.seconds:.1f} s, last loss "
        f"{res.final_loss if res.final_loss is None else round(res.final_loss, 4)}"
        + (f", resumed from {res.resumed_from}" if res.resumed_from else "")
    )
    print(
        f"data (epoch 0): {d['questions']} questions, {d['groups']} groups, {d['cot']} with CoT, "
        f"{d['no_cot']} without; {d['cot_without_reasoning']} drawn for CoT had no reasoning text "
        "and were trained without"
    )
    print(f"adapter: {res.out} (run it with: rea2seg run --evaluator {res.out})")
    end_distributed()  # every rank waits here, then the group closes: no rank exits mid-talk
    return 0


def register(trainers: argparse._SubParsersAction) -> None:
    """Add ``train evaluator``."""
    from core.evaluator.grouping import GROUP_SIZE

    p = trainers.add_parser(
        "evaluator",
        help="LoRA fine-tuning of the InternVL mask evaluator (App. B); works under torchrun",
    )
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="FILE.jsonl",
        help="evaluator-training file from rea2seg export evaluator-train (repeat for several)",
    )
    p.add_argument(
        "--base",
        required=True,
        metavar="PRESET|DIR",
        help="base model: tiny-random, internvl3-8b, an InternVL -hf checkpoint folder, or the "
        "adapter folder of stage 1 (stage 2 continues it, App. B)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="adapter and checkpoint folder")
    p.add_argument(
        "--stage",
        type=int,
        choices=(1, 2),
        default=2,
        help="1: general data, no CoT by default; 2: reasoning data, mixed CoT (App. B)",
    )
    p.add_argument("--lora-rank", type=positive_int, default=128, help="LoRA rank (App. B: 128)")
    p.add_argument("--epochs", type=float, default=1.0, help="epochs (not from the paper)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (not from the paper)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=1,
        help=f"groups of {GROUP_SIZE} per device per step",
    )
    p.add_argument("--grad-accum", type=positive_int, default=1, help="gradient accumulation steps")
    p.add_argument(
        "--max-steps", type=int, default=-1, help="stop after this many steps (-1: all epochs)"
    )
    p.add_argument(
        "--cot-ratio",
        type=_ratio,
        default=None,
        help="share of groups trained with chain of thought (not from the paper; default 0 in "
        "stage 1, 0.5 in stage 2)",
    )
    p.add_argument("--save-steps", type=positive_int, default=100, help="checkpoint every N steps")
    p.add_argument(
        "--max-patches",
        type=positive_int,
        default=12,
        help="image tiles per picture, as at inference (1 = single tile)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the regrouping and the trainer")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out (e.g. after a kill)",
    )
    p.set_defaults(func=cmd_train_evaluator)
