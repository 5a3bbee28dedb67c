"""``rea2seg eval`` and ``rea2seg export evaluator-train`` (registered by :mod:`core.cli`)."""

from __future__ import annotations

import argparse
import json

from core.cli.common import add_common
from core.vocab import STATUSES


def cmd_eval(args: argparse.Namespace) -> int:
    from core.evaluator.evaluate import evaluate_run, format_table
    from core.store import open_store

    if args.evaluator:
        return _eval_evaluator(args)

    from core.analytics.runs import analyse_run, format_analytics

    average = "lisa" if args.lisa_average else "mean"
    store = open_store(args.db, create=False)
    try:
        res = evaluate_run(
            store,
            args.run,
            ignore_mode=args.ignore_mode,
            giou_average=average,
            against=args.against,
        )
        extra, _ = analyse_run(
            store,
            args.run,
            against=args.against,
            ignore_mode=args.ignore_mode,
            threshold=args.failure_iou,
            n_boot=args.bootstrap,
            seed=args.bootstrap_seed,
            giou_average=average,
        )
    finally:
        store.close()
    res.update(extra)  # classification, origins, ablations, coverage, intervals, bootstrap
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        print(format_table(res) + "\n" + format_analytics(res))  # incl. fell_back
    return 0


def _eval_evaluator(args: argparse.Namespace) -> int:
    """``eval --evaluator``: rescore the run's candidates, R regroupings (core.evaluator.quality)."""
    from core.cli.common import progress_bar
    from core.evaluator.presets import load_evaluator
    from core.evaluator.quality import assess_evaluator, format_quality, run_questions
    from core.store import open_store

    evaluator = load_evaluator(args.evaluator)
    store = open_store(args.db, create=False)
    try:
        questions = list(run_questions(store, args.run, args.against, args.ignore_mode))
    finally:
        store.close()
    progress, close = progress_bar(len(questions), "question")
    try:
        res = assess_evaluator(
            evaluator,
            questions,
            repeats=args.reshuffles,
            cot=args.cot,
            progress=lambda d, t: progress(d, t, ""),
        )
    finally:
        close()
    res["evaluator"] = evaluator.name
    res["run_id"] = int(args.run)
    if args.save:
        from core.fileio import atomic_write

        atomic_write(args.save, json.dumps(res, indent=2))
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        print(f"evaluator {evaluator.name} on the candidates of run {args.run}")
        print(format_quality(res))
    return 0


def cmd_export_train(args: argparse.Namespace) -> int:
    from core.evaluator.export import export_evaluator_train
    from core.store import open_store

    store = open_store(args.db, create=False)
    try:
        stats = export_evaluator_train(
            store,
            args.run,
            args.out,
            group_size=args.group_size,
            seed=args.seed,
            status=args.status,
            cot=args.cot,
            max_patches=args.max_patches,
        )
    finally:
        store.close()
    print(
        f"wrote {stats['groups']} groups from {stats['samples']} samples to {stats['out']} "
        f"in prompt format {stats['prompt_format']} ({stats['mask_images']} mask images in {stats['images_dir']}; meta {stats['meta']}); "
        f"{stats['samples_skipped']} samples skipped (no ground truth, trace, candidates or image file); "
        f"{stats['with_reasoning']} groups with a reasoning, {stats['reasoning_missing']} without"
    )
    return 0


def _group_size(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("group size must be at least 1")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval``."""
    p = sub.add_parser(
        "eval",
        help="gIoU/cIoU per category of a run: top-1, best of top-3, initial mask, oracle, with "
        "bootstrap intervals; score-vs-IoU correlation; failure classes, best origins, "
        "ablations by origin, coverage",
    )
    add_common(p, ignore_mode=True)
    p.add_argument("--run", type=int, required=True, help="run id (see rea2seg runs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--against",
        choices=("gt", "reviewed"),
        default="gt",
        help="reference mask: gt = the imported ground truth (default); reviewed = the reviewer's "
        "edited mask, the imported ground truth for samples nobody edited (the output says how many)",
    )
    p.add_argument(
        "--lisa-average",
        action="store_true",
        help="gIoU as LISA's distributed average: sum / (n + 1e-5) instead of the mean",
    )
    from core.cli.analytics import add_analysis_options

    add_analysis_options(p)
    p.add_argument(
        "--evaluator",
        metavar="PRESET|DIR",
        help="rescore the run's candidates with this evaluator (a preset, checkpoint or trained "
        "adapter folder): predicted vs true IoU (Spearman, Pearson, MAE), top-1 gIoU against "
        "the initial mask M and the oracle, and position bias",
    )
    p.add_argument(
        "--reshuffles",
        type=_group_size,
        default=3,
        metavar="R",
        help="with --evaluator: score the same candidates in R different groupings (position "
        "bias: Kendall tau of the rankings, score spread); default 3",
    )
    p.add_argument(
        "--cot",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="with --evaluator: prompt with chain of thought (default: without)",
    )
    p.add_argument(
        "--save",
        metavar="FILE.json",
        help="with --evaluator: also write the result (with the predicted/true IoU points) as "
        "JSON, e.g. into an adapter folder as quality.json for the app's metrics tab",
    )
    p.set_defaults(func=cmd_eval)


def register_export(exp: argparse._SubParsersAction) -> None:
    """Add ``export evaluator-train``."""
    from core.evaluator.grouping import GROUP_SIZE
    from core.evaluator.prompt import MAX_PATCHES

    p = exp.add_parser(
        "evaluator-train", help="evaluator fine-tuning data (InternVL chat JSONL + mask images)"
    )
    add_common(p)
    p.add_argument(
        "--run", type=int, required=True, help="run whose candidates to export (see rea2seg runs)"
    )
    p.add_argument(
        "--out", required=True, help="output .jsonl (mask images and meta are written beside it)"
    )
    p.add_argument(
        "--group-size",
        type=_group_size,
        default=GROUP_SIZE,
        help=f"masks per group (s, default {GROUP_SIZE})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="shuffle seed (combined with each sample id)"
    )
    p.add_argument(
        "--status",
        choices=STATUSES,
        help="only samples with this review status",
    )
    p.add_argument(
        "--cot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prompt format with / without chain of thought (default: as the run's stage 2)",
    )
    p.add_argument(
        "--max-patches",
        type=_group_size,
        default=MAX_PATCHES,
        help=f"tiles a group's images share, as the evaluator's max_patches (default {MAX_PATCHES})",
    )
    p.set_defaults(func=cmd_export_train)
