"""What every command group shares: the ``--db`` and ``--ignore-mode`` options, sample
references and the progress bar. Imports nothing heavy (``rea2seg --help`` stays fast)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.vocab import IGNORE_MODES


def add_common(
    p: argparse.ArgumentParser,
    *,
    db: bool = True,
    ignore_mode: bool = False,
    json: bool = False,
    db_help: str = "store: a SQLite file path or a SQLAlchemy URL",
) -> None:
    """Add the shared options: ``--db`` (required), and with ``ignore_mode`` / ``json`` the
    ``--ignore-mode`` / ``--json`` options."""
    if db:
        p.add_argument("--db", required=True, metavar="PATH|URL", help=db_help)
    if json:
        p.add_argument("--json", action="store_true", help="machine-readable output (JSON)")
    if ignore_mode:
        p.add_argument(
            "--ignore-mode",
            choices=IGNORE_MODES,
            default="exclude",
            help="ignore pixels excluded from IoU (LISA's protocol, default) or counted as "
            "background (LENS's)",
        )


class _StoreOnce(argparse._StoreAction):
    """A single-value option that refuses a second, different value instead of silently keeping
    the last one (``--status pending --status verified`` would otherwise act on ``verified``
    alone). The same value given twice is harmless and accepted."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        seen: dict[str, object] = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in seen and seen[self.dest] != values:
            parser.error(
                f"{option_string} was given twice ({seen[self.dest]!r} and {values!r}); it takes "
                "one value — run the command once per value"
            )
        seen[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


def refuse_repeats(parser: argparse.ArgumentParser) -> None:
    """Make every single-value option of ``parser`` and its (nested) subcommands refuse a second,
    different value. Options that take several values use ``action="extend"`` or ``"append"``
    and accumulate; flags (``store_true``, ``--x/--no-x``) are left as they are."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                refuse_repeats(sub)
        elif type(action) is argparse._StoreAction and action.option_strings:
            action.__class__ = _StoreOnce


def strip_bookkeeping(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` without the repetition bookkeeping of :class:`_StoreOnce`."""
    args.__dict__.pop("_given_once", None)
    return args


def progress_bar(
    total_hint: int = 0, unit: str = "sample"
) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """A tqdm bar on stderr as a ``progress(done, total, label)`` callable, and its ``close``."""
    from tqdm import tqdm

    bar = tqdm(total=total_hint, unit=unit, dynamic_ncols=True, leave=True)

    def progress(done: int, total: int, label: str) -> None:
        if bar.total != total:
            bar.total = total
        bar.set_postfix_str(label[:40], refresh=False)
        bar.update(done - bar.n)

    return progress, bar.close


def run_console(main: Callable[[Sequence[str]], int], prog: str) -> NoReturn:
    """The body of a console script: exit with ``main(sys.argv[1:])``. Ctrl+C ends it with one
    line on stderr and status 130 (128 + SIGINT, what shells expect) instead of a traceback;
    ``main`` itself lets ``KeyboardInterrupt`` through, so a caller embedding it can stop it."""
    try:
        code = main(sys.argv[1:])
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


# -- what the trainers' commands share (rea2seg train …) ------------------------------------


def positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {text}")
    return v


def size_wh(text: str) -> tuple[int, int]:
    """An argparse type: ``WxH`` in pixels (``256x192``) as ``(w, h)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 256x192, got {text!r}") from exc
    return w, h


def add_checkpoint_options(p: argparse.ArgumentParser, defaults: Any) -> None:
    """``--save-steps``, ``--save-total-limit``, ``--logging-steps`` and ``--workers`` of a
    trainer on transformers' ``Trainer``, with the defaults of its settings dataclass."""
    p.add_argument(
        "--save-steps",
        type=positive_int,
        default=defaults.save_steps,
        help=f"checkpoint every N steps ({defaults.save_steps})",
    )
    p.add_argument(
        "--save-total-limit",
        type=positive_int,
        default=defaults.save_total_limit,
        help=f"checkpoints kept ({defaults.save_total_limit})",
    )
    p.add_argument(
        "--logging-steps",
        type=positive_int,
        default=defaults.logging_steps,
        help=f"loss-curve row every N steps ({defaults.logging_steps})",
    )
    p.add_argument(
        "--workers", type=int, default=0, help="data-loading worker processes (default 0)"
    )


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """How stage 2 scores (§4.3), shared by ``rea2seg run`` and ``rea2seg ask``: ``--cot`` /
    ``--no-cot`` and ``--group-size`` (s)."""
    from core.evaluator.grouping import GROUP_SIZE

    p.add_argument(
        "--cot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="chain of thought before the scores",
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=GROUP_SIZE,
        help=f"masks per evaluator group (s, default {GROUP_SIZE})",
    )


def add_split_options(p: argparse.ArgumentParser) -> None:
    """``--split``, ``--scenes``, ``--split-seed`` and ``--size``: the geometric training split a
    trainer reads, or makes first (:func:`training_split`)."""
    from core.training.splits import DEFAULT_TRAINING_SEED

    p.add_argument(
        "--split",
        metavar="DIR",
        help="geometric training split folder (with split.json); default OUT/split",
    )
    p.add_argument(
        "--scenes",
        type=int,
        default=0,
        metavar="N",
        help="first make the training split with N questions (seeds disjoint from evaluation)",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=DEFAULT_TRAINING_SEED,
        help=f"seed of a split made by --scenes (training range; default {DEFAULT_TRAINING_SEED})",
    )
    p.add_argument(
        "--size",
        type=size_wh,
        default=(256, 192),
        help="WxH of a split made by --scenes (default 256x192)",
    )


def training_split(args: argparse.Namespace, out: Path) -> Path:
    """The split folder of :func:`add_split_options` (``OUT/split`` by default), made first when
    ``--scenes`` asks for it (``ValueError`` for a bad seed or size)."""
    from core.training.splits import prepare_training_split

    split = Path(args.split) if args.split else out / "split"
    if args.scenes:
        info = prepare_training_split(split, args.scenes, seed=args.split_seed, size_wh=args.size)
        print(f"training split {split}: {info['summary']}", file=sys.stderr)
    return split
