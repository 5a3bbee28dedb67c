"""``rea2seg``: the headless command line (import/export, stats, metrics, runs, evaluation).

Every subcommand returns an exit status: 0 on success, 1 when some input was skipped or a
check failed, 2 for a usage error or an input that could not be read at all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from core.cli.common import add_common, refuse_repeats, run_console, strip_bookkeeping
from core.vocab import CATEGORIES, EXPORT_MASKS, IMAGE_MODES, STATUSES

# Optional command groups, each a module with ``register(subparsers)``.
_PLUGINS = (
    "core.cli.generate",
    "core.cli.run",
    "core.cli.ask",
    "core.cli.evaluate",
    "core.cli.analytics",
    "core.cli.benchmark",
    "core.cli.question_checks",
    "core.cli.train",
    "core.cli.reasoning",
)


def _err(msg: str) -> None:
    print(f"rea2seg: {msg}", file=sys.stderr)


def _open(db: str, *, create: bool = False):
    """Open the store; only commands that add data create a missing one."""
    from core.store import open_store

    return open_store(db, create=create)


# -- import / export ------------------------------------------------------------------------


def cmd_import_reasonseg(args: argparse.Namespace) -> int:
    from core.importers import import_dataset

    store = _open(args.db, create=True)
    report = import_dataset(
        store,
        "reasonseg",
        args.dir,
        dataset=args.dataset,
        first_text_only=args.first_text_only,
        allow_outside=args.allow_outside,
    )
    print(report.summary())
    return 0 if report.ok else 1


def cmd_import_sgdr(args: argparse.Namespace) -> int:
    from core.formats.sgdr import SgdrError
    from core.importers import import_dataset

    store = _open(args.db, create=True)
    try:
        report = import_dataset(
            store, "sgdr", args.file, dataset=args.dataset, allow_outside=args.allow_outside
        )
    except SgdrError as exc:
        _err(str(exc))
        return 2
    print(report.summary())
    return 0 if report.ok else 1


def cmd_export_sgdr(args: argparse.Namespace) -> int:
    from core.exporters import export_dataset

    store = _open(args.db)
    report = export_dataset(store, "sgdr", args.out, status=args.status, dataset=args.dataset)
    print(report.summary())
    return 0


def cmd_export_reasonseg(args: argparse.Namespace) -> int:
    from core.cli.common import progress_bar
    from core.exporters import ReasonSegSettings, export_dataset

    settings = ReasonSegSettings(mask=args.mask, images=args.images, min_iou=args.min_iou)
    store = _open(args.db)
    bar: list = []  # made at the first file, so that a refused export prints only its one line

    def progress(done: int, total: int, label: str) -> None:
        if not bar:
            bar.extend(progress_bar(total, unit="file"))
        bar[0](done, total, label)

    try:
        report = export_dataset(
            store,
            "reasonseg",
            args.out_dir,
            status=args.status,
            dataset=args.dataset,
            settings=settings,
            progress=progress,
        )
    finally:
        if bar:
            bar[1]()
    print(report.summary())
    return 0 if report.ok else 1


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


# -- stats / metrics ------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    from core.cli.question_checks import print_rates, rates_json
    from core.store import review

    store = _open(args.db)
    counts = review.counts(store)
    if args.json:
        out: dict[str, dict[str, int]] = {}
        for (cat, st), n in counts.items():
            out.setdefault(cat, {})[st] = n
        data: dict = {"counts": out, "total": sum(counts.values())}
        if checks := rates_json(store):
            data["question_checks"] = checks
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    cats = sorted({c for c, _ in counts}, key=lambda c: (CATEGORIES + (c,)).index(c))
    head = f"{'category':<16}" + "".join(f"{s:>10}" for s in STATUSES) + f"{'total':>10}"
    print(head)
    print("-" * len(head))
    for c in cats:
        row = [counts.get((c, s), 0) for s in STATUSES]
        print(f"{c:<16}" + "".join(f"{n:>10}" for n in row) + f"{sum(row):>10}")
    tot = [sum(counts.get((c, s), 0) for c in cats) for s in STATUSES]
    print("-" * len(head))
    print(f"{'total':<16}" + "".join(f"{n:>10}" for n in tot) + f"{sum(tot):>10}")
    print_rates(store)
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from core.formats.sgdr import SgdrError, read_sgdr
    from core.masks import decode_rle
    from core.metrics import MetricAccumulator

    try:
        gt, gt_err = read_sgdr(args.gt)
        pred, pred_err = read_sgdr(args.pred)
    except SgdrError as exc:
        _err(str(exc))
        return 2
    problems = [f"{n}: {r}" for n, r in gt_err + pred_err]
    preds = {p.id: p for p in pred}
    acc = MetricAccumulator(ignore_mode=args.ignore_mode)
    for g in gt:
        hw = (g.mask["size"][0], g.mask["size"][1])
        gmask = decode_rle(g.mask)
        ign = decode_rle(g.ignore) if g.ignore else None
        p = preds.get(g.id)
        if p is None:
            problems.append(f"{g.id}: no prediction (counted as an empty mask)")
            import numpy as np

            pmask = np.zeros(hw, dtype=bool)
        elif tuple(p.mask["size"]) != hw:
            problems.append(
                f"{g.id}: prediction size {p.mask['size']} != ground truth size {list(hw)}; skipped"
            )
            continue
        else:
            pmask = decode_rle(p.mask)
        acc.add(pmask, gmask, ign, g.category)
    extra = sorted(set(preds) - {g.id for g in gt})
    if extra:
        problems.append(f"{len(extra)} predictions have no ground truth (ignored): {extra[:5]}")
    for msg in problems:
        _err(msg)
    res = acc.result()
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        print(f"{'category':<16}{'n':>6}{'gIoU':>10}{'cIoU':>10}")
        rows = [*res["per_category"].items(), ("overall", res["overall"])]
        for name, r in rows:
            if r["n"]:
                print(f"{name:<16}{r['n']:>6}{r['giou']:>10.4f}{r['ciou']:>10.4f}")
    return 1 if any("skipped" in m for m in problems) or gt_err or pred_err else 0


def cmd_convert_lisa(args: argparse.Namespace) -> int:
    from core.models.convert import convert_lisa

    out = convert_lisa(args.src, args.out, clip=args.clip)
    print(
        f"wrote {out}: point presets.lisa-7b.mllm_path at it (and sam_checkpoint at {out / 'sam.pth'})"
    )
    return 0


_DB_CREATE_HELP = "store: a SQLite file path or a SQLAlchemy URL (created when missing)"
_ALLOW_OUTSIDE_HELP = "read images whose paths lead outside the dataset folder (.., absolute paths, symlinks); refused by default"


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rea2seg", description="Rea2Seg Studio command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p_imp = sub.add_parser("import", help="import samples into a store")
    imp = p_imp.add_subparsers(dest="format", required=True)
    p = imp.add_parser("reasonseg", help="LISA's ReasonSeg layout (image + same-stem labelme JSON)")
    p.add_argument("dir", help="folder of images, each with a same-stem labelme JSON")
    add_common(p, db_help=_DB_CREATE_HELP)
    p.add_argument("--dataset", help="dataset name (default: reasonseg-<dir name>)")
    p.add_argument(
        "--first-text-only",
        action="store_true",
        help="only text[0] per image, as LISA's validation",
    )
    p.add_argument("--allow-outside", action="store_true", help=_ALLOW_OUTSIDE_HELP)
    p.set_defaults(func=cmd_import_reasonseg)
    p = imp.add_parser("sgdr", help="the SGDR interchange JSON")
    p.add_argument("file", help="SGDR JSON file (image paths relative to its folder)")
    add_common(p, db_help=_DB_CREATE_HELP)
    p.add_argument("--dataset", help="dataset name (default: the file's stem)")
    p.add_argument("--allow-outside", action="store_true", help=_ALLOW_OUTSIDE_HELP)
    p.set_defaults(func=cmd_import_sgdr)

    p_exp = sub.add_parser("export", help="export from a store")
    exp = p_exp.add_subparsers(dest="format", required=True)
    p = exp.add_parser("sgdr", help="the SGDR interchange JSON")
    add_common(p)
    p.add_argument("--out", required=True, help="SGDR JSON file to write (written atomically)")
    p.add_argument(
        "--status",
        choices=STATUSES,
        help="only samples with this review status (default: any status)",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="only samples of this dataset, by the name it was imported under (default: every "
        "dataset; a name the store does not have is refused)",
    )
    p.set_defaults(func=cmd_export_sgdr)
    # the defaults are ReasonSegSettings' (tests/unit/test_export_reasonseg.py holds them equal);
    # written out here so that building the parser imports no exporter
    rs = argparse.Namespace(mask="reviewed", images="copy", min_iou=0.99)
    p = exp.add_parser(
        "reasonseg",
        help="LISA's ReasonSeg layout (image + same-stem labelme JSON per question set)",
    )
    p.add_argument(
        "out_dir",
        metavar="OUT_DIR",
        help="folder to write (must be new or empty; written whole or not at all)",
    )
    add_common(p)
    p.add_argument(
        "--status",
        choices=STATUSES,
        help="only samples with this review status (default: any status)",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="only samples of this dataset, by the name it was imported under (default: every "
        "dataset; a name the store does not have is refused)",
    )
    p.add_argument(
        "--mask",
        choices=EXPORT_MASKS,
        default=rs.mask,
        help="reviewed: the reviewer's edited mask when there is one, else the imported ground truth; "
        f"gt: the imported ground truth only, a sample without one is skipped (default: {rs.mask})",
    )
    p.add_argument(
        "--images",
        choices=IMAGE_MODES,
        default=rs.images,
        help="copy the image files beside their JSON, or symlink to them (importing the folder "
        f"again then needs --allow-outside) (default: {rs.images})",
    )
    p.add_argument(
        "--min-iou",
        type=_unit_interval,
        default=rs.min_iou,
        metavar="X",
        help="list every sample whose polygons, rasterised as LISA does, reach a lower IoU with its "
        f"mask or ignore region (holes are filled); exit status 1 when any does (default: {rs.min_iou:g})",
    )
    p.set_defaults(func=cmd_export_reasonseg)

    p = sub.add_parser("stats", help="sample counts by category and status")
    add_common(p, json=True)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "metrics", help="gIoU / cIoU of a prediction SGDR file against a ground-truth one"
    )
    p.add_argument("--gt", required=True, help="ground-truth SGDR file")
    p.add_argument("--pred", required=True, help="prediction SGDR file (samples matched by id)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_common(p, db=False, ignore_mode=True)
    p.set_defaults(func=cmd_metrics)

    p_conv = sub.add_parser(
        "convert", help="convert released checkpoints into the layouts the loaders read"
    )
    conv = p_conv.add_subparsers(dest="format", required=True)
    p = conv.add_parser(
        "lisa", help="a LISA checkpoint (LISAForCausalLM) → LLaVA + text_hidden_fcs.pt + sam.pth"
    )
    p.add_argument("src", help="the released LISA checkpoint directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--clip",
        help="local CLIP ViT-L/14 directory (vision config, image processor, weights if absent)",
    )
    p.set_defaults(func=cmd_convert_lisa)

    for name in _PLUGINS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        mod.register(sub)
        if hasattr(mod, "register_export"):
            mod.register_export(exp)
        if hasattr(mod, "register_import"):
            mod.register_import(imp)
    refuse_repeats(parser)  # after the plugins: their options are checked too
    return parser


# Errors reported as one line with exit status 2: (module, class). A class is looked up only when
# its module was imported by the command, so ``--help`` and the light commands import no models.
_EXPECTED_ERRORS = (
    ("core.store.db", "StoreError"),
    ("core.models.base", "ModelLoadError"),
    ("core.images", "ImageError"),
    ("core.pipeline.engine", "OutOfMemory"),
    ("core.pipeline.engine", "EngineError"),
)


def _expected(exc: BaseException) -> bool:
    if isinstance(exc, OSError | ValueError | LookupError):
        return True
    loaded = (getattr(sys.modules.get(mod), name, None) for mod, name in _EXPECTED_ERRORS)
    return any(cls is not None and isinstance(exc, cls) for cls in loaded)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status. ``KeyboardInterrupt`` passes through (the
    console script, :func:`console`, turns it into status 130)."""
    args = strip_bookkeeping(build_parser().parse_args(argv))
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        if not _expected(exc):
            raise
        _err(str(exc))
        return 2


def console() -> NoReturn:
    """The ``rea2seg`` console script: ``main(sys.argv[1:])``; Ctrl+C exits 130 with one line.
    (Not named ``run``: the ``core.cli.run`` command group would shadow it.)"""
    run_console(main, "rea2seg")


if __name__ == "__main__":
    console()
