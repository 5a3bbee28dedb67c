"""What every command group shares: the ``--db`` and ``--ignore-mode`` options, sample
references and the progress bar. Imports nothing heavy (``rea2seg --help`` stays fast)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

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
