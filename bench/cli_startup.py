"""Start-up cost of ``rea2seg stats`` on the demo store, against bare Python and the store's own work.

Three commands, each run ``--runs`` times in fresh processes, interleaved; the median wall time
of each is reported:

- ``python -c pass``: the interpreter's start-up (P);
- ``python -c "open_store(db); review.counts(...)"``: the store's own work in a process (S):
  start-up, SQLAlchemy + Alembic, opening and checking the store, the count query;
- ``python -m core.cli stats --db DB``: the command (C).

Bytecode is cached (in a temporary ``PYTHONPYCACHEPREFIX``, even where ``PYTHONDONTWRITEBYTECODE``
is set), as in an installed copy; one warm-up run of each command fills it.

Target: C ≤ 2·P + (S − P), i.e. the command adds at most one more Python start-up to the store's
work (argument parsing, command registry, printing). Ratio = C / (P + S); ≤ 1 meets it.

    .venv/bin/python bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.demo import ensure_demo_store  # noqa: E402

STORE_WORK = "from core.store import open_store, review; review.counts(open_store({db!r}))"


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="processes per command (median reported)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        db = str(ensure_demo_store(Path(tmp) / "demo.sqlite"))
        cmds = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "store work": [sys.executable, "-c", STORE_WORK.format(db=db)],
            "rea2seg stats": [sys.executable, "-m", "core.cli", "stats", "--db", db],
        }
        for cmd in cmds.values():  # warm the file cache and the bytecode
            _time(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                times[name].append(_time(cmd, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    p, s, c = med["python -c pass"], med["store work"], med["rea2seg stats"]
    for name, v in med.items():
        print(
            f"{name:<16} median {v * 1000:7.1f} ms  (min {min(times[name]) * 1000:.1f}, {args.runs} runs)"
        )
    print(f"store's own work beyond start-up (S - P): {(s - p) * 1000:.1f} ms")
    print(
        f"stats beyond the store's work (C - S):    {(c - s) * 1000:.1f} ms = {(c - s) / p:.2f} x python start-up"
    )
    print(f"ratio C / (2P + (S - P)) = {c / (p + s):.2f} (target <= 1)")


if __name__ == "__main__":
    main()
