"""Store benchmarks: SGDR import speed per 1,000 samples, and open + first page at 100k samples.

Prints measured values and their ratio to the targets (ratio ≤ 1 meets the target):
import ≤ 10 s per 1,000 samples (one transaction per sample, images hashed once each);
open ≤ 1 s and the first 200-row page of the sample list ≤ 0.2 s with 100,000 samples.

    .venv/bin/python bench/store_scale.py [--samples 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.formats.sgdr import SgdrSample, write_sgdr  # noqa: E402
from core.importers.sgdr import import_sgdr  # noqa: E402
from core.masks import encode_rle  # noqa: E402
from core.store import open_store, repo  # noqa: E402
from core.store.models import Dataset, Image, Mask, Sample  # noqa: E402


def _images(d: Path, n: int, hw=(480, 640)) -> list[str]:
    import cv2

    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        img = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
        name = f"img{i:03d}.jpg"
        cv2.imwrite(str(d / name), img)
        names.append(name)
    return names


def bench_import(d: Path, n: int = 1000) -> float:
    names = _images(d, 50)
    rng = np.random.default_rng(1)
    samples = []
    for i in range(n):
        m = np.zeros((480, 640), bool)
        y, x = rng.integers(0, 400), rng.integers(0, 560)
        m[y : y + 80, x : x + 80] = True
        samples.append(
            SgdrSample(
                f"s{i}",
                names[i % len(names)],
                f"question {i}",
                "spatial",
                "bench",
                "pending",
                encode_rle(m),
            )
        )
    write_sgdr(d / "bench.json", samples)
    st = open_store(d / "import.sqlite")
    t = time.perf_counter()
    rep = import_sgdr(st, d / "bench.json")
    dt = time.perf_counter() - t
    assert rep.added == n
    return dt * 1000 / n


def bench_open(d: Path, n: int) -> tuple[float, float]:
    path = d / "big.sqlite"
    st = open_store(path)
    m = np.zeros((480, 640), bool)
    m[10:90, 10:90] = True
    rle = encode_rle(m)
    with st.session() as s:
        ds = Dataset(name="big")
        s.add(ds)
        s.flush()
        img = Image(
            dataset_id=ds.id, path="/nonexistent/x.jpg", sha256="0" * 64, height=480, width=640
        )
        s.add(img)
        s.flush()
        cats = ["discriminative", "geometric", "spatial", "multi_step"]
        for start in range(0, n, 5000):
            rows = [
                Sample(
                    dataset_id=ds.id,
                    image_id=img.id,
                    external_id=f"x{i}",
                    question=f"q {i}",
                    category=cats[i % 4],
                    source="bench",
                    status="pending",
                )
                for i in range(start, min(n, start + 5000))
            ]
            s.add_all(rows)
            s.flush()
            s.add_all(
                [
                    Mask(
                        sample_id=r.id,
                        kind="gt",
                        height=480,
                        width=640,
                        counts=rle["counts"],
                        area=6400,
                    )
                    for r in rows
                ]
            )
    st.close()
    t = time.perf_counter()
    st = open_store(path)
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    with st.session(write=False) as s:
        page = repo.list_samples(s, category="spatial", limit=200)
        repo.counts(s)
    t_page = time.perf_counter() - t
    assert len(page) == 200
    return t_open, t_page


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        per_sample_ms = bench_import(d)
        t_open, t_page = bench_open(d, args.samples)
    per_1000 = per_sample_ms
    print(f"import: {per_1000:.2f} s per 1,000 samples (target 10 s)   ratio {per_1000 / 10:.3f}")
    print(
        f"open {args.samples} samples: {t_open * 1000:.1f} ms (target 1000 ms)   ratio {t_open:.3f}"
    )
    print(f"first page + counts: {t_page * 1000:.1f} ms (target 200 ms)   ratio {t_page / 0.2:.3f}")


if __name__ == "__main__":
    main()
