"""``questions check``: quality checks of generated questions through an OpenAI-compatible
endpoint (blind answerability, uniqueness; not from the paper), and their rates in ``stats``."""

from __future__ import annotations

import argparse
import os
import sys


def cmd_questions_check(args: argparse.Namespace) -> int:
    from core.benchmark.checks import CHECKS, check_questions
    from core.cli.common import progress_bar
    from core.llm_client import ChatClient
    from core.store import open_store

    if not args.endpoint or not args.model:
        print("rea2seg: --endpoint and --model are needed for question checks", file=sys.stderr)
        return 2
    store = open_store(args.db)
    client = ChatClient(
        args.endpoint,
        args.model,
        os.environ.get(args.api_key_env) or None,
        timeout_s=args.timeout,
        max_retries=args.max_retries,
        backoff_s=args.backoff,
        concurrency=args.concurrency,
        max_tokens=args.max_tokens,
    )
    bar: list = []

    def progress(done: int, total: int, label: str) -> None:
        if args.quiet:
            return
        if not bar:
            bar.extend(progress_bar(total, unit="check"))
        bar[0](done, total, label)

    try:
        report = check_questions(
            store,
            [args.check] if args.check else list(CHECKS),
            client,
            resume=args.resume,
            limit=args.limit,
            split=args.split,
            dataset=args.dataset,
            retry_paid=args.retry_paid,
            progress=progress,
        )
    finally:
        if bar:
            bar[1]()
    print(report.summary())
    return 1 if report.errors else 0


def _questions_actions(sub) -> argparse._SubParsersAction | None:
    p = sub.choices.get("questions")
    if p is None:
        return None
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def register(sub) -> None:
    from core.cli.benchmark import _add_client_args
    from core.cli.common import add_common
    from core.vocab import CATEGORIES

    q = _questions_actions(sub)
    if q is None:
        return
    p = q.add_parser(
        "check",
        help="check generated questions with a model: blind answerability and uniqueness "
        "(not from the paper)",
    )
    add_common(p)
    p.add_argument(
        "--check",
        choices=("blind", "unique"),
        help="only this check (default: both). blind: question + category list, no image; "
        "unique: the image with every instance in a numbered box",
    )
    p.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", help="model name")
    p.add_argument("--split", choices=CATEGORIES, help="only samples of this category / split")
    p.add_argument("--dataset", help="only samples of this dataset")
    p.add_argument("--limit", type=int, metavar="N", help="at most N samples per check this time")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue: skip checked questions, retry failed ones, check changed questions again",
    )
    p.add_argument(
        "--retry-paid",
        action="store_true",
        help="with --resume: also ask again checks whose paid reply was unusable (pays again)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_client_args(p)
    p.set_defaults(func=cmd_questions_check)


def rates_json(store) -> dict:
    """``{split: {check: {verdict: n}}}`` of the question checks (empty when none)."""
    from core.benchmark.checks import check_rates

    return {
        split: {c: dict(sorted(n.items())) for c, n in checks.items()}
        for split, checks in sorted(check_rates(store).items())
    }


def print_rates(store) -> None:
    """The question checks' verdict rates per split, after ``stats``' counts (nothing when no
    question was checked)."""
    from core.benchmark.checks import CHECK_VERDICTS

    rates = rates_json(store)
    if not rates:
        return
    print("\nquestion checks (latest per sample; not from the paper)")
    for check, verdicts in CHECK_VERDICTS.items():
        rows = [(sp, c[check]) for sp, c in rates.items() if check in c]
        if not rows:
            continue
        head = f"{check + ' check':<16}" + "".join(f"{v:>14}" for v in verdicts) + f"{'n':>6}"
        print(head)
        for split, counts in rows:
            n = sum(counts.values())
            cells = "".join(
                f"{f'{counts.get(v, 0)} ({100 * counts.get(v, 0) / n:.0f}%)':>14}" for v in verdicts
            )
            print(f"{split:<16}{cells}{n:>6}")
