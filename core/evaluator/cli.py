"""``rea2seg eval`` and ``rea2seg export evaluator-train``."""

from __future__ import annotations

import argparse
import json


def cmd_eval(args: argparse.Namespace) -> int:
    from core.evaluator.evaluate import evaluate_run, format_table
    from core.store import open_store

    res = evaluate_run(open_store(args.db), args.run, ignore_mode=args.ignore_mode)
    print(json.dumps(res, indent=2, sort_keys=True) if args.json else format_table(res))
    return 0


def cmd_export_train(args: argparse.Namespace) -> int:
    from core.evaluator.export import export_evaluator_train
    from core.store import open_store

    stats = export_evaluator_train(open_store(args.db), args.run, args.out, group_size=args.group_size, seed=args.seed)
    print(f"wrote {stats['groups']} groups ({stats['mask_images']} mask images) to {args.out}; "
          f"{stats['samples_skipped']} samples without ground truth or candidates skipped")
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="gIoU/cIoU of a run: top-1, best of top-3, initial mask, oracle")
    p.add_argument("--db", required=True)
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--ignore-mode", choices=("exclude", "background"), default="exclude")
    p.set_defaults(func=cmd_eval)


def register_export(exp) -> None:
    p = exp.add_parser("evaluator-train", help="evaluator fine-tuning data (InternVL chat JSONL + mask images)")
    p.add_argument("--db", required=True)
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--group-size", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export_train)
