"""``rea2seg train miniature``: every model of the ``mini-geometric`` preset in one command.

A geometric training split, a small SAM from random weights, a small LLaVA from scratch
(grounding stage, then LISA's recipe), stage-1 groups over training scenes and a small
evaluator trained on them, in stage budgets that add up to under 60 minutes on 2 CPU cores.
Every setting is
:class:`core.training.miniature.MiniatureConfig`; a finished stage is skipped when the command
is run again with the same ``--out``. Thin: parses the options and calls
:func:`core.training.miniature.train_miniature`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from core.training.miniature import MiniatureConfig

_D = MiniatureConfig()


def cmd_train_miniature(args: argparse.Namespace) -> int:
    try:
        cfg = dataclasses.replace(_D, seed=args.seed, minutes_scale=args.minutes_scale)
    except ValueError as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2
    from core.training.miniature import train_miniature

    def say(line: str) -> None:
        print(f"miniature: {line}", file=sys.stderr)

    say(f"config {cfg.config_hash()[:12]}, budget {sum(cfg.stage_minutes.values()):.1f} min")
    try:
        models = train_miniature(args.out, cfg, progress=say)
    except ValueError as exc:
        print(f"rea2seg: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {models} (config {cfg.config_hash()})")
    return 0


def register(trainers: argparse._SubParsersAction) -> None:
    p = trainers.add_parser(
        "miniature",
        help="train the mini-geometric preset's models from scratch on CPU within an hour",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", required=True, help="output folder: one folder per stage, and models/ to ship"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=_D.seed,
        help=f"seed of the training split and the trainers (training range; default {_D.seed})",
    )
    p.add_argument(
        "--minutes-scale",
        type=float,
        default=1.0,
        help="multiply every stage's time budget and the split size (for a quick check; "
        "a scaled run has another config hash and is not the preset's)",
    )
    p.set_defaults(func=cmd_train_miniature)
