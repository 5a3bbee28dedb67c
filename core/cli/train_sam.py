"""``rea2seg train sam``: a small SAM trained from scratch on a geometric training split.

Thin: parses the options (defaults from :class:`core.training.sam_settings.SamTrainSettings`,
imported without torch) and calls :func:`core.training.sam.train_sam`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from core.cli.common import (
    add_checkpoint_options,
    add_split_options,
    positive_int,
    training_split,
)
from core.training.sam_settings import SamTrainSettings

_D = SamTrainSettings()


def cmd_train_sam(args: argparse.Namespace) -> int:
    try:
        arch = {**_D.arch, **json.loads(args.arch)} if args.arch else dict(_D.arch)
        settings = SamTrainSettings(
            img_size=args.img_size,
            arch=arch,
            batch_size=args.batch_size,
            prompts_per_image=args.prompts_per_image,
            box_fraction=args.box_fraction,
            lr=args.lr,
            warmup_steps=args.warmup_steps,
            max_steps=args.max_steps,
            max_minutes=args.max_minutes,
            seed=args.seed,
            save_steps=args.save_steps,
            save_total_limit=args.save_total_limit,
            logging_steps=args.logging_steps,
            workers=args.workers,
        )
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2
    from core.training.sam import train_sam

    out = Path(args.out)
    try:
        split = training_split(args, out)
        path = train_sam(
            split,
            out,
            settings,
            resume=args.resume,
            device=args.device,
            held_out=args.held_out,
        )
    except ValueError as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} (settings: {json.dumps(dataclasses.asdict(settings))})")
    return 0


def register(trainers: argparse._SubParsersAction) -> None:
    p = trainers.add_parser(
        "sam",
        help="train a small SAM from scratch on a geometric training split (point and box prompts)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder: checkpoints, loss curve, sam.pth")
    add_split_options(p)
    p.add_argument(
        "--held-out",
        metavar="DIR",
        help="another training split scored after training (mIoU from one point, in the model card)",
    )
    p.add_argument(
        "--img-size", type=int, default=_D.img_size, help=f"SAM input size ({_D.img_size})"
    )
    p.add_argument(
        "--arch",
        default="",
        help="JSON object overriding architecture numbers, e.g. '{\"depth\": 2}' "
        f"(default {json.dumps(_D.arch)})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=_D.batch_size,
        help=f"images per device and step ({_D.batch_size})",
    )
    p.add_argument(
        "--prompts-per-image",
        type=positive_int,
        default=_D.prompts_per_image,
        help=f"objects prompted per image ({_D.prompts_per_image})",
    )
    p.add_argument(
        "--box-fraction",
        type=float,
        default=_D.box_fraction,
        help=f"share of box prompts, the rest one point ({_D.box_fraction})",
    )
    p.add_argument("--lr", type=float, default=_D.lr, help=f"peak learning rate ({_D.lr})")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=_D.warmup_steps,
        help=f"warm-up steps before the cosine decay ({_D.warmup_steps})",
    )
    p.add_argument(
        "--max-steps", type=positive_int, default=_D.max_steps, help=f"steps ({_D.max_steps})"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="stop (with a checkpoint) after this much wall-clock time; 0: no limit",
    )
    p.add_argument("--seed", type=int, default=_D.seed, help="seed of the prompts and weights")
    add_checkpoint_options(p, _D)
    p.add_argument(
        "--device", choices=("cpu",), default=None, help="cpu: train on the CPU even with a GPU"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in OUT"
    )
    p.set_defaults(func=cmd_train_sam)
