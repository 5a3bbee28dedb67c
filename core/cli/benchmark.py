"""Building the benchmark: ``import coco``, ``questions generate|list|review|regenerate`` and
``stats --agreement`` (paper §3, App. C)."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.common import add_common
from core.textsafe import terminal_text
from core.vocab import DECISIONS, DISCRIMINATIVE_KINDS, SPLITS, STATUSES, VERDICT_FILTERS

LIST_QUESTION_CHARS = 300
"""Longest question shown on one line of ``questions list`` (the rest is cut with …; ``--json``
shows it whole). Not from the paper."""


def _positive(text: str) -> float:
    v = float(text)
    if not (v > 0 and v < 1e7):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return v


def _open(db: str):
    from core.store import open_store

    return open_store(db)


def _names(values: list[str] | None) -> list[str]:
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


# -- import coco -----------------------------------------------------------------------------


def cmd_import_coco(args: argparse.Namespace) -> int:
    from core.importers.coco import import_coco

    store = _open(args.db)
    report = import_coco(
        store,
        args.file,
        args.images,
        dataset=args.dataset,
        category_filter=_names(args.category_filter),
        allow_outside=args.allow_outside,
    )
    print(report.summary().replace("added", "targets added", 1))
    return 0 if report.ok else 1


def register_import(imp) -> None:
    p = imp.add_parser("coco", help="COCO instance annotations as targets for question generation")
    p.add_argument(
        "file",
        help="COCO instances JSON (EntitySeg, CAMO, ThinObject5K, OCHuman converted to COCO)",
    )
    p.add_argument(
        "--images", required=True, help="folder the file_name of each image is relative to"
    )
    add_common(p, db_help="store: a SQLite file path or a SQLAlchemy URL (created when missing)")
    p.add_argument("--dataset", help="dataset name (default: the file's stem)")
    p.add_argument(
        "--category-filter",
        action="append",
        metavar="NAMES",
        help="keep only these category names (comma-separated; may repeat)",
    )
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="accept image paths that lead outside --images (.., absolute paths, symlinks)",
    )
    p.set_defaults(func=cmd_import_coco)


# -- questions -------------------------------------------------------------------------------


def _client_options(args: argparse.Namespace) -> dict:
    return {
        "timeout_s": args.timeout,
        "max_retries": args.max_retries,
        "backoff_s": args.backoff,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
    }


def cmd_questions_generate(args: argparse.Namespace) -> int:
    import os

    from core.benchmark.generate import generate_questions
    from core.llm_client import ChatClient

    store = _open(args.db)
    gen = ver = None
    if args.split != "discriminative":
        if not args.endpoint or not args.model:
            print(
                "rea2seg: --endpoint and --model are needed for the spatial and multi_step splits",
                file=sys.stderr,
            )
            return 2
        key = os.environ.get(args.api_key_env) or None
        opts = _client_options(args)
        gen = ChatClient(args.endpoint, args.model, key, **opts)
        ver = ChatClient(
            args.verifier_endpoint or args.endpoint, args.verifier_model or args.model, key, **opts
        )
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
            bar = tqdm(total=total, desc=f"{args.split} questions", unit="target", file=sys.stderr)
        bar.n = done
        bar.set_postfix_str(label, refresh=True)

    try:
        report = generate_questions(
            store,
            args.split,
            gen,
            ver,
            kind=args.kind,
            resume=args.resume,
            limit=args.limit,
            dataset=args.dataset,
            progress=progress,
            retry_paid=args.retry_paid,
            **({"claim_lease_s": args.claim_lease} if args.claim_lease else {}),
        )
    finally:
        if bar is not None:
            bar.close()
    print(report.summary())
    return 1 if report.errors else 0


def cmd_questions_list(args: argparse.Namespace) -> int:
    from core.benchmark.provenance import filter_by_verdict, latest_generation
    from core.store import repo

    store = _open(args.db)
    ids = store.run(
        lambda s: [x.id for x in repo.list_samples(s, category=args.split, status=args.status)],
        write=False,
    )
    ids = filter_by_verdict(store, ids, args.verdict)
    rows = []
    for sid in ids:
        g = latest_generation(store, sid)
        if g is None:
            continue
        smp = store.run(lambda s, sid=sid: repo.get_sample(s, sid), write=False)
        rows.append(
            {
                "sample_id": sid,
                "split": g.split,
                "status": smp.status,
                "verdict": g.verdict,
                "question": smp.question,
                "reasons": g.reasons,
                "generator": g.generator_model,
                "verifier": g.verifier_model,
                "prompts": g.prompt_versions,
                "usage": g.usage,
            }
        )
    if args.json:  # JSON escapes every control character (ensure_ascii: bidi ones too)
        print(json.dumps(rows, indent=2, default=str))
    else:
        for r in rows:
            print(
                f"{r['sample_id']:>6}  {r['split']:<14}{r['status']:<10}{r['verdict']:<10}"
                f"{terminal_text(r['question'], LIST_QUESTION_CHARS)}"
            )
    return 0


def cmd_questions_review(args: argparse.Namespace) -> int:
    from core.store import review

    store = _open(args.db)
    status = review.decide(store, args.sample, args.decision, user=args.user, note=args.note or "")
    print(f"sample {args.sample}: {args.decision} by {args.user} → {status}")
    return 0


def cmd_questions_regenerate(args: argparse.Namespace) -> int:
    import os

    from core.benchmark.provenance import regenerate

    store = _open(args.db)
    g = regenerate(
        store,
        args.sample,
        user=args.user,
        api_key=os.environ.get(args.api_key_env) or None,
        **_client_options(args),
    )
    print(
        f"sample {args.sample}: generation {g.count} {g.verdict}: "
        f"{terminal_text(g.question or '-', LIST_QUESTION_CHARS)}"
    )
    return 0 if g.verdict != "error" else 1


def _add_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api-key-env",
        default="REA2SEG_EVAL_API_KEY",
        help="environment variable holding the API key (never pass a key on the command line)",
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--max-retries", type=int, default=4, help="retries on 429 / 5xx / timeouts")
    p.add_argument(
        "--backoff", type=float, default=1.0, help="first retry wait in seconds (doubles)"
    )
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at most")
    p.add_argument(
        "--max-tokens", type=int, default=1024, help="longest answer in tokens (default 1024)"
    )


def register(sub) -> None:
    p_q = sub.add_parser(
        "questions", help="generate, list and review benchmark questions (paper §3, App. C)"
    )
    q = p_q.add_subparsers(dest="action", required=True)

    p = q.add_parser("generate", help="generate and verify questions for the imported targets")
    add_common(p)
    p.add_argument(
        "--split", required=True, choices=SPLITS, help="which split's questions (App. C)"
    )
    p.add_argument(
        "--kind",
        choices=DISCRIMINATIVE_KINDS,
        help="discriminative split: which fixed question of App. C",
    )
    p.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", help="generator model name")
    p.add_argument("--verifier-model", help="verifier model name (default: --model)")
    p.add_argument("--verifier-endpoint", help="verifier base URL (default: --endpoint)")
    p.add_argument("--dataset", help="only targets of this dataset")
    p.add_argument("--limit", type=int, metavar="N", help="at most N targets this time")
    p.add_argument(
        "--resume", action="store_true", help="continue: skip finished targets, retry failed ones"
    )
    p.add_argument(
        "--retry-paid",
        action="store_true",
        help="with --resume: also ask again targets whose paid reply was unusable (pays again)",
    )
    p.add_argument(
        "--claim-lease",
        type=_positive,
        metavar="SECONDS",
        help="a target this run claims stays locked this long after a crash (renewed while "
        "the run lives; default: the setting CLAIM_LEASE_S of core/benchmark/claims.py)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_client_args(p)
    p.set_defaults(func=cmd_questions_generate)

    p = q.add_parser("list", help="generated questions with their verifier verdicts")
    add_common(p)
    p.add_argument("--split", choices=SPLITS, help="only questions of this split")
    p.add_argument("--status", choices=STATUSES, help="only samples with this review status")
    p.add_argument(
        "--verdict", choices=VERDICT_FILTERS, help="only questions with this verifier verdict"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_questions_list)

    p = q.add_parser("review", help="record one annotator's decision on a sample")
    add_common(p)
    p.add_argument("--sample", type=int, required=True, help="the sample's numeric id")
    p.add_argument("--decision", required=True, choices=DECISIONS, help="the annotator's decision")
    p.add_argument(
        "--user", required=True, help="annotator name (two annotators may review one sample)"
    )
    p.add_argument("--note", help="free text kept with the decision")
    p.set_defaults(func=cmd_questions_review)

    p = q.add_parser("regenerate", help="ask the sample's generator and verifier again")
    add_common(p)
    p.add_argument("--sample", type=int, required=True, help="the sample's numeric id")
    p.add_argument("--user", required=True, help="who asks (recorded with the new generation)")
    _add_client_args(p)
    p.set_defaults(func=cmd_questions_regenerate)

    _extend_stats(sub)


# -- stats --agreement -----------------------------------------------------------------------


def cmd_agreement(args: argparse.Namespace) -> int:
    from core.benchmark.agreement import agreement

    store = _open(args.db)
    rep = agreement(store, users=_names(args.user) or None)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2, sort_keys=True))
        return 0

    def kappas(c) -> str:
        return ", ".join(
            f"{u}/{v} {'n/a' if k is None else f'{k:.3f}'}" for (u, v), k in sorted(c.kappa.items())
        )

    print(f"{'category':<16}{'n':>6}{'agree':>8}{'%':>8}  Cohen's kappa")
    for c in [*sorted(rep.categories.values(), key=lambda c: c.category), rep.overall]:
        pct = "-" if c.percent is None else f"{c.percent:.1f}"
        print(f"{c.category:<16}{c.n:>6}{c.agree:>8}{pct:>8}  {kappas(c)}")
    if rep.disagreements:
        print(f"\n{len(rep.disagreements)} disagreements to resolve:")
        for d in rep.disagreements:
            who = ", ".join(f"{u}: {v}" for u, v in d.decisions.items())
            print(f"  sample {d.sample_id} ({d.category}, {d.external_id}): {who}")
    return 0


def _extend_stats(sub) -> None:
    """Add ``--agreement`` / ``--user`` to the ``stats`` command, keeping its other behaviour."""
    p = sub.choices.get("stats")
    if p is None:
        return
    counts = p.get_default("func")
    p.add_argument(
        "--agreement",
        action="store_true",
        help="agreement between annotators per category, and the disagreements to resolve",
    )
    p.add_argument(
        "--user", action="append", metavar="NAMES", help="with --agreement: only these annotators"
    )

    def stats(args: argparse.Namespace) -> int:
        return cmd_agreement(args) if args.agreement else counts(args)

    p.set_defaults(func=stats)
