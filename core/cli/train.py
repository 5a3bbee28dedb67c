"""``rea2seg train …``: the trainers (paper §4.4, App. B/D). Each trainer is a module with
``register(subparsers)``; building the parser imports no model code."""

from __future__ import annotations

import argparse
import importlib

# One module per trainer, each with ``register(train_subparsers)``.
_TRAINERS: tuple[str, ...] = (
    "core.cli.train_evaluator",
    "core.cli.train_generator",
    "core.cli.train_sam",
    "core.cli.train_miniature",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the evaluator, the generator or the miniature")
    trainers = p.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    for name in _TRAINERS:
        importlib.import_module(name).register(trainers)
