"""Evaluator training data (paper §4.4, App. D): ``import gqa`` and ``reasoning
gqa|spatial|category|answer|list|show|review|edit|reannotate``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.cli.benchmark import _add_client_args, _client_options
from core.cli.common import add_common
from core.textsafe import terminal_text
from core.vocab import CATEGORIES, STATUSES

BUILDER_HELP = {
    "gqa": "GQA items: S7 text filter → SAM 3 mask of the short answer (exactly one) → S8 box "
    "check and reasoning",
    "spatial": "instance groups of one category (2+): S9 spatial referring questions with "
    "reasoning, one per instance",
    "category": "described instance groups (LISA++-style query): all instances merged, S10 "
    "verifies and writes the reasoning",
    "answer": "samples with a known mask (ReasonSeg train, SGDR, geometric): reasoning for the "
    "known answer",
}
REASONING_DECISIONS = ("accept", "reject", "reopen")


def _open(db: str, create: bool = False):
    from core.store import open_store

    return open_store(db, create=create)


# -- import gqa ---------------------------------------------------------------------------------


def cmd_import_gqa(args: argparse.Namespace) -> int:
    from core.importers.gqa import import_gqa

    store = _open(args.db, create=True)
    try:
        report = import_gqa(
            store,
            args.questions,
            args.images,
            scene_graphs=args.scene_graphs,
            dataset=args.dataset,
            sample=args.sample,
            seed=args.seed,
        )
    finally:
        store.close()
    print(report.summary().replace("added", "VQA items added", 1))
    return 0 if report.ok else 1


def register_import(imp) -> None:
    p = imp.add_parser("gqa", help="GQA questions as VQA items for evaluator training data")
    p.add_argument("questions", help="GQA questions JSON (e.g. train_balanced_questions.json)")
    p.add_argument("--images", required=True, help="folder of <imageId>.jpg")
    p.add_argument("--scene-graphs", help="GQA scene graphs JSON: keeps the answer objects' boxes")
    add_common(p, db_help="store: a SQLite file path or a SQLAlchemy URL (created when missing)")
    p.add_argument("--dataset", help="dataset name (default: the questions file's stem)")
    p.add_argument(
        "--sample", type=int, metavar="N", help="import a random N of the questions (App. D: 50K)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.set_defaults(func=cmd_import_gqa)


# -- reasoning builders -------------------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> int:
    from core.evaldata.build import annotate
    from core.llm_client import ChatClient

    key = os.environ.get(args.api_key_env) or None
    opts = _client_options(args)
    annotator = ChatClient(args.endpoint, args.model, key, **opts)
    filt = None
    sam3 = None
    if args.builder == "gqa":
        filt = ChatClient(
            args.filter_endpoint or args.endpoint, args.filter_model or args.model, key, **opts
        )
        if not args.sam3:
            print("rea2seg: the gqa builder needs --sam3 CHECKPOINT_DIR", file=sys.stderr)
            return 2
        from core.models.sam3_text import load_sam3

        sam3 = load_sam3(
            args.sam3,
            device=args.sam3_device,
            threshold=args.sam3_threshold,
            mask_threshold=args.sam3_mask_threshold,
        )
    store = _open(args.db)
    bar = None
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:  # pragma: no cover - tqdm is a dependency
        tqdm = None

    def progress(done: int, total: int, label: str) -> None:
        nonlocal bar
        if tqdm is None or args.quiet:
            return
        if bar is None:
            bar = tqdm(total=total, desc=f"{args.builder} reasoning", unit="item", file=sys.stderr)
        bar.n = done
        bar.set_postfix_str(label, refresh=True)

    try:
        report = annotate(
            store,
            args.builder,
            annotator,
            filter_client=filt,
            sam3=sam3,
            resume=args.resume,
            limit=args.limit,
            dataset=args.dataset,
            category=getattr(args, "category", None),
            status=getattr(args, "status", None),
            user=args.user or "",
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
        store.close()
    print(report.summary())
    return 1 if report.errors else 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.evaldata.provenance import list_annotations

    store = _open(args.db)
    try:
        rows = list_annotations(store, builder=args.builder, verdict=args.verdict)
    finally:
        store.close()
    if args.json:
        keys = ("id", "builder", "item_key", "sample_id", "verdict", "stage", "reasons",
                "question", "answer", "reasoning", "prompt_versions", "usage", "seconds", "error")  # fmt: skip
        print(json.dumps([{k: getattr(r, k) for k in keys} for r in rows], indent=2, default=str))
        return 0
    for r in rows:
        sid = "-" if r.sample_id is None else str(r.sample_id)
        why = terminal_text(r.error or r.reasons, 300)
        print(
            f"{r.id:>6}  {r.builder:<9}{r.item_key:<14}{sid:>7}  {r.verdict:<9}{r.stage:<10}{why}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.evaldata.provenance import annotations_of
    from core.store import repo, review

    store = _open(args.db)
    try:
        smp = store.run(lambda s: repo.get_sample(s, args.sample), write=False)
        anns = annotations_of(store, args.sample)
        hist = [h for h in review.history(store, args.sample) if h.field.startswith("reasoning")]
    finally:
        store.close()
    out = {
        "sample_id": smp.id,
        "question": smp.question,
        "status": smp.status,
        "reasoning": smp.reasoning,
        "reasoning_status": smp.reasoning_status,
        "reasoning_source": smp.reasoning_source,
        "annotations": [
            {
                k: getattr(a, k)
                for k in (
                    "id",
                    "builder",
                    "verdict",
                    "stage",
                    "reasons",
                    "prompt_versions",
                    "usage",
                    "created_at",
                )
            }  # fmt: skip
            for a in anns
        ],
        "history": [
            {"at": h.at, "user": h.user, "field": h.field, "after": h.after, "note": h.note}
            for h in hist
        ],
    }
    print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from core.store import review

    store = _open(args.db)
    try:
        status = review.decide_reasoning(
            store, args.sample, args.decision, user=args.user, note=args.note or ""
        )
    finally:
        store.close()
    print(f"sample {args.sample}: reasoning {args.decision} by {args.user} → {status}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from core.store import review

    text = args.text if args.text is not None else Path(args.file).read_text(encoding="utf-8")
    store = _open(args.db)
    try:
        review.edit_reasoning(store, args.sample, text, user=args.user, note=args.note or "")
    finally:
        store.close()
    print(f"sample {args.sample}: reasoning edited by {args.user}")
    return 0


def cmd_reannotate(args: argparse.Namespace) -> int:
    from core.evaldata.reannotate import reannotate

    store = _open(args.db)
    try:
        recs = reannotate(
            store,
            args.sample,
            user=args.user,
            api_key=os.environ.get(args.api_key_env) or None,
            endpoint=args.endpoint,
            model=args.model,
            **_client_options(args),
        )
    finally:
        store.close()
    for r in recs:
        print(
            f"sample {args.sample}: {r.builder} re-annotated, {r.verdict}: "
            f"{terminal_text(r.error or r.reasons, 300)}"
        )
    return 0 if all(r.verdict != "error" for r in recs) else 1


def _unit(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return v


def register(sub) -> None:
    from core.models.sam3_text import MASK_THRESHOLD, THRESHOLD

    p_r = sub.add_parser(
        "reasoning",
        help="evaluator training data: samples with chain-of-thought reasoning (paper §4.4, App. D)",
    )
    r = p_r.add_subparsers(dest="action", required=True)
    for builder, help_text in BUILDER_HELP.items():
        p = r.add_parser(builder, help=help_text)
        add_common(p)
        p.add_argument(
            "--endpoint",
            required=True,
            help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1",
        )
        p.add_argument("--model", required=True, help="annotator model (App. D: ChatGPT-5 mini)")
        if builder == "gqa":
            p.add_argument(
                "--filter-model", help="S7 text-filter model (App. D: ChatGPT-4.1; default --model)"
            )
            p.add_argument("--filter-endpoint", help="S7 filter base URL (default: --endpoint)")
            p.add_argument(
                "--sam3", help="local SAM 3 checkpoint directory (transformers Sam3Model)"
            )
            p.add_argument(
                "--sam3-device", default="cpu", help="torch device of SAM 3 (default cpu)"
            )
            p.add_argument(
                "--sam3-threshold",
                type=_unit,
                default=THRESHOLD,
                help=f"smallest detection score of a SAM 3 instance (default {THRESHOLD})",
            )
            p.add_argument(
                "--sam3-mask-threshold",
                type=_unit,
                default=MASK_THRESHOLD,
                help=f"mask probability threshold of SAM 3 (default {MASK_THRESHOLD})",
            )
        p.add_argument("--dataset", help="only items of this dataset")
        if builder == "answer":
            p.add_argument("--category", choices=CATEGORIES, help="only samples of this category")
            p.add_argument("--status", choices=STATUSES, help="only samples with this status")
        p.add_argument("--limit", type=int, metavar="N", help="at most N items this time")
        p.add_argument(
            "--resume", action="store_true", help="continue: skip finished items, retry failed ones"
        )
        p.add_argument("--user", help="who asks (recorded with each annotation)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        _add_client_args(p)
        p.set_defaults(func=cmd_build, builder=builder)

    p = r.add_parser("list", help="reasoning annotations with verdicts (rejected items included)")
    add_common(p)
    p.add_argument("--builder", choices=tuple(BUILDER_HELP), help="only this builder's")
    p.add_argument(
        "--verdict",
        choices=("accepted", "rejected", "skipped", "error"),
        help="only annotations with this verdict",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = r.add_parser("show", help="a sample's reasoning, its annotations and its history")
    add_common(p)
    p.add_argument("--sample", type=int, required=True, help="the sample's numeric id")
    p.set_defaults(func=cmd_show)

    p = r.add_parser("review", help="accept, reject or reopen a sample's reasoning")
    add_common(p)
    p.add_argument("--sample", type=int, required=True, help="the sample's numeric id")
    p.add_argument("--decision", required=True, choices=REASONING_DECISIONS, help="the decision")
    p.add_argument("--user", required=True, help="reviewer name")
    p.add_argument("--note", help="free text kept with the decision")
    p.set_defaults(func=cmd_review)

    p = r.add_parser(
        "reannotate", help="ask the sample's annotator again (same endpoint and model)"
    )
    add_common(p)
    p.add_argument("--sample", type=int, required=True, help="the sample's numeric id")
    p.add_argument("--user", required=True, help="who asks (recorded with the new annotation)")
    p.add_argument("--endpoint", help="base URL (default: the one the annotation recorded)")
    p.add_argument("--model", help="annotator model (default: the one the annotation recorded)")
    _add_client_args(p)
    p.set_defaults(func=cmd_reannotate)

    p = r.add_parser("edit", help="replace a sample's reasoning text")
    add_common(p)
    p.add_argument("--sample", type=int, required=True, help="the sample's numeric id")
    p.add_argument("--user", required=True, help="reviewer name")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="the new reasoning")
    g.add_argument("--file", help="a UTF-8 text file holding the new reasoning")
    p.add_argument("--note", help="free text kept with the change")
    p.set_defaults(func=cmd_edit)
