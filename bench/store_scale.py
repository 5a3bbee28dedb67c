"""Store benchmarks: SGDR import against its floor, open / first page / ``stats`` and the
streamed SGDR export at 100,000 samples, and (``--postgres``) the same export on PostgreSQL.

Prints measured values and their ratio to the targets (ratio ≤ 1 meets the target):

- import of ``--import-samples`` (default 1,000) samples, **each on its own image** (as in a
  real dataset: every image is decoded and hashed): ≤ 1.2 × the floor. The floor is the work
  no import can skip, timed in the same process: reading the file, decoding and hashing each
  image once (:func:`core.images.image_info`) and decoding and re-encoding each mask once.
- open ≤ 1 s, the first 200-row page + counts ≤ 0.2 s, ``rea2seg stats`` ≤ 1 s at ``--samples``
  (default 100,000).
- ``export sgdr`` of every sample: time, and peak Python memory (``tracemalloc``) ≤ 1.5 × the
  floor's. The floor streams the same rows and masks through the driver's cursor, 1,000 at a
  time, and writes the same lines: the least an export can hold.
- ``--postgres``: the export of ``--samples`` samples from a throw-away PostgreSQL server
  (``tests/pg.py``); before the export was streamed, more than ~33,000 samples failed there
  (65,535 parameters in one statement).

    .venv/bin/python bench/store_scale.py [--samples 100000] [--import-samples 1000] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.formats.sgdr import SgdrSample, read_sgdr, write_sgdr  # noqa: E402
from core.images import image_info  # noqa: E402
from core.importers.sgdr import import_sgdr  # noqa: E402
from core.masks import decode_rle, encode_rle  # noqa: E402
from core.store import open_store, repo  # noqa: E402
from tests.big_store import fill_store  # noqa: E402


def _import_file(d: Path, n: int, hw=(480, 640)) -> Path:
    """``n`` samples, each with its own JPEG (smooth noise, so it compresses like a photo)."""
    import cv2

    rng = np.random.default_rng(0)
    samples = []
    base = cv2.GaussianBlur(rng.integers(0, 255, (*hw, 3), dtype=np.uint8), (0, 0), 2)
    for i in range(n):
        name = f"img{i:05d}.jpg"
        img = np.roll(base, i * 7, axis=1)
        img[:8, :8] = i % 255  # distinct bytes
        cv2.imwrite(str(d / name), img)
        m = np.zeros(hw, bool)
        y, x = rng.integers(0, hw[0] - 80), rng.integers(0, hw[1] - 80)
        m[y : y + 80, x : x + 80] = True
        samples.append(
            SgdrSample(f"s{i}", name, f"question {i}", "spatial", "bench", "pending", encode_rle(m))
        )
    write_sgdr(d / "bench.json", samples)
    return d / "bench.json"


def _floor_import(path: Path) -> float:
    samples, _ = read_sgdr(path)
    for smp in samples:
        image_info(path.parent / smp.image)
        m = decode_rle(smp.mask)
        encode_rle(m)
        int(m.sum())
    return 0.0


def bench_import(d: Path, n: int, runs: int = 3) -> tuple[float, float]:
    """(import seconds, floor seconds): medians of ``runs`` runs each, the two alternating so
    that a change in the machine's load falls on both."""
    path = _import_file(d, n)
    _floor_import(path)  # warm: imports, page cache
    imp, floor = [], []
    for k in range(runs):
        t = time.perf_counter()
        _floor_import(path)
        floor.append(time.perf_counter() - t)
        st = open_store(d / f"import{k}.sqlite")
        t = time.perf_counter()
        rep = import_sgdr(st, path)
        imp.append(time.perf_counter() - t)
        st.close()
        assert rep.added == n, rep.summary()
    return statistics.median(imp), statistics.median(floor)


def bench_open(path: Path) -> tuple[float, float, float]:
    """(open, first page + counts, ``rea2seg stats``) in seconds."""
    from core.cli import main as cli

    t = time.perf_counter()
    st = open_store(path)
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    with st.session(write=False) as s:
        page = repo.list_samples(s, category="spatial", limit=200)
        repo.counts(s)
    t_page = time.perf_counter() - t
    assert len(page) == 200
    st.close()
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["stats", "--db", str(path)]) == 0
    return t_open, t_page, time.perf_counter() - t


