"""``rea2seg generate geometric``."""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 960x720, got {text!r}") from exc
    if not (64 <= w <= 4096 and 64 <= h <= 4096):
        raise argparse.ArgumentTypeError("width and height must be between 64 and 4096")
    return w, h


def cmd_generate_geometric(args: argparse.Namespace) -> int:
    from core.geometric.generate import generate

    report = generate(args.out, args.n, seed=args.seed, size_wh=args.size, per_scene=args.per_scene)
    print(report.summary())
    print(f"wrote {args.out}/sgdr.json, images/ and scenes/")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate synthetic benchmark splits")
    g = p.add_subparsers(dest="split", required=True)
    q = g.add_parser(
        "geometric", help="CLEVR-like scenes with exact masks and program-checked questions"
    )
    q.add_argument("--n", type=int, required=True, help="number of samples (questions) to keep")
    q.add_argument(
        "--seed", type=int, default=0, help="random seed of scenes and questions (default 0)"
    )
    q.add_argument("--out", required=True, help="output folder (sgdr.json, images/, scenes/)")
    q.add_argument(
        "--size", type=_size, default=(960, 720), help="WxH, default 960x720 (the paper's)"
    )
    q.add_argument("--per-scene", type=int, default=3, help="questions kept per scene at most")
    q.set_defaults(func=cmd_generate_geometric)
