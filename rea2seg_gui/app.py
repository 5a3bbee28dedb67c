"""``rea2seg-gui``: open a store (path or URL) or the bundled demo project."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rea2seg-gui", description="Rea2Seg Studio")
    ap.add_argument("store", nargs="?", help="store path (SQLite) or SQLAlchemy URL")
    ap.add_argument("--demo", action="store_true", help="open the bundled demo project")
    args = ap.parse_args(argv)
    target = args.store
    if args.demo:
        from core.demo import ensure_demo_store

        try:
            target = str(ensure_demo_store())
        except FileNotFoundError as exc:
            print(f"rea2seg-gui: {exc}", file=sys.stderr)
            return 2
    if not target:
        ap.error("give a store path/URL or --demo")
    from core.cli import main as cli_main

    return cli_main(["stats", "--db", target])


if __name__ == "__main__":
    sys.exit(main())