def _floor_export(store, out: Path) -> int:
    """The same lines as ``export sgdr`` from a cursor over samples ⋈ images ⋈ masks."""
    sql = (
        "SELECT s.external_id, i.path, s.question, s.category, s.source, s.status, "
        "m.height, m.width, m.counts FROM samples s JOIN images i ON i.id = s.image_id "
        "LEFT JOIN masks m ON m.id = COALESCE(s.edited_mask_id, s.gt_mask_id) ORDER BY s.id"
    )
    n = 0
    with store.engine.connect() as conn, out.open("w", encoding="utf-8") as f:
        cur = conn.connection.dbapi_connection.cursor()
        cur.execute(sql)
        while rows := cur.fetchmany(1000):
            for ext, path, q, cat, src, status, h, w, counts in rows:
                rec = {
                    "id": ext,
                    "image": path,
                    "question": q,
                    "category": cat,
                    "source": src,
                    "status": status,
                    "mask": None if counts is None else {"size": [h, w], "counts": counts},
                    "ignore": None,
                }
                f.write(json.dumps(rec, ensure_ascii=False) + ",\n")
                n += 1
        cur.close()
    return n


def _measured(fn) -> tuple[float, int]:
    """(seconds, peak traced bytes) of ``fn()``: time in one run, memory in a second one."""
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dt, peak


def bench_export(store, d: Path, n: int) -> tuple[tuple[float, int], tuple[float, int]]:
    from core.exporters.sgdr import export_sgdr

    def export() -> None:
        assert export_sgdr(store, d / "out.json") == n

    def floor() -> None:
        assert _floor_export(store, d / "floor.json") == n

    return _measured(export), _measured(floor)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--import-samples", type=int, default=1000)
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    n = args.samples
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "imp").mkdir()
        imp, floor = bench_import(d / "imp", args.import_samples)
        print(
            f"import of {args.import_samples} samples on distinct images: {imp:.2f} s, floor "
            f"{floor:.2f} s → {imp / floor:.2f}× the floor (target 1.2×)   ratio {imp / floor / 1.2:.2f}"
        )
        st = open_store(d / "big.sqlite")
        t = time.perf_counter()
        fill_store(st, d / "img", n, hw=(480, 640))
        print(f"(store of {n} samples written in {time.perf_counter() - t:.1f} s)")
        st.close()
        t_open, t_page, t_stats = bench_open(d / "big.sqlite")
        print(f"open {n} samples: {t_open * 1000:.1f} ms (target 1000 ms)   ratio {t_open:.3f}")
        print(
            f"first page + counts: {t_page * 1000:.1f} ms (target 200 ms)   ratio {t_page / 0.2:.3f}"
        )
        print(f"rea2seg stats: {t_stats * 1000:.1f} ms (target 1000 ms)   ratio {t_stats:.3f}")
        st = open_store(d / "big.sqlite")
        (t_e, m_e), (t_f, m_f) = bench_export(st, d, n)
        st.close()
        print(
            f"export sgdr of {n}: {t_e:.2f} s ({t_e / t_f:.2f}× the floor's {t_f:.2f} s); "
            f"peak memory {m_e / 2**20:.1f} MiB vs the floor's {m_f / 2**20:.1f} MiB "
            f"→ {m_e / m_f:.2f}× (target 1.5×)   ratio {m_e / m_f / 1.5:.2f}"
        )
        if args.postgres:
            from tests.pg import PostgresServer

            server = PostgresServer()
            try:
                pg = open_store(server.new_database())
                t = time.perf_counter()
                fill_store(pg, d / "pgimg", n, hw=(480, 640))
                print(
                    f"(PostgreSQL store of {n} samples written in {time.perf_counter() - t:.1f} s)"
                )
                from core.exporters.sgdr import export_sgdr

                t = time.perf_counter()
                assert export_sgdr(pg, d / "pg.json") == n
                print(f"PostgreSQL export sgdr of {n}: {time.perf_counter() - t:.2f} s (works)")
                pg.close()
            finally:
                server.stop()


if __name__ == "__main__":
    main()
