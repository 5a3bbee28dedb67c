"""``rea2seg compare`` (two existing runs, paired bootstrap; writes nothing) and
``rea2seg report`` (one self-contained HTML file). Registered by :mod:`core.cli`."""

from __future__ import annotations

import argparse
import json

from core.cli.common import add_common


def _n_boot(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("the number of resamples must be at least 1")
    return v


def _threshold(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("the IoU threshold must be in [0, 1]")
    return v


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    """``--bootstrap N``, ``--bootstrap-seed S`` and ``--failure-iou T`` (eval, compare, report)."""
    from core.analytics.bootstrap import BOOT_SEED, N_BOOT
    from core.analytics.failures import FAILURE_IOU

    p.add_argument(
        "--bootstrap",
        type=_n_boot,
        default=N_BOOT,
        metavar="N",
        help=f"bootstrap resamples of each 95%% interval (default {N_BOOT}; not from the paper)",
    )
    p.add_argument(
        "--bootstrap-seed",
        type=int,
        default=BOOT_SEED,
        metavar="S",
        help=f"seed of the resampling (default {BOOT_SEED})",
    )
    p.add_argument(
        "--failure-iou",
        type=_threshold,
        default=FAILURE_IOU,
        metavar="T",
        help="IoU threshold of the failure classes: generator missed (oracle < T), evaluator "
        f"mis-ranked (oracle ≥ T, top-1 < T), fine (default {FAILURE_IOU}; not from the paper)",
    )


def cmd_compare(args: argparse.Namespace) -> int:
    from core.analytics.runs import compare_runs, format_compare
    from core.store import open_store

    store = open_store(args.db, create=False)
    try:
        res = compare_runs(
            store,
            args.run_a,
            args.run_b,
            method=args.method,
            against=args.against,
            n_boot=args.bootstrap,
            seed=args.bootstrap_seed,
            most_changed=args.changed,
        )
    finally:
        store.close()
    print(json.dumps(res, indent=2, sort_keys=True) if args.json else format_compare(res))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.analytics.report import build_report
    from core.fileio import atomic_write
    from core.store import open_store

    store = open_store(args.db, create=False)
    try:
        text = build_report(
            store,
            args.run,
            compare_with=args.compare,
            against=args.against,
            threshold=args.failure_iou,
            n_boot=args.bootstrap,
            seed=args.bootstrap_seed,
            worst=args.worst,
        )
    finally:
        store.close()
    atomic_write(args.out, text)
    print(f"wrote {args.out} ({len(text.encode('utf-8')) // 1024} KiB, self-contained)")
    return 0


def _against(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--against",
        choices=("gt", "reviewed"),
        default="gt",
        help="reference mask: gt = the imported ground truth (default); reviewed = the "
        "reviewer's edited mask, else the imported ground truth",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` and ``report``."""
    from core.evaluator.evaluate import METHODS

    p = sub.add_parser(
        "compare",
        help="is run A better than run B? gIoU/cIoU differences with paired bootstrap 95%% "
        "intervals, overall and per category, over the samples both have (writes nothing)",
    )
    add_common(p, json=True)
    p.add_argument("run_a", type=int, metavar="RUN_A", help="run id (see rea2seg runs)")
    p.add_argument("run_b", type=int, metavar="RUN_B", help="run id to subtract")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="top1",
        help="which answer to compare: the evaluator's top-1 (default), best of top-3, the "
        "initial mask M, or the oracle",
    )
    p.add_argument(
        "--changed",
        type=int,
        default=10,
        metavar="N",
        help="list the N samples whose IoU changed most (default 10)",
    )
    _against(p)
    add_analysis_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        help="one self-contained HTML report of a run (tables, intervals, plots, worst samples)",
    )
    add_common(p)
    p.add_argument("run", type=int, metavar="RUN", help="run id (see rea2seg runs)")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the HTML file to write")
    p.add_argument(
        "--compare",
        type=int,
        metavar="RUN_B",
        help="also compare with this run (paired bootstrap, as rea2seg compare)",
    )
    p.add_argument(
        "--worst",
        type=int,
        default=8,
        metavar="N",
        help="thumbnails of the N samples with the lowest top-1 IoU (default 8; 0: none)",
    )
    _against(p)
    add_analysis_options(p)
    p.set_defaults(func=cmd_report)
